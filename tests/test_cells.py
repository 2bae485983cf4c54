import pytest
import torch
from torch import nn

from course_utils import cells


def unrolled(module, x):
    out, _ = module(x)
    return out


def test_tanh_cell_equals_nn_rnn():
    torch.manual_seed(0)
    rnn = nn.RNN(5, 7, batch_first=True)
    x = torch.randn(3, 6, 5)
    out, _ = cells.run_cell(cells.TanhRNNCell.from_rnn(rnn), x)
    torch.testing.assert_close(out, unrolled(rnn, x))


def test_gru_cell_reset_after_equals_nn_gru_and_before_differs():
    torch.manual_seed(0)
    gru = nn.GRU(5, 7, batch_first=True)
    x = torch.randn(3, 6, 5)
    after = cells.GRUCell.from_gru(gru)
    torch.testing.assert_close(cells.run_cell(after, x)[0], unrolled(gru, x))
    before = cells.GRUCell(5, 7, reset="before")
    before.load_state_dict(after.state_dict())
    assert not torch.allclose(cells.run_cell(before, x)[0], unrolled(gru, x), atol=1e-3)
    with pytest.raises(ValueError, match="before"):
        cells.GRUCell(5, 7, reset="inside")


def test_gru_special_cases_of_the_slide():
    torch.manual_seed(0)
    cell = cells.GRUCell(4, 3)
    x, h = torch.randn(2, 4), torch.randn(2, 3)
    H = 3
    W, U = cell.W.weight[2 * H:], cell.U.weight[2 * H:]
    bw, bu = cell.W.bias[2 * H:], cell.U.bias[2 * H:]

    def forced(z_bias, r_bias):
        with torch.no_grad():
            cell.W.bias[:H] = z_bias
            cell.W.bias[H:2 * H] = r_bias
        return cell(x, (h,))[0]

    with torch.no_grad():
        torch.testing.assert_close(forced(1e4, 1e4), torch.tanh(x @ W.T + bw + h @ U.T + bu))  # z = r = 1
        torch.testing.assert_close(forced(-1e4, 0.0), h)  # z = 0: h_t = h_{t-1}
        torch.testing.assert_close(forced(1e4, -1e4), torch.tanh(x @ W.T + bw + bu))  # z = 1, r = 0


def test_parameter_counts_reproduce_chung_et_al():
    speech = {"tanh": 400, "gru": 227, "lstm": 195}
    paper = {"tanh": 168.4e3, "gru": 168.9e3, "lstm": 169.1e3}
    for unit, H in speech.items():
        assert cells.recurrent_parameters(unit, 20, H) == pytest.approx(paper[unit], rel=5e-4)
        assert cells.matched_hidden_size(unit, 20, 169_100) == H
    music = {"tanh": 100, "gru": 46, "lstm": 36}
    for unit, H in music.items():
        assert cells.matched_hidden_size(unit, 100, 20_300) == H
    assert cells.recurrent_parameters("tanh", 5, 7) == sum(p.numel() for p in cells.TanhRNNCell(5, 7).parameters())
    lstm = cells.PeepholeLSTMCell(5, 7)
    assert cells.recurrent_parameters("lstm", 5, 7) == sum(p.numel() for p in lstm.parameters())
    with pytest.raises(ValueError, match="one of"):
        cells.recurrent_parameters("rnn", 5, 7)
    with pytest.raises(ValueError, match="cannot hold"):
        cells.matched_hidden_size("lstm", 100, 10)


def test_recurrent_net_shapes_loss_and_state():
    torch.manual_seed(0)
    mse = lambda out, y, mask: ((out - y) ** 2).mean()  # noqa: E731
    for unit in cells.UNITS:
        net = cells.RecurrentNet(unit, 4, 6, 3, loss_fn=mse)
        x, y = torch.randn(2, 5, 4), torch.randn(2, 5, 3)
        out, loss, state = net(x, y)
        assert out.shape == (2, 5, 3) and loss.ndim == 0
        first, _, s = net(x[:, :2])
        second, _, _ = net(x[:, 2:], state=s)
        torch.testing.assert_close(torch.cat([first, second], 1), out)
    with pytest.raises(ValueError, match="one of"):
        cells.RecurrentNet("transformer", 4, 6, 3)
    with pytest.raises(ValueError, match="loss_fn"):
        cells.RecurrentNet("gru", 4, 6, 3)(x, y)


def test_peephole_net_is_the_slide_lstm_and_learns_its_peepholes():
    torch.manual_seed(0)
    mse = lambda out, y, mask: ((out - y) ** 2).mean()  # noqa: E731
    net = cells.RecurrentNet("lstm_peephole", 4, 6, 3, loss_fn=mse)
    assert net.recurrent_parameters() == cells.recurrent_parameters("lstm", 4, 6, peephole=True)
    assert cells.matched_hidden_size("lstm_peephole", 100, 20_300) == 36  # the paper's music LSTM
    fused = cells.RecurrentNet("lstm", 4, 6, 3, loss_fn=mse)
    net.rnn = cells.PeepholeLSTMCell.from_lstm(fused.rnn)  # zero peepholes: the fused layer's numbers
    net.out.load_state_dict(fused.out.state_dict())
    x, y = torch.randn(2, 5, 4), torch.randn(2, 5, 3)
    torch.testing.assert_close(net(x)[0], fused(x)[0])
    peep = cells.RecurrentNet("lstm_peephole", 4, 6, 3, loss_fn=mse)
    peep(x, y)[1].backward()
    assert peep.rnn.V.grad is not None and peep.rnn.V.grad.abs().sum() > 0  # the peepholes train


def test_train_units_trains_each_unit_from_the_same_seed_and_keeps_its_best_weights():
    from course_utils.train import TrainConfig

    mse = lambda out, y, mask: ((out - y) ** 2).mean()  # noqa: E731
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 3, generator=g)
    y = x.roll(1, dims=1)  # predict the previous input: learnable by every unit
    batch_fn = lambda step: (x, y)  # noqa: E731
    valid = lambda m: {"nll": mse(m(x)[0], y, None).item()}  # noqa: E731
    made = []

    def make(unit):
        net = cells.RecurrentNet(unit, 3, 8, 3, loss_fn=mse)
        made.append(net.out.weight.detach().clone())
        return net

    config = TrainConfig(steps=30, lr=1e-2, valid_every=10, checkpoint_every=0, progress=False)
    lines = []
    models, histories = cells.train_units(("tanh", "gru"), make, batch_fn, config, valid, log=lines.append)
    assert set(models) == set(histories) == {"tanh", "gru"}
    for unit, weight in zip(("tanh", "gru"), made):  # each network built right after torch.manual_seed(0)
        torch.manual_seed(0)
        torch.testing.assert_close(cells.RecurrentNet(unit, 3, 8, 3).out.weight, weight)
    for unit, net in models.items():
        best = min(histories[unit].valid_metric("nll"))
        assert valid(net)["nll"] == pytest.approx(best)  # restored to its best validation weights
        assert best < mse(torch.zeros_like(y), y, None).item()  # and it learned something
    assert lines[0] == "tanh: 8 cells, 104 recurrent parameters" and "best validation nll" in lines[1]
