"""COURSE_MAX_STEPS caps every training: the full profile's code paths run in seconds."""
import pytest
import torch
from torch import nn

from course_utils import runtime
from course_utils.train import TrainConfig, fit


class Line(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x, y):
        out = self.lin(x)
        return out, ((out - y) ** 2).mean()


def batches(step):
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(step))
    return x, x.sum(1, keepdim=True)


def test_cap_steps_reads_the_setting(monkeypatch):
    assert runtime.max_steps() is None and runtime.cap_steps(500) == 500
    monkeypatch.setenv("COURSE_MAX_STEPS", "2")
    assert runtime.max_steps() == 2
    assert runtime.cap_steps(500) == 2 and runtime.cap_steps(1) == 1


@pytest.mark.parametrize("bad", ["0", "-3", "two", "1.5"])
def test_bad_cap_says_what_to_do(monkeypatch, bad):
    monkeypatch.setenv("COURSE_MAX_STEPS", bad)
    with pytest.raises(ValueError, match="positive whole number"):
        runtime.max_steps()


def test_fit_stops_at_the_cap_then_resumes_past_it(monkeypatch, tmp_path):
    cfg = TrainConfig(steps=50, valid_every=1, checkpoint_every=10, progress=False)
    ckpt = tmp_path / "line.pt"
    monkeypatch.setenv("COURSE_MAX_STEPS", "3")
    hist = fit(Line(), batches, cfg, valid_fn=lambda m: {"x": 0.0}, checkpoint=ckpt)
    assert hist.step == [1, 2, 3] and hist.valid_step == [1, 2, 3]
    monkeypatch.delenv("COURSE_MAX_STEPS")
    hist = fit(Line(), batches, cfg, checkpoint=ckpt)  # without the cap, the run goes on to config.steps
    assert hist.step[-1] == 50 and len(hist.step) == 50


def test_capped_subset_keeps_everything_unless_capped(monkeypatch):
    items = list(range(10))
    assert runtime.capped_subset(items, 3) == items
    monkeypatch.setenv("COURSE_MAX_STEPS", "2")
    assert runtime.capped_subset(items, 3) == [0, 1, 2]
    assert runtime.capped_subset(torch.arange(10), 4).tolist() == [0, 1, 2, 3]


def test_training_capped_says_so(monkeypatch, capsys):
    assert runtime.training_capped() is False and capsys.readouterr().out == ""
    monkeypatch.setenv("COURSE_MAX_STEPS", "2")
    assert runtime.training_capped() is True
    assert "COURSE_MAX_STEPS=2 cut the training short" in capsys.readouterr().out
