import math

import numpy as np
import pytest
import torch

from course_utils.handwriting import quality, synthesis, synthetic, train_writer, window
from course_utils.handwriting.strokes import OffsetScale
from course_utils.text import UnknownCharactersError
from course_utils.train import CheckpointError, save_checkpoint

ALPHABET = " abcdehlortw"


def small_model(seed=0, alphabet=ALPHABET, **kw):
    torch.manual_seed(seed)
    config = synthesis.SynthesisConfig(alphabet=alphabet, hidden_size=16, num_layers=2, num_mixtures=3,
                                       num_window=2, **kw)
    return synthesis.HandwritingSynthesizer(config)


def test_encode_texts_pads_and_masks():
    chars, mask = window.encode_texts(["hello", "ab"], ALPHABET, extra=1)
    assert chars.shape == (2, 6, len(ALPHABET)) and mask.tolist() == [[1] * 6, [1, 1, 1, 0, 0, 0]]
    assert chars[0, 0, ALPHABET.index("h")] == 1 and chars[0, 5].sum() == 0  # the blank after the text
    assert chars.sum().item() == 7


def test_unknown_characters_are_listed_with_the_alphabet():
    with pytest.raises(UnknownCharactersError, match=r"\['!', 'W'\]") as err:
        window.encode_texts(["hello World!"], ALPHABET)
    assert repr(ALPHABET) in str(err.value)
    with pytest.raises(ValueError, match="empty"):
        window.encode_texts(["hello", ""], ALPHABET)


def test_soft_window_matches_the_slide_equation():
    g = torch.Generator().manual_seed(0)
    B, K, U, C = 2, 3, 5, 4
    alpha, beta, kappa = torch.rand(B, K, generator=g), torch.rand(B, K, generator=g), 5 * torch.rand(B, K, generator=g)
    chars = torch.eye(C)[torch.randint(C, (B, U), generator=g)]
    mask = torch.tensor([[1.0] * 5, [1, 1, 1, 0, 0]])
    w, phi = window.soft_window(alpha, beta, kappa, chars, mask)
    for b in range(B):
        for u in range(1, U + 1):
            want = sum(alpha[b, k].item() * math.exp(-beta[b, k].item() * (kappa[b, k].item() - u) ** 2) for k in range(K))
            assert phi[b, u - 1].item() == pytest.approx(want * mask[b, u - 1].item(), rel=1e-5)
        want_w = sum(phi[b, u] * chars[b, u] for u in range(U))
        torch.testing.assert_close(w[b], want_w)
    assert phi[1, 3:].abs().sum() == 0  # padded characters get no weight


def test_forward_shapes_and_kappa_never_decreases():
    model = small_model()
    chars, mask = window.encode_texts(["hello world", "brew"], ALPHABET)
    x = torch.randn(2, 30, 3)
    y = torch.cat([torch.randn(2, 30, 2), torch.randint(2, (2, 30, 1)).float()], -1)
    y_hat, loss, state, att = model(x, chars, mask, y, torch.ones(2, 30))
    assert y_hat.shape == (2, 30, 1 + 6 * 3) and torch.isfinite(loss)
    assert att.phi.shape == (2, 30, 11) and att.kappa.shape == (2, 30, 2) and att.window.shape == (2, 30, len(ALPHABET))
    assert (att.kappa.diff(dim=1) >= 0).all() and (att.kappa > 0).all()
    loss.backward()
    assert model.window.weight.grad.abs().sum() > 0  # the loss reaches the window through w


def test_forward_in_two_pieces_equals_one_piece():
    model = small_model().eval()
    chars, mask = window.encode_texts(["hello world"], ALPHABET)
    x = torch.randn(1, 20, 3)
    whole, _, _, att = model(x, chars, mask)
    first, _, state, _ = model(x[:, :12], chars, mask)
    second, _, _, att2 = model(x[:, 12:], chars, mask, state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(att2.kappa, att.kappa[:, 12:])


def test_stopping_rule():
    phi = torch.tensor([[0.1, 0.5, 0.2, 0.0], [0.0, 0.1, 0.3, 0.0], [0.0, 0.1, 0.2, 0.0]])
    lengths = torch.tensor([2, 2, 1])  # U of each text; phi(t, U + 1) sits at index U
    assert window.has_finished(phi, lengths).tolist() == [False, True, True]


def test_write_stops_when_the_window_passes_the_end_or_at_the_step_limit():
    fast = small_model(kappa_bias=0.5)  # the window runs ahead about 1.6 characters per point
    out = synthesis.write(fast, ["hello", "or"], generator=torch.Generator().manual_seed(0))
    assert all(w.stopped and 0 < len(w.strokes) < 40 * len(w.text) for w in out)
    assert out[0].phi.shape == (len(out[0].strokes), 6) and out[0].strokes.shape[1] == 3
    slow = small_model(kappa_bias=-12.0)  # the window never moves
    with pytest.warns(UserWarning, match="1 of 1 lines reached the cap.*'hello': the window got to character 1 of 5"):
        w = synthesis.write(slow, "hello", max_steps_per_char=3, generator=torch.Generator().manual_seed(0))
    assert not w.stopped and len(w.strokes) == 15
    assert not quality.alignment_completed(w)
    with pytest.raises(UnknownCharactersError):
        synthesis.write(slow, "HELLO")
    for bad in (-1, math.nan, math.inf):
        with pytest.raises(ValueError, match="bias must be a finite number >= 0"):
            synthesis.write(slow, "hello", bias=bad)


def test_a_line_longer_than_the_cap_allows_warns_how_far_the_window_got():
    model = small_model(kappa_bias=-1.0)  # about 0.4 characters per point: 2 points per character are too few
    long_line = "hello world " * 42  # 504 characters, far beyond the lines a writer learns
    with pytest.warns(UserWarning, match=r"1 of 2 lines reached the cap of max_steps_per_char=2 .*"
                                         r"'hello world hello world hello ...': the window got to character \d+ of 504"):
        short, long = synthesis.write(model, ["or", long_line], max_steps_per_char=2,
                                      generator=torch.Generator().manual_seed(0))
    assert short.stopped and not long.stopped


def test_write_is_reproducible_with_a_generator_and_accepts_a_primer():
    model = small_model(kappa_bias=-1.0)
    a = synthesis.write(model, "hello", bias=1.0, generator=torch.Generator().manual_seed(3))
    b = synthesis.write(model, "hello", bias=1.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.strokes, b.strokes)
    primed = synthesis.write(model, "hello", prime=("abc", torch.randn(12, 3)),
                             generator=torch.Generator().manual_seed(3))
    assert primed.phi.shape[1] == 6 and (primed.kappa[0] > -5).all()  # attention over the target text only


def test_export_and_load_round_trip(tmp_path):
    model = small_model()
    path = synthesis.export_writer(model, OffsetScale(2.0, 3.0), tmp_path / "w.pt", metadata={"updates": 5})
    loaded, scale, meta = synthesis.load_writer(path)
    assert scale == OffsetScale(2.0, 3.0) and meta == {"updates": 5} and not loaded.training
    for (name, p), q in zip(model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(p.half().float(), q, msg=name)
    save_checkpoint(tmp_path / "train.pt", {"model": model.state_dict()})
    with pytest.raises(CheckpointError, match="export"):
        synthesis.load_writer(tmp_path / "train.pt")


def test_profiles():
    assert train_writer.run_settings("full").model.hidden_size == 400
    assert train_writer.run_settings("full").model.num_window == 10
    with pytest.raises(ValueError, match="quick"):
        train_writer.run_settings("fast")


def test_a_few_updates_lower_the_loss():
    from course_utils.handwriting.data import split_lines
    from course_utils.train import TrainConfig, fit

    rng = np.random.default_rng(0)
    texts = ["hello world", "brew a cold", "hold the door", "we are here"] * 2
    strokes = [synthetic.write(t, synthetic.random_style(rng)) for t in texts]
    train, _ = split_lines(texts, strokes, valid_fraction=0.2)
    model = small_model()
    history = fit(model, train_writer.random_batches(train, ALPHABET, 4), TrainConfig(steps=30, lr=1e-2, progress=False))
    assert np.mean(history.loss[-5:]) < np.mean(history.loss[:5]) - 0.3


def test_attention_figure_and_window_of_a_writing():
    import matplotlib.pyplot as plt

    from course_utils.handwriting.plots import plot_attention

    w = synthesis.write(small_model(kappa_bias=0.0), "hello", generator=torch.Generator().manual_seed(0))
    assert w.window.shape == (len(w.strokes), len(ALPHABET)) and w.alphabet == ALPHABET
    fig = plot_attention(w, OffsetScale(2.0, 2.0))
    assert len(fig.axes) == 3 and fig.axes[1].get_yticklabels()[-1].get_text() == "end"
    plt.close(fig)


def test_bucketed_batches_hold_lines_of_similar_length():
    from course_utils.handwriting.data import HandwritingSet

    lengths = [5, 50, 6, 51, 7, 52, 8, 53]
    data = HandwritingSet(["ab"] * 8, [torch.zeros(n, 3) for n in lengths], OffsetScale())
    for step in range(5):
        x, chars, char_mask, y, mask = train_writer.random_batches(data, ALPHABET, 4, seed=step)(step)
        got = sorted(mask.sum(1).int().tolist())
        assert any(got == sorted(lengths)[i:i + 4] for i in range(5))  # neighbours in length
        assert chars.shape == (4, 2, len(ALPHABET))
    x, *_ , mask = train_writer.random_batches(data, ALPHABET, 4, bucket=False)(0)
    assert x.shape[0] == 4
    with pytest.raises(ValueError, match="fewer than a batch"):
        train_writer.random_batches(data, ALPHABET, 9)


@pytest.mark.filterwarnings("ignore:.*reached the cap")
def test_finish_stroke_goes_on_to_the_next_pen_lift():
    model = small_model(kappa_bias=-1.0)
    plain = synthesis.write(model, ["hello", "low"], generator=torch.Generator().manual_seed(0))
    whole = synthesis.write(model, ["hello", "low"], generator=torch.Generator().manual_seed(0), finish_stroke=True)
    for a, b in zip(plain, whole):
        n = len(a.strokes)
        assert len(b.strokes) >= n and torch.equal(b.strokes[:n], a.strokes)  # the same line, then more
        if b.stopped:
            assert b.strokes[-1, 2] == 1.0  # it ended on a pen lift


def test_training_command_on_mixed_text_and_from_an_exported_writer(tmp_path, capsys):
    from dataclasses import replace

    from course_utils.train import CheckpointError

    first, export = tmp_path / "first.pt", tmp_path / "quick_writer.pt"
    quick = ["--profile", "quick", "--text", "mix", "--lines", "40", "--steps", "1"]
    train_writer.main(quick + ["--checkpoint", str(first), "--export", str(export)])
    assert "training lines (mix)" in capsys.readouterr().out
    writer, scale, meta = synthesis.load_writer(export)
    assert meta["text"] == "mix" and meta["updates"] == 1
    run = train_writer.run_settings("quick")
    texts = train_writer.load_data(replace(run, corpus=replace(run.corpus, num_lines=40)), text="mix")[0].texts
    assert any(any(c.isupper() or c.isdigit() for c in t) for t in texts)  # not only lower-case PTB
    second = tmp_path / "second.pt"
    train_writer.main(quick + ["--checkpoint", str(second), "--init", str(export), "--steps", "2", "--lr", "7e-4"])
    assert "starting from" in capsys.readouterr().out
    from course_utils.train import load_checkpoint

    assert load_checkpoint(second)["train_config"]["lr"] == 7e-4  # --lr reaches the optimizer's settings
    continued = tmp_path / "continued.pt"
    train_writer.main(quick + ["--checkpoint", str(second), "--init", str(export), "--steps", "2", "--lr", "7e-4",
                            "--export", str(continued)])
    meta2 = synthesis.load_writer(continued)[2]
    assert meta2["updates"] == 1 + 2 and meta2["init_updates"] == 1  # both runs counted
    assert [st["updates"] for st in meta2["stages"]] == [1, 2] and meta2["stages"][1]["lr"] == 7e-4
    assert [st["lines"] for st in meta2["stages"]] == [40, 40]  # each run's --lines
    everyday = tmp_path / "everyday.pt"
    train_writer.main(quick + ["--checkpoint", str(tmp_path / "everyday_run.pt"), "--mix", "0,0,1", "--export", str(everyday)])
    assert synthesis.load_writer(everyday)[2]["stages"][-1]["mix"] == [0.0, 0.0, 1.0]
    only_everyday = train_writer.load_data(replace(run, corpus=replace(run.corpus, num_lines=40)), text="mix",
                                        shares=(0, 0, 1))[0].texts
    assert all(any(c.isdigit() or c.isupper() for c in t) for t in only_everyday)  # every line a made-up sentence
    assert not all(any(c.isdigit() or c.isupper() for c in t) for t in texts)  # the default mix has lower-case lines
    for bad in ("1,2", "a,b,c", "0,0,0", "-1,1,1"):
        with pytest.raises(SystemExit):
            train_writer.main(quick + ["--checkpoint", str(tmp_path / "bad_mix.pt"), "--mix", bad])
        assert "--mix" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_writer.main(["--profile", "quick", "--text", "ptb", "--mix", "0,0,1", "--steps", "1"])
    assert "--mix needs --text mix" in capsys.readouterr().err
    simplex = tmp_path / "simplex.pt"
    train_writer.main(quick + ["--checkpoint", str(tmp_path / "simplex_run.pt"), "--fonts", "scripts,cursive",
                               "--export", str(simplex)])
    assert synthesis.load_writer(simplex)[2]["stages"][-1]["fonts"] == ["scripts", "cursive"]
    small = replace(run, corpus=replace(run.corpus, num_lines=40))
    every, two = (train_writer.load_data(small, text="mix", fonts=f)[0] for f in (None, ("scripts", "cursive")))
    assert every.texts == two.texts  # the same lines; the complex script's ones redrawn in a simplex font
    changed = [len(a) != len(b) for a, b in zip(every.strokes, two.strokes)]
    assert 0 < sum(changed) < len(changed)
    for bad, message in ((["--fonts", "scriptz"], "give one or more of"), (["--fonts", ""], "give one or more of")):
        with pytest.raises(SystemExit):
            train_writer.main(quick + ["--checkpoint", str(tmp_path / "bad_fonts.pt")] + bad)
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_writer.main(["--profile", "quick", "--text", "ptb", "--fonts", "scripts", "--steps", "1"])
    assert "--fonts needs --text mix" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_writer.main(quick + ["--checkpoint", str(tmp_path / "bad_lr.pt"), "--lr", "-1"])
    assert "--lr must be positive" in capsys.readouterr().err
    assert synthesis.load_writer(export)[2]["updates"] == 1
    with pytest.raises(CheckpointError, match="--profile writer"):
        train_writer.main(["--profile", "writer", "--init", str(export), "--lines", "40", "--steps", "1",
                        "--checkpoint", str(tmp_path / "third.pt")])
    with pytest.raises(CheckpointError, match="other batches"):  # the PTB run cannot resume a mixed-text one
        train_writer.main(["--profile", "quick", "--text", "ptb", "--lines", "40", "--steps", "2",
                        "--checkpoint", str(first)])


def test_snapshots_of_a_run_and_their_average(tmp_path, capsys):
    quick = ["--profile", "quick", "--text", "mix", "--lines", "40", "--checkpoint", str(tmp_path / "run.pt"),
             "--snapshot-every", "2"]  # snapshots are taken at checkpoints (every 60 updates, and the last)
    train_writer.main(quick + ["--steps", "1"])
    assert not (tmp_path / "run_snapshots").exists()  # update 1 is not a multiple of 2
    train_writer.main(quick + ["--steps", "2"])
    snaps = sorted((tmp_path / "run_snapshots").glob("update_*.pt"))
    assert [p.name for p in snaps] == ["update_2.pt"]
    a, scale, meta_a = synthesis.load_writer(snaps[0])
    assert meta_a["updates"] == 2 and meta_a["text"] == "mix"
    torch.manual_seed(1)
    other = tmp_path / "update_other.pt"  # the same network and scale, other weights
    synthesis.export_writer(synthesis.HandwritingSynthesizer(a.config), scale, other, metadata={"updates": 0})
    b = synthesis.load_writer(other)[0]
    out = tmp_path / "mean.pt"
    train_writer.main(["--average", str(snaps[0]), str(other), "--export", str(out)])
    mean, _, meta = synthesis.load_writer(out)
    assert meta["averaged"] == ["update_2.pt", "update_other.pt"] and "quality_trained" not in meta
    train_writer.main(["--average", str(snaps[0]), str(other), "--export", str(out), "--evaluate", "2"])
    assert synthesis.load_writer(out)[2]["quality_trained"]["lines"] == 2  # the mean's own quality
    for name, value in mean.state_dict().items():
        expected = (a.state_dict()[name].float() + b.state_dict()[name].float()) / 2
        torch.testing.assert_close(value.float(), expected.to(torch.float16).float())  # stored in float16
    assert not torch.equal(a.state_dict()["head.weight"], mean.state_dict()["head.weight"])
    with pytest.raises(SystemExit):
        train_writer.main(["--average", str(snaps[0])])
    assert "--average needs --export" in capsys.readouterr().err
    import dataclasses

    synthesis.export_writer(b, dataclasses.replace(scale, std_x=scale.std_x * 2), other)  # another offset scale
    with pytest.raises(ValueError, match="another network or offset scale"):
        synthesis.average_writers([snaps[0], other])


def test_the_model_cards_command_still_runs_the_training_command():
    import subprocess
    import sys

    # the cards' commands name course_utils.handwriting.synthesis; the command itself lives in train_writer
    for module in ("synthesis", "train_writer"):
        out = subprocess.run([sys.executable, "-m", f"course_utils.handwriting.{module}", "--help"],
                             capture_output=True, text=True, check=True).stdout
        assert "--snapshot-every" in out and "train_writer" in out
