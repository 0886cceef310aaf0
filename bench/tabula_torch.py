"""tabula's network in PyTorch, shared by the benchmark scripts in bench/.

Same names and layouts as tabula's checkpoints: enc.{i}.weight/bias (Conv2d),
dec.{i}.weight/bias (ConvTranspose2d), so a tabula safetensors file loads with
load_state_dict after dropping its opt.* entries.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Tabula(nn.Module):
    """tabula's autoencoder: stride-2 convs down, stride-2 transposed convs up."""

    def __init__(self, channels=(32, 64, 128, 256), kernel=4, stride=2, pad=1, slope=0.2):
        super().__init__()
        chans = (3,) + tuple(channels)
        self.slope = slope
        self.enc = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], kernel, stride, pad) for i in range(len(channels)))
        self.dec = nn.ModuleList(
            nn.ConvTranspose2d(chans[i], chans[i - 1], kernel, stride, pad)
            for i in range(len(channels), 0, -1))
        # He (Kaiming) normal for LeakyReLU(slope), fan_in; zero biases (tabula's init).
        for name, p in self.named_parameters():
            if name.endswith(".weight"):
                nn.init.kaiming_normal_(p, a=slope, mode="fan_in", nonlinearity="leaky_relu")
            else:
                nn.init.zeros_(p)

    def forward(self, x):
        for conv in self.enc:
            x = F.leaky_relu(conv(x), self.slope)
        for i, conv in enumerate(self.dec):
            x = conv(x)
            x = torch.sigmoid(x) if i == len(self.dec) - 1 else F.leaky_relu(x, self.slope)
        return x
