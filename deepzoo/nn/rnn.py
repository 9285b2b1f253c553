"""Recurrent networks (plain RNN, GRU, LSTM) written out gate by gate.

These are for reading, not for speed. ``torch.nn.RNN / GRU / LSTM`` call one fused kernel (cuDNN
on a GPU, oneDNN or ATen's own loop on a CPU) that runs the whole sequence, all layers and both
directions at once with the weights packed together, so they are much faster and should stay the
default for training. Here every gate is a line of tensor maths and the time loop is a Python
``for``; autograd derives the backward pass. The parameter names, shapes, gate order and
initialisation are identical to the torch twins, so state dicts load either way, and
``tests/test_rnn_cells.py`` checks that outputs, final states and all gradients agree.

Backpropagation through time (BPTT). Unrolled over T steps, a recurrent net is a T-layer
feed-forward net whose layers share weights, and autograd simply backpropagates through that
unrolled graph. The gradient reaching h_{t-k} from h_t is a product of k Jacobians,
dh_t/dh_{t-k} = prod_{j} dh_j/dh_{j-1}; for the plain RNN each factor is
diag(1 - h_j^2) W_hh, so the product shrinks or grows geometrically with k (roughly like the
k-th power of W_hh's largest singular value times the tanh slopes): gradients vanish, and the net
cannot learn long-range dependencies, or explode (the usual fix is gradient clipping). The LSTM
updates its cell state additively, c_t = f_t * c_{t-1} + i_t * g_t, so along the cell path the
Jacobian dc_t/dc_{t-1} is just diag(f_t): when the forget gate is near 1 the gradient passes back
almost unchanged over many steps. The GRU's h' = (1 - z) * n + z * h gives the same kind of path,
diag(z), through its update gate.

Shapes: B = batch, T = time steps, I = input features, H = hidden size, L = layers,
D = directions (2 if bidirectional else 1).
"""

import math

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from deepzoo.errors import DeepzooError
from deepzoo.nn.layers import dropout, sigmoid, tanh

MODES = ("rnn", "gru", "lstm")
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # how many H-row blocks are stacked in weight_ih / weight_hh


# ----------------------------------------------------------------------------------------------
# One time step. gi = W_ih x + b_ih, the input's share of every gate, is passed in already
# computed: it does not depend on h, so a whole sequence's worth can be done in one matmul, and
# only the recurrent share W_hh h + b_hh has to be computed step by step.
# ----------------------------------------------------------------------------------------------


def _affine(x, weight, bias):
    """x W^T + b (b may be None)."""
    y = x @ weight.T
    return y if bias is None else y + bias


def rnn_step(gi, h, weight_hh, bias_hh):
    """Elman RNN step: h' = tanh(W_ih x + b_ih + W_hh h + b_hh), with gi = W_ih x + b_ih."""
    return tanh(gi + _affine(h, weight_hh, bias_hh))


def gru_step(gi, h, weight_hh, bias_hh):
    """GRU step, with gi = W_ih x + b_ih; the stacked rows are in torch's order r, z, n:

        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset gate
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update gate
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))       candidate state
        h' = (1 - z) * n + z * h
    """
    gh = _affine(h, weight_hh, bias_hh)
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = sigmoid(i_r + h_r)
    z = sigmoid(i_z + h_z)
    n = tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def lstm_step(gi, h, c, weight_hh, bias_hh):
    """LSTM step, with gi = W_ih x + b_ih; the stacked rows are in torch's order i, f, g, o:

        i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)          input gate
        f  = sigmoid(W_if x + b_if + W_hf h + b_hf)          forget gate
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)             candidate values
        o  = sigmoid(W_io x + b_io + W_ho h + b_ho)          output gate
        c' = f * c + i * g
        h' = o * tanh(c')

    Returns (h', c').
    """
    gates = gi + _affine(h, weight_hh, bias_hh)
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, g, o = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
    c_new = f * c + i * g
    return o * tanh(c_new), c_new


# ----------------------------------------------------------------------------------------------
# Cells: one time step as a module
# ----------------------------------------------------------------------------------------------


class _CellBase(nn.Module):
    """Parameters as in ``torch.nn.RNNCellBase``: weight_ih (G*H, I), weight_hh (G*H, H),
    bias_ih (G*H,), bias_hh (G*H,), where G is the number of stacked gates, all drawn from
    U(-1/sqrt(H), 1/sqrt(H))."""

    _mode = None

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        _check_sizes(input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        rows = _GATES[self._mode] * hidden_size
        kw = dict(device=device, dtype=dtype)
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows, **kw))
            self.bias_hh = nn.Parameter(torch.empty(rows, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"

    def _prepare(self, input, hx, n_states):
        """Check shapes; add a batch dimension to unbatched input; zero initial state if hx is None."""
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise DeepzooError(f"{type(self).__name__}: expected input of shape (B, {self.input_size}) or "
                               f"({self.input_size},), got {tuple(input.shape)}")
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            states = [zeros] * n_states
        else:
            states = list(hx) if n_states == 2 else [hx]
            want = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)
            for s in states:
                if tuple(s.shape) != want:
                    raise DeepzooError(f"{type(self).__name__}: expected hidden state of shape {want}, "
                                       f"got {tuple(s.shape)}")
            if unbatched:
                states = [s.unsqueeze(0) for s in states]
        return x, states, unbatched


class RNNCell(_CellBase):
    """One step of the plain (Elman) RNN:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh).

    The new state mixes the current input with the previous state and squashes the result into
    (-1, 1). Everything the net remembers must pass through that one matrix W_hh and one tanh at
    every step, which is why its gradients vanish or explode over long sequences.

    input (B, I) or (I,), hx (B, H) or (H,) (zeros if None) -> h' of the same shape as hx.
    """

    _mode = "rnn"

    def forward(self, input, hx=None):
        x, (h,), unbatched = self._prepare(input, hx, 1)
        h = rnn_step(_affine(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h.squeeze(0) if unbatched else h


class GRUCell(_CellBase):
    """One step of the gated recurrent unit (weights stacked in torch's order r, z, n):

        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    The update gate z decides how much of the past to keep: where z is near 1 the old state is
    copied through unchanged, where it is near 0 the state is replaced by the candidate n. The
    reset gate r decides how much of the past to use when forming that candidate: with r near 0
    the candidate is computed from the input alone, as if the sequence started afresh. Note that
    r multiplies W_hn h + b_hn (after the matmul, as in torch and cuDNN), not h itself.

    input (B, I) or (I,), hx (B, H) or (H,) (zeros if None) -> h' of the same shape as hx.
    """

    _mode = "gru"

    def forward(self, input, hx=None):
        x, (h,), unbatched = self._prepare(input, hx, 1)
        h = gru_step(_affine(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h.squeeze(0) if unbatched else h


class LSTMCell(_CellBase):
    """One step of the long short-term memory (weights stacked in torch's order i, f, g, o):

        i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
        f  = sigmoid(W_if x + b_if + W_hf h + b_hf)
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
        o  = sigmoid(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g
        h' = o * tanh(c')

    The cell state c is a conveyor belt running along the sequence: at each step the forget gate
    f decides how much of it to keep, the input gate i how much of the new candidate values g to
    write onto it, and the output gate o how much of it (squashed by tanh) to show as the hidden
    state h. Because c is updated by addition rather than by a matrix product, the gradient
    dc'/dc is just diag(f), so it can flow back over many steps without vanishing.

    input (B, I) or (I,), hx = (h, c), each (B, H) or (H,) (zeros if None) -> (h', c').
    """

    _mode = "lstm"

    def forward(self, input, hx=None):
        x, (h, c), unbatched = self._prepare(input, hx, 2)
        h, c = lstm_step(_affine(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh, self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


# ----------------------------------------------------------------------------------------------
# Multi-layer, bidirectional networks over whole sequences
# ----------------------------------------------------------------------------------------------


def _check_sizes(input_size, hidden_size):
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise DeepzooError(f"{name} must be a positive integer, got {value!r}")


def _reverse_within(seq, rev_index):
    """Reverse each sequence of seq (B, T, F) within its own length.

    rev_index[b, t] = len_b - 1 - t for the real steps t < len_b and t for the padding, so
    sequence b's last real step lands at t = 0 and the padding stays where it is. Applying it
    twice gives back the original. With no lengths (every sequence full) it is a plain flip.
    """
    if rev_index is None:
        return seq.flip(1)
    return seq.gather(1, rev_index.unsqueeze(-1).expand_as(seq))


class RNN(nn.Module):
    """A stack of recurrent layers, optionally bidirectional, with mode in {"rnn", "gru", "lstm"}.

    Mirrors ``torch.nn.RNN / GRU / LSTM``: the same parameter names (weight_ih_l{k},
    weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, with the suffix _reverse for the backward
    direction), shapes, gate order and initialisation, so ``load_state_dict`` works either way.
    Note the default ``batch_first=True`` (torch's default is False).

    forward(input, hx=None):
      input: (B, T, I) if batch_first else (T, B, I); (T, I) for a single unbatched sequence; or a
        ``PackedSequence`` of variable-length sequences.
      hx: initial state (L*D, B, H) (zeros if None); for "lstm" a pair (h_0, c_0).
      returns (output, h_n), or (output, (h_n, c_n)) for "lstm":
        output: (B, T, D*H) (or (T, B, D*H)), the last layer's hidden state at every step, both
          directions concatenated; a PackedSequence if the input was one.
        h_n, c_n: (L*D, B, H), the final states, ordered layer 0 forward, layer 0 backward,
          layer 1 forward, ...

    Layer k > 0 reads layer k-1's output (D*H features); in training mode dropout with
    probability ``dropout`` is applied to every layer's output except the last.

    Variable lengths. A PackedSequence is unpacked into a padded batch plus lengths, and at time
    step t only the rows with t < length are updated (the others keep their state), so each
    row's final state is the one after its own last real step; the output is packed again, so
    ``pad_packed_sequence`` shows zeros past each sequence's end, as with torch.
    The backward direction reverses each sequence within its own length (an index gather),
    runs forwards, and reverses the outputs back, so it starts at each sequence's last real
    token, not at the padding.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bidirectional=False,
                 batch_first=True, dropout=0.0, bias=True, device=None, dtype=None):
        super().__init__()
        if mode not in MODES:
            raise DeepzooError(f"unknown recurrent mode {mode!r}; choose one of: {', '.join(MODES)}")
        _check_sizes(input_size, hidden_size)
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
            raise DeepzooError(f"num_layers must be a positive integer, got {num_layers!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise DeepzooError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bias = bias
        directions = 2 if bidirectional else 1
        rows = _GATES[mode] * hidden_size
        kw = dict(device=device, dtype=dtype)
        # Registered in torch's order (layer by layer, forward then reverse, w_ih, w_hh, b_ih, b_hh),
        # so reset_parameters draws the same numbers as torch under the same seed.
        self._weight_names = []  # [layer][direction] -> (w_ih, w_hh, b_ih, b_hh) names (None if no bias)
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else directions * hidden_size
            per_direction = []
            for suffix in ("", "_reverse")[:directions]:
                names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
                setattr(self, names[0], nn.Parameter(torch.empty(rows, layer_input, **kw)))
                setattr(self, names[1], nn.Parameter(torch.empty(rows, hidden_size, **kw)))
                if bias:
                    names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
                    setattr(self, names[2], nn.Parameter(torch.empty(rows, **kw)))
                    setattr(self, names[3], nn.Parameter(torch.empty(rows, **kw)))
                else:
                    names += [None, None]
                per_direction.append(tuple(names))
            self._weight_names.append(per_direction)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as in torch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def extra_repr(self):
        s = f"{self.mode!r}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        s += f", bidirectional={self.bidirectional}, batch_first={self.batch_first}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if not self.bias:
            s += ", bias=False"
        return s

    # -- forward -------------------------------------------------------------------------------

    def forward(self, input, hx=None):
        packed = isinstance(input, PackedSequence)
        if packed:
            # Padded (B, T, I) in the caller's original batch order, and each row's length.
            x, lengths = pad_packed_sequence(input, batch_first=True)
            unbatched = False
        else:
            if input.dim() not in (2, 3):
                raise DeepzooError(f"{type(self).__name__}: expected a 3-D input (batched) or 2-D "
                                   f"(unbatched), got shape {tuple(input.shape)}")
            unbatched = input.dim() == 2
            if unbatched:
                x = input.unsqueeze(0)
            else:
                x = input if self.batch_first else input.transpose(0, 1)
            lengths = None
        if x.shape[-1] != self.input_size:
            raise DeepzooError(f"{type(self).__name__}: expected {self.input_size} input features, "
                               f"got {x.shape[-1]}")
        batch, steps = x.shape[0], x.shape[1]
        h0, c0 = self._initial_state(hx, batch, unbatched, x)

        mask = rev_index = None
        if lengths is not None:
            lengths = lengths.to(x.device)
            t = torch.arange(steps, device=x.device)
            mask = t < lengths[:, None]                                         # (B, T): real step?
            rev_index = torch.where(mask, lengths[:, None] - 1 - t, t)          # (B, T)

        directions = 2 if self.bidirectional else 1
        layer_input, h_n, c_n = x, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                weights = [None if n is None else getattr(self, n) for n in self._weight_names[layer][direction]]
                seq = layer_input if direction == 0 else _reverse_within(layer_input, rev_index)
                state = (h0[k], c0[k]) if self.mode == "lstm" else (h0[k],)
                out, state = self._run_direction(seq, state, mask, *weights)
                outputs.append(out if direction == 0 else _reverse_within(out, rev_index))
                h_n.append(state[0])
                if self.mode == "lstm":
                    c_n.append(state[1])
            layer_input = torch.cat(outputs, dim=-1) if directions == 2 else outputs[0]
            if layer < self.num_layers - 1:
                layer_input = dropout(layer_input, self.dropout, self.training)

        output, h_n = layer_input, torch.stack(h_n)
        c_n = torch.stack(c_n) if self.mode == "lstm" else None
        if packed:
            output = self._repack(output, lengths, input)
        elif unbatched:
            output, h_n = output.squeeze(0), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif not self.batch_first:
            output = output.transpose(0, 1)
        return output, ((h_n, c_n) if self.mode == "lstm" else h_n)

    def _run_direction(self, seq, state, mask, w_ih, w_hh, b_ih, b_hh):
        """Run one layer in one direction over seq (B, T, F) from state; return ((B, T, H), state)."""
        gi = _affine(seq, w_ih, b_ih)   # (B, T, G*H): the input's share of every gate, all steps at once
        outs = []
        for t in range(seq.shape[1]):
            if self.mode == "lstm":
                new = lstm_step(gi[:, t], state[0], state[1], w_hh, b_hh)
            elif self.mode == "gru":
                new = (gru_step(gi[:, t], state[0], w_hh, b_hh),)
            else:
                new = (rnn_step(gi[:, t], state[0], w_hh, b_hh),)
            if mask is not None:  # finished sequences keep their state
                running = mask[:, t, None]
                new = tuple(torch.where(running, n, s) for n, s in zip(new, state))
            state = new
            outs.append(state[0])
        # Past a sequence's end its row just repeats the held state; those steps are dropped when
        # the output is packed again, and pad_packed_sequence shows them as zeros, as torch's do.
        return torch.stack(outs, dim=1), state

    def _initial_state(self, hx, batch, unbatched, like):
        """(h_0, c_0) as (L*D, B, H) tensors; c_0 is None except for "lstm"."""
        directions = 2 if self.bidirectional else 1
        shape = (self.num_layers * directions, batch, self.hidden_size)
        if hx is None:
            zeros = like.new_zeros(shape)
            return zeros, (zeros if self.mode == "lstm" else None)
        if self.mode == "lstm":
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise DeepzooError("LSTM: hx must be a pair (h_0, c_0)")
            states = list(hx)
        else:
            if not isinstance(hx, torch.Tensor):
                raise DeepzooError(f"{self.mode.upper()}: hx must be a tensor of shape {shape}")
            states = [hx]
        want = (shape[0], shape[2]) if unbatched else shape
        for s in states:
            if tuple(s.shape) != want:
                raise DeepzooError(f"{type(self).__name__}: expected initial state of shape {want}, "
                                   f"got {tuple(s.shape)}")
        if unbatched:
            states = [s.unsqueeze(1) for s in states]
        return states[0], (states[1] if self.mode == "lstm" else None)

    @staticmethod
    def _repack(output, lengths, like):
        """Padded (B, T, F) output in original batch order -> PackedSequence laid out like `like`."""
        if like.sorted_indices is not None:
            output, lengths = output[like.sorted_indices], lengths[like.sorted_indices]
        data = pack_padded_sequence(output, lengths.cpu(), batch_first=True, enforce_sorted=True).data
        return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


class GRU(RNN):
    """``RNN("gru", ...)``: a stack of GRU layers (see :class:`RNN` and :class:`GRUCell`)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=True,
                 dropout=0.0, bias=True, device=None, dtype=None):
        super().__init__("gru", input_size, hidden_size, num_layers, bidirectional, batch_first, dropout,
                         bias, device, dtype)


class LSTM(RNN):
    """``RNN("lstm", ...)``: a stack of LSTM layers (see :class:`RNN` and :class:`LSTMCell`)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=True,
                 dropout=0.0, bias=True, device=None, dtype=None):
        super().__init__("lstm", input_size, hidden_size, num_layers, bidirectional, batch_first, dropout,
                         bias, device, dtype)
