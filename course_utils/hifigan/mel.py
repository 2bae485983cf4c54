"""The log-mel-spectrogram of HiFi-GAN's reference code, the generator's input and the mel loss's target:

    pad (n_fft - hop) / 2 samples on each side by reflection (so frames = T // hop),
    |STFT| with a Hann window and no centring, sqrt(re^2 + im^2 + 1e-9),
    mel = filters @ |STFT| (librosa's Slaney filters), log(clamp(mel, min=1e-5)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .configs import AudioConfig

MAGNITUDE_FLOOR = 1e-9  # under the square root: keeps the gradient of |STFT| finite at 0
LOG_FLOOR = 1e-5  # the quietest mel energy the log sees (-11.5)


class MelSpectrogram:
    """``mel(audio)``: audio (B, T) or (B, 1, T) in [-1, 1] -> log-mel (B, n_mels, T // hop_size).

    The filterbank uses `config.fmax` (the generator's input), or `config.fmax_loss` with
    `full_band=True` (the loss), or `fmax` if given. Filters and window are built on first use
    for each (device, dtype) and kept in this object.
    """

    def __init__(self, config: AudioConfig = AudioConfig(), *, fmax: float | None = None, full_band: bool = False):
        if (config.n_fft - config.hop_size) % 2:
            raise ValueError(f"n_fft - hop_size = {config.n_fft - config.hop_size} must be even: it is padded "
                             "equally on both sides.")
        if config.win_size > config.n_fft:
            raise ValueError(f"win_size={config.win_size} is longer than n_fft={config.n_fft}.")
        self.config = config
        self.fmax = (config.fmax_loss if full_band else config.fmax) if fmax is None else fmax
        self._cache: dict = {}  # (device, dtype) -> (filters (n_mels, n_fft // 2 + 1), window (win_size,))

    def filters_and_window(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        """The mel filterbank (n_mels, n_fft // 2 + 1) and the Hann window (win_size,) on `device`."""
        key = (str(device), dtype)
        if key not in self._cache:
            import librosa

            c = self.config
            filters = librosa.filters.mel(sr=c.sampling_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin,
                                          fmax=self.fmax)
            self._cache[key] = (torch.from_numpy(filters).to(device=device, dtype=dtype),
                                torch.hann_window(c.win_size, device=device, dtype=dtype))
        return self._cache[key]

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        c = self.config
        if audio.ndim == 3 and audio.shape[1] == 1:
            audio = audio[:, 0]  # (B, T)
        if audio.ndim != 2:
            raise ValueError(f"audio must have shape (B, T) or (B, 1, T), got {tuple(audio.shape)}; "
                             "for one clip of shape (T,) use audio[None].")
        pad = (c.n_fft - c.hop_size) // 2
        if audio.shape[-1] < c.hop_size or audio.shape[-1] <= pad:
            raise ValueError(f"audio of {audio.shape[-1]} samples is too short: it needs at least "
                             f"{max(c.hop_size, pad + 1)} (one hop and more than the reflected padding {pad}).")
        if not audio.is_floating_point():
            raise ValueError(f"audio must be floating point in [-1, 1], got {audio.dtype}; "
                             "divide 16-bit PCM by 32768.")
        filters, window = self.filters_and_window(audio.device, audio.dtype)
        padded = F.pad(audio[:, None], (pad, pad), mode="reflect")[:, 0]  # (B, T + n_fft - hop)
        spec = torch.stft(padded, c.n_fft, hop_length=c.hop_size, win_length=c.win_size, window=window,
                          center=False, return_complex=True)  # (B, n_fft // 2 + 1, T // hop)
        magnitude = torch.sqrt(spec.real**2 + spec.imag**2 + MAGNITUDE_FLOOR)
        return torch.log(torch.clamp(filters @ magnitude, min=LOG_FLOOR))  # (B, n_mels, T // hop)

    def __repr__(self) -> str:
        return f"MelSpectrogram({self.config}, fmax={self.fmax})"
