#!/usr/bin/python3
"""Online learning curve of tabula's default network in PyTorch.

Trains the default network (docs/ARCHITECTURE.md) from blank (He init, zero biases) on a Y4M clip the
way tabula's headless mode does: each frame is centre-cropped to the training
aspect, resized, and trained on for --steps-per-frame steps with a batch of
that frame only; the loss of the last step on the frame (measured in its
forward pass, before the update) is written as one JSON line per frame,
like tabula's --metrics:

  {"frame": 0, "loss": 0.0612, "psnr": 12.13, ...}     psnr = 10 log10(1/loss)

--lr, --momentum, --clip-norm (and --optimizer) take comma lists: every
combination is run, its lines go to --out with the settings attached, and a
summary table (PSNR after 1, 30, 60, 150 and 300 frames) is printed at the end.

  /usr/bin/python3 bench/torch_curve.py --clip ../shared/data/asl_signer_a_320x240.y4m \
      --size 256x256 --lr 0.05,0.1 --momentum 0.9 --clip-norm 1 --out /tmp/curve.jsonl
"""

import argparse
import itertools
import json
import math
import os
import sys
import time

# Torch's own threads already use the cores; OpenBLAS threads on top of them
# oversubscribe (must be set before torch loads OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The network (and the frame pipeline) are python/tabula_torch.py's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tabula_torch import Tabula, fit, read_y4m  # noqa: E402
from PIL import Image  # noqa: E402

REPORT_AT = (1, 30, 60, 150, 300)  # frames seen, for the summary table


# ----------------------------------------------------------------- frames
def load_clip(path, width, height, n_frames):
    """All frames as one float tensor (N, 3, H, W) in [0, 1]."""
    frames = [fit(f, width, height) for f in read_y4m(path, n_frames)]
    if not frames:
        sys.exit(f"torch_curve: no frames in {path}")
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255.0)
    return x.contiguous()


# ----------------------------------------------------------------- one run
def run(frames, cfg, args, snapshot=None):
    """Train online over frames with one setting; return the per-frame losses
    and gradient norms before clipping (None after a divergence).
    snapshot(frame_count, x, y) is called after 1, 30, 60, ... frames."""
    torch.manual_seed(args.seed)
    model = Tabula()
    params = list(model.parameters())
    if cfg["optimizer"] == "adam":
        opt = torch.optim.Adam(params, lr=cfg["lr"], weight_decay=args.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                              weight_decay=args.weight_decay)
    clip = cfg["clip"] if cfg["clip"] > 0 else float("inf")
    losses, norms = [], []
    for i in range(frames.shape[0]):
        x = frames[i: i + 1]
        for _ in range(args.steps_per_frame):
            opt.zero_grad(set_to_none=True)
            y = model(x)
            loss = F.mse_loss(y, x)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
        value = loss.item()
        if not math.isfinite(value):
            losses += [None] * (frames.shape[0] - i)
            norms += [None] * (frames.shape[0] - i)
            break
        losses.append(value)
        norms.append(float(norm))
        if snapshot and i + 1 in REPORT_AT:
            snapshot(i + 1, x[0], y[0].detach())
    return losses, norms


def psnr(loss):
    return None if loss is None else (10.0 * math.log10(1.0 / loss) if loss > 0 else 99.0)


def as_list(text, kind):
    return [kind(v) for v in str(text).split(",") if v != ""]


def main():
    ap = argparse.ArgumentParser(description="PyTorch online learning curve of tabula's network")
    ap.add_argument("--clip", required=True, help="Y4M clip (4:2:0)")
    ap.add_argument("--size", default="256x256", help="training size WxH (default %(default)s)")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--optimizer", default="sgd", help="sgd, adam, or a comma list")
    ap.add_argument("--lr", default="0.1", help="learning rate(s), comma list")
    ap.add_argument("--momentum", default="0.9", help="SGD momentum(s), comma list")
    ap.add_argument("--clip-norm", default="1", help="gradient clip(s), comma list; 0 = off")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--steps-per-frame", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="-", help="JSON lines file ('-' = stdout)")
    ap.add_argument("--snapshots", default="", help="folder for input|reconstruction PNGs "
                    "after 1, 30, 60, 150, 300 frames")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = load_clip(args.clip, width, height, args.frames)
    n = frames.shape[0]
    # Reference level: PSNR of a flat image of each frame's mean colour.
    flat = frames.mean(dim=(2, 3), keepdim=True)
    flat_psnr = float(np.mean([psnr(float(((frames[i] - flat[i]) ** 2).mean())) for i in range(n)]))

    configs = []
    for o, lr, mom, clip in itertools.product(as_list(args.optimizer, str), as_list(args.lr, float),
                                              as_list(args.momentum, float),
                                              as_list(args.clip_norm, float)):
        cfg = {"optimizer": o, "lr": lr, "momentum": mom if o == "sgd" else None, "clip": clip}
        if cfg not in configs:
            configs.append(cfg)

    out = sys.stdout if args.out == "-" else open(args.out, "w")
    clip_name = os.path.basename(args.clip)
    rows = []
    for cfg in configs:
        t0 = time.perf_counter()
        snap = None
        if args.snapshots:
            os.makedirs(args.snapshots, exist_ok=True)
            prefix = os.path.join(args.snapshots, f"{clip_name}_{describe(cfg)}".replace(" ", "_"))

            def snap(k, x, y, prefix=prefix):
                save_pair(f"{prefix}_{k:03d}.png", x, y)
        losses, norms = run(frames, cfg, args, snap)
        secs = time.perf_counter() - t0
        for i, loss in enumerate(losses):
            line = {"frame": i, "loss": loss, "psnr": psnr(loss), "grad_norm": norms[i], **cfg,
                    "weight_decay": args.weight_decay, "steps_per_frame": args.steps_per_frame,
                    "size": args.size, "clip_file": clip_name}
            out.write(json.dumps(line) + "\n")
        out.flush()
        at = [psnr(losses[k - 1]) if k <= n else "-" for k in REPORT_AT]
        tail = [p for p in (psnr(v) for v in losses[-50:]) if p is not None]
        rows.append((cfg, at, min(tail) if len(tail) == min(50, n) else None, secs))
        print(f"{describe(cfg)}: " + " ".join(fmt(p) for p in at) + f"  ({secs:.1f} s)",
              file=sys.stderr, flush=True)
    if out is not sys.stdout:
        out.close()

    print(f"\n{clip_name} at {args.size}, {n} frames, {args.steps_per_frame} step/frame, "
          f"weight decay {args.weight_decay}; flat mean-colour image: {flat_psnr:.2f} dB")
    print(f"{'settings':<34}" + "".join(f"{'@' + str(k):>8}" for k in REPORT_AT)
          + f"{'min last50':>11}")
    for cfg, at, tail_min, _ in rows:
        print(f"{describe(cfg):<34}" + "".join(f"{fmt(p):>8}" for p in at) + f"{fmt(tail_min):>11}")


def save_pair(path, x, y):
    """Input and reconstruction (3, H, W) in [0, 1], side by side, as a PNG."""
    img = torch.cat([x, y], dim=2).clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    Image.fromarray(img.numpy()).save(path)


def describe(cfg):
    clip = "off" if cfg["clip"] <= 0 else f"{cfg['clip']:g}"
    if cfg["optimizer"] == "adam":
        return f"adam lr={cfg['lr']:g} clip={clip}"
    return f"sgd lr={cfg['lr']:g} mom={cfg['momentum']:g} clip={clip}"


def fmt(p):
    """A PSNR for the table: "div" after a divergence, "-" past the clip's end."""
    if isinstance(p, str):
        return p
    return "div" if p is None else f"{p:.2f}"


if __name__ == "__main__":
    main()
