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

<name> is a PyTorch state_dict name: enc.{i}.weight, enc.{i}.bias,
dec.{i}.weight, dec.{i}.bias. Layouts are PyTorch's: Conv2d (OC, C, K, K),
ConvTranspose2d (C_in, OC, K, K).

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
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
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

SGD_LR, SGD_MOMENTUM, SGD_WD = 0.05, 0.9, 1e-4
ADAM_LR, ADAM_BETAS, ADAM_EPS, ADAM_WD = 2e-3, (0.9, 0.999), 1e-8, 1e-4


# ----------------------------------------------------------------- frames
def read_y4m(path, wanted):
    """Decode the frames numbered in `wanted` of a 4:2:0 Y4M file to RGB8 (H, W, 3).

    BT.601 limited range (Y 16..235, Cb/Cr 16..240); chroma is upsampled by
    repeating each sample over its 2x2 block.
    """
    with open(path, "rb") as f:
        header = f.readline().decode("ascii").split()
        if not header or header[0] != "YUV4MPEG2":
            raise ValueError(f"{path}: not a YUV4MPEG2 file")
        fields = {tok[0]: tok[1:] for tok in header[1:]}
        w, h = int(fields["W"]), int(fields["H"])
        if not fields.get("C", "420").startswith("420"):
            raise ValueError(f"{path}: only 4:2:0 is supported")
        frame_bytes = w * h * 3 // 2
        out = {}
        index = 0
        while len(out) < len(wanted):
            marker = f.readline()
            if not marker.startswith(b"FRAME"):
                raise ValueError(f"{path}: frame {index} missing (file has {index} frames)")
            data = f.read(frame_bytes)
            if len(data) != frame_bytes:
                raise ValueError(f"{path}: frame {index} truncated")
            if index in wanted:
                out[index] = yuv420_to_rgb(np.frombuffer(data, np.uint8), w, h)
            index += 1
    return [out[i] for i in wanted]


def yuv420_to_rgb(buf, w, h):
    """One planar 4:2:0 frame -> RGB8, BT.601 limited range."""
    y = buf[: w * h].reshape(h, w).astype(np.float32)
    u = buf[w * h: w * h + w * h // 4].reshape(h // 2, w // 2).astype(np.float32)
    v = buf[w * h + w * h // 4:].reshape(h // 2, w // 2).astype(np.float32)
    u = u.repeat(2, axis=0).repeat(2, axis=1)
    v = v.repeat(2, axis=0).repeat(2, axis=1)
    c, d, e = 1.164383 * (y - 16.0), u - 128.0, v - 128.0
    r = c + 1.596027 * e
    g = c - 0.391762 * d - 0.812968 * e
    b = c + 2.017232 * d
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def crop_resize(rgb, width, height):
    """Centre-crop to the aspect width:height, then resize (PIL box filter)."""
    h, w, _ = rgb.shape
    if w * height > h * width:  # too wide: crop columns
        cw, ch = int(round(h * width / height)), h
    else:  # too tall: crop rows
        cw, ch = w, int(round(w * height / width))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    img = Image.fromarray(rgb[y0: y0 + ch, x0: x0 + cw])
    return np.asarray(img.resize((width, height), Image.BOX), dtype=np.uint8)


# ----------------------------------------------------------------- network
class Tabula(nn.Module):
    """tabula's autoencoder: stride-2 convs down, stride-2 transposed convs up."""

    def __init__(self, channels, kernel=4, stride=2, pad=1, slope=0.2):
        super().__init__()
        chans = (3,) + tuple(channels)
        self.slope = slope
        self.enc = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], kernel, stride, pad) for i in range(len(channels)))
        self.dec = nn.ModuleList(
            nn.ConvTranspose2d(chans[i], chans[i - 1], kernel, stride, pad)
            for i in range(len(channels), 0, -1))

    def forward(self, x):
        for conv in self.enc:
            x = F.leaky_relu(conv(x), self.slope)
        for i, conv in enumerate(self.dec):
            x = conv(x)
            x = torch.sigmoid(x) if i == len(self.dec) - 1 else F.leaky_relu(x, self.slope)
        return x


def he_init(model, slope, bias_range):
    """Kaiming normal (fan_in, LeakyReLU slope) weights; biases uniform in
    [-bias_range, bias_range] (0 gives tabula's default zero biases)."""
    for name, p in model.named_parameters():
        if name.endswith(".weight"):
            nn.init.kaiming_normal_(p, a=slope, mode="fan_in", nonlinearity="leaky_relu")
        elif bias_range > 0:
            nn.init.uniform_(p, -bias_range, bias_range)
        else:
            nn.init.zeros_(p)


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
    frames = np.stack([crop_resize(f, WIDTH, HEIGHT)
                       for f in read_y4m(args.clip, list(FRAME_NUMBERS))])
    x_all = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0).contiguous()

    # Batches: the "newest" frame advances every two steps; the second frame is
    # a replayed older one, drawn at random.
    batch_index = []
    for s in range(STEPS):
        newest = min(1 + s // 2, len(FRAME_NUMBERS) - 1)
        batch_index.append([newest, int(rng.integers(0, newest))])
    batch_index = np.array(batch_index, np.int64)

    model = Tabula(CHANNELS, KERNEL, STRIDE, PAD, SLOPE)
    he_init(model, SLOPE, bias_range=0.05)
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
