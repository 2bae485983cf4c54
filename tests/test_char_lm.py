import math

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import char_lm, text
from course_utils.cells import PeepholeLSTMCell, run_cell
from course_utils.char_lm import CharLM, CharLMConfig


def test_uniform_logits_give_log2_V_bits():
    V = 50
    logits = torch.zeros(3, 7, V)
    targets = torch.randint(0, V, (3, 7))
    assert char_lm.bits_per_character(logits, targets).item() == pytest.approx(math.log2(V))


def test_bpc_matches_cross_entropy_in_bits():
    logits, targets = torch.randn(4, 5, 9), torch.randint(0, 9, (4, 5))
    nats = nn.functional.cross_entropy(logits.reshape(-1, 9), targets.reshape(-1))
    assert char_lm.bits_per_character(logits, targets).item() == pytest.approx(nats.item() / math.log(2))


def test_perplexity_formula():
    assert char_lm.perplexity(1.0, 5.6) == pytest.approx(2 ** 5.6)


@pytest.mark.parametrize("skip", [False, True])
def test_shapes_and_carried_state(skip):
    model = CharLM(CharLMConfig(vocab_size=11, hidden_size=8, num_layers=3, skip_connections=skip))
    x = torch.randint(0, 11, (2, 12))
    logits, loss, state = model(x, x)
    assert logits.shape == (2, 12, 11) and loss.ndim == 0
    # running in two halves with the carried state equals one pass
    first, _, s = model(x[:, :5])
    second, _, _ = model(x[:, 5:], state=s)
    torch.testing.assert_close(torch.cat([first, second], 1), logits)


def test_skip_connections_feed_every_layer_from_the_input():
    model = CharLM(CharLMConfig(vocab_size=5, hidden_size=4, num_layers=3, skip_connections=True))
    assert [layer.input_size for layer in model.layers] == [5, 9, 9]
    assert model.head.in_features == 12


def test_lstm_from_equations_equals_nn_lstm():
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 5, batch_first=True)
    cell = PeepholeLSTMCell.from_lstm(lstm)
    x = torch.randn(3, 9, 6)
    ours, (h, c) = run_cell(cell, x)
    theirs, (h_ref, c_ref) = lstm(x)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(c, c_ref[0])


def test_peepholes_change_the_output():
    cell = PeepholeLSTMCell(3, 4)
    x, state = torch.randn(2, 3), (torch.randn(2, 4), torch.randn(2, 4))
    before = cell(x, state)[0]
    with torch.no_grad():
        cell.V.fill_(1.0)
    assert not torch.allclose(before, cell(x, state)[0])


def test_tiny_model_overfits_a_sentence():
    torch.manual_seed(0)
    sentence = "the cat sat on the mat\n"
    vocab = text.Vocab.from_text(sentence)
    ids = vocab.encode(sentence * 20)
    model = CharLM(CharLMConfig(len(vocab), hidden_size=32, num_layers=1))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(150):
        _, loss, _ = model(ids[None, :-1], ids[None, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert char_lm.evaluate_bpc(model, ids, batch_size=1, seq_len=50) < 0.3


def test_sampling_is_reproducible_with_a_generator():
    torch.manual_seed(0)
    vocab = text.Vocab("abc \n")
    model = CharLM(CharLMConfig(len(vocab), hidden_size=8, num_layers=1))
    a = char_lm.sample(model, vocab, "ab", 30, generator=torch.Generator().manual_seed(5))
    b = char_lm.sample(model, vocab, "ab", 30, generator=torch.Generator().manual_seed(5))
    c = char_lm.sample(model, vocab, "ab", 30, generator=torch.Generator().manual_seed(6))
    assert a == b and a != c and a.startswith("ab") and len(a) == 32


def test_sampling_rejects_bad_prime_and_temperature():
    vocab = text.Vocab("abc \n")
    model = CharLM(CharLMConfig(len(vocab), hidden_size=8, num_layers=1))
    with pytest.raises(text.UnknownCharactersError, match="'Z'"):
        char_lm.sample(model, vocab, "aZ", 5)
    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            char_lm.sample(model, vocab, "a", 5, temperature=bad)
    for bad in (-5, 2.5):
        with pytest.raises(ValueError, match="length must be a whole number"):
            char_lm.sample(model, vocab, "a", bad)
    assert char_lm.sample(model, vocab, "ab", 0) == "ab"


def test_a_tiny_temperature_picks_the_most_likely_character():
    torch.manual_seed(0)
    vocab = text.Vocab("abc \n")
    model = CharLM(CharLMConfig(len(vocab), hidden_size=8, num_layers=1))
    greedy = [char_lm.sample(model, vocab, "ab", 20, temperature=t, generator=torch.Generator().manual_seed(s))
              for t, s in ((1e-3, 0), (1e-30, 1), (1e-300, 2))]
    assert len(set(greedy)) == 1 and len(greedy[0]) == 22


def test_surprisal_is_per_character_bits():
    vocab = text.Vocab("ab")
    model = CharLM(CharLMConfig(2, hidden_size=4, num_layers=1))
    bits = char_lm.surprisal(model, vocab, "abba")
    assert len(bits) == 3 and all(b > 0 for b in bits)
    assert "title=" in char_lm.surprisal_html("abba", bits)


def test_run_settings_profiles():
    quick = char_lm.run_settings("quick", 50)
    full = char_lm.run_settings("full", 50)
    assert (full.model.hidden_size, full.model.num_layers) == (1000, 1)  # Graves' PTB network
    hour = char_lm.run_settings("hour", 50)
    assert CharLM(quick.model).num_parameters() < CharLM(hour.model).num_parameters() < CharLM(full.model).num_parameters()
    assert hour.train.lr_decay_every * 4 == hour.train.steps  # halved three times within the run
    assert CharLM(quick.model).num_parameters() < CharLM(full.model).num_parameters()
    with pytest.raises(ValueError, match="quick"):
        char_lm.run_settings("fast", 50)


def test_quick_profile_buys_its_gain_with_settings_not_with_more_work_than_quick_v1():
    # the same network, and no more characters read (a CPU step costs about batch x window)
    new, old = char_lm.run_settings("quick", 50), char_lm.run_settings("quick_v1", 50)
    assert new.model == old.model
    chars = lambda r: r.train.steps * r.batch_size * r.seq_len  # noqa: E731
    assert chars(new) <= chars(old)


def test_command_line_trains_resumes_and_reports(tmp_path, capsys):
    import json

    ckpt = tmp_path / "ptb.pt"
    quick = ["--profile", "quick", "--eval-chars", "5000", "--checkpoint", str(ckpt)]
    char_lm.main(quick + ["--steps", "2"])
    summary = json.loads(ckpt.with_suffix(".json").read_text())
    assert summary["steps"] == 2 and 4.0 < summary["test_bpc"] < 6.0  # barely trained: near the unigram BPC
    char_lm.main(quick + ["--steps", "3"])
    assert "Resumed from" in capsys.readouterr().out
    assert json.loads(ckpt.with_suffix(".json").read_text())["steps"] == 3
    assert summary["train"]["autocast"] is None  # float32 unless asked
    char_lm.main(quick + ["--steps", "4", "--precision", "bfloat16"])
    again = json.loads(ckpt.with_suffix(".json").read_text())
    assert again["steps"] == 4 and again["train"]["autocast"] == "bfloat16" and 4.0 < again["test_bpc"] < 6.0


def test_command_line_trains_on_enwik8_bytes(tmp_path, monkeypatch):
    import json
    import zipfile

    from course_utils import text

    rng = np.random.default_rng(0)
    words = ["the", "[[wiki]]", "<page>", "caf\xe9", "of", "and", "{{cite}}"]
    body = " ".join(rng.choice(words, 12_000)).encode("latin-1")  # bytes above 127 too
    path = tmp_path / "enwik8.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("enwik8", body)
    monkeypatch.setattr(text, "ENWIK8_MD5", None)  # a small file of ours, not the real enwik8
    ckpt = tmp_path / "enwik8.pt"
    char_lm.main(["--data", "enwik8", "--enwik8", str(path), "--profile", "quick", "--steps", "2",
                  "--eval-chars", "2000", "--checkpoint", str(ckpt)])
    summary = json.loads(ckpt.with_suffix(".json").read_text())
    assert summary["data"] == "enwik8" and summary["steps"] == 2 and 1.0 < summary["test_bpc"] < 6.0
    with pytest.raises(text.DatasetNotFoundError, match="enwik8"):
        char_lm.main(["--data", "enwik8", "--enwik8", str(tmp_path / "missing.zip"), "--steps", "1"])
