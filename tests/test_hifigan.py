from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.hifigan import configs, discriminators, losses
from course_utils.hifigan.generator import Generator
from course_utils.hifigan.mel import MelSpectrogram


@pytest.mark.parametrize("name, millions", [("v1", 13.92), ("v2", 0.92), ("v3", 1.46)])
def test_generator_parameter_counts_match_the_paper(name, millions):
    # The paper's counts (Table 1) are those of the inference generator, weight norm removed, cut (not
    # rounded) to two decimals: 13,926,017 / 925,985 / 1,462,273. With weight norm's gains V1 has
    # 13,936,130 (13.93 cut), and rounding would give 13.93 and 0.93: neither matches the paper.
    g = Generator(configs.GENERATORS[name]).remove_weight_norm()
    assert int(g.num_parameters() / 1e4) / 100 == millions


def test_upsampling_must_multiply_to_the_hop_size():
    with pytest.raises(ValueError, match="multiply to 256, but the hop size is 300"):
        Generator(configs.V3, hop_size=300)
    with pytest.raises(ValueError, match="multiply to 128"):
        Generator(replace(configs.V3, upsample_rates=(8, 4, 4), upsample_kernel_sizes=(16, 8, 8)))
    with pytest.raises(ValueError, match="resblock"):
        configs.GeneratorConfig(resblock="3").check()
    with pytest.raises(ValueError, match="same length"):
        configs.GeneratorConfig(upsample_kernel_sizes=(16, 16, 4)).check()


@pytest.mark.parametrize("name", ["small", "v3"])
def test_output_length_and_weight_norm_removal(name):
    torch.manual_seed(0)
    g = Generator(configs.GENERATORS[name]).eval()
    mel = torch.randn(2, 80, 6)
    with torch.no_grad():
        before = g(mel)
        after = g.remove_weight_norm()(mel)
    assert before.shape == (2, 1, 6 * 256) and before.abs().max() <= 1
    assert not any("parametrizations" in key for key in g.state_dict())
    torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-4)


def test_wrong_shapes_give_clear_errors():
    g = Generator(configs.SMALL)
    with pytest.raises(ValueError, match=r"n_mels=80.*got \(2, 64, 6\)"):
        g(torch.randn(2, 64, 6))
    with pytest.raises(ValueError, match="mel\\[None\\]"):
        g(torch.randn(80, 6))
    with pytest.raises(ValueError, match=r"\(B, T\) or \(B, 1, T\)"):
        MelSpectrogram()(torch.zeros(1, 1, 1, 4096))
    with pytest.raises(ValueError, match="too short"):
        MelSpectrogram()(torch.zeros(1, 100))
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        discriminators.MultiPeriodDiscriminator(configs.SLIM)(torch.zeros(2, 4096))
    with pytest.raises(ValueError, match="mel shapes differ"):
        losses.mel_loss(torch.zeros(1, 80, 4), torch.zeros(1, 80, 5))
    with pytest.raises(ValueError, match="groups"):
        configs.DiscriminatorConfig(msd_channels=(10, 10, 10, 10, 10, 10, 10)).check()


def test_bad_mel_values_give_clear_errors_not_nan_audio():
    g = Generator(configs.SMALL)
    mel = torch.randn(1, 80, 4)
    mel[0, 5, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        g(mel)
    with pytest.raises(ValueError, match=r"mel is torch.float64 .*mel.to\(torch.float32\)"):
        g(torch.randn(1, 80, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="0 frames"):
        g(torch.zeros(1, 80, 0))
    assert g(torch.randn(1, 80, 1)).shape == (1, 1, 256)  # one frame is enough


def test_other_numbers_of_mel_bands_end_to_end():
    audio_cfg = configs.AudioConfig(n_mels=64)
    mel = MelSpectrogram(audio_cfg)(torch.zeros(1, 1024).uniform_(-0.5, 0.5))
    assert mel.shape == (1, 64, 4)
    g = Generator(replace(configs.SMALL, n_mels=64))
    assert g.conv_pre.in_channels == 64 and g(mel).shape == (1, 1, 1024)


def test_period_reshape_places_sample_t_at_row_t_div_p():
    audio = torch.arange(10.0).view(1, 1, 10)
    for p in (2, 3, 5, 7):
        folded = discriminators.period_reshape(audio, p)
        assert folded.shape == (1, 1, -(-10 // p), p)
        for t in range(10):
            assert folded[0, 0, t // p, t % p] == t
    assert discriminators.period_reshape(audio, 3)[0, 0, 3, 1:].tolist() == [8.0, 7.0]  # reflect padding


def test_discriminators_return_scores_and_features():
    audio = torch.randn(2, 1, 2048)
    for cls, count in ((discriminators.MultiPeriodDiscriminator, 5), (discriminators.MultiScaleDiscriminator, 3)):
        scores, features = cls(configs.SLIM)(audio)
        assert len(scores) == len(features) == count
        assert all(s.ndim == 2 and s.shape[0] == 2 for s in scores)
        assert all(len(f) == 6 if count == 5 else len(f) == 8 for f in features)  # each conv + the post conv
    mpd = discriminators.MultiPeriodDiscriminator(configs.PAPER)
    assert [c.out_channels for c in mpd.discriminators[0].convs] == [32, 128, 512, 1024, 1024]
    msd = discriminators.MultiScaleDiscriminator(configs.PAPER)
    assert [c.groups for c in msd.discriminators[1].convs] == [1, 4, 16, 16, 16, 16, 1]
    norms = [type(d.convs[0].parametrizations.weight[0]).__name__.lower() for d in msd.discriminators]
    assert "spectral" in norms[0] and all("weight" in n for n in norms[1:])  # spectral norm on the raw audio only


def test_losses_by_hand():
    real = [torch.tensor([[1.0, 0.5]]), torch.tensor([[0.0]])]
    fake = [torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0]])]
    # D: (0 + 0.25) / 2 + (0 + 1) / 2 for the first, (1) + (4) for the second
    assert losses.discriminator_loss(real, fake).item() == pytest.approx(0.125 + 0.5 + 1 + 4)
    # G: (1 + 0) / 2 + (1 - 2)^2
    assert losses.generator_adversarial_loss(fake).item() == pytest.approx(0.5 + 1)
    feats_r = [[torch.ones(2, 3), torch.zeros(4)], [torch.zeros(1, 2)]]
    feats_f = [[torch.zeros(2, 3), torch.full((4,), 2.0)], [torch.tensor([[1.0, -3.0]])]]
    assert losses.feature_matching_loss(feats_r, feats_f).item() == pytest.approx(1 + 2 + 2)
    assert losses.mel_loss(torch.zeros(1, 2, 2), torch.tensor([[[1.0, -1.0], [3.0, 0.0]]])).item() == 1.25
    with pytest.raises(ValueError, match="same discriminators"):
        losses.discriminator_loss(real, fake[:1])


def test_feature_matching_sends_no_gradient_into_the_real_features():
    real, fake = torch.ones(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    losses.feature_matching_loss([[real]], [[fake]]).backward()
    assert real.grad is None and fake.grad is not None


@pytest.mark.parametrize("full_band", [False, True])
def test_mel_matches_librosa(full_band):
    import librosa

    c = configs.AudioConfig()
    rng = np.random.default_rng(0)
    audio = np.clip(0.3 * rng.standard_normal(4096 + 100), -1, 1).astype(np.float32)  # not a multiple of the hop
    got = MelSpectrogram(c, full_band=full_band)(torch.from_numpy(audio)[None])[0].numpy()
    pad = (c.n_fft - c.hop_size) // 2
    padded = np.pad(audio.astype(np.float64), pad, mode="reflect")
    spec = np.abs(librosa.stft(padded, n_fft=c.n_fft, hop_length=c.hop_size, win_length=c.win_size,
                               window="hann", center=False))
    fb = librosa.filters.mel(sr=c.sampling_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin,
                             fmax=c.fmax_loss if full_band else c.fmax)
    want = np.log(np.maximum(fb @ spec, 1e-5))
    assert got.shape == want.shape == (80, len(audio) // c.hop_size)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_mel_accepts_b1t_and_caches_per_device_and_dtype():
    mel = MelSpectrogram()
    audio = torch.zeros(2, 2048).uniform_(-0.5, 0.5)
    torch.testing.assert_close(mel(audio), mel(audio[:, None]))
    assert mel(audio.double()).dtype == torch.float64
    assert mel.filters_and_window("cpu")[0] is mel.filters_and_window("cpu")[0]  # built once, then kept
    assert MelSpectrogram(full_band=True).fmax is None and MelSpectrogram().fmax == 8000.0


def test_griffin_lim_and_scores_on_a_real_like_signal():
    from course_utils.hifigan import evaluate

    c = configs.AudioConfig()
    t = np.arange(22050) / c.sampling_rate
    rng = np.random.default_rng(0)
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.3 * np.sin(2 * np.pi * 900 * t)
             ).astype(np.float32)
    noise = (0.3 * rng.standard_normal(len(t))).astype(np.float32)
    perfect = evaluate.scores(voice, voice)
    assert perfect["mel_l1"] < 1e-6 and perfect["mel_l1_input_band"] < 1e-6
    assert perfect["stoi"] > 0.99 and perfect["pesq"] > 4.4
    hiss = voice + (0.05 * rng.standard_normal(len(t))).astype(np.float32)
    high = np.fft.irfft(np.where(np.fft.rfftfreq(len(t), 1 / c.sampling_rate) > 9000, np.fft.rfft(hiss - voice), 0),
                        len(t)).astype(np.float32)
    only_high = evaluate.scores(voice, voice + high)  # noise above 8 kHz: the input band does not see it
    assert only_high["mel_l1"] > 10 * only_high["mel_l1_input_band"]
    assert evaluate.scores(voice, noise)["stoi"] < 0.5
    log_mel = MelSpectrogram(c)(torch.from_numpy(voice)[None])
    rebuilt = evaluate.griffin_lim(log_mel[0], c)
    assert abs(len(rebuilt) - len(voice)) <= c.hop_size * 4
    assert np.array_equal(evaluate.griffin_lim(log_mel, c), rebuilt)  # a batch of one, as compare passes it
    table = evaluate.compare([voice], {"griffin-lim": lambda m: evaluate.griffin_lim(m, c)})
    assert table["griffin-lim"]["mel_l1"] < evaluate.scores(voice, noise)["mel_l1"]
    with pytest.raises(ValueError, match="too short"):
        evaluate.scores(voice[:100], voice[:100])


def test_griffin_lim_output_lines_up_with_the_original_audio():
    from course_utils.hifigan import evaluate

    c = configs.AudioConfig()
    n, centre = 12288, 6000
    t = np.arange(n)
    burst = (np.exp(-0.5 * ((t - centre) / 300.0) ** 2) * np.sin(2 * np.pi * 1000 * t / c.sampling_rate)).astype(np.float32)
    rebuilt = evaluate.griffin_lim(MelSpectrogram(c)(torch.from_numpy(burst)[None])[0], c)
    assert len(rebuilt) <= n
    energy = rebuilt.astype(np.float64) ** 2
    centroid = float((energy * np.arange(len(rebuilt))).sum() / energy.sum())
    assert abs(centroid - centre) < 30  # librosa's own frame centres would put it hop / 2 = 128 samples early


def test_griffin_lim_names_a_batch_or_a_wrong_mel():
    from course_utils.hifigan import evaluate

    c = configs.AudioConfig()
    log_mel = MelSpectrogram(c)(torch.zeros(2, 4096))
    with pytest.raises(ValueError, match=r"log_mel\[i\]"):
        evaluate.griffin_lim(log_mel, c)
    with pytest.raises(ValueError, match=r"\(80, frames\)"):
        evaluate.griffin_lim(log_mel[0, :40], c)


def test_benchmark_names_a_wrong_official_folder(tmp_path):
    from course_utils.hifigan import benchmark as bench

    with pytest.raises(SystemExit, match="not a clone of jik876/hifi-gan"):
        bench.official_generator(str(tmp_path), "v1")
    params, rtf = bench.real_time_factor("small", 0.2, repeats=1)
    assert params == 118_657 and rtf > 0
    assert bench.real_time_factor("small", 0.2, repeats=1, bf16=True)[1] > 0
