"""Homework checkers: run a student's function against the reference and say what is wrong.

Each checker returns a `Verdict`, shown as "Correct: ..." or "Not yet: ..." and true only when
right; it never raises, so a notebook with unfinished exercises still runs from top to bottom.
"""
from __future__ import annotations

import hashlib

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .cells import PeepholeLSTMCell


@dataclass(frozen=True)
class Verdict:
    """What a checker found: `ok` and a message that says what is right or wrong."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return ("Correct: " if self.ok else "Not yet: ") + self.message


def _multiple_choice(question: str, answer, options: dict[str, str], key: str, right: str, hint: str) -> Verdict:
    """One letter of `options`. The right letter is stored only as `key`, the SHA-256 of '<question>:<letter>',
    so that reading this file does not give it away."""
    letter = str(answer).strip().lower()[:1]
    if letter not in options:
        return Verdict(False, f"answer with one letter: {', '.join(options)}.")
    if hashlib.sha256(f"{question}:{letter}".encode()).hexdigest() == key:
        return Verdict(True, right)
    return Verdict(False, f"({letter}) {options[letter]}: {hint}")


def _call(fn: Callable, *args):
    """Run the student's function; turn 'not written yet' and crashes into a message."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "the function still raises NotImplementedError: replace it with your code."
    except Exception as err:  # the student's code may fail in any way; report it, don't crash
        return None, f"the function raised {type(err).__name__}: {err}"


def _close(a, b, tol: float = 1e-5) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=tol, rtol=tol)


# ---------------------------------------------------------------- 01 text prediction
def check_lstm_step(lstm_step: Callable) -> Verdict:
    """`lstm_step(x, h, c, W, U, b, V) -> (h, c)`: one peephole LSTM step as on the slide.

    x (B, I); h, c (B, H); W (4H, I); U (4H, H); b (4H,); V (3, H) holds V_i, V_f, V_o.
    Gates are stacked in the order i, f, c~, o.
    """
    gen = torch.Generator().manual_seed(0)
    B, I, H = 3, 5, 4
    cell = PeepholeLSTMCell(I, H)
    with torch.no_grad():
        cell.V.copy_(torch.randn(3, H, generator=gen))
    x, h, c = (torch.randn(B, n, generator=gen) for n in (I, H, H))
    W, U, b, V = cell.W.weight.detach(), cell.U.weight.detach(), cell.W.bias.detach(), cell.V.detach()
    with torch.no_grad():
        h_ref, c_ref = cell(x, (h, c))
    out, problem = _call(lstm_step, x, h, c, W, U, b, V)
    if problem:
        return Verdict(False, problem)
    if not (isinstance(out, tuple) and len(out) == 2):
        return Verdict(False, f"return the pair (h_t, c_t); got {type(out).__name__}.")
    h_out, c_out = out
    for name, got, want in (("h_t", h_out, h_ref), ("c_t", c_out, c_ref)):
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return Verdict(False, f"{name} should have shape {tuple(want.shape)}, got {shape}.")
    if _close(h_out, h_ref) and _close(c_out, c_ref):
        return Verdict(True, "h_t and c_t match the reference cell, peepholes included.")
    # diagnose the usual slips by trying them on the reference
    no_peep, _ = _call(lstm_step, x, h, c, W, U, b, torch.zeros_like(V))
    ref0 = PeepholeLSTMCell(I, H, peephole=False)
    ref0.load_state_dict({**cell.state_dict(), "V": torch.zeros_like(V)})
    with torch.no_grad():
        h0, c0 = ref0(x, (h, c))
    if no_peep is not None and _close(no_peep[0], h0) and _close(no_peep[1], c0):
        if _close(c_out, c_ref):
            return Verdict(False, "c_t is right but h_t is not: the output gate's peephole reads the new c_t (V_o c_t).")
        return Verdict(False, "right without peepholes, wrong with them: add V_i c_{t-1} and V_f c_{t-1} "
                               "to the input and forget gates and V_o c_t to the output gate (elementwise).")
    if _close(c_out, c_ref):
        return Verdict(False, "c_t is right but h_t is not: h_t = o_t * tanh(c_t).")
    return Verdict(False, "c_t differs from the reference: check the gate order (i, f, c~, o), "
                           "the sigmoid/tanh of each gate, and c_t = f_t c_{t-1} + i_t c~_t.")


def check_bits_per_character(bpc_fn: Callable) -> Verdict:
    """`bpc_fn(logits, targets) -> float`: mean of -log2 softmax(logits)[target]; logits (B, T, V)."""
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 7, 11, generator=gen) * 3
    targets = torch.randint(0, 11, (2, 7), generator=gen)
    want = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1)).item() / math.log(2)
    got, problem = _call(bpc_fn, logits, targets)
    if problem:
        return Verdict(False, problem)
    try:
        got = float(got)
    except (TypeError, ValueError):
        return Verdict(False, f"return one number (a float or a 0-d tensor), got {type(got).__name__}.")
    if math.isclose(got, want, rel_tol=1e-4):
        uniform, _ = _call(bpc_fn, torch.zeros(1, 4, 8), torch.zeros(1, 4, dtype=torch.long))
        if uniform is not None and math.isclose(float(uniform), 3.0, rel_tol=1e-4):
            return Verdict(True, f"{got:.4f} bits per character; uniform logits over 8 characters give 3 bits.")
    if math.isclose(got, want * math.log(2), rel_tol=1e-4):
        return Verdict(False, f"you return {got:.4f} nats; divide by ln 2 for bits ({want:.4f}).")
    if math.isclose(got, want * targets.numel(), rel_tol=1e-4):
        return Verdict(False, f"you return the sum over all {targets.numel()} characters; BPC is the mean.")
    if math.isclose(got, -want, rel_tol=1e-4):
        return Verdict(False, "the sign is wrong: BPC is the mean of -log2 p, a positive number.")
    return Verdict(False, f"got {got:.4f}, expected {want:.4f}: use log_softmax over the last axis and "
                           "pick the log-probability of each target.")


def check_temperature(softmax_temperature: Callable) -> Verdict:
    """`softmax_temperature(logits, temperature) -> probs`: softmax(logits / temperature) over the last axis."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    for temperature in (0.5, 1.0, 2.0):
        want = F.softmax(logits / temperature, -1)
        got, problem = _call(softmax_temperature, logits, temperature)
        if problem:
            return Verdict(False, problem)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return Verdict(False, f"return a tensor of probabilities with the shape of the logits {tuple(want.shape)}.")
        if not _close(got, want):
            if _close(got, F.softmax(logits * temperature, -1)):
                return Verdict(False, "you multiply by the temperature; divide the logits by it.")
            if not torch.allclose(got.sum(-1), torch.ones(1)):
                return Verdict(False, "the probabilities do not sum to 1: apply the softmax after scaling.")
            return Verdict(False, f"at temperature {temperature} expected {want.tolist()}, got {got.tolist()}.")
    return Verdict(True, "low temperatures sharpen the distribution, high ones flatten it toward uniform.")


# ---------------------------------------------------------------- 02 handwriting prediction
def check_mixture_nll(mixture_nll: Callable) -> Verdict:
    """`mixture_nll(y_hat, target) -> (B, T)`: -log of the slide's mixture times the end-of-stroke term.

    y_hat (B, T, 1 + 6M) in the order e, pi, mu_x, mu_y, sigma_x, sigma_y, rho (raw: softmax for pi,
    exp for sigma, tanh for rho, sigmoid for e); target (B, T, 3).
    """
    from .handwriting import mdn

    gen = torch.Generator().manual_seed(2)
    y_hat = torch.randn(2, 5, mdn.output_size(3), generator=gen, dtype=torch.float64)
    target = torch.cat([torch.randn(2, 5, 2, generator=gen, dtype=torch.float64),
                        torch.randint(0, 2, (2, 5, 1), generator=gen).double()], -1)
    want = mdn.mixture_nll(y_hat, target)
    got, problem = _call(mixture_nll, y_hat, target)
    if problem:
        return Verdict(False, problem)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return Verdict(False, f"return one value per step, shape {tuple(want.shape)}; got {shape}.")
    if not _close(got, want):
        flipped = target.clone()
        flipped[..., 2] = 1 - flipped[..., 2]
        e_term = F.binary_cross_entropy_with_logits(y_hat[..., 0], target[..., 2], reduction="none")
        if _close(got, want - e_term):
            return Verdict(False, "the end-of-stroke term is missing: add -log e_t if the stroke ends, else -log(1 - e_t).")
        if _close(got, mdn.mixture_nll(y_hat, flipped)):
            return Verdict(False, "e_t and 1 - e_t are swapped: e_t is the probability that the stroke ends.")
        no_rho = y_hat.clone()
        no_rho[..., -3:] = 0.0
        if _close(got, mdn.mixture_nll(no_rho, target)):
            return Verdict(False, "the correlation rho is ignored: use Z = zx^2 + zy^2 - 2 rho zx zy and 1 - rho^2.")
        return Verdict(False, "the values differ from the reference: check softmax for pi, exp for sigma, "
                               "tanh for rho and the bivariate normal density (Graves eq. 24-25).")
    # Stability, a separate check: pen points far from every mean (each density underflows to 0 in
    # float64) and large mixture logits (exp overflows). The exact formula in log space survives both;
    # rho and sigma stay ordinary, so no clamping is needed to pass.
    far_y_hat = y_hat.clone()
    far_y_hat[..., 1:4] *= 300.0  # pi_hat of the 3 components
    far_target = target.clone()
    far_target[..., :2] = far_target[..., :2].sign() * 60.0 + far_target[..., :2]  # about 60 sigmas away
    want_far = mdn.mixture_nll(far_y_hat, far_target)
    far, problem = _call(mixture_nll, far_y_hat, far_target)
    if problem or not isinstance(far, torch.Tensor) or not torch.isfinite(far).all():
        return Verdict(False, "right for ordinary inputs, but not finite for a pen point far from every mean or for "
                               "large mixture logits (probabilities underflow to 0 or overflow): compute log pi + log N "
                               "and combine them with torch.logsumexp instead of summing probabilities.")
    if not _close(far, want_far):
        return Verdict(False, "finite but wrong for a pen point far from every mean: keep every term in log space "
                               "(log_softmax for pi, log N written out) rather than clamping probabilities.")
    return Verdict(True, "the mixture negative log-likelihood matches, in log space.")


def check_biased_params(biased_params: Callable) -> Verdict:
    """`biased_params(pi_hat, sigma_hat, bias) -> (pi, sigma)`: Graves' sampling bias (eq. 61-62)."""
    pi_hat, sigma_hat = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.2, -0.3, 0.0]])
    for bias in (0.0, 0.5, 2.0):
        want_pi, want_sigma = F.softmax(pi_hat * (1 + bias), -1), torch.exp(sigma_hat - bias)
        got, problem = _call(biased_params, pi_hat, sigma_hat, bias)
        if problem:
            return Verdict(False, problem)
        if not (isinstance(got, tuple) and len(got) == 2):
            return Verdict(False, f"return the pair (pi, sigma); got {type(got).__name__}.")
        pi, sigma = got
        if not _close(pi, want_pi):
            if _close(pi, F.softmax(pi_hat * (1 - bias), -1)):
                return Verdict(False, "pi uses (1 - b): a positive bias must sharpen the mixture, pi_hat (1 + b).")
            return Verdict(False, f"pi at bias {bias}: expected softmax(pi_hat (1 + b)) = {want_pi.tolist()}.")
        if not _close(sigma, want_sigma):
            if _close(sigma, torch.exp(sigma_hat + bias)):
                return Verdict(False, "sigma grows with the bias: it must shrink, sigma = exp(sigma_hat - b).")
            return Verdict(False, f"sigma at bias {bias}: expected exp(sigma_hat - b) = {want_sigma.tolist()}.")
    return Verdict(True, "a larger bias picks the likeliest component more often and narrows every Gaussian.")


# ---------------------------------------------------------------- 03 handwriting synthesis
def check_window(window_fn: Callable) -> Verdict:
    """`window_fn(alpha, beta, kappa, chars) -> (w, phi)`: the soft window of the slide for one step.

    alpha, beta, kappa (B, K); chars (B, U, C) one-hot; characters numbered u = 1..U.
    """
    from .handwriting.synthesis import soft_window

    gen = torch.Generator().manual_seed(0)
    B, K, U, C = 2, 3, 6, 5
    alpha, beta = torch.rand(B, K, generator=gen) + 0.1, torch.rand(B, K, generator=gen) + 0.1
    kappa = 1 + 4 * torch.rand(B, K, generator=gen)
    chars = torch.eye(C)[torch.randint(C, (B, U), generator=gen)]
    want_w, want_phi = soft_window(alpha, beta, kappa, chars, torch.ones(B, U))
    got, problem = _call(window_fn, alpha, beta, kappa, chars)
    if problem:
        return Verdict(False, problem)
    if not (isinstance(got, tuple) and len(got) == 2):
        return Verdict(False, f"return the pair (w, phi); got {type(got).__name__}.")
    w, phi = got
    if not isinstance(phi, torch.Tensor) or phi.shape != (B, U):
        return Verdict(False, f"phi must have shape (B, U) = {(B, U)}, one weight per character.")
    if not _close(phi, want_phi):
        zero_based = soft_window(alpha, beta, kappa + 1, chars, torch.ones(B, U))[1]
        if _close(phi, zero_based):
            return Verdict(False, "phi is shifted by one character: number the characters u = 1..U, as on the slide.")
        return Verdict(False, "phi(t, u) should be sum_k alpha_k exp(-beta_k (kappa_k - u)^2).")
    if not isinstance(w, torch.Tensor) or w.shape != (B, C) or not _close(w, want_w):
        return Verdict(False, "phi is right, but w should be sum_u phi(t, u) c_u, shape (B, C).")
    return Verdict(True, "the window is a phi-weighted sum of the one-hot characters.")


def check_stopping_rule(finished_fn: Callable) -> Verdict:
    """`finished_fn(phi, U) -> bool`: phi (U + 1,) holds phi(t, 1..U+1) for one line of U characters."""
    cases = [
        (torch.tensor([0.1, 0.7, 0.3, 0.05]), False, "the window is still on a character"),
        (torch.tensor([0.0, 0.1, 0.4, 0.5]), True, "phi(t, U + 1) beats every character"),
        (torch.tensor([0.0, 0.0, 0.6, 0.6]), False, "a tie is not past the end yet"),
        (torch.tensor([0.3, 0.0, 0.0, 0.2]), False, "phi(t, U + 1) must beat the first characters too"),
    ]
    for phi, want, why in cases:
        got, problem = _call(finished_fn, phi, len(phi) - 1)
        if problem:
            return Verdict(False, problem)
        if bool(got) != want:
            return Verdict(False, f"for phi = {phi.tolist()} expected {want} ({why}).")
    return Verdict(True, "the line stops once the window weighs the position after the text more than any character.")


def check_bias_answer(answer: str) -> Verdict:
    """Which statement says what a sampling bias b > 0 does to the mixture? One letter, a to d."""
    options = {
        "a": "it moves every mean towards the previous pen position",
        "b": "it raises the end-of-stroke probability, so strokes get shorter",
        "c": "it sharpens the mixture weights and narrows every Gaussian",
        "d": "it slows the attention window down, so letters get wider",
    }
    return _multiple_choice("bias", answer, options,
                            "1ca994d7c16b26af282a7b819c5bc52cbb5a18719f96bbe3ee754d0ca5bb58c5",
                            "the bias leaves the means and the window alone; it lowers the entropy of the mixture, so samples"
                            " stay near the likeliest path: neater, but all alike.",
                            "look at how `split_params` uses the bias.")


# ---------------------------------------------------------------- 04 gated units
def check_gru_step(gru_step: Callable) -> Verdict:
    """`gru_step(x, h, W, U, b) -> h`: one GRU step as on the slide, reset applied before U:
    h~ = tanh(W x + U (r * h)). W (3H, I), U (3H, H), b (3H,), gates stacked (z, r, candidate)."""
    from .cells import GRUCell

    gen = torch.Generator().manual_seed(0)
    B, I, H = 3, 5, 4
    cell = GRUCell(I, H, reset="before")
    with torch.no_grad():
        cell.U.bias.zero_()
    x, h = torch.randn(B, I, generator=gen), torch.randn(B, H, generator=gen)
    W, U, b = cell.W.weight.detach(), cell.U.weight.detach(), cell.W.bias.detach()
    with torch.no_grad():
        want = cell(x, (h,))[0]
        after = GRUCell(I, H, reset="after")
        after.load_state_dict(cell.state_dict())
        reset_after = after(x, (h,))[0]
    got, problem = _call(gru_step, x, h, W, U, b)
    if problem:
        return Verdict(False, problem)
    if not isinstance(got, torch.Tensor) or got.shape != (B, H):
        return Verdict(False, f"return h_t with shape (B, H) = {(B, H)}.")
    if _close(got, want):
        return Verdict(True, "h_t = (1 - z) h_{t-1} + z h~_t with the reset gate applied before U.")
    if _close(got, reset_after):
        return Verdict(False, "that is the other form, r * (U h): apply the reset to h before multiplying by U.")
    z = torch.sigmoid(x @ W[:H].T + b[:H] + h @ U[:H].T)
    h_tilde = (want - (1 - z) * h) / z
    if _close(got, z * h + (1 - z) * h_tilde):
        return Verdict(False, "z and 1 - z are swapped: the slide keeps (1 - z) of h_{t-1} and takes z of h~.")
    return Verdict(False, "check the gates: z and r are sigmoids of W x + U h_{t-1}, in the order (z, r, candidate).")


def check_matched_size(matched_size: Callable) -> Verdict:
    """`matched_size(unit, input_size, budget) -> H`: the largest hidden size whose recurrent layer
    (W, U, one bias per block, LSTM peepholes) has at most `budget` parameters."""
    from .cells import matched_hidden_size

    cases = [("tanh", 20, 169_100), ("gru", 20, 169_100), ("lstm", 20, 169_100),
             ("tanh", 100, 20_300), ("gru", 100, 20_300), ("lstm", 100, 20_300), ("gru", 88, 50_000),
             ("lstm", 88, 27_800)]
    for unit, inputs, budget in cases:
        want = matched_hidden_size(unit, inputs, budget)
        got, problem = _call(matched_size, unit, inputs, budget)
        if problem:
            return Verdict(False, problem)
        if got != want:
            hint = ""
            if unit == "lstm" and got == matched_hidden_size(unit, inputs, budget, peephole=False):
                hint = " Count the three peephole vectors V_i, V_f, V_o (3H parameters)."
            return Verdict(False, f"{unit} with input {inputs} and budget {budget}: expected {want}, got {got}.{hint}")
    return Verdict(True, "the sizes of Chung et al.'s table follow from the budget and the input size.")


def check_not_conclusive_answer(answer: str) -> Verdict:
    """Why do Chung et al. call their comparison of LSTM and GRU "not conclusive"? One letter, a to d."""
    options = {
        "a": "the GRU beat the LSTM on every data set, by a wide margin",
        "b": "the tanh RNN won on speech, so gating did not help there",
        "c": "the models were too large for the data sets and overfitted",
        "d": "the better gated unit changed with the data set, from single runs",
    }
    return _multiple_choice("not_conclusive", answer, options,
                            "ae4c0892059f6dc6a7982900f9e1b930085b8ae786c1a19f16b267f14cebcf29",
                            "both gated units beat tanh clearly, but which of them is better depends on the data set, and one"
                            " run per unit cannot separate small differences from noise.",
                            "compare the paper's rows for music and speech.")


# ---------------------------------------------------------------- 05 HiFi-GAN
def check_period_reshape(reshape: Callable) -> Verdict:
    """`reshape(audio (B, 1, T), period) -> (B, 1, ceil(T / p), p)` with reflect padding at the end."""
    from .hifigan.discriminators import period_reshape

    audio = torch.arange(1.0, 12.0).view(1, 1, 11)
    for p in (2, 3, 5, 11):
        want = period_reshape(audio, p)
        got, problem = _call(reshape, audio, p)
        if problem:
            return Verdict(False, problem)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return Verdict(False, f"period {p}: expected shape {tuple(want.shape)}, got "
                                  f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}.")
        if not torch.equal(got, want):
            if torch.equal(got, want.transpose(2, 3).reshape(want.shape)):
                return Verdict(False, f"period {p}: sample t belongs at row t // p, column t % p (fill rows first).")
            if torch.equal(got[..., :-1, :], want[..., :-1, :]):
                return Verdict(False, f"period {p}: the padding differs; pad at the end with mode='reflect'.")
            return Verdict(False, f"period {p}: expected {want.flatten().tolist()}.")
    return Verdict(True, "each column holds the samples of one phase of the period: t, t + p, t + 2p, ...")


def check_feature_matching(fm_loss: Callable) -> Verdict:
    """`fm_loss(real_features, fake_features) -> scalar`: sum over discriminators and layers of mean |r - f|."""
    from .hifigan.losses import feature_matching_loss

    gen = torch.Generator().manual_seed(0)
    real = [[torch.randn(2, 3, 5, generator=gen), torch.randn(2, 4, generator=gen)], [torch.randn(2, 7, generator=gen)]]
    fake = [[torch.randn(2, 3, 5, generator=gen), torch.randn(2, 4, generator=gen)], [torch.randn(2, 7, generator=gen)]]
    want = feature_matching_loss(real, fake)
    got, problem = _call(fm_loss, real, fake)
    if problem:
        return Verdict(False, problem)
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return Verdict(False, "return one number (a 0-d tensor).")
    if math.isclose(float(got), float(want), rel_tol=1e-5):
        return Verdict(True, "the generator's features are pulled towards the real ones at every layer of every discriminator.")
    if math.isclose(float(got), 2 * float(want), rel_tol=1e-5):
        return Verdict(False, "you applied the weight 2 inside: the loss function returns the plain sum; the caller weights it.")
    if math.isclose(float(got), float(want) / 3, rel_tol=1e-5):
        return Verdict(False, "sum over the layers and discriminators, do not average them.")
    return Verdict(False, f"expected {float(want):.4f}: the sum over discriminators and layers of mean |real - fake|.")


def check_mel_weight_answer(answer: str) -> Verdict:
    """Why does HiFi-GAN weight the mel loss by 45? One letter, a to d."""
    options = {
        "a": "it balances the terms, so the mel loss steers training early on",
        "b": "it matches the mel bands: one unit of weight for each band",
        "c": "the discriminators do not converge without a large mel term",
        "d": "it converts the mel L1 of log magnitudes into decibels",
    }
    return _multiple_choice("mel_weight", answer, options,
                            "0f6bcab13cdedab291c2281d626939821fb11c1c8b8d69d0ad5d821d49d9d372",
                            "the weight is a balance found by the authors: with it the mel term dominates early training and "
                            "keeps the adversarial game anchored to the input spectrogram.",
                            "compare the sizes of the loss terms during training.")
