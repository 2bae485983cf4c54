"""HiFi-GAN's losses (Kong et al. 2020, eq. 1-6) as pure functions.

Scores are lists over sub-discriminators of tensors (B, n_k); features are lists over sub-discriminators
of lists over layers of feature maps (B, C, ...). The weights (2 for feature matching, 45 for the mel
loss, `LossWeights`) are applied by the caller:

    L_D = sum_k L_adv(D_k)                                     (discriminator_loss)
    L_G = sum_k [L_adv(G; D_k) + 2 L_FM(G; D_k)] + 45 L_mel(G)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _pairs(real: list, fake: list, what: str):
    if len(real) != len(fake):
        raise ValueError(f"{len(real)} real {what} but {len(fake)} generated ones: pass the outputs of the same "
                         "discriminators for the real and the generated audio.")
    return zip(real, fake)


def discriminator_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Least squares (eq. 1): sum over sub-discriminators of mean (1 - D(x))^2 + mean D(G(s))^2 -> scalar.
    Real audio should score 1 and generated audio 0; pass `fake.detach()`'s scores to update D alone."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for r, f in _pairs(real_scores, fake_scores, "scores"))


def generator_adversarial_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Least squares (eq. 2): sum over sub-discriminators of mean (1 - D(G(s)))^2 -> scalar."""
    return sum(torch.mean((1 - f) ** 2) for f in fake_scores)


def feature_matching_loss(real_features: list[list[torch.Tensor]],
                          fake_features: list[list[torch.Tensor]]) -> torch.Tensor:
    """Eq. 4: sum over sub-discriminators and layers of mean |D_i(x) - D_i(G(s))| -> scalar (the caller
    multiplies by 2). Real features are targets: no gradient flows into them."""
    return sum(torch.mean(torch.abs(r.detach() - f))
               for real, fake in _pairs(real_features, fake_features, "feature lists")
               for r, f in _pairs(real, fake, "feature maps"))


def mel_loss(mel_real: torch.Tensor, mel_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 3: mean |mel(x) - mel(G(s))| over log-mels (B, n_mels, frames) -> scalar (the caller multiplies by 45)."""
    if mel_real.shape != mel_fake.shape:
        raise ValueError(f"mel shapes differ: real {tuple(mel_real.shape)}, generated {tuple(mel_fake.shape)}; "
                         "cut the audio to the same length before computing both mels.")
    return F.l1_loss(mel_fake, mel_real)


def _stft(x: torch.Tensor, n_fft: int, hop: int, win: int | None = None) -> torch.Tensor:
    """Complex STFT of audio (B, 1, T) with a Hann window of `win` (default n_fft) samples
    -> (B, n_fft // 2 + 1, frames)."""
    window = torch.hann_window(win or n_fft, device=x.device, dtype=x.dtype)
    return torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop, win or n_fft, window=window, return_complex=True)


def anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """|x| after wrapping to [-pi, pi]: the distance between two phases that differ by x."""
    return torch.abs(x - 2 * math.pi * torch.round(x / (2 * math.pi)))


def phase_loss(real: torch.Tensor, fake: torch.Tensor, n_fft: int = 1024, hop_size: int = 256) -> torch.Tensor:
    """A phase-aware loss (not in HiFi-GAN; the anti-wrapping losses of APNet, Ai and Ling 2023): between
    the STFT phases of real and generated audio (B, 1, T), the wrapped differences of the phase itself, of
    its derivative along frequency (group delay) and along time (instantaneous frequency), each weighted
    by the real magnitude (normalised to mean 1), so that silent bins, whose phase is noise, count little.
    -> scalar, between 0 and 3 pi."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and generated {tuple(fake.shape)} audio differ in shape.")
    R, G = _stft(real, n_fft, hop_size), _stft(fake, n_fft, hop_size)  # (B, n_fft // 2 + 1, frames)
    weight = R.abs() / R.abs().mean(dim=(1, 2), keepdim=True).clamp(min=torch.finfo(real.dtype).tiny)
    phase_r, phase_g = R.angle(), G.angle()
    instantaneous = anti_wrap(phase_g - phase_r)
    group_delay = anti_wrap(torch.diff(phase_g, dim=1) - torch.diff(phase_r, dim=1))
    inst_frequency = anti_wrap(torch.diff(phase_g, dim=2) - torch.diff(phase_r, dim=2))
    return ((weight * instantaneous).mean() + (weight[:, 1:] * group_delay).mean()
            + (weight[:, :, 1:] * inst_frequency).mean())


# (n_fft, hop, window) of Parallel WaveGAN's multi-resolution STFT loss (Yamamoto et al. 2020, section 2.3)
STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


def multi_resolution_stft_loss(real: torch.Tensor, fake: torch.Tensor,
                               resolutions=STFT_RESOLUTIONS) -> torch.Tensor:
    """Parallel WaveGAN's auxiliary loss (not in HiFi-GAN), for real and generated audio (B, 1, T): at each
    resolution the spectral convergence || |X| - |Y| ||_F / || |X| ||_F plus the mean |log |X| - log |Y||,
    averaged over the resolutions -> scalar. The log term weighs every bin alike, as the mel loss does; the
    spectral convergence is dominated by the loudest bins (a voice's low harmonics), which a log loss barely
    distinguishes from quiet ones."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and generated {tuple(fake.shape)} audio differ in shape.")
    total = real.new_zeros(())
    for n_fft, hop, win in resolutions:
        X, Y = (_stft(x, n_fft, hop, win).abs().clamp(min=1e-7) for x in (real, fake))  # (B, n_fft // 2 + 1, frames)
        convergence = torch.linalg.norm(X - Y, dim=(1, 2)) / torch.linalg.norm(X, dim=(1, 2))  # (B,)
        total = total + convergence.mean() + F.l1_loss(torch.log(Y), torch.log(X))
    return total / len(resolutions)
