"""The one training loop: progress bar, clipping, validation, history, checkpoint and resume.

A model follows one interface (after makemore): ``model(*batch) -> (out, loss)``, or, for
truncated back-propagation through time, ``model(*batch, state=state) -> (out, loss, state)``.
A batch is a pure function of the step, ``batch_fn(step)``, so a resumed run sees exactly
the batches an uninterrupted one would.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .runtime import cap_steps, seed_everything


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
def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` with torch.save to a temporary file, then rename it: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing code (``weights_only=True``), with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}. Train the model first, or check the path.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a corrupt file can fail anywhere in the unpickler
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
            "It may be truncated or not a course checkpoint: delete it and train again."
        ) from err
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path} holds no 'model' entry: it is not a course checkpoint.")
    return payload


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _detach(state):
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
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
def fit(
    model: nn.Module,
    batch_fn: Callable[[int], tuple],
    config: TrainConfig,
    *,
    valid_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    checkpoint: str | os.PathLike | None = None,
    model_config: Any = None,
    resume: bool = True,
) -> History:
    """Train `model` for `config.steps` updates (at most COURSE_MAX_STEPS) on `batch_fn(step)`; return the history.

    With `checkpoint`, the run saves there every `checkpoint_every` steps (model, optimiser,
    RNG, carried state, history and both configs) and, with `resume`, continues from it.
    """
    device = next(model.parameters()).device
    optimizer = make_optimizer(model.parameters(), config)
    history, start, state = History(), 0, None
    seed_everything(config.seed)
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        saved = load_checkpoint(checkpoint, map_location=device)
        wanted = asdict(model_config) if model_config is not None else None
        if saved.get("model_config") != wanted:
            raise CheckpointError(
                f"{checkpoint} was written for the model {saved.get('model_config')}, not {wanted}. "
                "Delete it, pass another checkpoint path, or resume=False to start afresh."
            )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        history = History(**saved["history"])
        start = saved["step"]
        state = saved.get("carried_state")
        _set_rng_state(saved["rng"])
        print(f"Resumed from {checkpoint} at step {start}.")

    def save(step: int) -> None:
        if checkpoint is None:
            return
        save_checkpoint(checkpoint, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "history": asdict(history), "rng": _rng_state(), "carried_state": state,
            "train_config": asdict(config),
            "model_config": asdict(model_config) if model_config is not None else None,
        })

    def validate(step: int) -> None:
        if valid_fn is None:
            return
        model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in valid_fn(model).items()}
        model.train()
        history.valid_step.append(step)
        history.valid_seconds.append(history.seconds[-1] if history.seconds else 0.0)
        history.valid.append(metrics)

    model.train()
    elapsed = history.seconds[-1] if history.seconds else 0.0
    steps = cap_steps(config.steps)
    bar = _progress(start, config)
    for step in range(start, steps):
        if config.max_seconds is not None and elapsed >= config.max_seconds:
            print(f"Stopped at step {step}: the time budget of {config.max_seconds:.0f} s is used up.")
            break
        tick = time.perf_counter()
        lr = config.lr * config.lr_decay ** (step // config.lr_decay_every)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = tuple(b.to(device) if isinstance(b, torch.Tensor) else b for b in batch_fn(step))
        if config.carry_state:
            _, loss, new_state = model(*batch, state=state)
        else:
            _, loss = model(*batch)[:2]
        if not torch.isfinite(loss):
            last = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written"
            raise TrainingDiverged(
                f"The loss became {loss.item()} at step {step}; {last}. "
                "Lower the learning rate or the gradient clipping threshold and try again."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = config.clip_norm if config.clip_norm is not None else math.inf
        grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), max_norm))
        optimizer.step()
        if config.carry_state:
            state = _detach(new_state)
        elapsed += time.perf_counter() - tick
        history.step.append(step + 1)
        history.loss.append(loss.item())
        history.grad_norm.append(grad_norm)
        history.lr.append(lr)
        history.seconds.append(elapsed)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        done = step + 1
        if config.valid_every and done % config.valid_every == 0 and done < steps:
            validate(done)
        if config.checkpoint_every and done % config.checkpoint_every == 0:
            save(done)
    if bar is not None:
        bar.close()
    done = history.step[-1] if history.step else start
    if not history.valid_step or history.valid_step[-1] != done:
        validate(done)
    save(done)
    return history


def _progress(start: int, config: TrainConfig):
    if not config.progress:
        return None
    if os.environ.get("COURSE_HEADLESS"):
        # headless runs (make course, nbval): a text bar, updated rarely; widget bars can stall nbconvert
        from tqdm import tqdm

        return tqdm(total=config.steps, initial=start, desc="training", unit="step", mininterval=30)
    from tqdm.auto import tqdm

    return tqdm(total=config.steps, initial=start, desc="training", unit="step")
