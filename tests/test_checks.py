"""Each checker accepts a right answer and explains a wrong one."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import checks


def good_lstm_step(x, h, c, W, U, b, V):
    gi, gf, gc, go = (x @ W.T + h @ U.T + b).chunk(4, -1)
    i = torch.sigmoid(gi + V[0] * c)
    f = torch.sigmoid(gf + V[1] * c)
    c = f * c + i * torch.tanh(gc)
    o = torch.sigmoid(go + V[2] * c)
    return o * torch.tanh(c), c


def no_peephole_lstm_step(x, h, c, W, U, b, V):
    return good_lstm_step(x, h, c, W, U, b, torch.zeros_like(V))


def old_cell_output_gate(x, h, c, W, U, b, V):
    gi, gf, gc, go = (x @ W.T + h @ U.T + b).chunk(4, -1)
    o = torch.sigmoid(go + V[2] * c)  # reads c_{t-1}: a slip
    c_new = torch.sigmoid(gf + V[1] * c) * c + torch.sigmoid(gi + V[0] * c) * torch.tanh(gc)
    return o * torch.tanh(c_new), c_new


def unfinished(*args):
    raise NotImplementedError


def expect_wrong(verdict, words):
    assert not verdict and words in verdict.message and repr(verdict).startswith("Not yet: ")


def test_lstm_step_checker():
    verdict = checks.check_lstm_step(good_lstm_step)
    assert verdict and repr(verdict).startswith("Correct: ")
    expect_wrong(checks.check_lstm_step(no_peephole_lstm_step), "peephole")
    expect_wrong(checks.check_lstm_step(old_cell_output_gate), "V_o c_t")
    expect_wrong(checks.check_lstm_step(unfinished), "NotImplementedError")


def test_bpc_checker():
    def good(logits, targets):
        return F.cross_entropy(logits.flatten(0, -2), targets.flatten()) / math.log(2)

    def in_nats(logits, targets):
        return F.cross_entropy(logits.flatten(0, -2), targets.flatten())

    assert checks.check_bits_per_character(good)
    expect_wrong(checks.check_bits_per_character(in_nats), "ln 2")
    expect_wrong(checks.check_bits_per_character(lambda l, t: 1 / 0), "ZeroDivisionError")


def test_temperature_checker():
    assert checks.check_temperature(lambda logits, T: F.softmax(logits / T, -1))
    expect_wrong(checks.check_temperature(lambda logits, T: F.softmax(logits * T, -1)), "multiply")
    expect_wrong(checks.check_temperature(lambda logits, T: torch.exp(logits / T)), "sum to 1")


def test_mixture_nll_checker():
    from course_utils.handwriting import mdn

    assert checks.check_mixture_nll(mdn.mixture_nll)

    def without_eos(y_hat, target):
        e_term = F.binary_cross_entropy_with_logits(y_hat[..., 0], target[..., 2], reduction="none")
        return mdn.mixture_nll(y_hat, target) - e_term

    expect_wrong(checks.check_mixture_nll(without_eos), "end-of-stroke")

    def in_probability_space(y_hat, target):  # right values, but sums probabilities: overflows
        p = mdn.split_params(y_hat)
        log_n = mdn.bivariate_normal_log_density(target[..., :1], target[..., 1:2], p.mu_x, p.mu_y,
                                                 p.log_sigma_x, p.log_sigma_y, p.rho_hat)
        mix = (p.log_pi.exp() * log_n.exp()).sum(-1)
        return -torch.log(mix) + F.binary_cross_entropy_with_logits(p.eos_logit, target[..., 2], reduction="none")

    expect_wrong(checks.check_mixture_nll(in_probability_space), "logsumexp")

    def notebook_solution(y_hat, target):  # notebook 02's own cell: exact, unclamped, in log space
        M = (y_hat.shape[-1] - 1) // 6
        e_hat, pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = y_hat.split([1, M, M, M, M, M, M], dim=-1)
        x1, x2, eos = target[..., :1], target[..., 1:2], target[..., 2]
        log_pi = torch.log_softmax(pi_hat, dim=-1)
        s1, s2, rho = s1_hat.exp(), s2_hat.exp(), torch.tanh(rho_hat)
        z1, z2 = (x1 - mu1) / s1, (x2 - mu2) / s2
        Z = z1**2 + z2**2 - 2 * rho * z1 * z2
        log_n = -math.log(2 * math.pi) - s1_hat - s2_hat - 0.5 * torch.log1p(-rho**2) - Z / (2 * (1 - rho**2))
        log_mixture = torch.logsumexp(log_pi + log_n, dim=-1)
        log_bernoulli = -F.binary_cross_entropy_with_logits(e_hat[..., 0], eos, reduction="none")
        return -(log_mixture + log_bernoulli)

    assert checks.check_mixture_nll(notebook_solution)

    def clamped_probabilities(y_hat, target):  # finite only because it clamps: wrong far from the means
        p = mdn.split_params(y_hat)
        log_n = mdn.bivariate_normal_log_density(target[..., :1], target[..., 1:2], p.mu_x, p.mu_y,
                                                 p.log_sigma_x, p.log_sigma_y, p.rho_hat)
        mix = (p.log_pi.exp() * log_n.exp()).sum(-1).clamp(min=1e-20)
        return -torch.log(mix) + F.binary_cross_entropy_with_logits(p.eos_logit, target[..., 2], reduction="none")

    expect_wrong(checks.check_mixture_nll(clamped_probabilities), "log space")


def test_biased_params_checker():
    assert checks.check_biased_params(lambda pi_hat, s, b: (F.softmax(pi_hat * (1 + b), -1), torch.exp(s - b)))
    expect_wrong(checks.check_biased_params(lambda pi_hat, s, b: (F.softmax(pi_hat * (1 + b), -1), torch.exp(s + b))),
                 "shrink")
    expect_wrong(checks.check_biased_params(lambda pi_hat, s, b: (F.softmax(pi_hat * (1 - b), -1), torch.exp(s - b))),
                 "sharpen")


def test_window_checker():
    def window(alpha, beta, kappa, chars, shift=0):
        u = torch.arange(1, chars.shape[1] + 1) - shift
        phi = (alpha[..., None] * torch.exp(-beta[..., None] * (kappa[..., None] - u) ** 2)).sum(1)
        return torch.einsum("bu,buc->bc", phi, chars), phi

    assert checks.check_window(window)
    expect_wrong(checks.check_window(lambda a, b, k, c: window(a, b, k, c, shift=1)), "u = 1..U")
    expect_wrong(checks.check_window(lambda a, b, k, c: (window(a, b, k, c)[0] * 2, window(a, b, k, c)[1])), "w should")
    expect_wrong(checks.check_window(lambda a, b, k, c: (window(a, b, k, c)[0], window(a, b, 2 * k, c)[1])), "phi(t, u)")
    expect_wrong(checks.check_window(lambda a, b, k, c: 1 / 0), "ZeroDivisionError")


def test_stopping_rule_checker():
    assert checks.check_stopping_rule(lambda phi, U: bool(phi[U] > phi[:U].max()))
    expect_wrong(checks.check_stopping_rule(lambda phi, U: bool(phi[U] >= phi[:U].max())), "tie")
    expect_wrong(checks.check_stopping_rule(lambda phi, U: bool(phi[U] > phi[U - 1])), "first characters")


def test_bias_answer_checker():
    assert checks.check_bias_answer("c") and checks.check_bias_answer(" C) sharpens")
    expect_wrong(checks.check_bias_answer("a"), "split_params")
    expect_wrong(checks.check_bias_answer("?"), "one letter")


def gru_step(x, h, W, U, b, *, reset="before", swap=False):
    H = h.shape[1]
    z = torch.sigmoid(x @ W[:H].T + b[:H] + h @ U[:H].T)
    r = torch.sigmoid(x @ W[H:2 * H].T + b[H:2 * H] + h @ U[H:2 * H].T)
    inner = (r * h) @ U[2 * H:].T if reset == "before" else r * (h @ U[2 * H:].T)
    h_tilde = torch.tanh(x @ W[2 * H:].T + b[2 * H:] + inner)
    return z * h + (1 - z) * h_tilde if swap else (1 - z) * h + z * h_tilde


def test_gru_step_checker():
    assert checks.check_gru_step(gru_step)
    expect_wrong(checks.check_gru_step(lambda *a: gru_step(*a, reset="after")), "other form")
    expect_wrong(checks.check_gru_step(lambda *a: gru_step(*a, swap=True)), "swapped")
    expect_wrong(checks.check_gru_step(lambda x, h, W, U, b: h), "gates")


def test_matched_size_checker():
    from course_utils import cells

    assert checks.check_matched_size(cells.matched_hidden_size)
    no_peepholes = lambda unit, i, budget: cells.matched_hidden_size(unit, i, budget, peephole=False)  # noqa: E731
    expect_wrong(checks.check_matched_size(no_peepholes), "peephole")
    expect_wrong(checks.check_matched_size(lambda unit, i, budget: 10), "expected")


def test_not_conclusive_checker():
    assert checks.check_not_conclusive_answer("d")
    expect_wrong(checks.check_not_conclusive_answer("a"), "compare")


def test_hifigan_checkers():
    import torch.nn.functional as F

    from course_utils.hifigan.discriminators import period_reshape
    from course_utils.hifigan.losses import feature_matching_loss

    assert checks.check_period_reshape(period_reshape)
    zero_pad = lambda a, p: F.pad(a, (0, (-a.shape[-1]) % p)).view(a.shape[0], 1, -1, p)  # noqa: E731
    expect_wrong(checks.check_period_reshape(zero_pad), "reflect")
    columns_first = lambda a, p: period_reshape(a, p).transpose(2, 3).reshape(period_reshape(a, p).shape)  # noqa: E731
    expect_wrong(checks.check_period_reshape(columns_first), "row t // p")
    assert checks.check_feature_matching(feature_matching_loss)
    expect_wrong(checks.check_feature_matching(lambda r, f: 2 * feature_matching_loss(r, f)), "weight 2")
    expect_wrong(checks.check_feature_matching(lambda r, f: feature_matching_loss(r, f) / 3), "do not average")
    assert checks.check_mel_weight_answer("a")
    expect_wrong(checks.check_mel_weight_answer("b"), "sizes")


@pytest.mark.parametrize("checker", [checks.check_bias_answer, checks.check_not_conclusive_answer,
                                     checks.check_mel_weight_answer])
def test_multiple_choice_has_one_right_letter_and_does_not_give_it_away(checker):
    import inspect

    assert sum(bool(checker(letter)) for letter in "abcd") == 1
    source = inspect.getsource(checker)
    assert "==" not in source and "if answer" not in source  # the right letter is only a hash
    options = [line for line in source.splitlines() if line.strip()[:4] in ('"a":', '"b":', '"c":', '"d":')]
    lengths = [len(line) for line in options]
    assert len(options) == 4 and max(lengths) - min(lengths) < 15  # no option stands out by its length
