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


# ---------------------------------------------------------------- what careless use and damaged files do
def test_a_checkpoint_with_flipped_bytes_is_refused_and_an_old_one_without_checksum_loads(tmp_path):
    ckpt = tmp_path / "c.pt"
    save_checkpoint(ckpt, {"model": {"w": torch.linspace(0, 1, 100_000)}, "step": 3})
    data = bytearray(ckpt.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged: its weights do not match the checksum"):
        load_checkpoint(ckpt)
    old = tmp_path / "old.pt"
    torch.save({"model": {"w": torch.ones(3)}}, old)  # written before checksums existed
    assert torch.equal(load_checkpoint(old)["model"]["w"], torch.ones(3))


def test_a_zero_byte_checkpoint_says_it_is_empty_everywhere_it_is_read(tmp_path):
    from course_utils.handwriting.synthesis import load_writer
    from course_utils.hifigan.training import load_vocoder

    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for read in (load_checkpoint, load_writer, load_vocoder,
                 lambda p: fit(TinyRegressor(), regression_batches, config(), checkpoint=p)):
        with pytest.raises(CheckpointError, match=r"empty \(0 bytes\).*Delete it"):
            read(empty)


def test_two_processes_saving_the_same_checkpoint_both_succeed(tmp_path):
    import subprocess
    import sys

    ckpt = tmp_path / "shared.pt"
    script = ("import sys, torch\nfrom course_utils.train import save_checkpoint\n"
              "for i in range(40):\n    save_checkpoint(sys.argv[1], {'model': {'w': torch.full((1000,), float(i))}})\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(ckpt)], stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert load_checkpoint(ckpt)["model"]["w"][0] == 39.0
    assert [p.name for p in tmp_path.iterdir()] == ["shared.pt"]  # no temporary file left behind


def test_a_huge_learning_rate_leaves_only_finite_checkpoints_and_names_only_written_files(tmp_path):
    huge = dict(lr=1e3, optimizer="sgd", clip_norm=None, valid_every=0)
    early = tmp_path / "early.pt"  # the blow-up comes before the first save
    with pytest.raises(TrainingDiverged, match="no checkpoint was written") as info:
        fit(TinyRegressor(), regression_batches, config(**huge, checkpoint_every=100), checkpoint=early)
    assert str(early) not in str(info.value) and not early.exists()

    for lr in (1e3, 50.0, 2.0):
        ckpt = tmp_path / f"run{lr}.pt"
        torch.manual_seed(0)
        try:
            fit(TinyRegressor(), regression_batches, config(**{**huge, "lr": lr}, steps=300, checkpoint_every=1),
                checkpoint=ckpt)
        except TrainingDiverged as err:
            assert ("last good checkpoint" in str(err)) == ckpt.exists()
        if ckpt.exists():
            weights = load_checkpoint(ckpt)["model"]
            assert all(torch.isfinite(w).all() and w.abs().max() < 1e6 for w in weights.values())


def test_a_loss_that_explodes_while_finite_stops_the_run(tmp_path):
    class Spiking(TinyRegressor):
        step = 0

        def forward(self, x, y):
            out, loss = super().forward(x, y)
            Spiking.step += 1
            return out, loss * (1e6 if Spiking.step == 25 else 1.0)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(TrainingDiverged, match="exploded to .* at step 24") as info:
        fit(Spiking(), regression_batches, config(steps=40), checkpoint=ckpt)
    assert "last good checkpoint" in str(info.value) and load_checkpoint(ckpt)["step"] == 20


def test_resume_is_exact_when_validation_samples_from_the_global_random_state(tmp_path):
    def valid_fn(model):  # draws without a generator, as a careless sampler does
        return {"draw": torch.rand(()).item()}

    torch.manual_seed(0)
    straight = TinyRegressor()
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    hist_a = fit(straight, regression_batches, config(steps=25), valid_fn=valid_fn)
    ckpt = tmp_path / "run.pt"
    first = TinyRegressor()
    first.load_state_dict(init)
    fit(first, regression_batches, config(steps=15), valid_fn=valid_fn, checkpoint=ckpt)  # validates at 15 too
    hist_b = fit(TinyRegressor(), regression_batches, config(steps=25), valid_fn=valid_fn, checkpoint=ckpt)
    assert hist_b.loss == hist_a.loss
    assert [v for s, v in zip(hist_b.valid_step, hist_b.valid) if s != 15] == hist_a.valid


def test_resuming_with_another_optimizer_is_refused_and_a_new_lr_is_reported(tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    fit(TinyRegressor(), regression_batches, config(steps=5), checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="optimizer='adam' \\(now 'sgd'\\).*resume=False"):
        fit(TinyRegressor(), regression_batches, config(steps=10, optimizer="sgd"), checkpoint=ckpt)
    capsys.readouterr()
    hist = fit(TinyRegressor(), regression_batches, config(steps=10, lr=1e-3), checkpoint=ckpt)
    out = capsys.readouterr().out
    assert "Resumed" in out and "lr 0.01 -> 0.001" in out and hist.step[-1] == 10


def test_resume_restores_rng_states_that_map_location_moved(tmp_path, monkeypatch):
    """On a GPU, map_location=device moves the saved RNG ByteTensors there; torch.set_rng_state then
    refuses them. Simulated here by handing them back as another type than a CPU ByteTensor."""
    import course_utils.train as train

    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    init = TinyRegressor().state_dict()
    straight = TinyRegressor()
    straight.load_state_dict(init)
    hist_a = fit(straight, regression_batches, config(steps=20))
    first = TinyRegressor()
    first.load_state_dict(init)
    fit(first, regression_batches, config(steps=10), checkpoint=ckpt)

    real_load = train.load_checkpoint

    def load_moved(path, map_location="cpu"):
        saved = real_load(path, map_location=map_location)
        saved["rng"] = {k: v.to(torch.int64) if isinstance(v, torch.Tensor) else [s.to(torch.int64) for s in v]
                        for k, v in saved["rng"].items()}
        return saved

    monkeypatch.setattr(train, "load_checkpoint", load_moved)
    hist_b = fit(TinyRegressor(), regression_batches, config(steps=20), checkpoint=ckpt)
    assert hist_b.loss == hist_a.loss


def test_resuming_with_other_batches_is_refused_and_the_same_resumes(tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    config = TrainConfig(steps=3, valid_every=0, checkpoint_every=1, progress=False)
    fit(TinyRegressor(), regression_batches, config, checkpoint=ckpt, data_settings={"seq_len": 50, "batch_size": 16})
    with pytest.raises(CheckpointError, match=r"seq_len=50 \(now 10\).*another checkpoint name"):
        fit(TinyRegressor(), regression_batches, config, checkpoint=ckpt,
            data_settings={"seq_len": 10, "batch_size": 16})
    history = fit(TinyRegressor(), regression_batches, TrainConfig(steps=4, valid_every=0, progress=False),
                  checkpoint=ckpt, data_settings={"batch_size": 16, "seq_len": 50})
    assert "Resumed from" in capsys.readouterr().out and history.step[-1] == 4
    assert load_checkpoint(ckpt)["data_settings"] == {"batch_size": 16, "seq_len": 50}


def test_progress_bar_counts_to_the_capped_number_of_steps(monkeypatch):
    from course_utils import train as train_module

    totals = []
    real = train_module._progress

    def spy(start, config, total):
        totals.append(total)
        return real(start, config, total)

    monkeypatch.setattr(train_module, "_progress", spy)
    monkeypatch.setenv("COURSE_MAX_STEPS", "2")
    monkeypatch.setenv("COURSE_HEADLESS", "1")
    history = fit(TinyRegressor(), regression_batches, TrainConfig(steps=50, valid_every=0, checkpoint_every=0))
    assert history.step[-1] == 2 and totals == [2]


def test_bfloat16_autocast_trains_carries_a_float32_state_and_resumes(tmp_path):
    torch.manual_seed(0)
    straight = TinyRNN()
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    hist = fit(straight, sequence_batches, config(carry_state=True, steps=60, autocast="bfloat16"))
    assert sum(hist.loss[-10:]) < 0.5 * sum(hist.loss[:10])  # it learns
    assert all(v.dtype == torch.float32 for v in straight.state_dict().values())  # weights stay float32
    ckpt = tmp_path / "bf16.pt"
    first = TinyRNN()
    first.load_state_dict(init)
    fit(first, sequence_batches, config(carry_state=True, steps=40, autocast="bfloat16"), checkpoint=ckpt)
    assert load_checkpoint(ckpt)["carried_state"].dtype == torch.float32
    resumed = TinyRNN()
    assert fit(resumed, sequence_batches, config(carry_state=True, steps=60, autocast="bfloat16"),
               checkpoint=ckpt).loss == hist.loss  # resume is exact under autocast too


def test_an_unknown_autocast_precision_is_named():
    with pytest.raises(ValueError, match="'bfloat16'"):
        fit(TinyRegressor(), regression_batches, config(autocast="bf16"))
    with pytest.raises(ValueError, match="CUDA GPU"):
        fit(TinyRegressor(), regression_batches, config(autocast="float16"))
