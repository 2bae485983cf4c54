"""HiFi-GAN's discriminators. Each returns, per sub-discriminator, a score map and its feature maps.

Multi-period (MPD): for each period p, the audio (B, 1, T) is folded into (B, 1, T / p, p), one column
per phase of the period, and 2-D convolutions with (k, 1) kernels look down each column separately.
Multi-scale (MSD): 1-D grouped convolutions on the audio and on two average-pooled versions (x1/2, x1/4).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from .configs import DiscriminatorConfig

LRELU_SLOPE = 0.1


def _check_audio(audio: torch.Tensor, who: str) -> None:
    if audio.ndim != 3 or audio.shape[1] != 1:
        raise ValueError(f"{who} takes audio of shape (B, 1, T), got {tuple(audio.shape)}; "
                         "the generator's output has this shape, real audio (B, T) needs audio[:, None].")


def period_reshape(audio: torch.Tensor, period: int) -> torch.Tensor:
    """(B, 1, T) -> (B, 1, ceil(T / p), p): reflect-pad the end to a multiple of p, then fill rows,
    so sample t lands at (t // p, t % p) and column j holds samples j, j + p, j + 2p, ..."""
    B, C, T = audio.shape
    if T < period:
        raise ValueError(f"audio of {T} samples is shorter than the period {period}.")
    if T % period:
        audio = F.pad(audio, (0, period - T % period), mode="reflect")
    return audio.reshape(B, C, -1, period)


class PeriodDiscriminator(nn.Module):
    """One period p: (B, 1, T) -> score (B, frames * p) and feature maps (B, C_i, rows_i, p)."""

    def __init__(self, period: int, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.period = period
        channels, k = config.mpd_channels, config.mpd_kernel_size
        ins = (1,) + tuple(channels[:-1])
        strides = (config.mpd_stride,) * (len(channels) - 1) + (1,)
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(i, o, (k, 1), (s, 1), padding=(k // 2, 0)))
                                   for i, o, s in zip(ins, channels, strides))
        self.post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, features = period_reshape(audio, self.period), []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class ScaleDiscriminator(nn.Module):
    """One scale: (B, 1, T) -> score (B, T / 16) and feature maps (B, C_i, T_i); `norm` wraps every convolution."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig(), norm=weight_norm):
        super().__init__()
        channels = config.msd_channels
        ins = (1,) + tuple(channels[:-1])
        self.convs = nn.ModuleList(norm(nn.Conv1d(i, o, k, s, groups=g, padding=k // 2)) for i, o, k, s, g in
                                   zip(ins, channels, config.msd_kernel_sizes, config.msd_strides, config.msd_groups))
        self.post = norm(nn.Conv1d(channels[-1], 1, 3, padding=1))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, features = audio, []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    """``mpd(audio (B, 1, T))`` -> (scores, features): a list with one score (B, n) per period, and a
    list with one list of feature maps per period."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        config.check()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, config) for p in config.periods)

    def forward(self, audio: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        _check_audio(audio, "MultiPeriodDiscriminator")
        outs = [d(audio) for d in self.discriminators]
        return [score for score, _ in outs], [features for _, features in outs]


class MultiScaleDiscriminator(nn.Module):
    """``msd(audio (B, 1, T))`` -> (scores, features) at scales 1, 1/2, 1/4, ...: spectral norm on the
    first (raw audio) discriminator, weight norm on the others, as in the paper."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        config.check()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(config, spectral_norm if i == 0 else weight_norm) for i in range(config.num_scales))
        self.pool = nn.AvgPool1d(4, 2, padding=2)  # halves the rate between scales

    def forward(self, audio: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        _check_audio(audio, "MultiScaleDiscriminator")
        scores, features = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                audio = self.pool(audio)
            score, maps = d(audio)
            scores.append(score)
            features.append(maps)
        return scores, features
