"""The soft window of Graves' synthesis network (2013, section 5.1): which characters of the text the
network reads while it writes.

    w_t       = sum_u phi(t, u) c_u                                  soft window into c at time t
    phi(t, u) = sum_k alpha_t^k exp(-beta_t^k (kappa_t^k - u)^2)      weight of character u

and Graves' stopping rule: a line ends when the window weighs the blank position after the text more
than any character of it.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

import torch

from ..errors import UnknownCharactersError

# every printable ASCII character and the space; the fonts of the synthetic corpus cover them all
DEFAULT_ALPHABET = " " + "".join(c for c in string.printable if c not in string.whitespace)



def encode_texts(texts: list[str], alphabet: str, *, extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot characters (B, U, C) and their mask (B, U), padded to the longest text.

    `extra` appends that many blank positions (all-zero c_u, mask 1): the sampler looks at
    phi(t, U + 1) to know when the window has passed the last character.
    """
    if isinstance(texts, str):
        texts = [texts]
    index = {c: i for i, c in enumerate(alphabet)}
    unknown = sorted({c for t in texts for c in t} - set(index))
    if unknown:
        raise UnknownCharactersError(
            f"The text holds characters the writer has not learned: {unknown}. "
            f"Use only these {len(alphabet)} characters: {alphabet!r}"
        )
    if any(not t for t in texts):
        raise ValueError("a text is empty: give at least one character to write.")
    U = max(len(t) for t in texts) + extra
    chars = torch.zeros(len(texts), U, len(alphabet))
    mask = torch.zeros(len(texts), U)
    for b, t in enumerate(texts):
        chars[b, torch.arange(len(t)), [index[c] for c in t]] = 1.0
        mask[b, : len(t) + extra] = 1.0
    return chars, mask


def soft_window(alpha, beta, kappa, chars, char_mask):
    """The window of the slide for one time step.

    alpha, beta, kappa (B, K); chars (B, U, C); char_mask (B, U) -> w (B, C), phi (B, U).
    Characters are numbered u = 1..U as on the slide; padded characters get phi = 0.
    """
    u = torch.arange(1, chars.shape[1] + 1, device=chars.device, dtype=kappa.dtype)  # (U,)
    phi = (alpha[:, :, None] * torch.exp(-beta[:, :, None] * (kappa[:, :, None] - u) ** 2)).sum(1)  # (B, U)
    phi = phi * char_mask
    w = torch.bmm(phi[:, None, :], chars)[:, 0]  # (B, C)
    return w, phi


@dataclass
class Attention:
    """Where the window looked: phi (B, T, U), kappa (B, T, K), window w (B, T, C)."""

    phi: torch.Tensor
    kappa: torch.Tensor
    window: torch.Tensor



def has_finished(phi: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Graves' stopping rule: the window has passed the last character when phi(t, U + 1) > phi(t, u)
    for every u <= U. phi (B, U_max + 1) for the current step, lengths (B,) = U of each text -> (B,) bool."""
    rows = torch.arange(phi.shape[0], device=phi.device)
    after = phi[rows, lengths]  # phi(t, U + 1): position U in 0-based numbering
    inside = torch.arange(phi.shape[1], device=phi.device)[None] < lengths[:, None]
    best_inside = phi.masked_fill(~inside, float("-inf")).max(-1).values
    return after > best_inside
