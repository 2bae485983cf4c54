"""The mel-spectrogram of HiFi-GAN's reference code: reflect padding of (n_fft - hop) / 2 on each side,
an uncentred STFT with a Hann window, magnitude, mel filters from librosa, log of the magnitude clamped at 1e-5."""
from __future__ import annotations

import torch

from .configs import AudioConfig


class MelSpectrogram:
    """``mel(audio)``: audio (B, T) or (B, 1, T) in [-1, 1] -> log-mel (B, n_mels, T // hop).

    The filterbank and window are built once per device and kept in this object.
    """

    def __init__(self, config: AudioConfig = AudioConfig(), *, fmax: float | None = None, full_band: bool = False):
        self.config = config
        self.fmax = (config.fmax_loss if full_band else config.fmax) if fmax is None else fmax
        self._cache: dict = {}

    def _filters(self, device):
        key = str(device)
        if key not in self._cache:
            import librosa

            c = self.config
            mel = librosa.filters.mel(sr=c.sampling_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=self.fmax)
            self._cache[key] = (torch.from_numpy(mel).float().to(device), torch.hann_window(c.win_size, device=device))
        return self._cache[key]

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.ndim == 3 and audio.shape[1] == 1:
            audio = audio[:, 0]
        if audio.ndim != 2:
            raise ValueError(f"audio must have shape (B, T) or (B, 1, T), got {tuple(audio.shape)}.")
        c = self.config
        if audio.shape[-1] < c.n_fft:
            raise ValueError(f"audio of {audio.shape[-1]} samples is shorter than one window ({c.n_fft}).")
        mel_basis, window = self._filters(audio.device)
        pad = (c.n_fft - c.hop_size) // 2
        audio = torch.nn.functional.pad(audio[:, None], (pad, pad), mode="reflect")[:, 0]
        spec = torch.stft(audio, c.n_fft, hop_length=c.hop_size, win_length=c.win_size, window=window,
                          center=False, return_complex=True)
        magnitude = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)  # (B, n_fft / 2 + 1, frames)
        return torch.log(torch.clamp(mel_basis @ magnitude, min=1e-5))
