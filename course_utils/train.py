"""The one training loop: progress bar, clipping, validation, history, checkpoint and resume.

A model follows one interface (after makemore): ``model(*batch) -> (out, loss)``, or, for
truncated back-propagation through time, ``model(*batch, state=state) -> (out, loss, state)``.
A batch is a pure function of the step, ``batch_fn(step)``, so a resumed run sees exactly
the batches an uninterrupted one would.
"""
from __future__ import annotations

import hashlib
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .runtime import cap_steps, seed_everything, step_seed, write_atomic


@dataclass
class TrainConfig:
    steps: int = 1000  # optimiser updates in the whole run
    lr: float = 2e-3  # learning rate
    optimizer: str = "adam"  # "adam" | "adamw" | "rmsprop" | "sgd"
    weight_decay: float = 0.0  # L2 (adam, rmsprop, sgd) or decoupled (adamw)
    lr_decay: float = 1.0  # multiply lr by this every `lr_decay_every` steps (1.0: constant)
    lr_decay_every: int = 1000  # steps between decays
    clip_norm: float | None = 1.0  # clip the global gradient norm to this (None: no clipping)
    carry_state: bool = False  # truncated BPTT: pass the model's state from one batch to the next
    valid_every: int = 200  # steps between validations (0: only at the end)
    checkpoint_every: int = 200  # steps between checkpoints (0: only at the end)
    max_seconds: float | None = None  # stop early after this much wall-clock training time
    seed: int = 0  # seeds torch before the first step
    progress: bool = True  # show a tqdm progress bar
    autocast: str | None = None  # "bfloat16": forward and loss under torch.autocast (faster on some CPUs and
    # GPUs, slower on others, even with the same CPU flags: measure); None: float32 throughout


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or belongs to another model."""


@dataclass
class History:
    """What happened during training, for plots: per-step loss and periodic validation."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # training wall-clock time at this step
    valid_step: list[int] = field(default_factory=list)
    valid_seconds: list[float] = field(default_factory=list)
    valid: list[dict[str, float]] = field(default_factory=list)

    def valid_metric(self, name: str) -> list[float]:
        return [v[name] for v in self.valid]


# ---------------------------------------------------------------- checkpoints
CHECKSUM_KEY = "checksum"  # SHA-256 of the payload's tensors and numbers, written by save_checkpoint


def payload_checksum(payload: dict[str, Any]) -> str:
    """SHA-256 over every tensor (dtype, shape, bytes) and plain value of `payload`, with its place in it."""
    digest = hashlib.sha256()

    def walk(where: str, value) -> None:
        if isinstance(value, torch.Tensor):
            data = value.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)
            digest.update(f"{where}:{value.dtype}:{tuple(value.shape)}:".encode())
            digest.update(data.numpy().tobytes())
        elif isinstance(value, dict):
            for key, item in value.items():
                if not (where == "" and key == CHECKSUM_KEY):
                    walk(f"{where}/{key!r}", item)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{where}[{i}]", item)
        elif value is None or isinstance(value, (bool, int, float, str)):
            digest.update(f"{where}={value!r};".encode())
        else:
            digest.update(f"{where}:{type(value).__name__};".encode())

    walk("", payload)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` and its checksum with torch.save to a temporary file of its own in the same
    folder, then rename it: a reader never sees a half-written file, and two writers never share one."""
    payload = {**payload, CHECKSUM_KEY: payload_checksum(payload)}

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            torch.save(payload, f)

    return write_atomic(path, write)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing code (``weights_only=True``), verify its checksum (files
    written before checksums existed have none and load as they are), with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}. Train the model first, or check the path.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the run that wrote it was cut off, or the disk was "
                              "full. Delete it and train again.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a corrupt file can fail anywhere in the unpickler
        first_line = (str(err).splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {first_line}). "
            "It may be truncated or not a course checkpoint: delete it and train again."
        ) from err
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path} holds no 'model' entry: it is not a course checkpoint.")
    if CHECKSUM_KEY in payload and payload[CHECKSUM_KEY] != payload_checksum(payload):
        raise CheckpointError(f"{path} is damaged: its weights do not match the checksum written with them "
                              "(a disk or copy error). Delete it and train again, or copy it again from its source.")
    return payload


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    # RNG states must be CPU ByteTensors, wherever map_location put the checkpoint's tensors
    torch.set_rng_state(state["torch"].to("cpu", torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to("cpu", torch.uint8) for s in state["cuda"]])


def _detach(state):
    """The carried state cut from the graph, in float32 whatever autocast computed it in."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach().float() if state.is_floating_point() else state.detach()
    return type(state)(_detach(s) for s in state)


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}
    if config.optimizer not in kinds:
        raise ValueError(f"optimizer={config.optimizer!r} is not supported; use one of {sorted(kinds)}.")
    return kinds[config.optimizer](params, lr=config.lr, weight_decay=config.weight_decay)


class KeepBest:
    """Early stopping as a validation function: ``valid_fn = KeepBest(metric_fn, "nll")`` for `fit`
    computes the metrics and keeps a copy of the weights whenever `key` improves (lower is better);
    `restore(model)` loads the best weights back after training."""

    def __init__(self, metric_fn: Callable[[nn.Module], dict[str, float]], key: str):
        self.metric_fn, self.key = metric_fn, key
        self.best, self.best_state = math.inf, None

    def __call__(self, model: nn.Module) -> dict[str, float]:
        metrics = self.metric_fn(model)
        if metrics[self.key] < self.best:
            self.best = float(metrics[self.key])
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return metrics

    def restore(self, model: nn.Module) -> nn.Module:
        if self.best_state is None:
            raise RuntimeError("no validation has run yet: nothing to restore.")
        model.load_state_dict(self.best_state)
        return model


# ---------------------------------------------------------------- the loop
# A loss this many times max(|running median|, 1) above its running median has exploded, even while
# finite (a learning rate far too high); the median is over the last RECENT_LOSSES steps.
EXPLOSION_FACTOR = 1e3
RECENT_LOSSES = 50
# Settings a checkpoint's state depends on: the optimiser's moments and the carried state have no
# meaning under other values. The others (lr, clipping, steps ...) may change between runs.
RESUME_SETTINGS = ("optimizer", "carry_state")


def _check_resumable(checkpoint, saved: dict, config: TrainConfig, model_config: Any,
                     data_settings: dict | None = None) -> list[str]:
    """Refuse a checkpoint of another model, optimiser or data; -> the other settings that changed."""
    wanted = asdict(model_config) if model_config is not None else None
    if saved.get("model_config") != wanted:
        raise CheckpointError(
            f"{checkpoint} was written for the model {saved.get('model_config')}, not {wanted}. "
            "Delete it, pass another checkpoint path, or resume=False to start afresh."
        )
    before_data = saved.get("data_settings")
    if data_settings is not None and before_data is not None and before_data != data_settings:
        clash = [f"{k}={before_data.get(k)!r} (now {data_settings.get(k)!r})"
                 for k in sorted(set(before_data) | set(data_settings)) if before_data.get(k) != data_settings.get(k)]
        raise CheckpointError(
            f"{checkpoint} was trained on other batches: {', '.join(clash)}. Resuming would mix two experiments. "
            "Train the new setting afresh under another checkpoint name (checkpoint=...), or set it back to resume."
        )
    before, now = saved.get("train_config") or {}, asdict(config)  # files from before train_config: no check
    clash = [f"{k}={before[k]!r} (now {now[k]!r})" for k in RESUME_SETTINGS if k in before and before[k] != now[k]]
    if clash:
        raise CheckpointError(
            f"{checkpoint} was trained with {', '.join(clash)}; its state cannot continue under the new setting. "
            f"Set it back to resume, or start afresh with resume=False (or delete the file)."
        )
    return [f"{k} {before[k]!r} -> {now[k]!r}" for k in ("lr", "weight_decay", "lr_decay", "lr_decay_every", "clip_norm")
            if k in before and before[k] != now[k]]


def _to_device(state, device):
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    return type(state)(_to_device(s, device) for s in state)


def fit(
    model: nn.Module,
    batch_fn: Callable[[int], tuple],
    config: TrainConfig,
    *,
    valid_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    checkpoint: str | os.PathLike | None = None,
    model_config: Any = None,
    data_settings: dict | None = None,
    resume: bool = True,
    on_checkpoint: Callable[[int, nn.Module], None] | None = None,
) -> History:
    """Train `model` for `config.steps` updates (at most COURSE_MAX_STEPS) on `batch_fn(step)`; return the history.

    With `checkpoint`, the run saves there every `checkpoint_every` steps (model, optimiser,
    RNG, carried state, history and both configs) and, with `resume`, continues from it. A
    checkpoint is written only once the next step's loss shows its weights are sound, so after
    a divergence the file holds the last good state. `data_settings` (e.g. {"seq_len": 50, "batch_size": 32})
    are the settings of `batch_fn` that the configs do not hold: a resume under other values is refused.
    `on_checkpoint(step, model)` runs after each checkpoint is written (e.g. to keep snapshots to average).
    """
    device = next(model.parameters()).device
    if config.autocast not in (None, "bfloat16", "float16"):
        raise ValueError(f"TrainConfig.autocast={config.autocast!r}: use None (float32), 'bfloat16' or 'float16' (GPU).")
    if config.autocast == "float16" and device.type != "cuda":
        raise ValueError("TrainConfig.autocast='float16' needs a CUDA GPU (it has no loss scaling here); "
                         "use 'bfloat16' on a CPU.")
    precision = getattr(torch, config.autocast) if config.autocast else torch.float32
    optimizer = make_optimizer(model.parameters(), config)
    history, start, state, good_step = History(), 0, None, None
    seed_everything(config.seed)
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        saved = load_checkpoint(checkpoint, map_location=device)
        changed = _check_resumable(checkpoint, saved, config, model_config, data_settings)
        try:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
        except (KeyError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{checkpoint} does not fit this model or optimiser ({type(err).__name__}: "
                                  f"{(str(err).splitlines() or [''])[0][:200]}). Delete it, or resume=False.") from err
        history = History(**saved["history"])
        start = good_step = saved["step"]
        state = _to_device(saved.get("carried_state"), device)
        _set_rng_state(saved["rng"])
        print(f"Resumed from {checkpoint} at step {start}"
              + (f" (changed since: {', '.join(changed)})." if changed else "."))

    def save(step: int, rng: dict[str, Any]) -> None:
        nonlocal good_step
        if checkpoint is None:
            return
        bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            diverged(f"the weights {bad[:3]} became NaN or infinite at step {step}")
        save_checkpoint(checkpoint, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "history": asdict(history), "rng": rng, "carried_state": state,
            "train_config": asdict(config),
            "model_config": asdict(model_config) if model_config is not None else None,
            "data_settings": data_settings,
        })
        good_step = step
        if on_checkpoint is not None:
            on_checkpoint(step, model)

    def diverged(what: str) -> None:
        if good_step is not None and Path(checkpoint).is_file():
            last = f"the last good checkpoint is {checkpoint} (step {good_step}), and a re-run resumes from it"
        else:
            last = "no checkpoint was written before it"
        raise TrainingDiverged(f"{what}; {last}. Lower the learning rate (TrainConfig.lr) or the gradient "
                               "clipping threshold (clip_norm) and try again; after changing lr a re-run resumes.")

    def validate(step: int) -> None:
        if valid_fn is None:
            return
        model.eval()
        # validation draws from its own seeded random state: the training's stays as it was, so a
        # resumed run equals an uninterrupted one whatever valid_fn samples
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(step_seed(config.seed, step))
            metrics = {k: float(v) for k, v in valid_fn(model).items()}
        model.train()
        history.valid_step.append(step)
        history.valid_seconds.append(history.seconds[-1] if history.seconds else 0.0)
        history.valid.append(metrics)

    model.train()
    elapsed = history.seconds[-1] if history.seconds else 0.0
    pending = None  # (step, RNG state) of a checkpoint that waits for the next loss to vouch for it
    steps = cap_steps(config.steps)
    bar = _progress(start, config, steps)
    for step in range(start, steps):
        if config.max_seconds is not None and elapsed >= config.max_seconds:
            print(f"Stopped at step {step}: the time budget of {config.max_seconds:.0f} s is used up.")
            break
        tick = time.perf_counter()
        lr = config.lr * config.lr_decay ** (step // config.lr_decay_every)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = tuple(b.to(device) if isinstance(b, torch.Tensor) else b for b in batch_fn(step))
        # weights, gradients and the optimiser stay float32; autocast runs the matrix products in `precision`
        with torch.autocast(device.type, dtype=precision, enabled=config.autocast is not None):
            if config.carry_state:
                _, loss, new_state = model(*batch, state=state)
            else:
                _, loss = model(*batch)[:2]
        loss = loss.float()
        value = loss.item()
        if not math.isfinite(value):
            diverged(f"The loss became {value} at step {step}")
        recent = history.loss[-RECENT_LOSSES:]
        if recent:
            median = statistics.median(recent)
            if value > median + EXPLOSION_FACTOR * max(abs(median), 1.0):
                diverged(f"The loss exploded to {value:.3g} at step {step} (running median {median:.3g})")
        if pending is not None:  # this finite, sane loss was computed with the pending step's weights
            save(*pending)
            pending = None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = config.clip_norm if config.clip_norm is not None else math.inf
        grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), max_norm))
        optimizer.step()
        if config.carry_state:
            state = _detach(new_state)
        elapsed += time.perf_counter() - tick
        history.step.append(step + 1)
        history.loss.append(value)
        history.grad_norm.append(grad_norm)
        history.lr.append(lr)
        history.seconds.append(elapsed)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", refresh=False)
        done = step + 1
        if config.valid_every and done % config.valid_every == 0 and done < steps:
            validate(done)
        if config.checkpoint_every and done % config.checkpoint_every == 0:
            pending = (done, _rng_state())
    if bar is not None:
        bar.close()
    done = history.step[-1] if history.step else start
    if not history.valid_step or history.valid_step[-1] != done:
        validate(done)
    save(done, _rng_state())
    return history


def _progress(start: int, config: TrainConfig, total: int):
    """A progress bar to `total` steps (config.steps, or fewer under COURSE_MAX_STEPS)."""
    if not config.progress:
        return None
    if os.environ.get("COURSE_HEADLESS"):
        # headless runs (make course, nbval): a text bar, updated rarely; widget bars can stall nbconvert
        from tqdm import tqdm

        return tqdm(total=total, initial=start, desc="training", unit="step", mininterval=30)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc="training", unit="step")
