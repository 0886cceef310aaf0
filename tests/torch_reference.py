#!/usr/bin/python3
"""PyTorch reference run for tabula's end-to-end test (tests/test_torch_ref.c).

Builds a tiny tabula autoencoder (encoder channels 8,16; kernel 4, stride 2,
padding 1; LeakyReLU 0.2; sigmoid output) at 48x32, trains it for 10 steps on
six real frames with SGD (momentum, weight decay, gradient clipping) and, from
the same initial weights, with Adam, and writes everything the C test needs to
tests/fixtures/torch_ref.safetensors:

  frames                        U8  [6, 32, 48, 3]  RGB frames (H, W, C)
  batch_index                   I64 [10, 2]          frames of each step's batch
  init.<name>                   F32                  initial parameters
  sgd.loss, sgd.grad_norm       F32 [10]             per step (norm before clipping)
  sgd.final.<name>              F32                  parameters after 10 steps
  sgd.final_momentum.<name>     F32                  SGD momentum buffers
  adam.loss, adam.grad_norm     F32 [10]
  adam.final.<name>             F32
  adam.final_exp_avg.<name>     F32                  Adam first moment (m)
  adam.final_exp_avg_sq.<name>  F32                  Adam second moment (v)
  b4.batch_index                I64 [5, 4]           batches of 4 frames (theme training)
  b4.loss, b4.grad_norm         F32 [5]              Adam from init.*, 5 steps of batch 4
  b4.final.<name>               F32

The batch-4 case comes last in the file, so the others keep their bytes.

<name> is a PyTorch state_dict name: enc.{i}.weight, enc.{i}.bias,
dec.{i}.weight, dec.{i}.bias. Layouts are PyTorch's: Conv2d (OC, C, K, K),
ConvTranspose2d (C_in, OC, K, K).

The network and the frame pipeline (Y4M decoding, centre crop and resize) are
python/tabula_torch.py's, the same the benchmark scripts in bench/ use.

Run with Debian's PyTorch:  /usr/bin/python3 tests/torch_reference.py
The output is deterministic: running it again rewrites the same bytes.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from tabula_torch import Tabula, fit, read_y4m  # noqa: E402  (the one definition)

DEFAULT_CLIP = os.path.join(HERE, "..", "..", "shared", "data", "asl_signer_a_320x240.y4m")
DEFAULT_OUT = os.path.join(HERE, "fixtures", "torch_ref.safetensors")

# ----------------------------------------------------------------- settings
WIDTH, HEIGHT = 48, 32
CHANNELS = (8, 16)
KERNEL, STRIDE, PAD = 4, 2, 1
SLOPE = 0.2
FRAME_NUMBERS = (0, 40, 80, 120, 160, 200)  # frames taken from the clip
STEPS = 10
BATCH = 2
SEED = 1234

# The batch-4 case (Adam, the theme trainer's default): fixed batches, no draws,
# so the draws above are unchanged.
B4_INDEX = ((0, 1, 2, 3), (2, 3, 4, 5), (5, 1, 3, 0), (4, 4, 2, 1), (3, 5, 0, 2))

SGD_LR, SGD_MOMENTUM, SGD_WD = 0.05, 0.9, 1e-4
ADAM_LR, ADAM_BETAS, ADAM_EPS, ADAM_WD = 2e-3, (0.9, 0.999), 1e-8, 1e-4


# ----------------------------------------------------------------- frames
def read_frames(path, numbers):
    """The frames numbered in `numbers` of a 4:2:0 Y4M file, as RGB8 (H, W, 3)."""
    got = {i: f for i, f in enumerate(read_y4m(path, max(numbers) + 1)) if i in numbers}
    if len(got) != len(set(numbers)):
        raise ValueError(f"{path}: has no frame {max(numbers)} (only {len(got)} of those wanted)")
    return [got[i] for i in numbers]


# ----------------------------------------------------------------- training
def train(model, make_opt, x_all, batch_index, clip):
    """Run len(batch_index) steps; return (losses, grad norms before clipping)."""
    params = list(model.parameters())
    opt = make_opt(params)
    losses, norms = [], []
    for idx in batch_index:
        x = x_all[torch.as_tensor(idx)]
        opt.zero_grad()
        loss = F.mse_loss(model(x), x)  # mean over the whole batch
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        opt.step()
        losses.append(loss.item())
        norms.append(float(norm))
    return np.array(losses, np.float32), np.array(norms, np.float32), opt


def make_sgd(params):
    return torch.optim.SGD(params, lr=SGD_LR, momentum=SGD_MOMENTUM, weight_decay=SGD_WD)


def make_adam(params):
    return torch.optim.Adam(params, lr=ADAM_LR, betas=ADAM_BETAS, eps=ADAM_EPS,
                            weight_decay=ADAM_WD)


# ----------------------------------------------------------------- safetensors
DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64"}


def write_safetensors(path, tensors, metadata):
    """Write the safetensors format: u64 LE header length | JSON header (padded
    with spaces to a multiple of 8) | raw little-endian data, no gaps.
    `tensors` is a list of (name, numpy array); their order is kept."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


# ----------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default=DEFAULT_CLIP, help="Y4M clip to take the frames from")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output .safetensors")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)

    # Frames: RGB8 at the training size, and the float NCHW batch source.
    frames = np.stack([fit(f, WIDTH, HEIGHT) for f in read_frames(args.clip, FRAME_NUMBERS)])
    x_all = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0).contiguous()

    # Batches: the "newest" frame advances every two steps; the second frame is
    # a replayed older one, drawn at random.
    batch_index = []
    for s in range(STEPS):
        newest = min(1 + s // 2, len(FRAME_NUMBERS) - 1)
        batch_index.append([newest, int(rng.integers(0, newest))])
    batch_index = np.array(batch_index, np.int64)

    model = Tabula(CHANNELS, KERNEL, STRIDE, PAD, SLOPE, bias_range=0.05)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # Clip threshold: half the median gradient norm of an unclipped SGD run,
    # rounded to two significant digits, so that clipping is active on most steps.
    _, free_norms, _ = train(model, make_sgd, x_all, batch_index, clip=0.0)
    clip = float(f"{0.5 * float(np.median(free_norms)):.2g}")

    runs = {}
    for tag, make_opt in (("sgd", make_sgd), ("adam", make_adam)):
        model.load_state_dict(init)
        losses, norms, opt = train(model, make_opt, x_all, batch_index, clip)
        runs[tag] = (losses, norms, opt, {k: v.detach().clone() for k, v in model.state_dict().items()})
        print(f"{tag}: clip {clip}, clipped on {int((norms > clip).sum())}/{STEPS} steps")
        for s in range(STEPS):
            print(f"  step {s}: batch {batch_index[s].tolist()} loss {losses[s]:.7f} "
                  f"grad_norm {norms[s]:.7f}")

    names = list(init.keys())
    params = dict(model.named_parameters())
    tensors = [("batch_index", batch_index)]
    tensors += [(f"init.{k}", init[k].numpy()) for k in names]
    for tag, (losses, norms, opt, final) in runs.items():
        tensors += [(f"{tag}.loss", losses), (f"{tag}.grad_norm", norms)]
        tensors += [(f"{tag}.final.{k}", final[k].numpy()) for k in names]
    # Optimizer state, keyed by the parameter tensors (load_state_dict copies
    # into the same tensors, so both optimizers' states stay valid).
    sgd_state = runs["sgd"][2].state
    tensors += [(f"sgd.final_momentum.{k}", sgd_state[params[k]]["momentum_buffer"].numpy())
                for k in names]
    adam_state = runs["adam"][2].state
    for key in ("exp_avg", "exp_avg_sq"):
        tensors += [(f"adam.final_{key}.{k}", adam_state[params[k]][key].numpy()) for k in names]
    tensors.append(("frames", frames))

    # Batch 4 (after everything else: the file's other tensors keep their bytes).
    b4_index = np.array(B4_INDEX, np.int64)
    model.load_state_dict(init)
    b4_loss, b4_norm, _ = train(model, make_adam, x_all, b4_index, clip)
    print(f"b4: adam, {len(B4_INDEX)} steps of batch 4, loss {b4_loss[0]:.7f} -> {b4_loss[-1]:.7f}")
    tensors += [("b4.batch_index", b4_index), ("b4.loss", b4_loss), ("b4.grad_norm", b4_norm)]
    tensors += [(f"b4.final.{k}", v.detach().clone().numpy()) for k, v in model.state_dict().items()]

    meta = {
        "width": str(WIDTH), "height": str(HEIGHT),
        "channels": ",".join(map(str, CHANNELS)),
        "kernel": str(KERNEL), "stride": str(STRIDE), "pad": str(PAD), "slope": str(SLOPE),
        "steps": str(STEPS), "batch": str(BATCH),
        "frames_from": os.path.basename(args.clip) + ":" + ",".join(map(str, FRAME_NUMBERS)),
        "sgd_lr": str(SGD_LR), "sgd_momentum": str(SGD_MOMENTUM), "sgd_weight_decay": str(SGD_WD),
        "clip": str(clip),
        "adam_lr": str(ADAM_LR), "adam_beta1": str(ADAM_BETAS[0]),
        "adam_beta2": str(ADAM_BETAS[1]), "adam_eps": str(ADAM_EPS),
        "adam_weight_decay": str(ADAM_WD),
        "torch_version": torch.__version__,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
