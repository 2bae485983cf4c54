"""Recurrent units written from the slides' equations, step by step, for reading and checking.

The models train with PyTorch's fused `nn.LSTM`; these cells show what it computes and
add what it lacks (the peephole weights V of the slide's LSTM).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .train import History, KeepBest, TrainConfig, fit


class PeepholeLSTMCell(nn.Module):
    """One LSTM step as on the slide (Graves 2013, eq. 7-11), with diagonal peepholes V_i, V_f, V_o.

        i_t  = sigma(W_i x_t + U_i h_{t-1} + V_i c_{t-1} + b_i)
        f_t  = sigma(W_f x_t + U_f h_{t-1} + V_f c_{t-1} + b_f)
        c~_t = tanh(W_c x_t + U_c h_{t-1} + b_c)
        c_t  = f_t c_{t-1} + i_t c~_t
        o_t  = sigma(W_o x_t + U_o h_{t-1} + V_o c_t + b_o)
        h_t  = o_t tanh(c_t)

    Weights are stacked in PyTorch's gate order (i, f, c~, o) so they copy to and from `nn.LSTM`.
    """

    def __init__(self, input_size: int, hidden_size: int, peephole: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        self.W = nn.Linear(input_size, 4 * hidden_size)  # W_i, W_f, W_c, W_o and the biases
        self.U = nn.Linear(hidden_size, 4 * hidden_size, bias=False)  # U_i, U_f, U_c, U_o
        # V_i, V_f, V_o: diagonal matrices, stored as vectors (zero: no peepholes, as nn.LSTM)
        self.V = nn.Parameter(torch.zeros(3, hidden_size), requires_grad=peephole)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """x: (B, I), state (h, c) each (B, H) -> (h, c)."""
        h, c = state
        gi, gf, gc, go = (self.W(x) + self.U(h)).chunk(4, dim=-1)  # each (B, H)
        i = torch.sigmoid(gi + self.V[0] * c)
        f = torch.sigmoid(gf + self.V[1] * c)
        c_new = f * c + i * torch.tanh(gc)
        o = torch.sigmoid(go + self.V[2] * c_new)
        return o * torch.tanh(c_new), c_new

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, layer: int = 0) -> "PeepholeLSTMCell":
        """A cell with the weights of one layer of `lstm` and zero peepholes: computes the same."""
        cell = cls(lstm.input_size if layer == 0 else lstm.hidden_size, lstm.hidden_size, peephole=False)
        with torch.no_grad():
            cell.W.weight.copy_(getattr(lstm, f"weight_ih_l{layer}"))
            cell.U.weight.copy_(getattr(lstm, f"weight_hh_l{layer}"))
            bias = torch.zeros(4 * lstm.hidden_size)
            if lstm.bias:
                bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
            cell.W.bias.copy_(bias)
        return cell


def run_cell(cell: nn.Module, x: torch.Tensor, state=None) -> tuple[torch.Tensor, tuple]:
    """Unroll a cell over time: x (B, T, I) -> outputs (B, T, H), final state."""
    B, T, _ = x.shape
    if state is None:
        zeros = x.new_zeros(B, cell.hidden_size)
        state = (zeros, zeros)
    outputs = []
    for t in range(T):
        state = cell(x[:, t], state)
        outputs.append(state[0])
    return torch.stack(outputs, dim=1), state


class TanhRNNCell(nn.Module):
    """The slide's plain recurrent unit: h_t = g(W x_t + U h_{t-1}) with g = tanh (and a bias)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.W = nn.Linear(input_size, hidden_size)
        self.U = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...]):
        """x: (B, I), state (h,) with h (B, H) -> (h,)."""
        return (torch.tanh(self.W(x) + self.U(state[0])),)

    @classmethod
    def from_rnn(cls, rnn: nn.RNN) -> "TanhRNNCell":
        cell = cls(rnn.input_size, rnn.hidden_size)
        with torch.no_grad():
            cell.W.weight.copy_(rnn.weight_ih_l0)
            cell.U.weight.copy_(rnn.weight_hh_l0)
            cell.W.bias.copy_(rnn.bias_ih_l0 + rnn.bias_hh_l0)
        return cell


class GRUCell(nn.Module):
    """The slide's gated recurrent unit (Cho et al. 2014; Chung et al. 2014):

        z_t  = sigma(W_z x_t + U_z h_{t-1})             update gate
        r_t  = sigma(W_r x_t + U_r h_{t-1})             reset gate
        h~_t = tanh(W x_t + U (r_t * h_{t-1}))          reset="before" (the slide's first form)
        h~_t = tanh(W x_t + r_t * (U h_{t-1}))          reset="after"  (the slide's "or": PyTorch's nn.GRU)
        h_t  = (1 - z_t) h_{t-1} + z_t h~_t

    PyTorch's `nn.GRU` writes h_t = (1 - z') h~_t + z' h_{t-1}: its z' is the slide's 1 - z, so
    `from_gru` negates the update gate's weights (sigma(-a) = 1 - sigma(a)).
    """

    def __init__(self, input_size: int, hidden_size: int, reset: str = "before"):
        super().__init__()
        if reset not in ("before", "after"):
            raise ValueError(f"reset={reset!r}: use 'before' (U (r * h)) or 'after' (r * (U h)).")
        self.hidden_size, self.reset = hidden_size, reset
        self.W = nn.Linear(input_size, 3 * hidden_size)  # W_z, W_r, W and the input biases
        self.U = nn.Linear(hidden_size, 3 * hidden_size)  # U_z, U_r, U and the recurrent biases

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...]):
        """x: (B, I), state (h,) with h (B, H) -> (h,)."""
        h, H = state[0], self.hidden_size
        wz, wr, wh = self.W(x).chunk(3, dim=-1)  # each (B, H)
        uz, ur = F.linear(h, self.U.weight[:2 * H], self.U.bias[:2 * H]).chunk(2, dim=-1)
        z, r = torch.sigmoid(wz + uz), torch.sigmoid(wr + ur)
        U, b = self.U.weight[2 * H:], self.U.bias[2 * H:]
        if self.reset == "before":
            h_tilde = torch.tanh(wh + F.linear(r * h, U, b))
        else:
            h_tilde = torch.tanh(wh + r * F.linear(h, U, b))
        return ((1 - z) * h + z * h_tilde,)

    @classmethod
    def from_gru(cls, gru: nn.GRU) -> "GRUCell":
        """A reset="after" cell with the weights of `gru` (one layer): computes the same."""
        cell = cls(gru.input_size, gru.hidden_size, reset="after")
        with torch.no_grad():
            # PyTorch's gate order is (r, z, n); ours is (z, r, h~) with z = 1 - PyTorch's z
            r, z, n = (slice(i * gru.hidden_size, (i + 1) * gru.hidden_size) for i in range(3))
            for ours, suffix in ((cell.W, "ih_l0"), (cell.U, "hh_l0")):
                weight, bias = getattr(gru, f"weight_{suffix}"), getattr(gru, f"bias_{suffix}")
                ours.weight.copy_(torch.cat([-weight[z], weight[r], weight[n]]))
                ours.bias.copy_(torch.cat([-bias[z], bias[r], bias[n]]))
        return cell


# ---------------------------------------------------------------- parameter budgets
UNITS = ("tanh", "lstm", "gru", "lstm_peephole")  # the last: the slide's LSTM, peepholes and all


def recurrent_parameters(unit: str, input_size: int, hidden_size: int, *, peephole: bool = True) -> int:
    """Parameters of one recurrent layer (input and recurrent weights, biases, LSTM peepholes), no output layer.

    Chung et al. (2014) count this way: with an input of 20 samples, tanh 400, GRU 227 and LSTM 195
    give their 168.4k, 168.9k and 169.1k.
    """
    I, H = input_size, hidden_size
    if unit == "lstm_peephole":
        return recurrent_parameters("lstm", I, H, peephole=True)
    per_block = I * H + H * H + H  # W, U and a bias for one gate or the candidate
    if unit == "tanh":
        return per_block
    if unit == "gru":
        return 3 * per_block
    if unit == "lstm":
        return 4 * per_block + (3 * H if peephole else 0)
    raise ValueError(f"unit={unit!r}: use one of {UNITS}.")


def matched_hidden_size(unit: str, input_size: int, budget: int, *, peephole: bool = True) -> int:
    """The largest hidden size whose recurrent layer has at most `budget` parameters."""
    if budget < recurrent_parameters(unit, input_size, 1, peephole=peephole):
        raise ValueError(f"a budget of {budget} parameters cannot hold even one {unit} unit.")
    H = 1
    while recurrent_parameters(unit, input_size, H + 1, peephole=peephole) <= budget:
        H += 1
    return H


# ---------------------------------------------------------------- a unit and an output layer
class RecurrentNet(nn.Module):
    """One recurrent layer of `unit` ('tanh', 'lstm' or 'gru') and a linear output layer, as in Chung
    et al. (2014): ``forward(x, targets=None, mask=None, state=None) -> (outputs, loss, state)``.

    x (B, T, I) -> outputs (B, T, O); `loss_fn(outputs, targets, mask)` gives the loss to train on.
    It runs PyTorch's fused layers for speed: `nn.RNN`, `nn.LSTM` (without the peepholes of the
    slide's LSTM) and `nn.GRU` (the reset-after form), which the cells above reproduce step by step.
    'lstm_peephole' is the slide's LSTM itself (`PeepholeLSTMCell`, unrolled in Python: several times
    slower per update than the fused layers).
    """

    def __init__(self, unit: str, input_size: int, hidden_size: int, output_size: int, loss_fn=None):
        super().__init__()
        layers = {"tanh": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
        if unit not in UNITS:
            raise ValueError(f"unit={unit!r}: use one of {UNITS}.")
        self.unit, self.loss_fn, self.hidden_size = unit, loss_fn, hidden_size
        self.rnn = (PeepholeLSTMCell(input_size, hidden_size) if unit == "lstm_peephole"
                    else layers[unit](input_size, hidden_size, batch_first=True))
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, x, targets=None, mask=None, state=None):
        h, state = run_cell(self.rnn, x, state) if self.unit == "lstm_peephole" else self.rnn(x, state)
        outputs = self.out(h)
        loss = None
        if targets is not None:
            if self.loss_fn is None:
                raise ValueError("this network has no loss_fn: pass one to compute a loss.")
            loss = self.loss_fn(outputs, targets, mask)
        return outputs, loss, state

    def recurrent_parameters(self) -> int:
        return sum(p.numel() for p in self.rnn.parameters())


# ---------------------------------------------------------------- training one network per unit
def train_units(units, make_net: Callable[[str], "RecurrentNet"], batch_fn, config: TrainConfig,
                valid_fn: Callable[[nn.Module], dict[str, float]], *, metric: str = "nll", seed: int = 0,
                log: Callable[[str], None] | None = print) -> tuple[dict[str, nn.Module], dict[str, History]]:
    """Chung et al.'s comparison: for each unit, a network `make_net(unit)` built after `torch.manual_seed(seed)`,
    trained by `train.fit` on the same batches `batch_fn(step)` with `config`, validated by `valid_fn`, and
    restored to its weights of lowest validation `metric`. Returns ({unit: network}, {unit: history})."""
    models, histories = {}, {}
    for unit in units:
        torch.manual_seed(seed)
        net = make_net(unit)
        if log:
            log(f"{unit}: {net.hidden_size} cells, {net.recurrent_parameters():,} recurrent parameters")
        best = KeepBest(valid_fn, metric)
        histories[unit] = fit(net, batch_fn, config, valid_fn=best)
        models[unit] = best.restore(net)
        if log:
            log(f"   {histories[unit].seconds[-1]:.0f} s; best validation {metric} {best.best:.2f}")
    return models, histories
