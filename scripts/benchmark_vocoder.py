"""Real-time factor of the HiFi-GAN generators: a command over course_utils.hifigan.benchmark.

    OMP_NUM_THREADS=2 python scripts/benchmark_vocoder.py --threads 2 --seconds 5 [--bf16] [--official DIR]
"""
from course_utils.hifigan.benchmark import main

if __name__ == "__main__":
    main()
