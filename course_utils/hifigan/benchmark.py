"""Real-time factor of the HiFi-GAN generators on this machine's CPU (or a GPU with --device cuda).

    OMP_NUM_THREADS=2 python -m course_utils.hifigan.benchmark --threads 2 --seconds 5
    (or python scripts/benchmark_vocoder.py, the same command)

prints, for V1, V2, V3 and the small config: parameters (weight norm removed) and how many seconds of
22.05 kHz audio each generates per second of compute (best of --repeats runs under torch.inference_mode,
untrained weights: the speed does not depend on them), next to the paper's CPU figures. With --bf16 it
also times bfloat16 autocast (fast on CPUs with AVX512-BF16 or AMX, and on recent GPUs; measured on the
pretrained vocoder's 20 test clips it moved the mel L1 from 0.290 to 0.294: see its model card).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

from . import configs
from .generator import Generator

PAPER_CPU = {"v1": 1.43, "v2": 9.74, "v3": 13.44}  # Kong et al. 2020, Table 1: x faster than real time on a CPU
# The authors' own generators (jik876/hifi-gan) as measured earlier on the course's reference machine
# (2 CPU cores, 2 threads, 5 s of audio): the target for ours. Use --official for a side-by-side run,
# since the machine's speed varies between runs.
AUTHORS_REFERENCE_MACHINE = {"v1": 3.0, "v2": 23.0, "v3": 21.0}


def real_time_factor(name: str, seconds: float, device: str = "cpu", repeats: int = 3,
                     bf16: bool = False) -> tuple[int, float]:
    """(parameters, seconds of audio per second of compute) of generator `name` for `seconds` of audio
    (under bfloat16 autocast with `bf16`)."""
    audio = configs.AudioConfig()
    g = Generator(configs.GENERATORS[name], hop_size=audio.hop_size).remove_weight_norm().to(device).eval()
    return g.num_parameters(), time_generator(g, seconds, device, repeats, bf16)


def official_generator(repo: str, name: str):
    """The authors' generator from a local clone of https://github.com/jik876/hifi-gan (weight norm removed),
    for a side-by-side timing on the same machine, the same threads and the same input."""
    root = Path(repo).expanduser()
    if not (root / "models.py").is_file() or not (root / f"config_{name}.json").is_file():
        raise SystemExit(f"{root} is not a clone of jik876/hifi-gan (models.py and config_{name}.json are missing): "
                         "git clone https://github.com/jik876/hifi-gan and pass its folder.")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from env import AttrDict  # the authors' modules
    from models import Generator as Official

    g = Official(AttrDict(json.loads((root / f"config_{name}.json").read_text()))).eval()
    g.remove_weight_norm()
    return g


def time_generator(g, seconds: float, device: str = "cpu", repeats: int = 3, bf16: bool = False) -> float:
    """Seconds of audio per second of compute for a generator module already on `device`."""
    audio = configs.AudioConfig()
    frames = round(seconds * audio.sampling_rate / audio.hop_size)
    mel = torch.randn(1, audio.n_mels, frames, generator=torch.Generator().manual_seed(0)).to(device)
    best = float("inf")
    device_type = torch.device(device).type
    with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
        g(mel[..., :32])  # warm-up: the first call allocates and picks kernels
        for _ in range(repeats):
            tick = time.perf_counter()
            g(mel)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - tick)
    return frames * audio.hop_size / audio.sampling_rate / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the generated audio")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", default="v1,v2,v3,small", help="comma-separated keys of configs.GENERATORS")
    parser.add_argument("--bf16", action="store_true", help="also time bfloat16 autocast")
    parser.add_argument("--official", metavar="DIR", default=None,
                        help="a clone of jik876/hifi-gan: also time the authors' V1-V3 side by side")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.seconds:g} s of audio, {args.threads} thread(s), device {args.device}, torch {torch.__version__}")
    print(f"{'config':7s} {'parameters':>11s} {'x real time':>12s} {'paper (CPU)':>12s} {'authors, ref. machine':>22s}")
    for name in args.configs.split(","):
        params, rtf = real_time_factor(name, args.seconds, args.device, args.repeats)
        paper = f"{PAPER_CPU[name]:.2f}" if name in PAPER_CPU else "-"
        ref = f"{AUTHORS_REFERENCE_MACHINE[name]:.1f}" if name in AUTHORS_REFERENCE_MACHINE else "-"
        print(f"{name:7s} {params:11,d} {rtf:12.1f} {paper:>12s} {ref:>22s}")
        if args.bf16:
            fast = real_time_factor(name, args.seconds, args.device, args.repeats, bf16=True)[1]
            print(f"{' ':7s} {'':>11s} {fast:12.1f}   <- ours under bfloat16 autocast")
        if args.official and name in PAPER_CPU:
            theirs = time_generator(official_generator(args.official, name).to(args.device), args.seconds, args.device,
                                    args.repeats)
            print(f"{' ':7s} {'':>11s} {theirs:12.1f}   <- the authors' {name.upper()}, same machine and run")


if __name__ == "__main__":
    main()
