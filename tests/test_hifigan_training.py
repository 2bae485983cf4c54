import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from course_utils.hifigan import training
from course_utils.train import load_checkpoint


@pytest.fixture
def voice(tmp_path):
    folder = tmp_path / "voice"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        t = np.arange(6000) / 22050
        audio = 0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(folder / f"line{i}.wav", audio.astype(np.float32), 22050)
    return folder


def small_run(folder, **kw):
    base = dict(generator="small", discriminators="slim", data=str(folder), steps=3, warmup=1, batch_size=2,
                segment_size=2048, valid_every=3, checkpoint_every=1, valid_clips=1)
    base.update(kw)
    return training.VocoderRun(**base)


def test_gan_steps_run_checkpoint_and_resume(voice, tmp_path):
    ckpt = tmp_path / "voc.pt"
    history = training.train(small_run(voice), ckpt, log=lambda *_: None)
    assert history.step == [1, 2, 3] and history.loss_d[0] == 0.0 and history.loss_d[1] > 0  # warm-up, then GAN
    assert np.isfinite(history.mel_l1).all() and len(history.valid_mel_l1) == 1
    more = training.train(small_run(voice, steps=4), ckpt, log=lambda *_: None)
    assert more.step == [1, 2, 3, 4]  # resumed at 3
    G, meta = training.load_vocoder(training.export_vocoder(ckpt, tmp_path / "small.pt"))
    assert meta["step"] == 4 and G(torch.zeros(1, 80, 4)).shape == (1, 1, 1024)
    with pytest.raises(Exception, match="delete it"):
        training.train(small_run(voice, generator="v3"), ckpt, log=lambda *_: None)


def test_init_generator_starts_a_new_run_from_an_exported_vocoder(voice, tmp_path):
    first = tmp_path / "warm.pt"
    training.train(small_run(voice, steps=2, warmup=2), first, log=lambda *_: None)
    exported = training.export_vocoder(first, tmp_path / "warm_small.pt")
    ckpt = tmp_path / "gan.pt"
    history = training.train(small_run(voice, steps=4, warmup=2), ckpt, init_generator=exported, log=lambda *_: None)
    assert history.step == [3, 4] and all(d > 0 for d in history.loss_d)  # counts on from step 2, all GAN steps
    G0, _ = training.load_vocoder(exported)
    G1, _ = training.load_vocoder(ckpt)
    assert any(not torch.equal(a, b) for a, b in zip(G0.state_dict().values(), G1.state_dict().values()))
    # an existing checkpoint wins over init_generator: the run resumes
    assert training.train(small_run(voice, steps=5, warmup=2), ckpt, init_generator=exported,
                        log=lambda *_: None).step == [3, 4, 5]
    with pytest.raises(Exception, match="--config"):
        training.train(small_run(voice, generator="v3"), tmp_path / "other.pt", init_generator=exported,
                     log=lambda *_: None)


def test_torchrun_with_two_cpu_processes(voice, tmp_path):
    ckpt = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "course_utils.hifigan.training", "--config", "small", "--discriminators", "slim", "--data", str(voice),
           "--steps", "2", "--warmup", "1", "--batch-size", "2", "--segment-size", "2048", "--valid-every", "2",
           "--checkpoint", str(ckpt)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained to step 2" in done.stdout
    assert load_checkpoint(ckpt)["step"] == 2


def _peak_hz(x, sr=22050):
    return np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * sr / len(x)


def test_pitch_shift_resamples_a_share_of_the_segments():
    t = np.arange(3 * 22050) / 22050
    clip = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    g = torch.Generator().manual_seed(0)
    x = training.random_segments([clip], 32, 4096, g, pitch_shift=(1.5, 1.5), share=0.5)
    peaks = np.array([_peak_hz(seg[0].numpy()) for seg in x])
    shifted = np.abs(peaks - 300) < 10
    assert (shifted | (np.abs(peaks - 200) < 10)).all() and 8 <= shifted.sum() <= 24
    assert np.allclose(x.abs().amax(-1), 0.5, atol=0.02)  # the level is kept, no ringing at the cuts
    # off by default: the same random stream, hence the same pieces, as without the option
    a = training.random_segments([clip], 4, 4096, torch.Generator().manual_seed(1))
    b = training.random_segments([clip], 4, 4096, torch.Generator().manual_seed(1), pitch_shift=(1.0, 1.0), share=1.0)
    assert torch.equal(a, b)


def test_resample_is_band_limited():
    n = 4096
    t = np.arange(2 * n) / 22050
    x = torch.from_numpy(np.sin(2 * np.pi * 8000 * t) + np.sin(2 * np.pi * 1000 * t)).float()
    y = training.resample(x, n).numpy()  # x 2: 1 kHz -> 2 kHz; 8 kHz -> 16 kHz, above Nyquist: dropped
    spectrum = np.abs(np.fft.rfft(y * np.hanning(n)))
    freqs = np.fft.rfftfreq(n, 1 / 22050)
    assert abs(freqs[spectrum.argmax()] - 2000) < 10
    assert spectrum[np.abs(freqs - 6050) < 300].max() < 1e-2 * spectrum.max()  # no alias of 16 kHz at 6.05 kHz


def test_bad_pitch_shift_is_refused(voice, tmp_path):
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        training.train(small_run(voice, pitch_shift=(2.0, 0.8)), tmp_path / "x.pt", log=lambda *_: None)
    with pytest.raises(ValueError, match="share between 0 and 1"):
        training.train(small_run(voice, pitch_shift=(0.8, 2.0), pitch_shift_share=1.5), tmp_path / "x.pt",
                       log=lambda *_: None)


def test_bad_pitch_shift_on_the_command_line_says_what_to_give(voice, capsys):
    with pytest.raises(SystemExit):
        training.main(["--pitch-shift", "2", "0.8", "--data", str(voice)])
    assert "0 < LO <= HI" in capsys.readouterr().err


def test_pitch_shifted_training_runs(voice, tmp_path):
    history = training.train(small_run(voice, pitch_shift=(0.8, 2.0), pitch_shift_share=1.0), tmp_path / "p.pt",
                             log=lambda *_: None)
    assert history.step == [1, 2, 3] and np.isfinite(history.mel_l1).all()
    assert tuple(load_checkpoint(tmp_path / "p.pt")["run"]["pitch_shift"]) == (0.8, 2.0)
