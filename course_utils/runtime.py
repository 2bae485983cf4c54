"""Where a notebook runs: profile (quick/full), device, seeds, data and build folders, Colab."""
from __future__ import annotations

import os
import random
import sys
import uuid
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import torch

# The one place that names the repository; `python scripts/sync_notebooks.py`
# writes it into every notebook's Colab badge and set-up cell.
REPO_URL = "https://github.com/seqgen-course/seqgen-course"

PROFILES = ("quick", "full")
T = TypeVar("T")
S = TypeVar("S", bound=Sequence)


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def get_device() -> torch.device:
    """The device from COURSE_DEVICE, else CUDA when available, else Apple MPS, else CPU."""
    name = os.environ.get("COURSE_DEVICE", "").strip()
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise ValueError(f"COURSE_DEVICE={name!r} is not a device name; use 'cpu', 'cuda' or 'cuda:1'.") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"COURSE_DEVICE={name!r} but this machine has no CUDA GPU; unset it or use 'cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_profile() -> str:
    """COURSE_PROFILE (quick|full); by default full on a CUDA GPU, else quick."""
    name = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not name:
        return "full" if torch.cuda.is_available() else "quick"
    if name not in PROFILES:
        raise ValueError(f"COURSE_PROFILE={name!r} is not a profile; use one of {PROFILES}.")
    return name


def pick(quick: T, full: T, profile: str | None = None) -> T:
    """The value for the current profile: `pick(quick=200, full=20_000)`."""
    return full if (profile or get_profile()) == "full" else quick


def max_steps() -> int | None:
    """COURSE_MAX_STEPS: a cap on the updates of every training (a smoke test of the code paths), else None."""
    value = os.environ.get("COURSE_MAX_STEPS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"COURSE_MAX_STEPS={value!r} is not a positive whole number; unset it or use e.g. 2.")
    return int(value)


def cap_steps(steps: int) -> int:
    """`steps`, or fewer when COURSE_MAX_STEPS caps every training (for loops written in a notebook)."""
    cap = max_steps()
    return steps if cap is None else min(steps, cap)


def training_capped() -> bool:
    """True (and says so) when COURSE_MAX_STEPS cut training short: a notebook then skips its learning checks."""
    cap = max_steps()
    if cap is not None:
        print(f"COURSE_MAX_STEPS={cap} cut the training short: the checks that the model learned are skipped.")
    return cap is not None


def capped_subset(items: S, keep: int) -> S:
    """`items` (a list, tensor or array), or only its first `keep` when COURSE_MAX_STEPS is set: a capped
    smoke run also evaluates on a small subset."""
    return items if max_steps() is None else items[:keep]


def step_seed(seed: int, step: int) -> int:
    """The seed of update `step` of a run seeded `seed`: each update draws its own batch, and a resumed run
    draws the same batches as an uninterrupted one (1,000,003 is a prime above any step count)."""
    return seed * 1_000_003 + step


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU torch.Generator seeded the same way."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # numpy is optional here
        pass
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def project_root() -> Path:
    """The course checkout that holds the working directory (or the working directory itself)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "course_utils").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return here


def data_dir() -> Path:
    """Cache for downloaded and generated data: COURSE_DATA_DIR, else data/cache in the checkout."""
    path = Path(os.environ.get("COURSE_DATA_DIR") or project_root() / "data" / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_dir() -> Path:
    """Executed notebooks, results and checkpoints: COURSE_BUILD_DIR, else build/ in the checkout."""
    path = Path(os.environ.get("COURSE_BUILD_DIR") or project_root() / "build")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object], *, suffix: str = "") -> Path:
    """Write a file through a temporary file of this writer's own in the same folder (`write(tmp)` writes
    it), then rename it: a reader never sees half a file, and writers that race (two notebooks under
    `pytest -n 2`, DDP ranks) never write into the same temporary file. `suffix` ends the temporary name
    (numpy adds ".npz" to a name without it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_npz_atomic(path: str | os.PathLike, *, compressed: bool = False, **arrays) -> Path:
    """Write a cache file as numpy's .npz atomically (`write_atomic`)."""
    import numpy as np

    return write_atomic(path, lambda tmp: (np.savez_compressed if compressed else np.savez)(tmp, **arrays),
                        suffix=".npz")


_notebook = {"name": "scratch"}  # set by setup() at the top of each notebook


def set_notebook(name: str) -> None:
    """Name the file that the following results records go to: build/results/<name>.json."""
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"notebook name {name!r} must be a plain file name such as '01_text_prediction'.")
    _notebook["name"] = name


def notebook_name() -> str:
    return _notebook["name"]


def setup(notebook: str, seed: int = 0) -> tuple[str, torch.device]:
    """Start a notebook: name it for the results records, seed, and print profile and device."""
    set_notebook(notebook)
    seed_everything(seed)
    profile, device = get_profile(), get_device()
    other = "full" if profile == "quick" else "quick"
    print(f"profile: {profile}   device: {device.type}   seed: {seed}")
    print(f"To switch, set COURSE_PROFILE={other} (or COURSE_DEVICE=cpu|cuda) before starting the kernel.")
    return profile, device
