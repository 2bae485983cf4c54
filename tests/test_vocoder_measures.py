import dataclasses
"""The vocoder measures of issue-level quality: frame-rate buzz, pitch accuracy; the training options the
study uses (discriminator warm-up, multi-period only, learning rate, COURSE_SPEECH_DIR); the study runner."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from course_utils.hifigan import configs, evaluate, study
from course_utils.hifigan import training

RATE = 22050


def harmonic(f0, seconds=1.0, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 8)).astype(np.float32)


def test_hop_periodic_share_finds_a_frame_rate_buzz_and_not_a_voice():
    voice = harmonic(137.0, 2.0)  # a pitch with no simple ratio to 22050 / 256 = 86.1 Hz
    assert evaluate.hop_periodic_share(voice) < 0.01
    buzz = np.zeros_like(voice)
    buzz[::256] = 1.0  # one click per frame
    buzz = np.convolve(buzz, np.hanning(31), mode="same").astype(np.float32)
    buzz *= np.sqrt((voice**2).sum() / (buzz**2).sum())  # as loud as the voice: half the energy
    share = evaluate.hop_periodic_share(voice + buzz)
    assert 0.45 < share < 0.55
    assert evaluate.hop_periodic_share(buzz) > 0.99
    with pytest.raises(ValueError, match="two hops"):
        evaluate.hop_periodic_share(voice[:300])
    with pytest.raises(ValueError, match="silent"):
        evaluate.hop_periodic_share(np.zeros(2048, np.float32))


def test_pitch_tracks_a_tone_and_rejects_noise():
    f0, voiced = evaluate.pitch(harmonic(150.0), RATE)
    assert voiced.mean() > 0.8
    cents = 1200 * np.log2(f0[voiced] / 150.0)
    assert np.median(np.abs(cents)) < 30
    noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
    assert evaluate.pitch(noise, RATE)[1].mean() < 0.3


def test_pitch_scores_by_hand():
    ref = (np.array([100.0, 100.0, 200.0, 150.0]), np.array([True, True, True, False]))
    same = evaluate.pitch_scores(ref, ref)
    assert same == {"f0_rmse_cents": 0.0, "vuv_f1": 1.0}
    octave = evaluate.pitch_scores(ref, (ref[0] * 2, np.array([True, True, False, True])))
    assert octave["f0_rmse_cents"] == pytest.approx(1200.0)  # frames voiced in both: 0 and 1
    assert octave["vuv_f1"] == pytest.approx(2 * 2 / (3 + 3))
    assert np.isnan(evaluate.pitch_scores(ref, (ref[0], np.zeros(4, bool)))["f0_rmse_cents"])


def test_scores_report_the_buzz_and_the_pitch():
    voice = harmonic(140.0, 1.5)
    s = evaluate.scores(voice, voice)
    assert s["f0_rmse_cents"] < 1e-6 and s["vuv_f1"] == 1.0 and s["hop_periodic_share"] < 0.02
    assert s["visqol"] > 4.0
    shifted = harmonic(140.0 * 2 ** (100 / 1200), 1.5)  # 100 cents sharp
    assert 60 < evaluate.scores(voice, shifted)["f0_rmse_cents"] < 140


def test_band_swap_takes_each_band_from_its_own_clip():
    sr, t = 16000, np.arange(16000) / 16000
    a = np.sin(2 * np.pi * 200 * t) + np.sin(2 * np.pi * 3000 * t)
    b = 0.5 * np.sin(2 * np.pi * 200 * t) + 0.5 * np.sin(2 * np.pi * 3000 * t)
    mixed = evaluate.band_swap(a, b[:-80], sr, 1000)  # cut to the shorter clip (whole periods of both)
    expected = np.sin(2 * np.pi * 200 * t[:-80]) + 0.5 * np.sin(2 * np.pi * 3000 * t[:-80])
    assert len(mixed) == len(t) - 80 and np.abs(mixed - expected).max() < 1e-6
    assert np.allclose(evaluate.band_swap(a, a, sr, 1000), a)
    with pytest.raises(ValueError, match="half the sample rate"):
        evaluate.band_swap(a, b, sr, 9000)
    with pytest.raises(ValueError, match="non-empty"):
        evaluate.band_swap(a, b[:0], sr, 1000)


def test_stoi_bands_average_to_stoi_and_find_the_band_that_was_damaged():
    from pystoi import stoi
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(0)
    t = np.arange(3 * 16000) / 16000
    # a syllable-rate modulated harmonic voice (fundamental 140 Hz) with a little noise
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 25)) * (1.2 + np.sin(2 * np.pi * 4 * t))
    voice = voice + 0.05 * rng.standard_normal(len(t))
    # damage the low band only: replace what is below 500 Hz by steady noise of the same power
    low = butter(8, 500, "lowpass", fs=16000, output="sos")
    noise = sosfiltfilt(low, rng.standard_normal(len(t)))
    kept = voice - sosfiltfilt(low, voice)
    damaged = kept + noise * np.std(sosfiltfilt(low, voice)) / np.std(noise)
    centres, corr = evaluate.stoi_bands(voice, damaged, 16000)
    assert corr.shape == centres.shape == (15,) and centres[0] == 150
    assert corr.mean() == pytest.approx(stoi(voice, damaged, 16000), abs=1e-9)
    assert corr[centres < 400].max() < 0.5 < corr[centres > 800].min()  # lost below 500 Hz, kept above
    _, same = evaluate.stoi_bands(voice, voice, 16000)
    assert same == pytest.approx(np.ones(15), abs=1e-6)
    with pytest.raises(ValueError, match="longer clips"):
        evaluate.stoi_bands(voice[:2000], voice[:2000], 16000)


def test_visqol_ranks_a_clean_copy_above_a_noisy_one_and_explains_bad_input():
    voice = harmonic(140.0, 2.0, 16000)
    noise = np.random.default_rng(0).standard_normal(len(voice)).astype(np.float32)
    same = evaluate.visqol(voice, voice)
    assert 4.0 < same <= 5.0  # the lattice mapper's ceiling is about 4.7
    assert evaluate.visqol(voice, voice + 0.05 * noise) < same - 1.0
    with pytest.raises(ValueError, match="16 kHz"):
        evaluate.visqol(voice, voice, 22050)
    with pytest.raises(ValueError, match="too short"):
        evaluate.visqol(voice[:8000], voice[:8000])
    assert np.isnan(evaluate.scores(harmonic(140.0, 0.5), harmonic(140.0, 0.5))["visqol"])  # too short: NaN


def test_visqol_leaves_torch_threads_alone():
    """visqol-python's first call, after torch has used its OpenMP threads, reset torch to one thread per core:
    beside another job on a 2-core machine the HiFi-GAN speed test then ran 200 times slower. In a fresh
    process, as a notebook's kernel is."""
    import subprocess
    import sys

    code = """
import numpy as np, torch
from course_utils.hifigan import evaluate
t = np.arange(32000) / 16000
v = sum(0.2 / k * np.sin(2 * np.pi * k * 140 * t) for k in range(1, 8)).astype(np.float32)
evaluate.pitch(v, 16000)
torch.set_num_threads(1)
evaluate.visqol(v, v + 0.05 * np.random.default_rng(0).standard_normal(32000).astype(np.float32))
print(torch.get_num_threads())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "1"


@pytest.fixture
def voice(tmp_path):
    folder = tmp_path / "voice"
    folder.mkdir()
    for i in range(4):
        sf.write(folder / f"line{i}.wav", harmonic(120 + 15 * i, 0.4), RATE)
    return folder


def run(folder, **kw):
    base = dict(generator="small", discriminators="slim", data=str(folder), steps=4, warmup=1, batch_size=2,
                segment_size=2048, valid_every=0, checkpoint_every=10, valid_clips=1)
    return training.VocoderRun(**{**base, **kw})


def test_discriminator_warmup_freezes_the_generator(voice, tmp_path):
    ckpt = tmp_path / "a.pt"
    training.train(run(voice, steps=1), ckpt, log=lambda *_: None)  # one mel-loss step
    before = training.load_checkpoint(ckpt)
    history = training.train(run(voice, steps=3, disc_warmup=2), ckpt, log=lambda *_: None)
    after = training.load_checkpoint(ckpt)
    assert history.step == [1, 2, 3] and all(d > 0 for d in history.loss_d[1:])
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])  # frozen
    assert any(not torch.equal(before["mpd"][k], after["mpd"][k]) for k in before["mpd"])  # learning
    training.train(run(voice, steps=4, disc_warmup=2), ckpt, log=lambda *_: None)  # step 4: the generator moves
    moved = training.load_checkpoint(ckpt)["model"]
    assert any(not torch.equal(after["model"][k], moved[k]) for k in moved)


def test_multi_period_only_and_learning_rate(voice, tmp_path):
    mpd_only = configs.DISCRIMINATORS["slim_mpd"]
    assert mpd_only.num_scales == 0 and mpd_only.periods == configs.SLIM.periods
    history = training.train(run(voice, discriminators="slim_mpd", steps=2, lr=1e-5, phase_weight=1.0), tmp_path / "b.pt",
                           log=lambda *_: None)
    assert history.loss_d[1] > 0
    assert training.load_checkpoint(tmp_path / "b.pt")["opt_g"]["param_groups"][0]["lr"] == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="at least one period or one scale"):
        configs.DiscriminatorConfig(periods=(), num_scales=0).check()
    with pytest.raises(SystemExit):
        training.main(["--lr", "0", "--data", str(voice)])


def test_training_reads_course_speech_dir(voice, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SPEECH_DIR", str(voice))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    history = training.train(run(voice, data=None, steps=1), None, log=lambda *_: None)
    assert history.step == [1]
    monkeypatch.setenv("COURSE_SPEECH_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(Exception, match="nowhere"):
        training.train(run(voice, data=None, steps=1), None, log=lambda *_: None)


def test_study_arm_trains_in_chunks_scores_each_and_resumes(voice, tmp_path, monkeypatch):
    warm = tmp_path / "warm.pt"
    training.train(run(voice, steps=1, warmup=1), warm, log=lambda *_: None)
    start = training.export_vocoder(warm, tmp_path / "start.pt")
    monkeypatch.setitem(study.ARMS, "tiny", run(voice, steps=10**6, warmup=1, disc_warmup=1))
    clips = {"train": [harmonic(130, 0.5)], "valid": [], "test": []}
    held_out = [harmonic(125, 0.3)]
    rows = study.run_arm("tiny", tmp_path / "tiny", 0.02, 2, clips, held_out=held_out, start=start,
                         log=lambda *_: None)
    assert [r["budget_seconds"] for r in rows] == pytest.approx([0.6, 1.2])
    assert rows[1]["step"] >= rows[0]["step"] > 1  # a slow step may use up the second chunk's time already
    assert all(r["seconds"] >= r["budget_seconds"] for r in rows)
    assert {"pesq", "stoi", "hop_periodic_share", "f0_rmse_cents"} <= set(rows[0])
    lines = (tmp_path / "tiny" / "curve.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [r["step"] for r in rows]
    again = study.run_arm("tiny", tmp_path / "tiny", 0.02, 2, clips, held_out=held_out, start=start,
                          log=lambda *_: None)
    assert again == rows  # both points done: nothing trains again
    # another arm goes on from this one: its checkpoint and curve are copied, new points follow, scored on
    # the other voice too
    monkeypatch.setitem(study.ARMS, "tiny_pitch", run(voice, steps=10**6, warmup=1, disc_warmup=1,
                                                       pitch_shift=(0.8, 2.0)))
    # on the same 0.6 s grid, far enough past the time the parent's steps have used for at least one more step
    # (a busy machine may take more than a chunk for one step)
    points = int(np.ceil(rows[1]["seconds"] / 0.6)) + 2
    forked = study.run_arm("tiny_pitch", tmp_path / "tiny_pitch", 0.01 * points, points, clips, held_out=held_out,
                           other_voice=[harmonic(250, 0.3)], parent=tmp_path / "tiny", log=lambda *_: None)
    assert forked[:2] == rows and forked[-1]["arm"] == "tiny_pitch" and forked[-1]["step"] > rows[1]["step"]
    assert {"pesq", "stoi", "hop_periodic_share"} <= set(forked[-1]["other_voice"])
    saved = training.load_checkpoint(tmp_path / "tiny_pitch" / "train.pt")
    assert tuple(saved["run"]["pitch_shift"]) == (0.8, 2.0)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        study.run_arm("tiny_pitch", tmp_path / "other", 0.03, 3, clips, held_out=held_out, parent=tmp_path / "none",
                      log=lambda *_: None)


def test_multi_resolution_stft_loss_weighs_loud_harmonics_and_steers_training(voice, tmp_path):
    from course_utils.hifigan import losses

    real = torch.from_numpy(harmonic(140.0, 0.5))[None, None]
    real = real + 0.01 * torch.randn_like(real, generator=torch.Generator().manual_seed(1))  # no silent bins
    assert float(losses.multi_resolution_stft_loss(real, real)) == 0.0
    # half the amplitude: spectral convergence 0.5 and log term log 2 at every resolution
    assert float(losses.multi_resolution_stft_loss(real, 0.5 * real)) == pytest.approx(0.5 + np.log(2), abs=1e-4)
    # the same 20% error on the loudest harmonic (0.2) or on a quiet one (0.2 / 7): the log term alone would
    # score them alike, the spectral convergence scores the loud one higher
    t = torch.arange(real.shape[-1]) / RATE
    loud = real + 0.2 * 0.2 * torch.sin(2 * np.pi * 140.0 * t)
    quiet = real + 0.2 * 0.2 / 7 * torch.sin(2 * np.pi * 7 * 140.0 * t)
    assert float(losses.multi_resolution_stft_loss(real, loud)) > 2 * float(losses.multi_resolution_stft_loss(real, quiet))
    fake = (0.1 * torch.randn_like(real, generator=torch.Generator().manual_seed(0))).requires_grad_()
    losses.multi_resolution_stft_loss(real, fake).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="differ in shape"):
        losses.multi_resolution_stft_loss(real, real[..., :-1])
    # in training: from the same checkpoint, the generator's step differs with the loss and without it
    training.train(run(voice, steps=1), tmp_path / "a.pt", log=lambda *_: None)
    shutil.copyfile(tmp_path / "a.pt", tmp_path / "b.pt")
    training.train(run(voice, steps=2, warmup=2), tmp_path / "a.pt", log=lambda *_: None)
    training.train(run(voice, steps=2, warmup=2, stft_weight=10.0), tmp_path / "b.pt", log=lambda *_: None)
    a, b = (training.load_checkpoint(tmp_path / f)["model"] for f in ("a.pt", "b.pt"))
    assert any(not torch.allclose(a[k], b[k]) for k in a)


def test_phase_loss_is_zero_for_the_same_audio_and_punishes_shifts_and_noise():
    from course_utils.hifigan import losses

    voice = torch.from_numpy(harmonic(140.0, 0.5))[None, None]
    assert float(losses.phase_loss(voice, voice)) == 0.0
    shifted = float(losses.phase_loss(voice, torch.roll(voice, 3, -1)))
    noise = torch.randn_like(voice, generator=torch.Generator().manual_seed(0)) * 0.1
    assert 0 < shifted < float(losses.phase_loss(voice, noise)) < 3 * np.pi
    fake = noise.clone().requires_grad_()
    losses.phase_loss(voice, fake).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="differ in shape"):
        losses.phase_loss(voice, voice[..., :-1])
    assert losses.anti_wrap(torch.tensor([2 * np.pi + 0.1, -0.1, np.pi])).tolist() == pytest.approx([0.1, 0.1, np.pi])


def test_the_mel_settings_travel_with_the_exported_weights(voice, tmp_path):
    ckpt = tmp_path / "c.pt"
    training.train(run(voice, steps=1, segment_size=4096), ckpt, log=lambda *_: None)
    G, meta = training.load_vocoder(training.export_vocoder(ckpt, tmp_path / "c_export.pt"))
    assert meta["audio_config"] == configs.AudioConfig() and meta["step"] == 1
    old_style = {**dataclasses.asdict(configs.AudioConfig(n_mels=64)), "segment_size": 8192}  # files before the move
    assert configs.audio_config(old_style) == configs.AudioConfig(n_mels=64)
    _, shipped = training.load_vocoder(study.pretrained_v3())  # exported before: the default front end
    assert shipped["audio_config"].n_mels == 80 and shipped["audio_config"].hop_size == 256


def test_istft_head_generator_and_partial_start_from_another_design(voice, tmp_path):
    from course_utils.hifigan.generator import Generator

    cfg = configs.GENERATORS["v3_istft"]
    assert cfg.upsampling == 256 and cfg.upsample_rates == (8, 8)
    G = Generator(cfg)
    assert G(torch.randn(2, 80, 3) - 4).shape == (2, 1, 768)
    with pytest.raises(ValueError, match="multiply to"):
        configs.replace(cfg, istft_hop=2).check(256)
    small_istft = configs.replace(configs.SMALL, upsample_rates=(8, 8), upsample_kernel_sizes=(16, 16),
                                  istft_n_fft=16, istft_hop=4)
    warm = tmp_path / "warm.pt"
    training.train(run(voice, steps=1), warm, log=lambda *_: None)
    start = training.export_vocoder(warm, tmp_path / "small.pt")
    monkey = dict(configs.GENERATORS, small_istft=small_istft)
    import unittest.mock

    with unittest.mock.patch.dict(configs.GENERATORS, monkey):
        logs = []
        with pytest.raises(Exception, match="another configuration"):
            training.train(run(voice, generator="small_istft", steps=3), tmp_path / "x.pt", init_generator=start,
                         log=logs.append)
        training.train(run(voice, generator="small_istft", steps=3, init_partial=True), tmp_path / "y.pt",
                     init_generator=start, log=logs.append)
    assert any("Took" in line for line in logs)
    taken = training.load_checkpoint(tmp_path / "y.pt")["model"]
    assert "conv_pre.bias" in taken and taken["conv_post.bias"].shape == (18,)


def test_other_voice_reads_the_m_clips_longer_than_two_seconds(tmp_path, monkeypatch):
    from course_utils import speech

    folder = tmp_path / "sound" / "level" / "cs"
    folder.mkdir(parents=True)
    for name, seconds in [("a-m-1.ogg", 2.5), ("a-m-0.ogg", 1.0), ("a-v-2.ogg", 3.0), ("b-m-3.ogg", 2.2)]:
        sf.write(folder / name, harmonic(200.0, seconds), RATE)
    monkeypatch.setattr(speech, "fillets_dirs", lambda: (tmp_path / "missing", tmp_path / "sound"))
    clips = study.other_voice_clips(count=5)
    assert [round(len(c) / RATE, 1) for c in clips] == [2.5, 2.2]  # by name, short and big-fish clips left out
    assert len(study.other_voice_clips(count=1)) == 1
    monkeypatch.setattr(speech, "fillets_dirs", lambda: (tmp_path / "missing", tmp_path / "also_missing"))
    with pytest.raises(Exception, match="apt-get"):
        study.other_voice_clips()


def test_a_float16_export_loads_into_a_float32_generator(voice, tmp_path):
    ckpt = tmp_path / "d.pt"
    training.train(run(voice, steps=1), ckpt, log=lambda *_: None)
    full, _ = training.load_vocoder(training.export_vocoder(ckpt, tmp_path / "full.pt"))
    half_file = training.export_vocoder(ckpt, tmp_path / "half.pt", half=True)
    assert all(v.dtype == torch.float16 for k, v in training.load_checkpoint(half_file)["model"].items())
    half, _ = training.load_vocoder(half_file)
    mel = torch.randn(1, 80, 8) - 5
    with torch.no_grad():
        a, b = full(mel), half(mel)
    assert b.dtype == torch.float32 and torch.allclose(a, b, atol=2e-3 * a.abs().max().item() + 1e-6)


def test_study_summary_keeps_arms_measured_elsewhere(tmp_path, monkeypatch):
    import json

    from course_utils import speech

    folder = tmp_path / "sound"
    folder.mkdir()
    sf.write(folder / "a-m-1.ogg", harmonic(200.0, 2.5), RATE)
    monkeypatch.setattr(speech, "fillets_dirs", lambda: (folder,))
    study_dir = tmp_path / "study"
    (study_dir / "mel").mkdir(parents=True)
    for name in ("baselines", "baselines_other_voice"):  # cached: no vocoder runs here
        (study_dir / f"{name}.json").write_text(json.dumps({"start": {"pesq": 1.5}}))
    (study_dir / "mel" / "curve.jsonl").write_text(json.dumps({"arm": "mel", "step": 2}) + "\n")
    previous = {"arms": {"mel": [{"arm": "mel", "step": 1}], "gan_dwarm": [{"arm": "gan_dwarm", "step": 7}]}}
    table = study.summary(study_dir, {"test": []}, previous)
    assert table["arms"]["mel"] == [{"arm": "mel", "step": 2}]  # the folder's own curve wins
    assert table["arms"]["gan_dwarm"] == [{"arm": "gan_dwarm", "step": 7}]  # kept from the earlier summary
    assert "gan_dwarm" not in study.summary(study_dir, {"test": []})["arms"]


def test_study_arm_restarts_from_an_exported_point_with_new_discriminators(voice, tmp_path, monkeypatch):
    """A new machine has the shipped point and its curve but no training checkpoint: the arm goes on from
    the file's step and seconds, the discriminators warm up against the frozen generator first."""
    monkeypatch.setitem(study.ARMS, "tiny", run(voice, steps=10**6, warmup=1, disc_warmup=3))
    clips = {"train": [harmonic(130, 0.5)], "valid": [], "test": []}
    held_out = [harmonic(125, 0.3)]
    first = training.train(run(voice, steps=6, warmup=1), tmp_path / "old.pt", log=lambda *_: None)
    point = training.export_vocoder(tmp_path / "old.pt", tmp_path / "point.pt", half=True)
    curve = [{"arm": "tiny", "budget_seconds": 1.2, "seconds": 1.25, "step": 3},
             {"arm": "tiny", "budget_seconds": 2.4, "seconds": 2.45, "step": 6}]
    with pytest.raises(ValueError, match="does not hold"):
        study.run_arm("tiny", tmp_path / "bad", 0.06, 3, clips, held_out=held_out, restart=point, curve=curve[:1],
                      log=lambda *_: None)
    rows = study.run_arm("tiny", tmp_path / "tiny", 0.06, 3, clips, held_out=held_out, restart=point, curve=curve,
                         restart_disc_warmup=4, log=lambda *_: None)
    assert first.step[-1] == 6 and rows[:2] == curve  # the curve goes on where the file stood
    assert len(rows) == 3 and rows[2]["budget_seconds"] == pytest.approx(3.6) and rows[2]["seconds"] >= 3.6
    assert rows[2]["step"] > 6 and rows[2]["restarted_from"]["step"] == 6
    saved = training.load_checkpoint(tmp_path / "tiny" / "train.pt")
    assert saved["history"]["step"][0] == 7  # steps count on from the file's
    assert saved["run"]["warmup"] == 6 and saved["run"]["disc_warmup"] == 4
    assert all(d > 0 for d in saved["history"]["loss_d"])  # no mel-only step: the discriminators train throughout
    again = study.run_arm("tiny", tmp_path / "tiny", 0.06, 3, clips, held_out=held_out, restart=point, curve=curve,
                          log=lambda *_: None)
    assert again == rows  # resumes from its own checkpoint: nothing trains again
    # another arm forks from the restarted one: the restart's seconds offset goes on with it, so the fork trains
    # only up to its next point's budget (not that budget on top of the offset) and at its own learning rate
    monkeypatch.setitem(study.ARMS, "tiny_low_lr", run(voice, steps=10**6, warmup=1, disc_warmup=3, lr=5e-5))
    forked = study.run_arm("tiny_low_lr", tmp_path / "low", 0.08, 4, clips, held_out=held_out,
                           parent=tmp_path / "tiny", log=lambda *_: None)
    assert forked[:3] == rows and forked[3]["arm"] == "tiny_low_lr" and forked[3]["restarted_from"]["step"] == 6
    saved = training.load_checkpoint(tmp_path / "low" / "train.pt")
    trained = saved["history"]["seconds"][-1]  # counted from the restart, as in the parent's checkpoint
    assert forked[3]["seconds"] == pytest.approx(curve[-1]["seconds"] + trained)
    # the fork stops at the first step that reaches the budget: before its last step it stood below 4.8 s in all
    # (timed, not counted in steps: a slow machine takes fewer steps, never a step past the budget)
    before_last = saved["history"]["seconds"][-2] if len(saved["history"]["seconds"]) > 1 else 0.0
    assert 4.8 <= forked[3]["seconds"] and curve[-1]["seconds"] + before_last < 4.8
    assert saved["run"]["lr"] == 5e-5


def test_a_run_goes_on_from_an_exported_generator_and_training_state_as_if_never_stopped(voice, tmp_path):
    """An exported generator plus `export_training_state` (discriminators, optimisers) continue the run nearly
    as resuming its checkpoint does; new discriminators and optimisers (the generator alone) do not."""
    quiet = lambda *_: None
    training.train(run(voice, steps=6, warmup=1), tmp_path / "old.pt", log=quiet)
    point = training.export_vocoder(tmp_path / "old.pt", tmp_path / "point.pt")
    state = training.export_training_state(tmp_path / "old.pt", tmp_path / "state.pt")
    shutil.copyfile(tmp_path / "old.pt", tmp_path / "resumed.pt")
    training.train(run(voice, steps=9, warmup=1), tmp_path / "resumed.pt", log=quiet)
    training.train(run(voice, steps=9, warmup=1), tmp_path / "with_state.pt", init_generator=point,
                   init_state=state, log=quiet)
    training.train(run(voice, steps=9, warmup=1), tmp_path / "without.pt", init_generator=point, log=quiet)
    old, resumed, with_state, without = (training.load_checkpoint(tmp_path / f"{n}.pt")
                                         for n in ("old", "resumed", "with_state", "without"))

    def distance(a, b, key="model"):
        return sum(float((a[key][k].float() - b[key][k].float()).abs().sum()) for k in a[key])

    moved = distance(resumed, old)  # what three steps changed
    assert moved > 0 and with_state["step"] == resumed["step"] == 9
    assert distance(with_state, resumed) < 0.05 * moved  # Adam's moments went through bfloat16, nothing else
    assert distance(without, resumed) > 0.3 * moved
    assert distance(with_state, resumed, "mpd") < 0.05 * distance(resumed, old, "mpd")
    assert training.load_checkpoint(state)["opt_g"]["state"][0]["exp_avg"].dtype == torch.bfloat16
    training.train(run(voice, steps=7, warmup=1), tmp_path / "old.pt", log=quiet)  # one step on: a later state
    later = training.export_training_state(tmp_path / "old.pt", tmp_path / "later.pt")
    with pytest.raises(training.CheckpointError, match="step 7"):
        training.train(run(voice, steps=9, warmup=1), tmp_path / "mismatch.pt", init_generator=point,
                       init_state=later, log=quiet)
    # the same generator with its weight-norm directions v written at another scale (as averaging used to)
    saved = training.load_checkpoint(point)
    saved["model"] = {k: 2 * v if k.endswith("weight.original1") else v for k, v in saved["model"].items()}
    rescaled = training.save_checkpoint(tmp_path / "rescaled.pt", saved)
    with pytest.raises(training.CheckpointError, match="another scale"):
        training.train(run(voice, steps=9, warmup=1), tmp_path / "rescaled_run.pt", init_generator=rescaled,
                       init_state=state, log=quiet)


def test_a_multi_period_only_state_starts_a_run_that_adds_the_multi_scale_discriminator(voice, tmp_path):
    """slim_mpd -> slim: the multi-period discriminator and its Adam moments go on, the multi-scale one is
    new; the other way round, or to another multi-period discriminator, is refused."""
    quiet, log = (lambda *_: None), []
    training.train(run(voice, discriminators="slim_mpd", steps=4, warmup=1), tmp_path / "mpd.pt", log=quiet)
    point = training.export_vocoder(tmp_path / "mpd.pt", tmp_path / "point.pt")
    state = training.export_training_state(tmp_path / "mpd.pt", tmp_path / "state.pt")
    history = training.train(run(voice, discriminators="slim", steps=5, warmup=4, disc_warmup=1),
                             tmp_path / "grown.pt", init_generator=point, init_state=state, log=log.append)
    assert history.step == [5] and any("new multi-scale discriminator" in line for line in log)
    grown, saved = training.load_checkpoint(tmp_path / "grown.pt"), training.load_checkpoint(state)
    moved = [float((grown["mpd"][k[4:]].float() - v.float()).abs().max()) for k, v in saved["model"].items()
             if k.startswith("mpd.")]
    assert 0 < max(moved) < 0.01  # one small step from the stored multi-period discriminator
    assert grown["msd"] and not any(k.startswith("msd.") for k in saved["model"])
    n_mpd = len(saved["opt_d"]["param_groups"][0]["params"])
    steps = [float(grown["opt_d"]["state"][i]["step"]) for i in sorted(grown["opt_d"]["state"])]
    assert steps[:n_mpd] == [4.0] * n_mpd and set(steps[n_mpd:]) == {1.0}  # moments went on / began
    assert training.adds_multi_scale("slim_mpd", "slim") and not training.adds_multi_scale("slim", "slim_mpd")
    assert not training.adds_multi_scale("slim_mpd", "paper")  # the paper's multi-period discriminator is larger
    with pytest.raises(training.CheckpointError, match="pass the state exported with it"):
        training.train(run(voice, discriminators="paper", steps=5, warmup=4), tmp_path / "paper.pt",
                       init_generator=point, init_state=state, log=quiet)
    # the other way round (a state with both discriminators into a multi-period-only run) is refused too
    grown_point = training.export_vocoder(tmp_path / "grown.pt", tmp_path / "grown_point.pt")
    grown_state = training.export_training_state(tmp_path / "grown.pt", tmp_path / "grown_state.pt")
    with pytest.raises(training.CheckpointError, match="pass the state exported with it"):
        training.train(run(voice, discriminators="slim_mpd", steps=6, warmup=5), tmp_path / "shrunk.pt",
                       init_generator=grown_point, init_state=grown_state, log=quiet)


def test_study_arm_restarts_with_the_shipped_training_state(voice, tmp_path, monkeypatch):
    """With the training state exported beside the point, the restart keeps the discriminators: no
    discriminator-only warm-up by default, and every point leaves its own state to restart from."""
    monkeypatch.setitem(study.ARMS, "tiny", run(voice, steps=10**6, warmup=1, disc_warmup=3))
    clips = {"train": [harmonic(130, 0.5)], "valid": [], "test": []}
    training.train(run(voice, steps=6, warmup=1), tmp_path / "old.pt", log=lambda *_: None)
    point = training.export_vocoder(tmp_path / "old.pt", tmp_path / "point.pt", half=True)
    state = training.export_training_state(tmp_path / "old.pt", tmp_path / "state.pt")
    curve = [{"arm": "tiny", "budget_seconds": 2.4, "seconds": 2.45, "step": 6}]
    rows = study.run_arm("tiny", tmp_path / "tiny", 0.06, 2, clips, held_out=[harmonic(125, 0.3)], restart=point,
                         curve=curve, restart_state=state, log=lambda *_: None)
    saved = training.load_checkpoint(tmp_path / "tiny" / "train.pt")
    assert saved["run"]["warmup"] == 6 and saved["run"]["disc_warmup"] == 0
    assert rows[-1]["restarted_from"]["disc_warmup"] == 0 and "state" not in rows[-1]["restarted_from"]
    last = rows[-1]["step"]
    assert last > 6 and (tmp_path / "tiny" / f"step_{last}_state.pt").is_file()
    assert training.load_checkpoint(tmp_path / "tiny" / f"step_{last}_state.pt")["step"] == last


def test_an_arm_without_the_gan_stays_without_it_after_a_restart(voice, tmp_path, monkeypatch):
    """A restart sets the GAN's start to the point's step; an arm whose GAN never starts (the fidelity probe,
    warmup beyond any step) keeps its warmup: the generator learns from the mel loss, the discriminators
    restored from the point's state stay as they were."""
    monkeypatch.setitem(study.ARMS, "tiny_fidelity", run(voice, steps=10**6, warmup=10**9, disc_warmup=0))
    clips = {"train": [harmonic(130, 0.5)], "valid": [], "test": []}
    training.train(run(voice, steps=6, warmup=1), tmp_path / "old.pt", log=lambda *_: None)
    point = training.export_vocoder(tmp_path / "old.pt", tmp_path / "point.pt", half=True)
    state = training.export_training_state(tmp_path / "old.pt", tmp_path / "state.pt")
    curve = [{"arm": "tiny_fidelity", "budget_seconds": 2.4, "seconds": 2.45, "step": 6}]
    rows = study.run_arm("tiny_fidelity", tmp_path / "fid", 0.06, 2, clips, held_out=[harmonic(125, 0.3)],
                         restart=point, curve=curve, restart_state=state, log=lambda *_: None)
    saved = training.load_checkpoint(tmp_path / "fid" / "train.pt")
    assert saved["run"]["warmup"] == 10**9 and rows[-1]["step"] > 6
    before = training.load_checkpoint(state)["model"]
    assert all(torch.equal(v, before[f"mpd.{k}"]) for k, v in saved["mpd"].items())
    assert not torch.equal(saved["model"]["conv_post.bias"], training.load_checkpoint(point)["model"]["conv_post.bias"].float())


def test_averaging_exported_points_averages_the_weights_the_generator_computes_with(voice, tmp_path):
    quiet = lambda *_: None
    ckpt = tmp_path / "run.pt"
    training.train(run(voice, steps=3, warmup=1), ckpt, log=quiet)
    first = training.export_vocoder(ckpt, tmp_path / "step_3.pt")
    training.train(run(voice, steps=6, warmup=1), ckpt, log=quiet)
    second = training.export_vocoder(ckpt, tmp_path / "step_6.pt")
    mean = training.average_vocoders([first, second], tmp_path / "mean.pt")
    (a, _), (b, _), (m, meta) = (training.load_vocoder(p) for p in (first, second, mean))
    for k, w in m.state_dict().items():
        assert torch.allclose(w, (a.state_dict()[k] + b.state_dict()[k]) / 2, atol=1e-6), k
    assert not torch.equal(a.state_dict()["conv_post.weight"], b.state_dict()["conv_post.weight"])
    assert meta["step"] == 6 and meta["averaged"] == ["step_3.pt", "step_6.pt"]
    same = training.average_vocoders([second], tmp_path / "one.pt")  # the mean of one point is that point
    assert all(torch.allclose(w, b.state_dict()[k], atol=1e-6) for k, w in training.load_vocoder(same)[0].state_dict().items())
    # written back with the last point's scale of v (weight norm: w = g v / |v|), so that it trains on like
    # that point with its optimiser moments: a point whose v is three times longer keeps it
    saved = training.load_checkpoint(second)
    saved["model"] = {k: 3 * v if k.endswith("weight.original1") else v for k, v in saved["model"].items()}
    longer = training.save_checkpoint(tmp_path / "longer.pt", saved)
    kept = training.load_checkpoint(training.average_vocoders([longer], tmp_path / "kept.pt"))["model"]
    assert all(torch.allclose(kept[k], v, rtol=1e-5, atol=1e-6) for k, v in saved["model"].items())
    last_v = {k: v for k, v in training.load_checkpoint(second)["model"].items() if k.endswith("original1")}
    for k, v in training.load_checkpoint(mean)["model"].items():
        if k in last_v:
            assert torch.allclose(v.flatten(1).norm(dim=1), last_v[k].flatten(1).norm(dim=1), rtol=1e-5), k
    # the file trains like any export: a run starts from it
    training.train(run(voice, steps=7, warmup=1), tmp_path / "on.pt", init_generator=mean, log=quiet)
    with pytest.raises(ValueError, match="at least one"):
        training.average_vocoders([], tmp_path / "none.pt")


def test_a_stored_study_point_restarts_the_arm_on_another_machine(voice, tmp_path, monkeypatch):
    """`study --store STEP` keeps a point (its export, training state and curve) from which a new folder
    restarts the arm with the same discriminators, and refuses a step that has no state."""
    monkeypatch.setitem(study.ARMS, "tiny", run(voice, steps=10**6, warmup=1, disc_warmup=0))
    clips = {"train": [harmonic(130, 0.5)], "valid": [], "test": []}
    quiet = lambda *_: None
    training.train(run(voice, steps=6, warmup=1), tmp_path / "old.pt", log=quiet)
    point = training.export_vocoder(tmp_path / "old.pt", tmp_path / "point.pt", half=True)
    state = training.export_training_state(tmp_path / "old.pt", tmp_path / "state.pt")
    curve = [{"arm": "tiny", "budget_seconds": 2.4, "seconds": 2.45, "step": 6}]
    first = study.run_arm("tiny", tmp_path / "here" / "tiny", 0.06, 2, clips, held_out=[harmonic(125, 0.3)],
                          restart=point, curve=curve, restart_state=state, log=quiet)
    step = first[-1]["step"]
    previous = {"arms": {"mel": [{"step": 1}]}, "test_clips": {"start": {}}}
    files = study.store_point(tmp_path / "here", "tiny", step, tmp_path / "kept", previous)
    assert [f.name for f in files] == ["tiny_last.pt", "tiny_last_state.pt", "tiny_curves.json"]
    table = json.loads(files[2].read_text())
    assert table["arms"]["mel"] == [{"step": 1}] and [r["step"] for r in table["arms"]["tiny"]] == [r["step"] for r in first]
    assert training.load_checkpoint(files[1])["generator_v_norms"]
    rows = study.run_arm("tiny", tmp_path / "there" / "tiny", 0.12, 4, clips, held_out=[harmonic(125, 0.3)],
                         restart=files[0], restart_state=files[1], curve=table["arms"]["tiny"], log=quiet)
    assert rows[len(first)]["restarted_from"]["step"] == step and rows[-1]["step"] > step
    restarted = json.loads((tmp_path / "there" / "tiny" / "restart.json").read_text())
    assert restarted["state_from"] == str(files[1]) and restarted["disc_warmup"] == 0  # its own discriminators
    with pytest.raises(FileNotFoundError, match="points with one"):
        study.store_point(tmp_path / "here", "tiny", step + 1, tmp_path / "kept", previous)
