import math

import numpy as np
import pytest
import torch

from course_utils.handwriting import recognizer as rec
from course_utils.handwriting import synthetic
from course_utils.handwriting.strokes import OffsetScale, to_stroke_list
from course_utils.text import UnknownCharactersError
from course_utils.train import CheckpointError, TrainConfig, fit
from test_iam import write_form


def lines(texts, seed=0):
    rng = np.random.default_rng(seed)
    return [synthetic.write(t, synthetic.random_style(rng)) for t in texts]


def small_config(strokes, **changes):
    scale = OffsetScale.fit(strokes)
    return rec.RecognizerConfig(**{"hidden_size": 32, "num_layers": 1, "std_x": scale.std_x, "std_y": scale.std_y,
                                   **changes})


def test_shapes_and_loss():
    texts = ["go on", "Call me at 7 pm."]
    strokes = lines(texts)
    model = rec.Recognizer(small_config(strokes, num_layers=2))
    x, lengths, targets, target_lengths = rec.make_batch(texts, strokes, model.config.alphabet)
    assert x.shape == (2, max(len(s) for s in strokes), 3) and targets.shape == (2, 16)
    logits, loss = model(x, lengths, targets, target_lengths)
    assert logits.shape == (2, math.ceil(x.shape[1] / 4), len(model.config.alphabet) + 1)
    assert loss.ndim == 0 and math.isfinite(loss.item()) and loss.item() > 0
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model(x, lengths)[1] is None


def test_a_line_reads_the_same_alone_and_padded_in_a_batch():
    strokes = lines(["a short line", "a much longer line than the first"])
    model = rec.Recognizer(small_config(strokes, num_layers=2)).eval()
    x, lengths = rec.pad_lines([torch.from_numpy(s) for s in strokes])
    alone, _ = model(x[:1, :lengths[0]], lengths[:1])
    together, _ = model(x, lengths)
    torch.testing.assert_close(together[0, :alone.shape[1]], alone[0], atol=1e-5, rtol=1e-5)


def test_greedy_decode_merges_repeats_then_drops_blanks():
    alphabet = "ab"  # classes: 0 blank, 1 'a', 2 'b'
    paths = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 0], [2, 0, 2, 1, 1, 1, 1, 1]])
    logits = torch.nn.functional.one_hot(paths, 3).float() * 5.0
    assert rec.greedy_decode(logits, torch.tensor([8, 3]), alphabet) == ["aab", "bb"]
    assert rec.greedy_decode(torch.zeros(1, 4, 3), torch.tensor([4]), alphabet) == [""]  # ties: the blank


def test_beam_search_sums_alignments_where_the_best_path_does_not():
    alphabet = "a"
    # p(blank) = 0.6, p('a') = 0.4 at both steps: the best path "--" reads "" (0.36), but "a" has the paths
    # aa, a-, -a: 0.16 + 0.24 + 0.24 = 0.64
    logits = torch.log(torch.tensor([[[0.6, 0.4], [0.6, 0.4]]]))
    assert rec.greedy_decode(logits, torch.tensor([2]), alphabet) == [""]
    assert rec.beam_decode(logits, torch.tensor([2]), alphabet) == ["a"]
    # a wide beam finds the likeliest labelling, checked by summing all 3^5 paths of random logits
    import itertools

    for seed in range(5):
        logits = torch.randn(1, 5, 3, generator=torch.Generator().manual_seed(seed))
        y, totals = logits.softmax(-1)[0], {}
        for path in itertools.product(range(3), repeat=5):
            text = "".join("ab"[c - 1] for i, c in enumerate(path) if c and (i == 0 or c != path[i - 1]))
            totals[text] = totals.get(text, 0.0) + float(torch.prod(y[torch.arange(5), list(path)]))
        assert rec.beam_decode(logits, torch.tensor([5]), "ab", beam_width=64) == [max(totals, key=totals.get)]
    paths = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 0]])  # clear-cut logits: both decoders agree
    clear = torch.nn.functional.one_hot(paths, 3).float() * 10.0
    assert rec.beam_decode(clear, torch.tensor([8]), "ab", beam_width=4) == ["aab"]
    with pytest.raises(ValueError, match="beam_width"):
        rec.beam_decode(clear, torch.tensor([8]), "ab", beam_width=0)


def test_ctc_loss_equals_the_sum_over_alignments_by_hand():
    logits = torch.randn(1, 2, 3, generator=torch.Generator().manual_seed(0))
    y = logits.softmax(-1)[0]  # (T=2, classes: blank, a, b)
    # target "a" in 2 steps: the paths a a, a -, - a
    p = y[0, 1] * y[1, 1] + y[0, 1] * y[1, 0] + y[0, 0] * y[1, 1]
    loss = rec.ctc_loss(logits, torch.tensor([2]), torch.tensor([[1]]), torch.tensor([1]))
    torch.testing.assert_close(loss, -torch.log(p))
    # target "aa" needs a blank between: 3 steps at least, exactly one path a - a
    logits3 = torch.randn(1, 3, 3, generator=torch.Generator().manual_seed(1))
    y3 = logits3.softmax(-1)[0]
    loss3 = rec.ctc_loss(logits3, torch.tensor([3]), torch.tensor([[1, 1]]), torch.tensor([2]))
    torch.testing.assert_close(loss3, -torch.log(y3[0, 1] * y3[1, 0] * y3[2, 1]) / 2)  # per character
    assert rec.min_steps("aa") == 3 and rec.min_steps("Hello") == 6


def test_edit_distance_and_cer_by_hand():
    assert rec.edit_distance("kitten", "sitting") == 3
    assert rec.edit_distance("", "abc") == 3 and rec.edit_distance("abc", "abc") == 0
    # over a set: (3 + 0 + 1) errors / (6 + 2 + 4) reference characters
    assert rec.character_error_rate(["kitten", "ab", "abcd"], ["sitting", "ab", "abd"]) == pytest.approx(4 / 12)
    with pytest.raises(ValueError, match="as many hypotheses"):
        rec.character_error_rate(["a"], [])


def test_a_tiny_recognizer_learns_to_read_three_lines():
    texts = ["go on", "it is", "we can"]
    strokes = lines(texts)
    torch.manual_seed(0)
    model = rec.Recognizer(small_config(strokes))
    assert model.cer(texts, strokes) > 0.5
    batch = rec.make_batch(texts, strokes, model.config.alphabet)
    fit(model, lambda step: batch, TrainConfig(steps=200, lr=1e-2, valid_every=0, checkpoint_every=0, progress=False))
    assert model.read(strokes) == texts
    assert model.read(strokes[0]) == "go on" and model.read(strokes, beam_width=4) == texts
    assert model.cer(texts, strokes) == 0.0


def test_save_and_load_round_trip(tmp_path):
    texts = ["round trip", "Trip 2"]
    strokes = lines(texts)
    model = rec.Recognizer(small_config(strokes)).eval()
    path = rec.save_recognizer(model, tmp_path / "r.pt", metadata={"cer": 0.5})
    loaded = rec.load_recognizer(path)
    assert loaded.config == model.config and loaded.metadata == {"cer": 0.5} and not loaded.training
    assert loaded.read(strokes) == model.read(strokes)
    x, lengths = rec.pad_lines([torch.from_numpy(s) for s in strokes])
    torch.testing.assert_close(loaded(x, lengths)[0], model(x, lengths)[0], atol=2e-2, rtol=2e-2)  # float16 weights
    # a training checkpoint of train.fit loads too (full-precision weights and the config)
    batch = rec.make_batch(texts, strokes, model.config.alphabet)
    fit(model, lambda step: batch, TrainConfig(steps=1, progress=False), checkpoint=tmp_path / "c.pt",
        model_config=model.config)
    torch.testing.assert_close(rec.load_recognizer(tmp_path / "c.pt")(x, lengths)[0], model.eval()(x, lengths)[0])


def test_bad_input_says_what_to_do(tmp_path):
    strokes = lines(["fine"])
    model = rec.Recognizer(small_config(strokes))
    with pytest.raises(UnknownCharactersError, match=r"cannot read: \['é', '€'\]"):
        model.cer(["café €"], strokes)
    with pytest.raises(UnknownCharactersError):
        rec.encode_targets(["tab\there"], model.config.alphabet)
    with pytest.raises(ValueError, match="has no points"):
        model.read(np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(T, 3\)"):
        model.read(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="pair up"):
        model.cer(["a", "b"], strokes)
    x, lengths, targets, target_lengths = rec.make_batch(["a much longer text than these points"], [strokes[0][:20]],
                                                         model.config.alphabet)
    with pytest.raises(ValueError, match="too short for their text.*CTC needs 36"):
        model(x, lengths, targets, target_lengths)


def test_missing_or_wrong_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint"):
        rec.load_recognizer(tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        rec.load_recognizer(tmp_path / "junk.pt")
    from course_utils.handwriting.synthesis import pretrained_path

    with pytest.raises(CheckpointError, match="not a recognizer"):
        rec.load_recognizer(pretrained_path())  # the writer's file


def iam_form(root, form, texts, seed):
    """An IAM-OnDB form of lines written by synthetic writers, in tablet units (10 per font unit, y down)."""
    rng = np.random.default_rng(seed)
    strokes = []
    for text in texts:  # the fonts have no accents: an 'é' is written as an 'e'
        line = to_stroke_list(synthetic.write(text.replace("é", "e"), synthetic.random_style(rng)))
        strokes.append([[(int(10 * x + 1000), int(1500 - 10 * y)) for x, y in s] for s in line])
    write_form(root, form=form, lines=strokes, texts=texts)


def test_training_command_on_iam_format_files(tmp_path, capsys):
    iam_form(tmp_path / "iam", "a01-000u", ["A MOVE to stop Mr.", "nominating any more", "Labour life Peers"], 0)
    iam_form(tmp_path / "iam", "a01-001w", ["is to be made at a", "meeting of Labour", "M Ps tomorrow. café"], 1)
    with pytest.warns(UserWarning, match="1 of 6 IAM lines left out.*café"):
        rec.main(["--iam", str(tmp_path / "iam"), "--steps", "2", "--batch-size", "2", "--checkpoint",
                  str(tmp_path / "c.pt"), "--export", str(tmp_path / "r.pt"), "--evaluate", "5"])
    out = capsys.readouterr().out
    assert "IAM-OnDB" in out and "4 training lines, 1 validation lines" in out and "IAM validation:" in out
    model = rec.load_recognizer(tmp_path / "r.pt")
    assert model.metadata["data"] == "iam" and model.metadata["updates"] == 2
    with pytest.warns(UserWarning, match="café"):
        train, _ = rec.iam_sets(tmp_path / "iam", rec.RecognizerConfig())
    scale = OffsetScale.fit([s.numpy() for s in train.strokes])  # tablet units: about 10x the font's
    assert model.config.std_x == pytest.approx(scale.std_x) and model.config.std_x > 20
    assert isinstance(model.read(train.strokes[0].numpy()), str)


def test_training_command_resumes_on_synthetic_writers(tmp_path, capsys, monkeypatch):
    small = rec.RecognizerRun(rec.RecognizerConfig(hidden_size=16, num_layers=1), rec.TextMix(),
                              TrainConfig(steps=5, valid_every=0, checkpoint_every=1, progress=False),
                              batch_size=2, valid_lines=2, scale_lines=4)
    monkeypatch.setattr(rec, "run_settings", lambda: small)
    args = ["--checkpoint", str(tmp_path / "c.pt"), "--export", str(tmp_path / "r.pt")]
    rec.main(["--steps", "1"] + args)
    rec.main(["--steps", "2", "--evaluate", "4"] + args)
    out = capsys.readouterr().out
    assert "Resumed from" in out and "at step 1" in out and '"cer_ptb"' in out
    assert rec.load_recognizer(tmp_path / "r.pt").metadata["updates"] == 2
