"""Colab, simulated on this machine: the package as a wheel in a fresh virtual environment, each notebook
run alone in an empty folder (as in Colab's /content), so everything it needs must come from the package.

    python scripts/simulate_colab.py                      # every notebook, quick profile, 20 steps per training
    python scripts/simulate_colab.py --max-steps 0 notebooks/03_handwriting_synthesis.ipynb   # no step cap

Steps: build the wheel (pip wheel, no editable install), create build/colab/venv, install the wheel there
with the repository's constraints.txt (the local CPU torch, never a CUDA download) plus nbconvert and
ipykernel (which Colab has), check that `course_utils` imports from that venv and not from the checkout,
install the speech as the Colab set-up cell of notebooks 04 and 05 does (apt-get, when it is not installed),
then copy each notebook into a new temporary folder and execute it there with nbconvert, with
COURSE_PROFILE=quick, COURSE_DEVICE=cpu and COURSE_MAX_STEPS (executed copies: build/colab/executed/).
Exits 1 if any notebook fails.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # sync_notebooks: the Colab set-up cell's package name
KERNEL = "colab-sim"  # a kernel of its own, so no other installed "python3" kernel can stand in


def run(cmd: list[str], **kw) -> None:
    print("$", " ".join(map(str, cmd)), flush=True)
    done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, **kw)
    # this machine's pip configuration warns once per package about a missing local index: not news
    print("".join(line for line in done.stderr.splitlines(keepends=True) if "is ignored: it is neither" not in line),
          end="", file=sys.stderr, flush=True)
    done.check_returncode()


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without anything that points back at the checkout or a virtual environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "COURSE_DATA_DIR", "COURSE_BUILD_DIR", "NUMBA_CACHE_DIR",
                        "COURSE_PROFILE", "COURSE_DEVICE", "COURSE_MAX_STEPS")}
    env.update(settings)
    return env


def build_venv(work: Path) -> Path:
    """Wheel + fresh venv with it installed; returns the venv's python."""
    shutil.rmtree(work, ignore_errors=True)
    dist = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], env=clean_env())
    wheel = next(dist.glob("seqgen_course-*.whl"))
    run([sys.executable, "-m", "venv", str(work / "venv")])
    py = work / "venv" / "bin" / "python"
    # constraints.txt pins torch to the local CPU build: an unpinned torch would pull a CUDA build of several GB
    run([str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel), "nbconvert", "ipykernel"],
        env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"))
    run([str(py), "-m", "ipykernel", "install", "--prefix", str(work / "venv"), "--name", KERNEL])
    return py


def check_import(py: Path, venv: Path) -> None:
    """`course_utils` and its shipped files come from the venv's site-packages, not from the checkout."""
    with tempfile.TemporaryDirectory() as empty:
        out = subprocess.run([str(py), "-c", "import course_utils, torch; from course_utils import pretrained; "
                              "print(course_utils.__file__); print(pretrained.path('writer.pt')); print(torch.__version__)"],
                             cwd=empty, env=clean_env(), capture_output=True, text=True, check=True).stdout.split()
    print(f"installed: course_utils from {out[0]}, torch {out[2]}")
    for path in out[:2]:
        if not Path(path).resolve().is_relative_to(venv.resolve()):
            raise SystemExit(f"{path} is not inside {venv}: the simulation would not test the installed package.")


def install_speech_as_colab_does(notebooks: list[Path]) -> None:
    """On Colab the set-up cell of notebooks 04 and 05 installs the speech with apt-get (see
    scripts/sync_notebooks.py); here, outside Colab, that cell does nothing, so the simulation runs the same
    command once (as root with apt-get), or stops and says how. A notebook in an empty folder cannot see the
    copy that `make speech` fetches into the checkout's data cache."""
    from course_utils import speech
    from sync_notebooks import SPEECH

    if not any("speech." in nb.read_text() for nb in notebooks) or speech.fillets_dirs()[0].is_dir():
        return
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", SPEECH]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"The speech notebooks need {SPEECH} installed, as their set-up cell does on Colab: "
                         f"sudo {' '.join(install)}")
    print(f"speech: installing {SPEECH} with apt-get, as the Colab set-up cell does", flush=True)
    if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
        run(["apt-get", "update", "-qq"])
        run(install, stdout=subprocess.DEVNULL)


def execute(py: Path, notebook: Path, max_steps: int, timeout: int, keep: Path) -> float:
    """Run one notebook in an empty temporary folder (the executed copy is kept in `keep`); return its seconds."""
    settings = dict(COURSE_PROFILE="quick", COURSE_DEVICE="cpu", COURSE_HEADLESS="1")
    if max_steps:
        settings["COURSE_MAX_STEPS"] = str(max_steps)
    with tempfile.TemporaryDirectory(prefix="colab-") as folder:
        copy = Path(folder) / notebook.name
        shutil.copy(notebook, copy)
        tick = time.perf_counter()
        run([str(py), "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
             f"--ExecutePreprocessor.kernel_name={KERNEL}", f"--ExecutePreprocessor.timeout={timeout}", copy.name],
            cwd=folder, env=clean_env(**settings))
        seconds = time.perf_counter() - tick
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(copy, keep / copy.name)
        return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--max-steps", type=int, default=20, help="COURSE_MAX_STEPS for every training (0: no cap)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "colab", help="wheel and venv go here")
    parser.add_argument("--reuse", action="store_true", help="keep the venv of an earlier run (no new wheel)")
    args = parser.parse_args()
    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    tick = time.perf_counter()
    py = args.work / "venv" / "bin" / "python"
    if not (args.reuse and py.exists()):
        py = build_venv(args.work)
    check_import(py, args.work / "venv")
    install_speech_as_colab_does(notebooks)
    print(f"wheel, venv and speech: {time.perf_counter() - tick:.0f} s", flush=True)
    times, failed = {}, []
    for nb in notebooks:
        try:
            times[nb.stem] = execute(py, nb, args.max_steps, args.timeout, args.work / "executed")
            print(f"== {nb.stem}: ran in an empty folder in {times[nb.stem]:.0f} s", flush=True)
        except subprocess.CalledProcessError:
            failed.append(nb.stem)
            print(f"== {nb.stem}: FAILED (the error is above)", flush=True)
    print(f"Colab simulation: {len(times)} passed, {len(failed)} failed in {time.perf_counter() - tick:.0f} s"
          + (f" (failed: {', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
