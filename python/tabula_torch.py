"""tabula's network and frame pipeline in PyTorch: the one definition that the
fixture generator (tests/torch_reference.py) and the benchmark scripts
(bench/torch_bench.py, bench/torch_curve.py) import.

Same names and layouts as tabula's checkpoints: enc.{i}.weight/bias (Conv2d),
dec.{i}.weight/bias (ConvTranspose2d), so a tabula safetensors file loads with
load_state_dict after dropping its opt.* entries.

Scripts elsewhere in the repository import it after
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


# ----------------------------------------------------------------- network
class Tabula(nn.Module):
    """tabula's autoencoder: stride-2 convs down, stride-2 transposed convs up.

    Initialised as tabula does (he_init: Kaiming normal weights, zero biases);
    bias_range > 0 draws the biases uniformly from [-bias_range, bias_range]
    instead (the fixture does, so that biases are exercised from step 1)."""

    def __init__(self, channels=(32, 64, 128, 256), kernel=4, stride=2, pad=1, slope=0.2,
                 bias_range=0.0):
        super().__init__()
        chans = (3,) + tuple(channels)
        self.slope = slope
        self.enc = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], kernel, stride, pad) for i in range(len(channels)))
        self.dec = nn.ModuleList(
            nn.ConvTranspose2d(chans[i], chans[i - 1], kernel, stride, pad)
            for i in range(len(channels), 0, -1))
        he_init(self, slope, bias_range)

    def forward(self, x):
        for conv in self.enc:
            x = F.leaky_relu(conv(x), self.slope)
        for i, conv in enumerate(self.dec):
            x = conv(x)
            x = torch.sigmoid(x) if i == len(self.dec) - 1 else F.leaky_relu(x, self.slope)
        return x


def he_init(model, slope, bias_range=0.0):
    """Kaiming normal (fan_in, LeakyReLU slope) weights; biases uniform in
    [-bias_range, bias_range] (0 gives tabula's default zero biases)."""
    for name, p in model.named_parameters():
        if name.endswith(".weight"):
            nn.init.kaiming_normal_(p, a=slope, mode="fan_in", nonlinearity="leaky_relu")
        elif bias_range > 0:
            nn.init.uniform_(p, -bias_range, bias_range)
        else:
            nn.init.zeros_(p)


# ----------------------------------------------------------------- frames
def read_y4m(path, max_frames=None):
    """Yield the frames of a 4:2:0 Y4M file (up to max_frames) as RGB8 (H, W, 3);
    stops at the end of the file or at a truncated frame."""
    with open(path, "rb") as f:
        header = f.readline().decode("ascii").split()
        if not header or header[0] != "YUV4MPEG2":
            raise ValueError(f"{path}: not a YUV4MPEG2 file")
        fields = {tok[0]: tok[1:] for tok in header[1:]}
        w, h = int(fields["W"]), int(fields["H"])
        if not fields.get("C", "420").startswith("420"):
            raise ValueError(f"{path}: only 4:2:0 is supported")
        frame_bytes = w * h * 3 // 2
        count = 0
        while max_frames is None or count < max_frames:
            if not f.readline().startswith(b"FRAME"):
                return
            data = f.read(frame_bytes)
            if len(data) != frame_bytes:
                return
            yield yuv420_to_rgb(np.frombuffer(data, np.uint8), w, h)
            count += 1


def yuv420_to_rgb(buf, w, h):
    """One planar 4:2:0 frame -> RGB8, BT.601 limited range (Y 16..235, Cb/Cr
    16..240); each chroma sample is repeated over its 2x2 block of luma."""
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


def fit(rgb, width, height):
    """Centre-crop to width:height, then resize: area average (PIL box) when
    shrinking, bilinear when enlarging (as tabula's frame_fit)."""
    h, w, _ = rgb.shape
    if w * height > h * width:  # too wide: crop columns
        cw, ch = int(round(h * width / height)), h
    else:  # too tall: crop rows
        cw, ch = w, int(round(w * height / width))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    img = Image.fromarray(rgb[y0: y0 + ch, x0: x0 + cw])
    method = Image.BOX if cw >= width and ch >= height else Image.BILINEAR
    return np.asarray(img.resize((width, height), method), dtype=np.uint8)
