"""HiFi-GAN settings: the audio front end, the generators V1, V2, V3 of the paper (and a small CPU one),
the discriminator widths (the paper's and slim ones for a CPU), the loss weights and the optimiser."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AudioConfig:
    sampling_rate: int = 22050
    n_fft: int = 1024
    win_size: int = 1024
    hop_size: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0  # the generator's input mel
    fmax_loss: float | None = None  # the loss mel: the full band
    segment_size: int = 8192  # training segments, in samples


@dataclass(frozen=True)
class GeneratorConfig:
    upsample_rates: tuple = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock: str = "1"  # "1": pairs of dilated and plain convolutions; "2": one dilated convolution each
    resblock_kernel_sizes: tuple = (3, 7, 11)
    resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    n_mels: int = 80

    def check(self, hop_size: int | None = None) -> None:
        """Raise a clear error for an inconsistent configuration."""
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes must have the same length.")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes must have the same length.")
        if self.resblock not in ("1", "2"):
            raise ValueError(f"resblock={self.resblock!r}: use '1' or '2'.")
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise ValueError("upsample_initial_channel must be divisible by 2 ** (number of upsampling layers).")
        product = math.prod(self.upsample_rates)
        if hop_size is not None and product != hop_size:
            raise ValueError(f"the upsampling rates {self.upsample_rates} multiply to {product}, but the hop size "
                             f"is {hop_size}: one mel frame must become exactly hop_size samples.")


V1 = GeneratorConfig()
V2 = GeneratorConfig(upsample_initial_channel=128)
V3 = GeneratorConfig(upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8), upsample_initial_channel=256,
                     resblock="2", resblock_kernel_sizes=(3, 5, 7), resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)))
# A CPU-sized generator: V3's layout with a quarter of its channels (about 0.1M parameters).
SMALL = GeneratorConfig(upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8), upsample_initial_channel=64,
                        resblock="2", resblock_kernel_sizes=(3, 5, 7), resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)))
GENERATORS = {"v1": V1, "v2": V2, "v3": V3, "small": SMALL}


@dataclass(frozen=True)
class DiscriminatorConfig:
    periods: tuple = (2, 3, 5, 7, 11)
    mpd_channels: tuple = (32, 128, 512, 1024, 1024)  # the five 2-D convolutions of each period discriminator
    msd_channels: tuple = (128, 128, 256, 512, 1024, 1024, 1024)  # the seven 1-D convolutions of each scale
    msd_groups: tuple = (1, 4, 16, 16, 16, 16, 1)
    num_scales: int = 3


PAPER = DiscriminatorConfig()
# Slim widths for a CPU: channels divided by 16 (groups by 4); one step costs well under a second.
SLIM = DiscriminatorConfig(mpd_channels=(8, 16, 32, 64, 64), msd_channels=(16, 16, 32, 32, 64, 64, 64),
                           msd_groups=(1, 4, 4, 4, 4, 4, 1))
DISCRIMINATORS = {"paper": PAPER, "slim": SLIM}


@dataclass(frozen=True)
class LossWeights:
    feature_matching: float = 2.0
    mel: float = 45.0


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    betas: tuple = (0.8, 0.99)
    lr_decay: float = 0.999  # per epoch
    weights: LossWeights = field(default_factory=LossWeights)
