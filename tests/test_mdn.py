import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from course_utils.handwriting import mdn


def raw(mu=(0.3, -0.2), log_sigma=(0.1, -0.4), rho_hat=0.5, e_hat=0.2, M=1, B=1, T=1):
    """Raw network outputs with the same component repeated M times."""
    rep = lambda v: [v] * M  # noqa: E731
    row = [e_hat] + rep(0.0) + rep(mu[0]) + rep(mu[1]) + rep(log_sigma[0]) + rep(log_sigma[1]) + rep(rho_hat)
    return torch.tensor(row, dtype=torch.float64).expand(B, T, -1).clone()


def test_output_size_and_shapes():
    assert mdn.output_size(20) == 121
    y_hat = torch.randn(4, 7, 121)
    p = mdn.split_params(y_hat)
    assert p.log_pi.shape == (4, 7, 20) and p.eos_logit.shape == (4, 7)
    assert mdn.mixture_nll(y_hat, torch.zeros(4, 7, 3)).shape == (4, 7)
    with pytest.raises(ValueError, match="1 \\+ 6M"):
        mdn.split_params(torch.randn(2, 3, 10))


@pytest.mark.parametrize("M", [1, 3])
def test_single_gaussian_equals_scipy(M):
    y_hat = raw(M=M)  # M identical components are one Gaussian
    target = torch.tensor([[[0.7, 0.1, 1.0]]], dtype=torch.float64)
    sx, sy, rho = math.exp(0.1), math.exp(-0.4), math.tanh(0.5)
    cov = [[sx**2, rho * sx * sy], [rho * sx * sy, sy**2]]
    log_n = multivariate_normal(mean=[0.3, -0.2], cov=cov).logpdf([0.7, 0.1])
    log_e = math.log(1 / (1 + math.exp(-0.2)))  # eos = 1: log e
    assert mdn.mixture_nll(y_hat, target).item() == pytest.approx(-(log_n + log_e), rel=1e-10)


def test_two_components_mix_by_pi():
    # pi = (0.25, 0.75) from logits (0, log 3); components centred at -1 and +1
    y_hat = torch.tensor([[[0.0, 0.0, math.log(3), -1, 1, 0, 0, 0, 0, 0, 0, 0, 0]]], dtype=torch.float64)
    target = torch.tensor([[[0.5, 0.0, 0.0]]], dtype=torch.float64)
    dens = lambda m: multivariate_normal(mean=[m, 0]).pdf([0.5, 0])  # noqa: E731
    expected = -math.log(0.25 * dens(-1) + 0.75 * dens(1)) + math.log(2)  # eos 0 with e = 0.5
    assert mdn.mixture_nll(y_hat, target).item() == pytest.approx(expected, rel=1e-10)


def test_gradcheck_float64():
    torch.manual_seed(0)
    y_hat = (torch.randn(2, 3, mdn.output_size(2), dtype=torch.float64) * 0.5).requires_grad_()
    target = torch.cat([torch.randn(2, 3, 2, dtype=torch.float64), torch.randint(0, 2, (2, 3, 1)).double()], -1)
    assert torch.autograd.gradcheck(lambda y: mdn.mixture_nll(y, target).sum(), (y_hat,))


def test_extreme_inputs_give_finite_loss_and_gradients():
    y_hat = (torch.randn(3, 5, mdn.output_size(4)) * 1e4).requires_grad_()
    target = torch.cat([torch.randn(3, 5, 2) * 1e3, torch.ones(3, 5, 1)], -1)
    loss = mdn.mixture_nll(y_hat, target).sum()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(y_hat.grad).all()


def test_mask_zeroes_padding():
    y_hat, target = torch.randn(2, 4, 13), torch.zeros(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float32)
    nll = mdn.mixture_nll(y_hat, target, mask)
    assert (nll[0, 2:] == 0).all() and (nll[1] != 0).all()


def test_sampling_matches_the_gaussian_and_is_reproducible():
    y_hat = raw(mu=(1.0, -2.0), log_sigma=(math.log(0.5), math.log(2.0)), rho_hat=math.atanh(0.6), e_hat=-1.0)
    y_hat = y_hat[:, 0].float().expand(20_000, -1)
    draws = mdn.sample_step(y_hat, generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(draws[:, :2].mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(draws[:, :2].std(0), [0.5, 2.0], rtol=0.03)
    assert np.corrcoef(draws[:, 0], draws[:, 1])[0, 1] == pytest.approx(0.6, abs=0.02)
    assert draws[:, 2].mean() == pytest.approx(1 / (1 + math.e), abs=0.01)
    again = mdn.sample_step(y_hat, generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(draws, again)


def test_bias_sharpens_the_mixture():
    y_hat = torch.tensor([[[0.0, 0.0, 1.0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0, 0]]])
    p0, p2 = mdn.split_params(y_hat, 0.0), mdn.split_params(y_hat, 2.0)
    assert p2.log_pi.exp()[..., 1] > p0.log_pi.exp()[..., 1]  # the likely component gets likelier
    torch.testing.assert_close(p2.log_sigma_x, p0.log_sigma_x - 2.0)
