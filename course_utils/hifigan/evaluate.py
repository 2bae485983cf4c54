"""Vocoder quality on held-out clips: Griffin-Lim from the same mel-spectrogram as the baseline, and the
objective measures mel L1 (full-band loss mel, and the 0-8 kHz input band alone), PESQ (wide band,
16 kHz), STOI (and band by band, `stoi_bands`), ViSQOL (speech mode, 16 kHz), the hop-periodic share (the
frame-rate buzz) and pitch accuracy (CREPE: F0 error in cents and voiced/unvoiced F1, the periodicity
measures of CARGAN and BigVGAN)."""
from __future__ import annotations

import functools
import math
import sys
import types

import numpy as np
import torch

from .configs import AudioConfig
from .mel import MelSpectrogram


def griffin_lim(log_mel: torch.Tensor, config: AudioConfig = AudioConfig(), n_iter: int = 32) -> np.ndarray:
    """Audio (T,) from one log-mel of `MelSpectrogram`, (n_mels, frames) or a batch of one (1, n_mels, frames)
    as `compare` passes it: invert the mel filters (least squares, librosa) and recover a phase with
    `n_iter` Griffin-Lim iterations."""
    import librosa

    if log_mel.dim() == 3 and log_mel.shape[0] == 1:
        log_mel = log_mel[0]
    if log_mel.dim() != 2 or log_mel.shape[0] != config.n_mels:
        raise ValueError(f"griffin_lim takes one log-mel of shape ({config.n_mels}, frames) or (1, {config.n_mels}, "
                         f"frames), got {tuple(log_mel.shape)}; for a batch, call it on each log_mel[i].")
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


def hop_periodic_share(audio: np.ndarray, hop_size: int = AudioConfig.hop_size) -> float:
    """The share of the energy of `audio` (T,) in its part that repeats every `hop_size` samples: fold it into
    rows of `hop_size` samples, take the mean row, tile it. A generator that buzzes at the frame rate
    (22050 / 256 = 86 Hz, whatever the pitch) puts energy there; for speech the mean row tends to 0
    (about 1 / rows of the energy by chance, 0.3% for 4 s)."""
    rows = len(audio) // hop_size
    if rows < 2:
        raise ValueError(f"{len(audio)} samples hold fewer than two hops of {hop_size}: pass a longer clip.")
    folded = np.asarray(audio[:rows * hop_size], np.float64).reshape(rows, hop_size)  # (rows, hop)
    energy = float((folded**2).sum())
    if energy == 0.0:
        raise ValueError("the audio is silent: the share of a periodic part is undefined.")
    return rows * float((folded.mean(axis=0) ** 2).sum()) / energy


VISQOL_MIN_SECONDS = 1.0  # ViSQOL compares patches of about 0.5 s; shorter clips have none to compare


@functools.lru_cache(maxsize=1)
def _visqol_api():
    try:
        from visqol import VisqolApi
    except ImportError as err:
        raise ImportError("ViSQOL needs the package visqol-python with its lattice model: "
                          "pip install 'visqol-python[lattice]'") from err
    api = VisqolApi()
    api.create(mode="speech", use_lattice_model=True)  # C++ ViSQOL v3's default speech mapper
    return api


def visqol(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000) -> float:
    """ViSQOL's MOS-LQO (1 to 5) of `estimate` against `reference`, speech mode (both at 16 kHz, the
    deep-lattice mapper, as C++ ViSQOL v3 by default; `visqol-python`). Identical clips score about 4.7,
    not 5: the lattice mapper's ceiling."""
    if sample_rate != 16000:
        raise ValueError(f"ViSQOL's speech mode takes 16 kHz audio, got {sample_rate} Hz: resample both clips first.")
    n = min(len(reference), len(estimate))
    if n < VISQOL_MIN_SECONDS * sample_rate:
        raise ValueError(f"clips of {n / sample_rate:.2f} s are too short for ViSQOL (at least {VISQOL_MIN_SECONDS} s).")
    ref, est = (np.asarray(x[:n], np.float64) for x in (reference, estimate))
    threads = torch.get_num_threads()  # visqol-python's threaded parts reset torch's thread count (to the cores')
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        return float(_visqol_api().measure_from_arrays(ref, est, sample_rate=sample_rate).moslqo)
    finally:
        torch.set_num_threads(threads)


def _torchcrepe():
    """torchcrepe imports torchaudio only to read files; a torchaudio built for another torch fails to load
    (OSError), so fall back to an empty stand-in: this module passes tensors, never files."""
    try:
        import torchcrepe
    except OSError:
        for name in [k for k in sys.modules if k.split(".")[0] in ("torchaudio", "torchcrepe")]:
            del sys.modules[name]
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
        import torchcrepe
    return torchcrepe


PITCH_RATE = 16000  # CREPE's sampling rate
PITCH_HOP = 160  # 10 ms frames
VOICED_PERIODICITY = 0.21  # CREPE's periodicity (confidence) above which a frame counts as voiced


def _viterbi_local_average(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CREPE's decoding without torchcrepe's random dither (which makes two runs on the same audio differ
    by tens of cents): the Viterbi path of pitch bins, then the probability-weighted mean of the bin
    centres within 4 bins of it. logits (B, 360, frames) -> bins (B, frames), F0 in Hz (B, frames)."""
    crepe = _torchcrepe()
    bins, _ = crepe.decode.viterbi(logits)
    cents_of_bin = crepe.CENTS_PER_BIN * torch.arange(logits.shape[1], dtype=torch.float32) + 1997.3794084376191
    offsets = torch.arange(-4, 5)
    window = (bins[:, None, :] + offsets[None, :, None]).clamp(0, logits.shape[1] - 1)  # (B, 9, frames)
    probs = torch.sigmoid(torch.gather(logits.float(), 1, window))
    cents = (cents_of_bin[window] * probs).sum(1) / probs.sum(1)
    return bins, 10 * 2 ** (cents / 1200)


def pitch(audio: np.ndarray, sample_rate: int, *, model: str = "tiny", fmin: float = 50.0,
          fmax: float = 550.0) -> tuple[np.ndarray, np.ndarray]:
    """CREPE (torchcrepe, whose wheel ships the weights) on `audio` (T,): F0 in Hz and a voiced flag,
    both (frames,) every 10 ms. The periodicity is median-filtered over 3 frames before the threshold."""
    from scipy.signal import resample_poly

    crepe = _torchcrepe()
    g = math.gcd(sample_rate, PITCH_RATE)
    x = torch.from_numpy(resample_poly(np.asarray(audio, np.float32), PITCH_RATE // g, sample_rate // g)
                         .astype(np.float32))[None]
    f0, periodicity = crepe.predict(x, PITCH_RATE, PITCH_HOP, fmin, fmax, model, return_periodicity=True,
                                    batch_size=1024, device="cpu", decoder=_viterbi_local_average)
    periodicity = crepe.filter.median(periodicity, 3)
    return f0[0].numpy(), (periodicity[0] >= VOICED_PERIODICITY).numpy()


def pitch_scores(reference: tuple[np.ndarray, np.ndarray], estimate: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """F0 RMSE in cents over the frames voiced in both, and the F1 of the estimate's voiced flags against
    the reference's, from two `pitch` results. NaN RMSE when no frame is voiced in both."""
    n = min(len(reference[0]), len(estimate[0]))  # the two tracks may differ by a frame
    (f_ref, v_ref), (f_est, v_est) = ((np.asarray(f)[:n], np.asarray(v)[:n]) for f, v in (reference, estimate))
    both = v_ref & v_est
    cents = 1200 * np.log2(f_est[both] / f_ref[both])
    rmse = float(np.sqrt(np.mean(cents**2))) if both.any() else float("nan")
    hits = int(both.sum())
    f1 = 2 * hits / (int(v_ref.sum()) + int(v_est.sum())) if v_ref.any() or v_est.any() else 1.0
    return {"f0_rmse_cents": rmse, "vuv_f1": float(f1)}


def band_swap(low: np.ndarray, high: np.ndarray, sample_rate: int, cutoff: float) -> np.ndarray:
    """`low`'s content below `cutoff` Hz plus `high`'s from it up (an ideal split of each clip's real FFT):
    which band of one vocoder's output does another's lack? Score the mix against the original (STOI, PESQ).
    The clips are cut to the shorter one."""
    if not 0 < cutoff < sample_rate / 2:
        raise ValueError(f"cutoff={cutoff} Hz: choose a frequency between 0 and half the sample rate "
                         f"({sample_rate / 2:g} Hz).")
    n = min(len(low), len(high))
    if n == 0:
        raise ValueError("band_swap: give two non-empty clips.")
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    mixed = np.where(f < cutoff, np.fft.rfft(np.asarray(low[:n], np.float64)),
                     np.fft.rfft(np.asarray(high[:n], np.float64)))
    return np.fft.irfft(mixed, n)


def stoi_bands(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """STOI band by band: where is intelligibility lost? STOI (Taal et al. 2011) is the mean, over 15
    one-third-octave bands from 150 Hz and over 384 ms segments, of the correlation between the reference's
    and the estimate's (clipped) band envelopes; this returns that mean for each band instead of over all of
    them. -> (centre frequencies in Hz (15,), correlations (15,)); `correlations.mean()` is `pystoi.stoi`.
    Uses pystoi's own steps (resampling to 10 kHz, silent-frame removal, STFT, band matrix)."""
    import pystoi  # noqa: F401  (the package's __init__ binds the name `stoi` to the function)

    S, utils = sys.modules["pystoi.stoi"], sys.modules["pystoi.utils"]
    n = min(len(reference), len(estimate))
    if n == 0:
        raise ValueError("stoi_bands: give two non-empty clips.")
    x, y = (np.asarray(a[:n], np.float64) for a in (reference, estimate))
    if sample_rate != S.FS:
        x, y = utils.resample_oct(x, S.FS, sample_rate), utils.resample_oct(y, S.FS, sample_rate)
    x, y = utils.remove_silent_frames(x, y, S.DYN_RANGE, S.N_FRAME, S.N_FRAME // 2)
    bands = []
    for z in (x, y):
        spec = utils.stft(z, S.N_FRAME, S.NFFT, overlap=2).T  # (freq, frames)
        tob = np.sqrt(S.OBM @ np.abs(spec) ** 2)  # (15, frames): band envelopes
        if tob.shape[1] < S.N:
            raise ValueError(f"stoi_bands: too little speech above silence ({len(x)} samples at {S.FS} Hz left) "
                             f"for one segment of {S.N} frames; give longer clips.")
        bands.append(np.stack([tob[:, m - S.N:m] for m in range(S.N, tob.shape[1] + 1)]))  # (segments, 15, N)
    xs, ys = bands
    ys = ys * np.linalg.norm(xs, axis=2, keepdims=True) / (np.linalg.norm(ys, axis=2, keepdims=True) + utils.EPS)
    ys = np.minimum(ys, xs * (1 + 10 ** (-S.BETA / 20)))  # clip the estimate at 15 dB above the reference
    xs, ys = xs - xs.mean(2, keepdims=True), ys - ys.mean(2, keepdims=True)
    corr = (xs * ys).sum(2) / ((np.linalg.norm(xs, axis=2) + utils.EPS) * (np.linalg.norm(ys, axis=2) + utils.EPS))
    centres = 150.0 * 2.0 ** (np.arange(corr.shape[1]) / 3)
    return centres, corr.mean(0)


def scores(reference: np.ndarray, estimate: np.ndarray, config: AudioConfig = AudioConfig(), *,
           reference_pitch: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """mel L1 (full band: the loss mel), mel L1 of the input band only (`config.fmax`, 8 kHz: the band the
    vocoder is given; Griffin-Lim leaves everything above it empty), PESQ (wide band, both resampled to
    16 kHz), STOI, ViSQOL (speech mode, 16 kHz; NaN for clips under `VISQOL_MIN_SECONDS`), the hop-periodic
    share and the pitch scores of `estimate` against `reference` (`reference_pitch`: its `pitch`, to compute
    it once for several estimates)."""
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
    reference_pitch = reference_pitch or pitch(ref, config.sampling_rate)
    long_enough = n >= VISQOL_MIN_SECONDS * config.sampling_rate
    return {**l1, "pesq": float(pesq(16000, r16, e16, "wb")),
            "stoi": float(stoi(ref, est, config.sampling_rate, extended=False)),
            "visqol": visqol(r16, e16) if long_enough else float("nan"),
            "hop_periodic_share": hop_periodic_share(est, config.hop_size),
            **pitch_scores(reference_pitch, pitch(est, config.sampling_rate))}


def compare(clips, vocoders: dict, config: AudioConfig = AudioConfig()) -> dict[str, dict[str, float]]:
    """Mean scores over `clips` for each `vocoders[name](log_mel (1, n_mels, frames)) -> audio (T,)`.
    The F0 RMSE is the mean over the clips that have frames voiced in both, ViSQOL over those of at least
    `VISQOL_MIN_SECONDS`."""
    mel = MelSpectrogram(config)
    per_clip = {name: [] for name in vocoders}
    for clip in clips:
        clip = np.asarray(clip, np.float32)
        log_mel = mel(torch.from_numpy(clip)[None])
        reference_pitch = pitch(clip, config.sampling_rate)
        for name, vocode in vocoders.items():
            per_clip[name].append(scores(clip, vocode(log_mel), config, reference_pitch=reference_pitch))
    def mean(values):  # over the clips where the score is defined; NaN when it is defined for none
        defined = [v for v in values if not math.isnan(v)]
        return float(np.mean(defined)) if defined else float("nan")

    return {name: {k: mean([s[k] for s in rows]) for k in rows[0]} for name, rows in per_clip.items()}
