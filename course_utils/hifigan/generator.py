"""The HiFi-GAN generator: mel frames -> waveform by transposed convolutions, each followed by
multi-receptive-field fusion (MRF: the average of residual blocks with different kernels and dilations).

    x = conv_pre(mel)                                  (B, C, frames)
    for each rate u:  x = MRF(up_u(lrelu(x)))          channels / 2, length x u
    audio = tanh(conv_post(lrelu(x)))                  (B, 1, frames * hop)

Every convolution carries weight norm during training; `remove_weight_norm()` folds it away for inference.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from .configs import AudioConfig, GeneratorConfig

LRELU_SLOPE = 0.1  # inside the network
POST_LRELU_SLOPE = 0.01  # before conv_post the reference code calls F.leaky_relu with PyTorch's default slope
INIT_STD = 0.01  # convolution weights start from N(0, 0.01^2), except conv_pre (PyTorch's default), as in the reference


def same_padding(kernel: int, dilation: int = 1) -> int:
    """Padding that keeps the length of a stride-1 convolution with an odd `kernel`."""
    return dilation * (kernel - 1) // 2


class ResBlock1(nn.Module):
    """V1 and V2's block: for each dilation d, x = x + conv_1(lrelu(conv_d(lrelu(x)))). (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, kernel: int, dilations):
        super().__init__()
        self.dilated = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=same_padding(kernel, d))
                                     for d in dilations)
        self.plain = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=same_padding(kernel))
                                   for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.dilated, self.plain):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """V3's lighter block: for each dilation d, x = x + conv_d(lrelu(x)). (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, kernel: int, dilations):
        super().__init__()
        self.dilated = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=same_padding(kernel, d))
                                     for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated in self.dilated:
            x = x + dilated(F.leaky_relu(x, LRELU_SLOPE))
        return x


class Generator(nn.Module):
    """``generator(mel)``: log-mel (B, n_mels, frames) -> audio (B, 1, frames * config.upsampling) in [-1, 1]
    (with an inverse-STFT head, `config.istft_n_fft` > 0, not bounded).

    `hop_size` (default: AudioConfig's 256) is checked against the upsampling rates; None skips the check.
    """

    def __init__(self, config: GeneratorConfig, *, hop_size: int | None = AudioConfig.hop_size):
        super().__init__()
        config.check(hop_size)
        self.config = config
        Block = ResBlock1 if config.resblock == "1" else ResBlock2
        channels = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(config.n_mels, channels, 7, padding=same_padding(7))
        self.ups = nn.ModuleList()
        self.mrf = nn.ModuleList()  # one fusion module (a list of residual blocks) after each upsampling
        for u, k in zip(config.upsample_rates, config.upsample_kernel_sizes):
            # output length (L - 1) u - 2 (k - u) / 2 + k = L u exactly
            self.ups.append(nn.ConvTranspose1d(channels, channels // 2, k, stride=u, padding=(k - u) // 2))
            channels //= 2
            self.mrf.append(nn.ModuleList(Block(channels, kernel, dilations) for kernel, dilations in
                                          zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)))
        # one output channel of audio, or the magnitudes and phases of the inverse STFT head
        bins = config.istft_n_fft // 2 + 1
        self.conv_post = nn.Conv1d(channels, 2 * bins if config.istft_n_fft else 1, 7, padding=same_padding(7))
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                if module is not self.conv_pre:
                    nn.init.normal_(module.weight, 0.0, INIT_STD)
                weight_norm(module)  # weight = g v / |v|, g starts at the norm of the weight above

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[1] != self.config.n_mels:
            raise ValueError(f"mel must have shape (B, n_mels={self.config.n_mels}, frames), got {tuple(mel.shape)}. "
                             "Add a batch axis with mel[None]; for other mel bands set GeneratorConfig.n_mels.")
        if mel.shape[-1] == 0:
            raise ValueError(f"mel has 0 frames: the audio it came from is shorter than one hop "
                             f"({self.config.upsampling} samples). Give at least one frame.")
        weight_dtype = self.conv_post.bias.dtype
        if mel.dtype != weight_dtype:
            raise ValueError(f"mel is {mel.dtype} but the generator's weights are {weight_dtype}: pass "
                             f"mel.to({weight_dtype}) (NumPy and librosa give float64).")
        if not bool(torch.isfinite(mel).all()):
            raise ValueError("mel holds NaN or infinite values, which would make the whole clip NaN: check the audio "
                             "(NaN samples?) and the step that computed the mel.")
        x = self.conv_pre(mel)  # (B, C, frames)
        for up, blocks in zip(self.ups, self.mrf):
            x = up(F.leaky_relu(x, LRELU_SLOPE))  # (B, C / 2, length x u)
            x = sum(block(x) for block in blocks) / len(blocks)  # multi-receptive-field fusion
        x = self.conv_post(F.leaky_relu(x, POST_LRELU_SLOPE))
        if not self.config.istft_n_fft:
            return torch.tanh(x)  # (B, 1, frames * hop)
        return self._istft(x)

    def _istft(self, x: torch.Tensor) -> torch.Tensor:
        """iSTFTNet's head: (B, 2 (n_fft / 2 + 1), L) -> log-magnitudes and phases -> audio (B, 1, L x istft_hop)."""
        n_fft, hop = self.config.istft_n_fft, self.config.istft_hop
        log_magnitude, phase = x.float().chunk(2, dim=1)
        spec = torch.polar(torch.exp(log_magnitude), math.pi * torch.sin(phase))  # (B, bins, L)
        window = torch.hann_window(n_fft, device=x.device)
        audio = torch.istft(spec, n_fft, hop, n_fft, window=window, center=True, length=x.shape[-1] * hop)
        return audio[:, None].to(x.dtype)  # (B, 1, frames * hop)

    def remove_weight_norm(self) -> "Generator":
        """Fold weight norm into plain weights, in place (for inference): same output, less work."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight")
        return self

    def num_parameters(self) -> int:
        """Trainable numbers; with weight norm these include the gains g (one per output channel of a
        convolution, per input channel of a transposed one), so count after `remove_weight_norm()` for the paper."""
        return sum(p.numel() for p in self.parameters())
