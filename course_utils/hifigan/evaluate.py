"""Vocoder quality on held-out clips: Griffin-Lim from the same mel-spectrogram as the baseline, and the
objective measures mel L1 (full-band loss mel, and the 0-8 kHz input band alone), PESQ (wide band,
16 kHz) and STOI."""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .configs import AudioConfig
from .mel import MelSpectrogram


def griffin_lim(log_mel: torch.Tensor, config: AudioConfig = AudioConfig(), n_iter: int = 32) -> np.ndarray:
    """Audio from a log-mel (n_mels, frames) of `MelSpectrogram`: invert the mel filters (least squares,
    librosa) and recover a phase with `n_iter` Griffin-Lim iterations."""
    import librosa

    magnitude_mel = np.exp(log_mel.detach().cpu().numpy())
    stft = librosa.feature.inverse.mel_to_stft(magnitude_mel, sr=config.sampling_rate, n_fft=config.n_fft, power=1.0,
                                               fmin=config.fmin, fmax=config.fmax)
    audio = librosa.griffinlim(stft, n_iter=n_iter, hop_length=config.hop_size, win_length=config.win_size,
                               n_fft=config.n_fft, random_state=0).astype(np.float32)
    # librosa centres frame t on sample t * hop; MelSpectrogram's frame t (reflect padding of
    # (n_fft - hop) / 2, no centring) is centred on t * hop + hop / 2. Delay by hop / 2 to line up with the
    # original audio: unaligned, the scores would punish Griffin-Lim for a 5.8 ms shift, not for its sound.
    return np.concatenate([np.zeros(config.hop_size // 2, np.float32), audio])[:log_mel.shape[-1] * config.hop_size]


@functools.lru_cache(maxsize=4)
def _score_mels(config: AudioConfig) -> dict[str, MelSpectrogram]:
    """The two mels of `scores`, built once per config (each keeps its filterbank), not once per clip."""
    return {"mel_l1": MelSpectrogram(config, full_band=True), "mel_l1_input_band": MelSpectrogram(config)}


def scores(reference: np.ndarray, estimate: np.ndarray, config: AudioConfig = AudioConfig()) -> dict[str, float]:
    """mel L1 (full band: the loss mel), mel L1 of the input band only (`config.fmax`, 8 kHz: the band the
    vocoder is given; Griffin-Lim leaves everything above it empty), PESQ (wide band, both resampled to
    16 kHz) and STOI of `estimate` against `reference`."""
    from pesq import pesq
    from pystoi import stoi
    from scipy.signal import resample_poly

    n = min(len(reference), len(estimate))
    ref, est = np.asarray(reference[:n], np.float32), np.asarray(estimate[:n], np.float32)
    if n < config.n_fft:
        raise ValueError(f"clips of {n} samples are too short to score (at least {config.n_fft}).")
    ref_t, est_t = torch.from_numpy(ref)[None], torch.from_numpy(est)[None]
    l1 = {name: float((m(ref_t) - m(est_t)).abs().mean()) for name, m in _score_mels(config).items()}
    g = math.gcd(config.sampling_rate, 16000)
    r16, e16 = (resample_poly(x, 16000 // g, config.sampling_rate // g) for x in (ref, est))
    return {**l1, "pesq": float(pesq(16000, r16, e16, "wb")),
            "stoi": float(stoi(ref, est, config.sampling_rate, extended=False))}


def compare(clips, vocoders: dict, config: AudioConfig = AudioConfig()) -> dict[str, dict[str, float]]:
    """Mean scores over `clips` for each `vocoders[name](log_mel (1, n_mels, frames)) -> audio (T,)`."""
    mel = MelSpectrogram(config)
    totals = {name: {} for name in vocoders}
    for clip in clips:
        log_mel = mel(torch.from_numpy(np.asarray(clip, np.float32))[None])
        for name, vocode in vocoders.items():
            for k, v in scores(clip, vocode(log_mel), config).items():
                totals[name][k] = totals[name].get(k, 0.0) + v / len(clips)
    return totals
