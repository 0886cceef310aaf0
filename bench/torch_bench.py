#!/usr/bin/python3
"""PyTorch train-step benchmark of tabula's default network, for comparison
with tabula's own benchmarks.

The network is the default "tabula-ae-v1" (docs/ARCHITECTURE.md): 4 x Conv2d(k4, s2, p1) with channels
3->32->64->128->256 and LeakyReLU(0.2), mirrored by 4 x ConvTranspose2d, sigmoid
last. One step is what tabula's trainer does for a batch of one frame:
zero_grad, forward, MSE loss, backward, clip_grad_norm_, SGD (momentum, weight
decay) update.

  /usr/bin/python3 bench/torch_bench.py                      # CPU, 2 threads
  python3 bench/torch_bench.py --device cuda --mode compile  # GPU machine
  python3 bench/torch_bench.py --device cuda --layout nhwc --dtype bf16
      # what cuDNN gains from channels-last and bfloat16 activations on this net

Prints a table, then one JSON line per size:
  {"impl": "pytorch-eager", "device": ..., "size": "256x256", "ms_per_step": ...,
   "steps_per_s": ..., ...}
Sizes whose sides are not multiples of 16 (1920x1080) are trained at the next
multiple of 16 (1920x1088), as the network needs; "train_size" says so.
"""

import argparse
import json
import os
import sys
import time

# Torch's own threads already use the cores; OpenBLAS threads on top of them
# oversubscribe (must be set before torch loads OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The network (and the frame pipeline) are python/tabula_torch.py's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tabula_torch import Tabula  # noqa: E402

DEFAULT_SIZES = "128x128,256x256,448x256,1280x720,1920x1080"


def parse_size(text):
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def round16(v):
    return (v + 15) // 16 * 16


def bench_size(args, device, width, height):
    """Time args.steps train steps (after args.warmup) and forward passes at one size."""
    torch.manual_seed(0)
    model = Tabula().to(device)
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay, foreach=device.type == "cuda")
    x = torch.rand(args.batch, 3, height, width, device=device)
    if args.layout == "nhwc":  # cuDNN's tensor-core layout: weights and activations channels-last
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    net = torch.compile(model) if args.mode == "compile" else model
    # bf16: activations in bfloat16 under autocast, the weights and the update in float32.
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def step():
        opt.zero_grad(set_to_none=True)
        with amp:
            y = net(x)
        loss = F.mse_loss(y.float(), x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        return loss

    def forward():
        with torch.no_grad(), amp:
            return net(x)

    step_ms = timed(step, args, device)
    cpu_ms = getattr(timed, "cpu_ms", None)
    return step_ms, cpu_ms, timed(forward, args, device)


def timed(fn, args, device):
    """Milliseconds per call of fn, after warm-up; the GPU is synchronised only
    around the timed region (CUDA events)."""
    for _ in range(args.warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.steps):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / args.steps
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        fn()
    timed.cpu_ms = (time.process_time() - c0) * 1e3 / args.steps  # CPU time, all threads
    return (time.perf_counter() - t0) * 1e3 / args.steps


def main():
    ap = argparse.ArgumentParser(description="PyTorch train-step benchmark of tabula's network")
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma list of WxH (default: %(default)s)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: cpu 20, cuda 200)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (cpu 3, cuda 20)")
    ap.add_argument("--layout", choices=("nchw", "nhwc"), default="nchw",
                    help="memory layout (nhwc = channels_last, what cuDNN's tensor cores prefer)")
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                    help="activations (bf16 = autocast, float32 master weights)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch_bench: --device cuda but torch.cuda.is_available() is False")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"cpu ({args.threads} threads)"
    if args.mode == "compile" and not hasattr(torch, "compile"):
        sys.exit(f"torch_bench: --mode compile needs PyTorch 2 (this is {torch.__version__})")
    if args.steps is None:
        args.steps = 200 if device.type == "cuda" else 20
    if args.warmup is None:
        args.warmup = 20 if device.type == "cuda" else 3
    impl = f"pytorch-{args.mode}"
    if args.layout != "nchw" or args.dtype != "fp32":
        impl += f"-{args.layout}-{args.dtype}"

    rows = []
    for text in args.sizes.split(","):
        w, h = parse_size(text)
        tw, th = round16(w), round16(h)
        step_ms, cpu_ms, fwd_ms = bench_size(args, device, tw, th)
        rows.append({
            "impl": impl, "device": device_name, "size": f"{w}x{h}",
            "train_size": f"{tw}x{th}", "batch": args.batch,
            "ms_per_step": round(step_ms, 3), "steps_per_s": round(1e3 / step_ms, 2),
            "fwd_ms": round(fwd_ms, 3), "torch": torch.__version__,
            "cpu_ms_per_step": round(cpu_ms, 3) if cpu_ms is not None else None,
        })
        if device.type == "cuda":
            torch.cuda.empty_cache()

    print(f"{impl} on {device_name}, torch {torch.__version__}, batch {args.batch}, "
          f"{args.steps} steps after {args.warmup} warm-up")
    print(f"{'size':>10} {'trained at':>10} {'ms/step':>9} {'steps/s':>8} {'fwd ms':>8}")
    for r in rows:
        print(f"{r['size']:>10} {r['train_size']:>10} {r['ms_per_step']:>9.2f} "
              f"{r['steps_per_s']:>8.2f} {r['fwd_ms']:>8.2f}")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
