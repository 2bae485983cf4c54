"""HiFi-GAN's discriminators: multi-period (1-D audio seen as 2-D, one column per phase of a period)
and multi-scale (the audio and two average-pooled versions)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from .configs import DiscriminatorConfig

LRELU_SLOPE = 0.1


def period_reshape(audio: torch.Tensor, period: int) -> torch.Tensor:
    """(B, 1, T) -> (B, 1, ceil(T / p), p): reflect-pad to a multiple of p; sample t lands at (t // p, t % p)."""
    B, C, T = audio.shape
    if T % period:
        audio = F.pad(audio, (0, period - T % period), mode="reflect")
    return audio.view(B, C, -1, period)


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels):
        super().__init__()
        self.period = period
        ins = (1,) + tuple(channels[:-1])
        strides = (3,) * (len(channels) - 1) + (1,)
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(i, o, (5, 1), (s, 1), padding=(2, 0)))
                                   for i, o, s in zip(ins, channels, strides))
        self.post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, audio):
        x, features = period_reshape(audio, self.period), []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class ScaleDiscriminator(nn.Module):
    KERNELS, STRIDES = (15, 41, 41, 41, 41, 41, 5), (1, 2, 2, 4, 4, 1, 1)

    def __init__(self, channels, groups, norm=weight_norm):
        super().__init__()
        ins = (1,) + tuple(channels[:-1])
        self.convs = nn.ModuleList(norm(nn.Conv1d(i, o, k, s, groups=g, padding=k // 2))
                                   for i, o, k, s, g in zip(ins, channels, self.KERNELS, self.STRIDES, groups))
        self.post = norm(nn.Conv1d(channels[-1], 1, 3, padding=1))

    def forward(self, audio):
        x, features = audio, []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    """``mpd(audio)`` -> (scores, features): one score map and feature list per period."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, config.mpd_channels) for p in config.periods)

    def forward(self, audio):
        outs = [d(audio) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class MultiScaleDiscriminator(nn.Module):
    """``msd(audio)`` -> (scores, features) at scales 1, 1/2, 1/4; spectral norm on the first."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(config.msd_channels, config.msd_groups, spectral_norm if i == 0 else weight_norm)
            for i in range(config.num_scales))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, audio):
        scores, features = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                audio = self.pool(audio)
            s, f = d(audio)
            scores.append(s)
            features.append(f)
        return scores, features
