import pytest
import torch

from course_utils.handwriting import mdn
from course_utils.handwriting.models import HandwritingPredictor, PredictionConfig, sample


def tiny(**kw):
    return HandwritingPredictor(PredictionConfig(hidden_size=8, num_layers=2, num_mixtures=3, **kw))


def test_shapes_skip_connections_and_state():
    model = tiny()
    assert [layer.input_size for layer in model.layers] == [3, 11] and model.head.in_features == 16
    x = torch.randn(2, 9, 3)
    y_hat, loss, state = model(x, x)
    assert y_hat.shape == (2, 9, mdn.output_size(3)) and loss.ndim == 0
    first, _, s = model(x[:, :4])
    second, _, _ = model(x[:, 4:], state=s)
    torch.testing.assert_close(torch.cat([first, second], 1), y_hat)


def test_loss_is_mean_nll_over_unmasked_points():
    model = tiny()
    x, mask = torch.randn(2, 5, 3), torch.tensor([[1.0] * 5, [1.0] * 3 + [0.0] * 2])
    x[..., 2] = (x[..., 2] > 0).float()
    y_hat, loss, _ = model(x, x, mask)
    expected = (mdn.mixture_nll(y_hat, x) * mask).sum() / 8
    torch.testing.assert_close(loss, expected)


def test_graves_clipping_bounds_the_output_derivatives():
    x = torch.randn(1, 6, 3) * 50  # far from the initial mixture: large derivatives
    x[..., 2] = 1.0

    def output_grad(clip):
        torch.manual_seed(0)
        model = tiny(output_clip=clip)
        seen = {}
        y_hat, loss, _ = model(x, x)
        y_hat.register_hook(lambda g: seen.setdefault("g", g))  # runs after the clipping hook
        loss.backward()
        return seen["g"]

    limit = 1e-3 / 6  # the clip is on the summed loss; the loss is a mean over 6 points
    free, clipped = output_grad(1e9), output_grad(1e-3)
    assert free.abs().max() > limit
    torch.testing.assert_close(clipped, free.clamp(-limit, limit))


def test_sampling_shapes_reproducible_and_validated():
    torch.manual_seed(0)
    model = tiny()
    a = sample(model, 20, bias=0.5, generator=torch.Generator().manual_seed(1))
    b = sample(model, 20, bias=0.5, generator=torch.Generator().manual_seed(1))
    assert a.shape == (20, 3) and torch.equal(a, b) and set(a[:, 2].tolist()) <= {0.0, 1.0}
    assert sample(model, 5, prime=torch.randn(7, 3)).shape == (5, 3)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="bias must be a finite number >= 0"):
            sample(model, 5, bias=bad)
    with pytest.raises(ValueError, match=r"\(B, T, 3\)"):
        model(torch.randn(2, 5))


def test_tiny_model_learns_a_repeated_pattern():
    torch.manual_seed(0)
    step = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 1.0]])
    seq = step.repeat(10, 1)[None]  # a square, drawn ten times
    model = tiny()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(150):
        _, loss, _ = model(seq[:, :-1], seq[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 3.0


def test_density_map_covers_the_line_and_integrates_to_the_number_of_steps():
    from course_utils.handwriting import plots

    torch.manual_seed(0)
    model = tiny()
    strokes = torch.tensor([[0.5, 0.0, 0.0]] * 10 + [[0.0, 0.5, 1.0]] * 2)
    density, (x0, x1, y0, y1), eos = plots.density_map(model, strokes, resolution=200)
    assert eos.shape == (12,) and ((0 <= eos) & (eos <= 1)).all()
    cell = (x1 - x0) / (density.shape[1] - 1) * (y1 - y0) / (density.shape[0] - 1)
    assert 0 < density.sum() * cell <= 12.5  # each step's density integrates to at most 1 on the grid
    fig = plots.plot_density(model, strokes)
    assert len(fig.axes) == 2
