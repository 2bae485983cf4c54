"""Mixture density output (Graves 2013, eq. 17-26): a bivariate Gaussian mixture for the pen offset
and a Bernoulli for the end of the stroke.

    y_t = (e_t, {pi_t^j, mu_t^j, sigma_t^j, rho_t^j}_{j=1}^M)
    Pr(x_{t+1} | y_t) = sum_j pi_t^j N(x_{t+1} | mu_t^j, sigma_t^j, rho_t^j) * (e_t if eos else 1 - e_t)

The network emits 1 + 6M numbers per step, in the order e, pi (M), mu_x (M), mu_y (M),
sigma_x (M), sigma_y (M), rho (M).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Limits that keep the density finite in float32 for any network output. The offsets are scaled
# to unit standard deviation, so sigma >= exp(-7) ~ 1e-3 loses nothing a pen can draw, and
# |rho| <= tanh(5) = 0.9999 is as elongated as an ellipse needs to be.
MIN_LOG_SIGMA = -7.0
MAX_RHO_HAT = 5.0


def output_size(num_mixtures: int) -> int:
    """Numbers per time step that the network must emit for `num_mixtures` components: 1 + 6M."""
    return 1 + 6 * num_mixtures


@dataclass
class MixtureParams:
    """The mixture for each (B, T) step: each field (B, T, M), except `eos_logit` (B, T)."""

    eos_logit: torch.Tensor  # e = sigmoid(eos_logit)
    log_pi: torch.Tensor  # log softmax of pi_hat
    mu_x: torch.Tensor
    mu_y: torch.Tensor
    log_sigma_x: torch.Tensor  # sigma = exp(sigma_hat)
    log_sigma_y: torch.Tensor
    rho_hat: torch.Tensor  # rho = tanh(rho_hat)

    @property
    def rho(self) -> torch.Tensor:
        return torch.tanh(self.rho_hat)


def check_bias(bias: float) -> float:
    """The sampling bias b as a float; a ValueError unless it is a finite number >= 0."""
    if isinstance(bias, bool) or not isinstance(bias, numbers.Real) or not math.isfinite(bias) or bias < 0:
        raise ValueError(f"bias must be a finite number >= 0 (0: the model's own randomness, 1 to 3: neater), "
                         f"got {bias!r}.")
    return float(bias)


def split_params(y_hat: torch.Tensor, bias: float = 0.0) -> MixtureParams:
    """Split raw outputs (B, T, 1 + 6M) into the mixture; `bias` b > 0 sharpens it (Graves eq. 61-62):
    pi = softmax(pi_hat (1 + b)), sigma = exp(sigma_hat - b)."""
    if y_hat.shape[-1] % 6 != 1:
        raise ValueError(f"the last axis must hold 1 + 6M numbers, got {y_hat.shape[-1]}.")
    e_hat, pi_hat, mu_x, mu_y, s_x, s_y, rho_hat = torch.split(y_hat, [1] + [(y_hat.shape[-1] - 1) // 6] * 6, dim=-1)
    return MixtureParams(
        eos_logit=e_hat[..., 0],
        log_pi=F.log_softmax(pi_hat * (1.0 + bias), dim=-1),
        mu_x=mu_x,
        mu_y=mu_y,
        log_sigma_x=(s_x - bias).clamp(min=MIN_LOG_SIGMA),
        log_sigma_y=(s_y - bias).clamp(min=MIN_LOG_SIGMA),
        rho_hat=rho_hat.clamp(-MAX_RHO_HAT, MAX_RHO_HAT),
    )


def bivariate_normal_log_density(x, y, mu_x, mu_y, log_sigma_x, log_sigma_y, rho_hat) -> torch.Tensor:
    """log N((x, y) | mu, sigma, rho = tanh(rho_hat)) elementwise (Graves eq. 24-25), in log space.

    Uses 1 - rho^2 = 1 / cosh(rho_hat)^2, so log(1 - rho^2) = -2 log cosh(rho_hat) has no cancellation.
    """
    zx = (x - mu_x) * torch.exp(-log_sigma_x)
    zy = (y - mu_y) * torch.exp(-log_sigma_y)
    rho = torch.tanh(rho_hat)
    log_cosh = rho_hat.abs() + F.softplus(-2 * rho_hat.abs()) - math.log(2.0)  # log cosh, stable
    z = zx**2 + zy**2 - 2 * rho * zx * zy
    one_minus_rho2 = torch.exp(-2 * log_cosh)
    return -math.log(2 * math.pi) - log_sigma_x - log_sigma_y + log_cosh - z / (2 * one_minus_rho2)


def mixture_nll(y_hat: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """-log Pr(x_{t+1} | y_t) per step: y_hat (B, T, 1 + 6M), target (B, T, 3) -> (B, T) nats.

    Masked steps (mask 0, e.g. padding) give 0.
    """
    p = split_params(y_hat)
    dx, dy, eos = target[..., 0:1], target[..., 1:2], target[..., 2]
    log_n = bivariate_normal_log_density(dx, dy, p.mu_x, p.mu_y, p.log_sigma_x, p.log_sigma_y, p.rho_hat)
    log_mixture = torch.logsumexp(p.log_pi + log_n, dim=-1)  # (B, T)
    nll = -log_mixture + F.binary_cross_entropy_with_logits(p.eos_logit, eos, reduction="none")
    if mask is not None:
        nll = nll * mask
    return nll


@torch.no_grad()
def sample_step(y_hat: torch.Tensor, *, bias: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one pen offset per row from raw outputs (B, 1 + 6M) -> (B, 3) rows (dx, dy, eos).

    Pick a component from pi, then (dx, dy) from its Gaussian, then eos from e; `bias` as in `split_params`.
    """
    p = split_params(y_hat[:, None], bias=check_bias(bias))  # a time axis of 1
    squeeze = lambda t: t[:, 0]  # noqa: E731
    log_pi, mu_x, mu_y = squeeze(p.log_pi), squeeze(p.mu_x), squeeze(p.mu_y)
    sx, sy, rho = squeeze(p.log_sigma_x).exp(), squeeze(p.log_sigma_y).exp(), squeeze(p.rho)
    device = y_hat.device
    j = torch.multinomial(log_pi.exp().cpu(), 1, generator=generator).to(device)  # (B, 1)
    pick = lambda t: t.gather(-1, j)[:, 0]  # noqa: E731
    n1, n2 = torch.randn(2, y_hat.shape[0], generator=generator).to(device)
    r = pick(rho)
    dx = pick(mu_x) + pick(sx) * n1
    dy = pick(mu_y) + pick(sy) * (r * n1 + torch.sqrt(1 - r**2) * n2)
    u = torch.rand(y_hat.shape[0], generator=generator).to(device)
    eos = (u < torch.sigmoid(squeeze(p.eos_logit))).to(y_hat.dtype)
    return torch.stack([dx, dy, eos], dim=-1)
