import math

import pytest
import torch
from torch import nn

from course_utils.train import CheckpointError, TrainConfig, TrainingDiverged, fit, load_checkpoint, save_checkpoint


class TinyRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x, y):
        out = self.net(x)
        return out, ((out - y) ** 2).mean()


class TinyRNN(nn.Module):
    """Carries its state across batches, as truncated BPTT does."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(1, 6, batch_first=True)
        self.out = nn.Linear(6, 1)

    def forward(self, x, y, state=None):
        h, state = self.rnn(x, state)
        pred = self.out(h)
        return pred, ((pred - y) ** 2).mean(), state


def regression_batches(step):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(16, 3, generator=g)
    return x, x[:, :1] - 2 * x[:, 1:2]  # a linear target a small net fits quickly


def sequence_batches(step):
    t = torch.arange(step * 10, step * 10 + 11, dtype=torch.float32)
    wave = torch.stack([torch.sin(0.3 * t + k) for k in range(4)])[..., None]  # (4, 11, 1)
    return wave[:, :-1], wave[:, 1:]


def config(**kw):
    base = dict(steps=30, lr=1e-2, valid_every=10, checkpoint_every=10, progress=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_loss_goes_down_and_history_is_filled():
    torch.manual_seed(0)
    model = TinyRegressor()
    hist = fit(model, regression_batches, config(steps=200), valid_fn=lambda m: {"mse": 0.0})
    assert len(hist.loss) == 200 and hist.step[-1] == 200
    assert sum(hist.loss[-20:]) / 20 < 0.5 * sum(hist.loss[:20]) / 20
    assert hist.valid_step == [10 * k for k in range(1, 21)]
    assert all(s2 >= s1 for s1, s2 in zip(hist.seconds, hist.seconds[1:]))


@pytest.mark.parametrize("model_cls,batches,carry", [(TinyRegressor, regression_batches, False),
                                                     (TinyRNN, sequence_batches, True)])
def test_resume_equals_uninterrupted_run(tmp_path, model_cls, batches, carry):
    torch.manual_seed(0)
    straight = model_cls()
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    hist_a = fit(straight, batches, config(carry_state=carry))

    # the same run, interrupted after 20 steps and resumed in a fresh model
    ckpt = tmp_path / "run.pt"
    first = model_cls()
    first.load_state_dict(init)
    fit(first, batches, config(carry_state=carry, steps=20), checkpoint=ckpt)
    resumed = model_cls()  # different random init: everything must come from the checkpoint
    hist_b = fit(resumed, batches, config(carry_state=carry), checkpoint=ckpt)

    assert hist_b.loss == hist_a.loss
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoint_stores_configs_and_loads_without_code(tmp_path):
    from course_utils.char_lm import CharLMConfig

    model = TinyRegressor()
    ckpt = tmp_path / "c.pt"
    fit(model, regression_batches, config(steps=5), checkpoint=ckpt, model_config=CharLMConfig(vocab_size=7))
    saved = load_checkpoint(ckpt)
    assert saved["step"] == 5 and saved["model_config"]["vocab_size"] == 7 and saved["train_config"]["steps"] == 5
    assert not (tmp_path / "c.pt.tmp").exists()


def test_corrupt_or_missing_checkpoint_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"model": {"w": torch.ones(3)}})
    good.write_bytes(good.read_bytes()[:40])  # truncated, as after a crash mid-write without atomic rename
    with pytest.raises(CheckpointError, match="delete it"):
        load_checkpoint(good)
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_with_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": TinyRegressor}, evil)  # pickles a class reference
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    class Exploding(TinyRegressor):
        def forward(self, x, y):
            out, loss = super().forward(x, y)
            return out, loss * (math.inf if self.calls_left == 0 else 1.0)

        def __call__(self, *a, **k):
            self.calls_left -= 1
            return super().__call__(*a, **k)

    model = Exploding()
    model.calls_left = 13  # the 13th step (index 12) returns inf
    ckpt = tmp_path / "run.pt"
    with pytest.raises(TrainingDiverged, match="at step 12") as info:
        fit(model, regression_batches, config(steps=30), checkpoint=ckpt)
    assert str(ckpt) in str(info.value)
    assert load_checkpoint(ckpt)["step"] == 10


def test_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="adamw"):
        fit(TinyRegressor(), regression_batches, config(optimizer="adamx"))


def test_resuming_another_model_config_is_refused(tmp_path):
    from course_utils.char_lm import CharLMConfig

    ckpt = tmp_path / "c.pt"
    fit(TinyRegressor(), regression_batches, config(steps=5), checkpoint=ckpt, model_config=CharLMConfig(hidden_size=8))
    with pytest.raises(CheckpointError, match="resume=False"):
        fit(TinyRegressor(), regression_batches, config(steps=10), checkpoint=ckpt, model_config=CharLMConfig(hidden_size=9))
    hist = fit(TinyRegressor(), regression_batches, config(steps=10), checkpoint=ckpt,
               model_config=CharLMConfig(hidden_size=9), resume=False)
    assert hist.step[0] == 1


def test_keep_best_restores_the_best_validated_weights():
    from course_utils.train import KeepBest

    model = torch.nn.Linear(1, 1)
    scores = iter([3.0, 1.0, 2.0])
    keeper = KeepBest(lambda m: {"nll": next(scores)}, "nll")
    for value in (0.0, 1.0, 2.0):
        with torch.no_grad():
            model.weight.fill_(value)
        keeper(model)
    keeper.restore(model)
    assert model.weight.item() == 1.0 and keeper.best == 1.0
    with pytest.raises(RuntimeError, match="nothing to restore"):
        KeepBest(lambda m: {"nll": 0.0}, "nll").restore(model)
