"""The gate-by-gate recurrent nets of deepzoo.nn.rnn agree with torch.nn's built-ins.

Torch's module is built first and its state_dict copied into ours; the same inputs (and initial
states) go in; outputs, final states and the gradients of a loss using all of them (w.r.t. the
input, the initial state and every parameter) are compared in float64.
"""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from torch.testing import assert_close

from deepzoo.errors import DeepzooError
from deepzoo.nn import rnn

F64 = torch.float64
# Float64 on purpose: the two implementations add the same terms in different orders (our gates are
# separate matmuls, torch's kernels are fused and vectorised per CPU), which no float32 tolerance fitted
# to the CPUs seen so far can bound. In float64 (unit roundoff u = 1.1e-16) the longest sums here, the
# parameter gradients, add at most 35 (batch x time) terms of size <= ~10: any two orders of summation
# differ by at most 2 * 35 * u * 350 ~ 3e-12 per sum, ~3e-11 even if compounded through 7 steps and 2
# layers, on any CPU (seen: <= 7e-15). A wrong gate, bias or direction moves results by > 1e-3.
TOL = dict(atol=1e-10, rtol=1e-10)
LENGTHS = [7, 5, 5, 2, 1]
I, H = 3, 4

TORCH_CELLS = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}
OUR_CELLS = {"rnn": rnn.RNNCell, "gru": rnn.GRUCell, "lstm": rnn.LSTMCell}
TORCH_NETS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
MODES = ["rnn", "gru", "lstm"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def leaf(x):
    return x.detach().clone().requires_grad_(True)


def randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def compare_param_grads(ref, mine):
    ref_params, mine_params = dict(ref.named_parameters()), dict(mine.named_parameters())
    assert list(ref_params) == list(mine_params)
    for name, p in ref_params.items():
        assert p.grad is not None and mine_params[name].grad is not None, name
        assert_close(mine_params[name].grad, p.grad, **TOL, msg=lambda m: f"gradient of {name}: {m}")


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_cell_matches_torch(mode, bias):
    ref = TORCH_CELLS[mode](I, H, bias=bias).to(F64)
    mine = OUR_CELLS[mode](I, H, bias=bias, dtype=F64)
    mine.load_state_dict(ref.state_dict())
    x, h, c = randn(6, I, seed=1), randn(6, H, seed=2), randn(6, H, seed=3)
    ins_ref, ins_mine = [leaf(t) for t in (x, h, c)], [leaf(t) for t in (x, h, c)]

    def run(cell, x, h, c):
        if mode == "lstm":
            h1, c1 = cell(x, (h, c))
            return h1, c1
        return (cell(x, h),)

    out_ref, out_mine = run(ref, *ins_ref), run(mine, *ins_mine)
    for a, b in zip(out_mine, out_ref):
        assert_close(a, b, **TOL)
    ups = [randn(6, H, seed=10 + k) for k in range(len(out_ref))]
    sum((o * u).sum() for o, u in zip(out_ref, ups)).backward()
    sum((o * u).sum() for o, u in zip(out_mine, ups)).backward()
    n_inputs = 3 if mode == "lstm" else 2
    for a, b in zip(ins_mine[:n_inputs], ins_ref[:n_inputs]):
        assert_close(a.grad, b.grad, **TOL)
    compare_param_grads(ref, mine)


@pytest.mark.parametrize("mode", MODES)
def test_cell_default_state_and_unbatched(mode):
    ref = TORCH_CELLS[mode](I, H).to(F64)
    mine = OUR_CELLS[mode](I, H, dtype=F64)
    mine.load_state_dict(ref.state_dict())
    x = randn(5, I, seed=1)
    assert_close(mine(x), ref(x), **TOL)                     # hx=None means zeros
    h = randn(H, seed=2)
    hx = (h, randn(H, seed=3)) if mode == "lstm" else h
    assert_close(mine(x[0], hx), ref(x[0], hx), **TOL)       # one unbatched sample


@pytest.mark.parametrize("mode", MODES)
def test_initialisation_matches_torch(mode):
    torch.manual_seed(7)
    ref_cell, ref_net = TORCH_CELLS[mode](I, H), TORCH_NETS[mode](I, H, num_layers=2, bidirectional=True)
    torch.manual_seed(7)
    mine_cell, mine_net = OUR_CELLS[mode](I, H), rnn.RNN(mode, I, H, num_layers=2, bidirectional=True)
    for ref, mine in [(ref_cell, mine_cell), (ref_net, mine_net)]:
        ref_sd, mine_sd = ref.state_dict(), mine.state_dict()
        assert list(ref_sd) == list(mine_sd)
        for name in ref_sd:
            assert ref_sd[name].shape == mine_sd[name].shape
            assert torch.equal(ref_sd[name], mine_sd[name]), name


# ---------------------------------------------------------------------------------------------
# Whole networks
# ---------------------------------------------------------------------------------------------


def make_pair(mode, **kwargs):
    """Torch's net and ours with torch's weights; also checks that ours -> torch loads."""
    kwargs.setdefault("batch_first", True)  # torch's default is False, ours True: always say which
    ref = TORCH_NETS[mode](I, H, **kwargs).to(F64)
    mine = rnn.RNN(mode, I, H, dtype=F64, **kwargs)
    before = {k: v.clone() for k, v in mine.state_dict().items()}
    mine.load_state_dict(ref.state_dict())
    assert any(not torch.equal(before[k], v) for k, v in mine.state_dict().items())  # weights really moved
    back = TORCH_NETS[mode](I, H, **kwargs).to(F64)
    back.load_state_dict(mine.state_dict())
    for k, v in ref.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    return ref, mine


def states_of(mode, result):
    """(output, [h_n] or [h_n, c_n]) from a forward's return value."""
    output, hn = result
    return output, (list(hn) if mode == "lstm" else [hn])


def compare_nets(mode, ref, mine, x, hx=None, pack=None):
    """Run both (pack: a function turning a leaf input into the network input), compare all."""
    x_ref, x_mine = leaf(x), leaf(x)
    hx_ref = hx_mine = None
    if hx is not None:
        hx_ref, hx_mine = [leaf(t) for t in hx], [leaf(t) for t in hx]
    wrap = (lambda s: tuple(s) if mode == "lstm" else s[0])
    pack = pack or (lambda t: t)
    out_ref, st_ref = states_of(mode, ref(pack(x_ref), None if hx is None else wrap(hx_ref)))
    out_mine, st_mine = states_of(mode, mine(pack(x_mine), None if hx is None else wrap(hx_mine)))
    returned = out_mine

    if isinstance(out_ref, PackedSequence):
        assert isinstance(out_mine, PackedSequence)
        assert torch.equal(out_mine.batch_sizes, out_ref.batch_sizes)
        for field in ("sorted_indices", "unsorted_indices"):
            a, b = getattr(out_mine, field), getattr(out_ref, field)
            assert (a is None and b is None) or torch.equal(a, b)
        out_ref, out_mine = out_ref.data, out_mine.data
    assert_close(out_mine, out_ref, **TOL)
    assert len(st_mine) == len(st_ref)
    for a, b in zip(st_mine, st_ref):
        assert_close(a, b, **TOL)

    # A loss that uses the outputs and every final state.
    ups = [randn(*t.shape, seed=20 + k) for k, t in enumerate([out_ref, *st_ref])]
    sum((t * u).sum() for t, u in zip([out_ref, *st_ref], ups)).backward()
    sum((t * u).sum() for t, u in zip([out_mine, *st_mine], ups)).backward()
    assert_close(x_mine.grad, x_ref.grad, **TOL)
    if hx is not None:
        for a, b in zip(hx_mine, hx_ref):
            assert_close(a.grad, b.grad, **TOL)
    compare_param_grads(ref, mine)
    return returned, st_mine


@pytest.mark.parametrize("mode", MODES)
def test_one_layer_unidirectional(mode):
    ref, mine = make_pair(mode, batch_first=True)
    compare_nets(mode, ref, mine, randn(5, 6, I, seed=1))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_two_layers_bidirectional(mode, batch_first):
    ref, mine = make_pair(mode, num_layers=2, bidirectional=True, batch_first=batch_first)
    compare_nets(mode, ref, mine, randn(5, 6, I, seed=1))


@pytest.mark.parametrize("mode", MODES)
def test_initial_state_given(mode):
    ref, mine = make_pair(mode, num_layers=2, bidirectional=True, batch_first=True)
    hx = [randn(4, 5, H, seed=2 + k) for k in range(2 if mode == "lstm" else 1)]
    compare_nets(mode, ref, mine, randn(5, 6, I, seed=1), hx=hx)


@pytest.mark.parametrize("mode", MODES)
def test_no_bias_and_unbatched(mode):
    ref, mine = make_pair(mode, num_layers=2, bidirectional=True, bias=False)
    assert not any("bias" in name for name in mine.state_dict())
    hx = [randn(4, H, seed=2 + k) for k in range(2 if mode == "lstm" else 1)]
    compare_nets(mode, ref, mine, randn(6, I, seed=1), hx=hx)   # (T, I): one sequence, no batch dim


@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_packed_variable_lengths_bidirectional(mode, enforce_sorted, with_hx):
    """The key case: final states must be taken at each sequence's own last step, and the
    backward direction must start at each sequence's own last real token."""
    lengths = LENGTHS if enforce_sorted else [2, 7, 5, 1, 5]
    ref, mine = make_pair(mode, num_layers=2, bidirectional=True, batch_first=True)
    x = randn(len(lengths), max(lengths), I, seed=1)
    hx = [randn(4, len(lengths), H, seed=2 + k) for k in range(2 if mode == "lstm" else 1)] if with_hx else None

    def pack(t):
        return pack_padded_sequence(t, torch.tensor(lengths), batch_first=True, enforce_sorted=enforce_sorted)

    out, states = compare_nets(mode, ref, mine, x, hx=hx, pack=pack)

    # The padded view: zeros past each sequence's end, and the same values as torch's.
    padded, lens = pad_packed_sequence(out, batch_first=True)
    assert lens.tolist() == lengths
    for b, n in enumerate(lengths):
        assert torch.all(padded[b, n:] == 0)
    # h_n of the last layer, forward direction = output at the last real step (first H features);
    # backward direction = output at step 0 (last H features).
    # (the same computed values, read from two places: exact)
    for b, n in enumerate(lengths):
        assert torch.equal(states[0][2, b], padded[b, n - 1, :H])
        assert torch.equal(states[0][3, b], padded[b, 0, H:])


def test_packed_differs_from_padded():
    """Guards the test above: running on the zero-padded batch gives different final states."""
    ref, mine = make_pair("gru", num_layers=1, bidirectional=True)
    x = randn(len(LENGTHS), max(LENGTHS), I, seed=1)
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0
    _, h_padded = mine(x)
    _, h_packed = mine(pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=True))
    assert_close(h_padded[:, 0], h_packed[:, 0], **TOL)   # the full-length row agrees (a batch of 5 vs
    # shrinking batches: the products may be blocked differently, so not necessarily bit for bit)
    assert not torch.allclose(h_padded[:, 1:], h_packed[:, 1:])


@pytest.mark.parametrize("mode", ["gru", "lstm"])
def test_dropout_inactive_in_eval(mode):
    ref, mine = make_pair(mode, num_layers=2, bidirectional=True, dropout=0.5)
    ref.eval(), mine.eval()
    compare_nets(mode, ref, mine, randn(5, 6, I, seed=1))


def test_dropout_active_in_training():
    mine = rnn.LSTM(I, H, num_layers=2, dropout=0.5, dtype=F64).train()
    x = randn(5, 6, I, seed=1)
    torch.manual_seed(1)
    a, (ha, _) = mine(x)
    torch.manual_seed(2)
    b, (hb, _) = mine(x)
    torch.manual_seed(1)
    c, (hc, _) = mine(x)
    assert not torch.allclose(a, b)
    assert torch.equal(a, c) and torch.equal(ha, hc)
    # Dropout only between layers: layer 0's final state is untouched by it, and the last layer's
    # output is not dropped out (its last step is still that layer's final state).
    assert torch.equal(ha[0], hb[0]) and not torch.allclose(ha[1], hb[1])
    assert torch.equal(a[:, -1], ha[1]) and torch.equal(b[:, -1], hb[1])
    # In eval mode the same net is deterministic and differs from the training output.
    mine.eval()
    assert torch.equal(mine(x)[0], mine(x)[0])


def test_convenience_classes():
    assert rnn.GRU(I, H).mode == "gru" and rnn.LSTM(I, H).mode == "lstm"
    ref = nn.LSTM(I, H, num_layers=2, batch_first=True).to(F64)
    mine = rnn.LSTM(I, H, num_layers=2, dtype=F64)
    mine.load_state_dict(ref.state_dict())
    compare_nets("lstm", ref, mine, randn(2, 3, I, seed=1))


# ---------------------------------------------------------------------------------------------
# User errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["LSTM", "transformer", "rnn_tanh", None])
def test_bad_mode_raises(mode):
    with pytest.raises(DeepzooError, match="mode"):
        rnn.RNN(mode, I, H)


@pytest.mark.parametrize("kwargs", [dict(hidden_size=0), dict(num_layers=0), dict(dropout=1.5)])
def test_bad_sizes_raise(kwargs):
    args = dict(input_size=I, hidden_size=H) | kwargs
    with pytest.raises(DeepzooError):
        rnn.RNN("gru", **args)


def test_bad_shapes_raise():
    net = rnn.RNN("lstm", I, H, num_layers=2)
    with pytest.raises(DeepzooError, match="input"):
        net(torch.randn(2, 3, I + 1))
    with pytest.raises(DeepzooError, match="3-D"):
        net(torch.randn(1, 2, 3, I))
    with pytest.raises(DeepzooError, match="pair"):
        net(torch.randn(2, 3, I), torch.zeros(2, 2, H))
    with pytest.raises(DeepzooError, match="shape"):
        net(torch.randn(2, 3, I), (torch.zeros(1, 2, H), torch.zeros(1, 2, H)))
    with pytest.raises(DeepzooError, match="shape"):
        rnn.GRUCell(I, H)(torch.randn(2, I), torch.zeros(3, H))
