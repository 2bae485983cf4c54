"""The slide's contrast, measured: WaveNet "generates one sample at each forward operation; it is prohibitively
slow". A small WaveNet (van den Oord et al. 2016) with the cached generation of Paine et al. (2016, "Fast
WaveNet"), notebook 04's 20 -> 10 sample speech RNN, and HiFi-GAN generators, timed on the same CPU.

WaveNet: mu-law codes (256 values); for each layer with dilation d, a causal convolution of kernel 2 over
x_{t-d} and x_t plus the mel of the frame, the gate tanh(.) * sigmoid(.), a residual and a skip 1x1
convolution; the skips summed, ReLU, 1x1, ReLU, 1x1 -> logits of the next code. Cached generation keeps,
for each layer, the last d inputs in a queue, so one step costs one matrix product per layer instead of
a convolution over the whole receptive field.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class WaveNetConfig:
    quantization: int = 256  # mu-law codes: 8 bits, as in the paper
    residual_channels: int = 64
    gate_channels: int = 128  # split in two halves: tanh and sigmoid
    skip_channels: int = 128
    dilations: tuple = tuple(2**i for i in range(10)) * 2  # two stacks of 1, 2, ..., 512: 2,047-sample receptive field
    n_mels: int = 80  # the conditioning mel-spectrogram's bands
    hop_size: int = 256  # samples per mel frame

    @property
    def receptive_field(self) -> int:
        return sum(self.dilations) + 1


def mu_law_encode(audio: torch.Tensor, quantization: int = 256) -> torch.Tensor:
    """Audio in [-1, 1] -> integer codes in [0, quantization) (mu-law companding, mu = quantization - 1)."""
    mu = quantization - 1
    y = torch.sign(audio) * torch.log1p(mu * audio.abs().clamp(max=1.0)) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).long()


def mu_law_decode(codes: torch.Tensor, quantization: int = 256) -> torch.Tensor:
    mu = quantization - 1
    y = 2 * codes.float() / mu - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


class WaveNet(nn.Module):
    """``wavenet(codes (B, T), mel (B, n_mels, T / hop))`` -> logits (B, quantization, T) of the next code at
    every step (teacher forcing: the input at t is the code at t - 1). `generate` runs it sample by sample."""

    def __init__(self, config: WaveNetConfig = WaveNetConfig()):
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.quantization, c.residual_channels)
        self.dilated = nn.ModuleList(nn.Conv1d(c.residual_channels, c.gate_channels, 2, dilation=d) for d in c.dilations)
        self.cond = nn.ModuleList(nn.Conv1d(c.n_mels, c.gate_channels, 1) for _ in c.dilations)
        self.res = nn.ModuleList(nn.Conv1d(c.gate_channels // 2, c.residual_channels, 1) for _ in c.dilations)
        self.skip = nn.ModuleList(nn.Conv1d(c.gate_channels // 2, c.skip_channels, 1) for _ in c.dilations)
        self.out1 = nn.Conv1d(c.skip_channels, c.skip_channels, 1)
        self.out2 = nn.Conv1d(c.skip_channels, c.quantization, 1)

    def _layer(self, i: int, gate_in: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = gate_in.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)  # (B, gate / 2, T)
        return x + self.res[i](z), self.skip[i](z)

    def _head(self, skips: torch.Tensor) -> torch.Tensor:
        return self.out2(F.relu(self.out1(F.relu(skips))))

    def forward(self, codes: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        B, T = codes.shape
        prev = F.pad(codes, (1, 0))[:, :T]  # the input at t is the code at t - 1 (0 before the start)
        x = self.embed(prev).transpose(1, 2)  # (B, R, T)
        mel_t = mel.repeat_interleave(self.config.hop_size, dim=-1)[..., :T]  # (B, n_mels, T)
        skips = 0
        for i, d in enumerate(self.config.dilations):
            gate_in = self.dilated[i](F.pad(x, (d, 0))) + self.cond[i](mel_t)  # causal: left padding d
            x, s = self._layer(i, gate_in, x)
            skips = skips + s
        return self._head(skips)

    @torch.no_grad()
    def generate(self, mel: torch.Tensor, *, temperature: float = 1.0,
                 generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        """Sample by sample with per-layer queues (Fast WaveNet): mel (1, n_mels, frames) -> codes (steps,),
        steps = frames x hop by default. Step t reads, for layer i, its input d_i steps back from a queue."""
        c = self.config
        steps = mel.shape[-1] * c.hop_size if steps is None else steps
        cond = [m(mel)[0] for m in self.cond]  # per layer (gate, frames): one 1x1 convolution per frame
        taps = [(conv.weight[:, :, 0], conv.weight[:, :, 1], conv.bias) for conv in self.dilated]
        queues = [torch.zeros(c.residual_channels, d) for d in c.dilations]  # inputs of the last d steps
        code = torch.zeros((), dtype=torch.long)
        out = torch.empty(steps, dtype=torch.long)
        for t in range(steps):
            x = self.embed.weight[code][:, None]  # (R, 1)
            skips = 0
            for i, d in enumerate(c.dilations):
                past = queues[i][:, t % d, None]  # the input of this layer d steps ago (zeros at first)
                queues[i][:, t % d] = x[:, 0]
                w_past, w_now, bias = taps[i]
                gate_in = w_past @ past + w_now @ x + bias[:, None] + cond[i][:, t // c.hop_size, None]
                x, s = self._layer(i, gate_in[None], x[None])
                x, skips = x[0], skips + s[0]
            logits = self._head(skips[None])[0, :, 0] / temperature
            code = torch.multinomial(F.softmax(logits, -1), 1, generator=generator)[0]
            out[t] = code
        return out


def samples_per_second(make_audio, samples: int, repeats: int = 1) -> float:
    """Best of `repeats` timings of `make_audio()`, which makes `samples` samples."""
    best = math.inf
    for _ in range(repeats):
        tick = time.perf_counter()
        make_audio()
        best = min(best, time.perf_counter() - tick)
    return samples / best


def speed_table(seconds: float = 1.0, sample_rate: int = 22050, *, wavenet_seconds: float = 0.1,
                hifigan_configs=("v1", "v3"), rnn_budget: int = 169_100, repeats: int = 2) -> dict[str, float]:
    """Samples per second on this machine: the cached WaveNet (untrained weights: the cost of a step does not
    depend on them) for `wavenet_seconds` of audio, notebook 04's speech LSTM (20 -> 10 samples, the
    paper's `rnn_budget`) and the HiFi-GAN generators for `seconds`."""
    from .. import cells, speech
    from . import benchmark

    torch.manual_seed(0)
    rates = {}
    wavenet = WaveNet().eval()
    frames = max(1, math.ceil(wavenet_seconds * sample_rate / wavenet.config.hop_size))
    n = round(wavenet_seconds * sample_rate)
    rates["WaveNet (cached)"] = samples_per_second(
        lambda: wavenet.generate(torch.randn(1, 80, frames), steps=n, generator=torch.Generator().manual_seed(0)), n, 1)
    hidden = cells.matched_hidden_size("lstm", 20, rnn_budget, peephole=False)
    rnn = cells.RecurrentNet("lstm", 20, hidden, speech.gmm_output_size(20, 10), loss_fn=speech.gmm_loss).eval()

    def step_fn(x, state):
        params, _, state = rnn(x[:, None], state=state)
        return params[:, -1], state

    n = round(seconds * sample_rate)
    rates["speech LSTM (10 samples a step)"] = samples_per_second(
        lambda: speech.generate(step_fn, seconds, sample_rate, generator=torch.Generator().manual_seed(0)), n, 1)
    for name in hifigan_configs:  # the benchmark's own timing (warm-up, best of `repeats`)
        rates[f"HiFi-GAN {name.upper()}"] = benchmark.real_time_factor(name, seconds, repeats=repeats)[1] * sample_rate
    return rates
