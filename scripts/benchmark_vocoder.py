"""Real-time factor of the HiFi-GAN generators on this machine's CPU (or a GPU with --device cuda).

    python scripts/benchmark_vocoder.py --threads 2 --seconds 5

prints, for V1, V2, V3 and the small config: parameters (weight norm removed) and how many seconds of
22.05 kHz audio each generates per second of compute, next to the paper's CPU figures.
"""
import argparse
import time

import torch

from course_utils.hifigan import configs
from course_utils.hifigan.generator import Generator

PAPER_CPU = {"v1": 1.43, "v2": 9.74, "v3": 13.44}  # Kong et al. 2020, Table 1: x faster than real time on a CPU


def real_time_factor(name: str, seconds: float, device: str, repeats: int = 3) -> tuple[int, float]:
    audio = configs.AudioConfig()
    g = Generator(configs.GENERATORS[name], hop_size=audio.hop_size).remove_weight_norm().to(device).eval()
    mel = torch.randn(1, audio.n_mels, int(seconds * audio.sampling_rate / audio.hop_size), device=device)
    best = float("inf")
    with torch.inference_mode():
        g(mel[..., :32])  # warm-up
        for _ in range(repeats):
            tick = time.perf_counter()
            g(mel)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - tick)
    return g.num_parameters(), seconds / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", default="v1,v2,v3,small")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'config':7s} {'parameters':>11s} {'x real time':>12s} {'paper (CPU)':>12s}")
    for name in args.configs.split(","):
        params, rtf = real_time_factor(name, args.seconds, args.device)
        paper = f"{PAPER_CPU[name]:.2f}" if name in PAPER_CPU else "-"
        print(f"{name:7s} {params:11,d} {rtf:12.1f} {paper:>12s}")


if __name__ == "__main__":
    main()
