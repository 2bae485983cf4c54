"""HiFi-GAN's losses as pure functions. Scores and features are lists over sub-discriminators."""
from __future__ import annotations

import torch


def discriminator_loss(real_scores, fake_scores) -> torch.Tensor:
    """Least squares: sum over discriminators of mean (1 - D(x))^2 + mean D(G(s))^2."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for r, f in zip(real_scores, fake_scores))


def generator_adversarial_loss(fake_scores) -> torch.Tensor:
    """Sum over discriminators of mean (1 - D(G(s)))^2."""
    return sum(torch.mean((1 - f) ** 2) for f in fake_scores)


def feature_matching_loss(real_features, fake_features) -> torch.Tensor:
    """Sum over discriminators and layers of the mean L1 distance between feature maps (the caller
    multiplies by the weight, 2 in the paper). Real features are targets: no gradient flows into them."""
    return sum(torch.mean(torch.abs(r.detach() - f))
               for real, fake in zip(real_features, fake_features) for r, f in zip(real, fake))


def mel_loss(mel_real: torch.Tensor, mel_fake: torch.Tensor) -> torch.Tensor:
    """L1 distance between log-mel spectrograms (B, n_mels, frames) (the caller multiplies by 45)."""
    return torch.nn.functional.l1_loss(mel_fake, mel_real)
