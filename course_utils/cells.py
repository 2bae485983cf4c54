"""Recurrent units written from the slides' equations, step by step, for reading and checking.

The models train with PyTorch's fused `nn.LSTM`; these cells show what it computes and
add what it lacks (the peephole weights V of the slide's LSTM).
"""
from __future__ import annotations

import torch
from torch import nn


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
