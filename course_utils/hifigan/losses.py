"""HiFi-GAN's losses (Kong et al. 2020, eq. 1-6) as pure functions.

Scores are lists over sub-discriminators of tensors (B, n_k); features are lists over sub-discriminators
of lists over layers of feature maps (B, C, ...). The weights (2 for feature matching, 45 for the mel
loss, `LossWeights`) are applied by the caller:

    L_D = sum_k L_adv(D_k)                                     (discriminator_loss)
    L_G = sum_k [L_adv(G; D_k) + 2 L_FM(G; D_k)] + 45 L_mel(G)
"""
from __future__ import annotations

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
