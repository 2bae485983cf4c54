"""Real-time factor of the HiFi-GAN generators on this machine's CPU (or a GPU with --device cuda).

    OMP_NUM_THREADS=2 python scripts/benchmark_vocoder.py --threads 2 --seconds 5

prints, for V1, V2, V3 and the small config: parameters (weight norm removed) and how many seconds of
22.05 kHz audio each generates per second of compute (best of --repeats runs under torch.inference_mode,
untrained weights: the speed does not depend on them), next to the paper's CPU figures.
"""
import argparse
import time

import torch

from course_utils.hifigan import configs
from course_utils.hifigan.generator import Generator

PAPER_CPU = {"v1": 1.43, "v2": 9.74, "v3": 13.44}  # Kong et al. 2020, Table 1: x faster than real time on a CPU


def real_time_factor(name: str, seconds: float, device: str = "cpu", repeats: int = 3) -> tuple[int, float]:
    """(parameters, seconds of audio per second of compute) of generator `name` for `seconds` of audio."""
    audio = configs.AudioConfig()
    g = Generator(configs.GENERATORS[name], hop_size=audio.hop_size).remove_weight_norm().to(device).eval()
    frames = round(seconds * audio.sampling_rate / audio.hop_size)
    mel = torch.randn(1, audio.n_mels, frames, generator=torch.Generator().manual_seed(0)).to(device)
    best = float("inf")
    with torch.inference_mode():
        g(mel[..., :32])  # warm-up: the first call allocates and picks kernels
        for _ in range(repeats):
            tick = time.perf_counter()
            g(mel)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - tick)
    return g.num_parameters(), frames * audio.hop_size / audio.sampling_rate / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the generated audio")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", default="v1,v2,v3,small", help="comma-separated keys of configs.GENERATORS")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.seconds:g} s of audio, {args.threads} thread(s), device {args.device}, torch {torch.__version__}")
    print(f"{'config':7s} {'parameters':>11s} {'x real time':>12s} {'paper (CPU)':>12s}")
    for name in args.configs.split(","):
        params, rtf = real_time_factor(name, args.seconds, args.device, args.repeats)
        paper = f"{PAPER_CPU[name]:.2f}" if name in PAPER_CPU else "-"
        print(f"{name:7s} {params:11,d} {rtf:12.1f} {paper:>12s}")


if __name__ == "__main__":
    main()
