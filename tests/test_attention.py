"""The Transformer blocks of deepzoo.nn.attention agree with PyTorch's built-ins.

Same weights (load_state_dict from the torch module), same inputs, same upstream gradient: outputs,
input gradients and every parameter gradient are compared, for both implementations ("torch" runs
F.scaled_dot_product_attention / F.layer_norm, "scratch" the written-out versions), with padding
and causal masks. Float64 throughout (see TOL).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from deepzoo.errors import DeepzooError
from deepzoo.nn import attention as A

F64 = torch.float64
IMPLS = ("torch", "scratch")
# Float64 on purpose: "scratch" and torch's kernels (SDPA, fused layer norm, vectorised per CPU) add
# the same terms in different orders. In float64 (u = 1.1e-16) the longest sums here (weight gradients
# over batch x positions, <= 3 x 8 = 24 terms of size <= ~10) differ between any two summation orders by
# at most 2 * 24 * u * 240 ~ 1.3e-12, ~1e-10 even if amplified 100x through the layers, on any CPU
# (seen: <= 5e-15); a missing 1/sqrt(d) scale, a mask leak or a wrong norm moves results by > 1e-2.
TOL = dict(atol=1e-10, rtol=1e-10)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def leaf(x):
    return x.detach().clone().requires_grad_(True)


def padding(lengths, total):
    """(B, total) True at padding, from each row's real length."""
    return torch.arange(total)[None, :] >= torch.tensor(lengths)[:, None]


def future(L):
    """torch.nn's causal mask in its boolean form: True where a query may NOT look (j > i)."""
    return torch.ones(L, L, dtype=torch.bool).triu(1)


def check_grads(ref, mine, y_ref, y_mine, inputs_ref, inputs_mine, keep=None):
    """Backprop one upstream gradient through both and compare inputs' and parameters' gradients.
    ``keep`` (same shape as y without the last dim) zeroes the upstream at positions to ignore."""
    up = torch.randn(y_ref.shape, dtype=y_ref.dtype, generator=torch.Generator().manual_seed(1))
    if keep is not None:
        up = up * keep[..., None]
    y_ref.backward(up)
    y_mine.backward(up)
    for a, b in zip(inputs_mine, inputs_ref):
        assert_close(a.grad, b.grad, **TOL)
    ref_p, mine_p = dict(ref.named_parameters()), dict(mine.named_parameters())
    assert ref_p.keys() == mine_p.keys()
    for name in ref_p:
        assert_close(mine_p[name].grad, ref_p[name].grad, **TOL, msg=f"gradient of {name}")


# ---------------------------------------------------------------------------------------------
# Scaled dot-product attention
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool", "float", "causal+bool"])
def test_scaled_dot_product_attention_matches_torch(mask_kind):
    B, H, L, S, D = 2, 3, 5, 7 if "causal" not in mask_kind else 5, 4
    q, k, v = (torch.randn(B, H, n, D, dtype=F64) for n in (L, S, S))
    mask, causal = None, "causal" in mask_kind
    if "bool" in mask_kind:
        mask = ~padding([S, 3], S)[:, None, None, :]                          # B, 1, 1, S; True = attend
    elif mask_kind == "float":
        mask = torch.randn(L, S, dtype=F64)
    ins_ref, ins_mine = [leaf(t) for t in (q, k, v)], [leaf(t) for t in (q, k, v)]
    if mask_kind == "causal+bool":                                            # torch takes one or the other
        full = mask & torch.ones(L, S, dtype=torch.bool).tril()
        y_ref = F.scaled_dot_product_attention(*ins_ref, attn_mask=full)
    else:
        y_ref = F.scaled_dot_product_attention(*ins_ref, attn_mask=mask, is_causal=causal)
    y_mine = A.scaled_dot_product_attention(*ins_mine, attn_mask=mask, is_causal=causal)
    assert_close(y_mine, y_ref, **TOL)
    up = torch.randn(y_ref.shape, dtype=F64)
    y_ref.backward(up)
    y_mine.backward(up)
    for a, b in zip(ins_mine, ins_ref):
        assert_close(a.grad, b.grad, **TOL)


def test_masked_keys_get_exactly_zero_weight():
    """A padded key's value cannot leak into any output, whatever it holds."""
    q, k, v = torch.randn(1, 1, 3, 4), torch.randn(1, 1, 5, 4), torch.randn(1, 1, 5, 4)
    keep = ~padding([3], 5)[:, None, None, :]
    out = A.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    v2 = v.clone()
    v2[..., 3:, :] = 1e6
    assert torch.equal(out, A.scaled_dot_product_attention(q, k, v2, attn_mask=keep))


def test_causal_output_does_not_depend_on_the_future():
    x = torch.randn(1, 6, 8, dtype=F64)
    mha = A.MultiheadAttention(8, 2, impl="scratch").double()
    y = mha(x, x, x, causal=True)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(1, 2, 8, dtype=F64)
    y2 = mha(x2, x2, x2, causal=True)
    # The same computation on the same first 4 positions (masked keys add exact zeros): equal in
    # practice; the float64 tolerance only allows a BLAS that blocks a product differently between calls.
    assert_close(y[:, :4], y2[:, :4], **TOL)
    assert not torch.allclose(y[:, 4:], y2[:, 4:])


# ---------------------------------------------------------------------------------------------
# Multi-head attention against nn.MultiheadAttention
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", ["self", "self-causal-padded", "cross-padded"])
def test_multihead_attention_matches_torch(impl, case):
    B, L, S, E, H = 3, 6, 8, 12, 3
    ref = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    mine = A.MultiheadAttention(E, H, impl=impl).double()
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(B, L, E, dtype=F64)
    mem = torch.randn(B, S, E, dtype=F64)
    if case.startswith("self"):
        xr, xm = leaf(x), leaf(x)
        args_ref, args_mine, ins = (xr, xr, xr), (xm, xm, xm), ([xr], [xm])
        pad = padding([6, 4, 2], L) if "padded" in case else None
    else:
        xr, xm, mr, mm = leaf(x), leaf(x), leaf(mem), leaf(mem)
        args_ref, args_mine, ins = (xr, mr, mr), (xm, mm, mm), ([xr, mr], [xm, mm])
        pad = padding([8, 5, 1], S)
    causal = "causal" in case
    causal_mask = future(L) if causal else None
    y_ref, _ = ref(*args_ref, key_padding_mask=pad, attn_mask=causal_mask, need_weights=False)
    y_mine = mine(*args_mine, key_padding_mask=pad, causal=causal)
    assert_close(y_mine, y_ref, **TOL)
    check_grads(ref, mine, y_ref, y_mine, ins[0], ins[1])


def test_multihead_attention_rejects_width_not_divisible_by_heads():
    with pytest.raises(DeepzooError, match="not divisible"):
        A.MultiheadAttention(10, 3)


# ---------------------------------------------------------------------------------------------
# LayerNorm, positions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_layer_norm_matches_torch(impl):
    ref = nn.LayerNorm(16, dtype=F64)
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
    mine = A.LayerNorm(16, impl=impl).double()
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(4, 5, 16, dtype=F64) * 3 + 1
    xr, xm = leaf(x), leaf(x)
    y_ref, y_mine = ref(xr), mine(xm)
    assert_close(y_mine, y_ref, **TOL)
    check_grads(ref, mine, y_ref, y_mine, [xr], [xm])


def test_sinusoids_follow_the_formula_and_shift_by_a_rotation():
    # sinusoids are computed in float64 and stored as float32: each entry is within half an fp32 ulp of
    # the exact value (<= 6e-8 for |v| <= 1), so 1e-6 holds on any CPU, for the formula and the rotation
    # (a 2-term sum of such entries: <= 2e-7); a wrong frequency or a swapped sin/cos is off by > 1e-2.
    pe = A.sinusoids(50, 8).double()
    for pos, i in [(0, 0), (7, 1), (31, 3)]:
        angle = pos / 10000 ** (2 * i / 8)
        assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    # PE[pos + k] = R_k PE[pos] for one fixed block rotation R_k, whatever pos
    k, i = 5, 2
    w = 1 / 10000 ** (2 * i / 8)
    rot = torch.tensor([[math.cos(k * w), math.sin(k * w)], [-math.sin(k * w), math.cos(k * w)]], dtype=F64)
    pair = pe[:, 2 * i: 2 * i + 2]
    assert_close(pair[:-k] @ rot.T, pair[k:], atol=1e-6, rtol=0)
    with pytest.raises(DeepzooError, match="even width"):
        A.sinusoids(4, 7)


def test_positions_refuse_sequences_longer_than_max_len():
    for module in (A.SinusoidalPositions(8, max_len=4), A.LearnedPositions(8, max_len=4)):
        assert module(torch.zeros(1, 4, 8)).shape == (1, 4, 8)
        with pytest.raises(DeepzooError, match="longer than max_len"):
            module(torch.zeros(1, 5, 8))


# ---------------------------------------------------------------------------------------------
# Encoder and decoder layers against nn.TransformerEncoderLayer / nn.TransformerDecoderLayer
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("causal", [False, True])
def test_encoder_layer_matches_torch(impl, norm_first, activation, causal):
    B, L, E, H = 3, 7, 16, 4
    kw = dict(dim_feedforward=32, dropout=0.0, activation=activation, norm_first=norm_first)
    ref = nn.TransformerEncoderLayer(E, H, batch_first=True, dtype=F64, **kw)
    mine = A.EncoderLayer(E, H, impl=impl, **kw).double()
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(B, L, E, dtype=F64)
    pad = padding([7, 5, 3], L)
    xr, xm = leaf(x), leaf(x)
    mask = future(L) if causal else None
    y_ref = ref(xr, src_mask=mask, src_key_padding_mask=pad, is_causal=causal)
    y_mine = mine(xm, padding=pad, causal=causal)
    keep = (~pad).double()   # outputs at padded positions are never used; compare the real ones
    assert_close(y_mine * keep[..., None], y_ref * keep[..., None], **TOL)
    check_grads(ref, mine, y_ref, y_mine, [xr], [xm], keep=keep)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(impl, norm_first):
    B, L, S, E, H = 3, 6, 8, 16, 4
    kw = dict(dim_feedforward=32, dropout=0.0, norm_first=norm_first)
    ref = nn.TransformerDecoderLayer(E, H, batch_first=True, dtype=F64, **kw)
    mine = A.DecoderLayer(E, H, impl=impl, **kw).double()
    mine.load_state_dict(ref.state_dict())
    tgt, mem = torch.randn(B, L, E, dtype=F64), torch.randn(B, S, E, dtype=F64)
    tpad, mpad = padding([6, 4, 2], L), padding([8, 6, 1], S)
    tr, tm, mr, mm = leaf(tgt), leaf(tgt), leaf(mem), leaf(mem)
    causal = future(L)
    y_ref = ref(tr, mr, tgt_mask=causal, tgt_key_padding_mask=tpad, memory_key_padding_mask=mpad,
                tgt_is_causal=True)
    y_mine = mine(tm, mm, padding=tpad, memory_padding=mpad)
    keep = (~tpad).double()
    assert_close(y_mine * keep[..., None], y_ref * keep[..., None], **TOL)
    check_grads(ref, mine, y_ref, y_mine, [tr, mr], [tm, mm], keep=keep)


def test_dropout_is_active_in_training_only():
    layer = A.EncoderLayer(8, 2, 16, dropout=0.5)
    x = torch.randn(2, 5, 8)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    assert not torch.equal(layer(x), layer(x))
