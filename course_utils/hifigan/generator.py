"""The HiFi-GAN generator: mel frames -> waveform by transposed convolutions, each followed by
multi-receptive-field fusion (the average of residual blocks with different kernels and dilations)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from .configs import GeneratorConfig

LRELU_SLOPE = 0.1


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2  # keeps the length for odd kernels


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
        nn.init.normal_(module.weight, 0.0, 0.01)


class ResBlock1(nn.Module):
    """For each dilation d: x += conv_1(lrelu(conv_d(lrelu(x))))."""

    def __init__(self, channels: int, kernel: int, dilations):
        super().__init__()
        self.dilated = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d))
                                     for d in dilations)
        self.plain = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_padding(kernel)) for _ in dilations)

    def forward(self, x):
        for c1, c2 in zip(self.dilated, self.plain):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """For each dilation d: x += conv_d(lrelu(x)) (V3's lighter block)."""

    def __init__(self, channels: int, kernel: int, dilations):
        super().__init__()
        self.dilated = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d))
                                     for d in dilations)

    def forward(self, x):
        for conv in self.dilated:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class Generator(nn.Module):
    """``generator(mel)``: mel (B, n_mels, frames) -> audio (B, 1, frames * prod(upsample_rates)) in [-1, 1]."""

    def __init__(self, config: GeneratorConfig, *, hop_size: int | None = None):
        super().__init__()
        config.check(hop_size)
        self.config = config
        C = config.upsample_initial_channel
        Block = ResBlock1 if config.resblock == "1" else ResBlock2
        self.conv_pre = nn.Conv1d(config.n_mels, C, 7, padding=3)
        self.ups = nn.ModuleList()
        self.mrf = nn.ModuleList()
        for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
            channels = C // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(2 * channels, channels, k, u, padding=(k - u) // 2))
            self.mrf.append(nn.ModuleList(Block(channels, kr, dr) for kr, dr in
                                          zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)))
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3)
        self.apply(_init)
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                weight_norm(module)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[1] != self.config.n_mels:
            raise ValueError(f"mel must have shape (B, {self.config.n_mels}, frames), got {tuple(mel.shape)}.")
        x = self.conv_pre(mel)
        for up, blocks in zip(self.ups, self.mrf):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = sum(block(x) for block in blocks) / len(blocks)  # multi-receptive-field fusion
        return torch.tanh(self.conv_post(F.leaky_relu(x)))

    def remove_weight_norm(self) -> "Generator":
        """Fold weight norm into plain weights (for inference): same output, less work."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight")
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
