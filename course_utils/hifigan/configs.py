"""HiFi-GAN settings: the audio front end, the generators V1, V2, V3 of the paper (and a small CPU one),
the discriminator widths (the paper's and slim ones for a CPU), the loss weights and the optimiser.

V1, V2 and V3 are the official configs (jik876/hifi-gan, config_v1/2/3.json). Every value a student
may change is a field here; the modules read them from these objects and hard-code none of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True)
class AudioConfig:
    sampling_rate: int = 22050  # Hz (LJSpeech)
    n_fft: int = 1024  # FFT size: n_fft // 2 + 1 = 513 frequency bins
    win_size: int = 1024  # Hann window length, in samples
    hop_size: int = 256  # samples per mel frame: the generator must upsample by exactly this
    n_mels: int = 80  # mel bands
    fmin: float = 0.0  # lowest mel filter edge, Hz
    fmax: float | None = 8000.0  # highest mel filter edge of the generator's input mel (None: sampling_rate / 2)
    fmax_loss: float | None = None  # the same for the mel loss: None, the full band
    # (the length of training segments is a training setting: `training.VocoderRun.segment_size`)


def audio_config(stored: dict | None) -> AudioConfig:
    """The AudioConfig stored in a checkpoint or exported file (None: the default front end). Files written
    before segment_size moved to `VocoderRun` still hold it; it says nothing about the front end."""
    if not stored:
        return AudioConfig()
    known = {f.name for f in fields(AudioConfig)}
    return AudioConfig(**{k: v for k, v in stored.items() if k in known})


@dataclass(frozen=True)
class GeneratorConfig:
    n_mels: int = 80  # input channels of conv_pre: must equal AudioConfig.n_mels
    upsample_rates: tuple = (8, 8, 2, 2)  # one transposed convolution each; their product is the hop size
    upsample_kernel_sizes: tuple = (16, 16, 4, 4)  # 2 x the rate, so kernels overlap evenly
    upsample_initial_channel: int = 512  # channels after conv_pre, halved by every upsampling layer
    resblock: str = "1"  # "1": pairs of dilated and plain convolutions; "2": one dilated convolution each
    resblock_kernel_sizes: tuple = (3, 7, 11)  # one residual block per kernel size in each fusion module
    resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))  # the dilations of each block
    # > 0: an inverse-STFT output head (iSTFTNet, Kaneko et al. 2022; not in HiFi-GAN): conv_post gives the
    # magnitudes and phases of an STFT with this FFT size, and istft_hop samples per step replace the last
    # upsampling layers; the rates times istft_hop make the hop size
    istft_n_fft: int = 0
    istft_hop: int = 1

    @property
    def upsampling(self) -> int:
        """Samples per mel frame: the product of the rates, times the inverse STFT's hop."""
        return math.prod(self.upsample_rates) * (self.istft_hop if self.istft_n_fft else 1)

    def check(self, hop_size: int | None = None) -> None:
        """Raise a ValueError that says what to change if the configuration cannot work
        (with `hop_size`, also if the upsampling rates do not multiply to it)."""
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(f"upsample_rates {self.upsample_rates} and upsample_kernel_sizes "
                             f"{self.upsample_kernel_sizes} must have the same length: one kernel per layer.")
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            if k < u or (k - u) % 2:
                raise ValueError(f"upsampling kernel {k} with rate {u}: the kernel must be at least the rate and "
                                 "k - u even, so that the padding (k - u) // 2 gives exactly u samples per input; "
                                 "use k = 2 u as the paper does.")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError(f"resblock_kernel_sizes {self.resblock_kernel_sizes} and resblock_dilation_sizes "
                             f"{self.resblock_dilation_sizes} must have the same length: one block per kernel.")
        if any(k % 2 == 0 for k in self.resblock_kernel_sizes):
            raise ValueError(f"resblock_kernel_sizes {self.resblock_kernel_sizes} must be odd to keep the length.")
        if self.resblock not in ("1", "2"):
            raise ValueError(f"resblock={self.resblock!r}: use '1' (V1, V2) or '2' (V3).")
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise ValueError(f"upsample_initial_channel={self.upsample_initial_channel} must be divisible by "
                             f"2 ** {len(self.upsample_rates)}: every upsampling layer halves the channels.")
        if self.istft_n_fft and not 0 < self.istft_hop <= self.istft_n_fft:
            raise ValueError(f"istft_hop={self.istft_hop} must be between 1 and istft_n_fft={self.istft_n_fft}.")
        product = self.upsampling
        if hop_size is not None and product != hop_size:
            raise ValueError(f"the upsampling rates {self.upsample_rates} (times istft_hop when istft_n_fft > 0) "
                             f"multiply to {product}, but the hop size is {hop_size}: one mel frame must become "
                             "exactly hop_size samples. Change the rates (and kernels) or AudioConfig.hop_size.")


V1 = GeneratorConfig()
V2 = GeneratorConfig(upsample_initial_channel=128)
V3 = GeneratorConfig(upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8), upsample_initial_channel=256,
                     resblock="2", resblock_kernel_sizes=(3, 5, 7), resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)))
# A CPU-sized generator: V3's layout with a quarter of its channels (0.12M parameters, ~1/12 of V3).
SMALL = replace(V3, upsample_initial_channel=64)
# iSTFTNet's C8C8I on V3: V3's first two upsampling stages (their weights can start from a trained V3), then an
# inverse STFT (FFT 16, hop 4) instead of the last x4 stage, the one that runs at the full sample rate.
V3_ISTFT = replace(V3, upsample_rates=(8, 8), upsample_kernel_sizes=(16, 16), istft_n_fft=16, istft_hop=4)
GENERATORS = {"v1": V1, "v2": V2, "v3": V3, "small": SMALL, "v3_istft": V3_ISTFT}


@dataclass(frozen=True)
class DiscriminatorConfig:
    periods: tuple = (2, 3, 5, 7, 11)  # one period discriminator each (primes: few shared multiples)
    mpd_channels: tuple = (32, 128, 512, 1024, 1024)  # the five 2-D convolutions of each period discriminator
    mpd_kernel_size: int = 5  # along time (kernel (k, 1): the columns of different phases never mix)
    mpd_stride: int = 3  # along time, for all but the last convolution (stride 1)
    msd_channels: tuple = (128, 128, 256, 512, 1024, 1024, 1024)  # the seven 1-D convolutions of each scale
    msd_kernel_sizes: tuple = (15, 41, 41, 41, 41, 41, 5)
    msd_strides: tuple = (1, 2, 2, 4, 4, 1, 1)
    msd_groups: tuple = (1, 4, 16, 16, 16, 16, 1)  # grouped convolutions keep the wide layers affordable
    num_scales: int = 3  # raw audio, then x1/2 and x1/4 by average pooling (0: no multi-scale discriminator)

    def check(self) -> None:
        """Raise a ValueError that says what to change if the widths cannot work."""
        if len(self.mpd_channels) < 2:
            raise ValueError(f"mpd_channels={self.mpd_channels}: give at least two widths.")
        if not len(self.msd_channels) == len(self.msd_kernel_sizes) == len(self.msd_strides) == len(self.msd_groups):
            raise ValueError("msd_channels, msd_kernel_sizes, msd_strides and msd_groups need one entry per layer, got "
                             f"{len(self.msd_channels)}, {len(self.msd_kernel_sizes)}, {len(self.msd_strides)} and "
                             f"{len(self.msd_groups)}.")
        ins = (1,) + tuple(self.msd_channels[:-1])
        for i, (c_in, c_out, g) in enumerate(zip(ins, self.msd_channels, self.msd_groups)):
            if c_in % g or c_out % g:
                raise ValueError(f"scale discriminator layer {i}: {c_in} -> {c_out} channels cannot be split into "
                                 f"{g} groups; make both widths multiples of the group count.")
        if self.num_scales < 0 or not (self.periods or self.num_scales):
            raise ValueError(f"periods={self.periods}, num_scales={self.num_scales}: give at least one period or "
                             "one scale (num_scales >= 0).")


PAPER = DiscriminatorConfig()
# Slim widths for a CPU, 1/8 to 1/16 of the paper's (1/4 for the first period layer), groups at most 4:
# a discriminator step on a batch of 8192-sample segments takes well under a second.
SLIM = DiscriminatorConfig(mpd_channels=(8, 16, 32, 64, 64), msd_channels=(16, 16, 32, 32, 64, 64, 64),
                           msd_groups=(1, 4, 4, 4, 4, 4, 1))
# The multi-period half alone: the discriminators that look at samples p apart, cheaper than both.
SLIM_MPD = replace(SLIM, num_scales=0)
DISCRIMINATORS = {"paper": PAPER, "slim": SLIM, "slim_mpd": SLIM_MPD}


@dataclass(frozen=True)
class LossWeights:
    feature_matching: float = 2.0  # lambda_fm in the paper
    mel: float = 45.0  # lambda_mel


@dataclass(frozen=True)
class OptimConfig:
    """The GAN's optimiser settings (the paper and the official configs)."""

    lr: float = 2e-4  # AdamW, for the generator and for the discriminators
    betas: tuple = (0.8, 0.99)
    weight_decay: float = 0.01  # the paper's lambda; also torch.optim.AdamW's default
    lr_decay: float = 0.999  # multiply the learning rate by this after every epoch
    weights: LossWeights = field(default_factory=LossWeights)
