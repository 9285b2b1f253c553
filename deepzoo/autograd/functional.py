"""Layers as functions of :class:`~deepzoo.autograd.tensor.Tensor`: a linear map, a 2-D convolution by
im2col, max pooling, and the softmax cross-entropy. All but ``im2col`` are compositions of the tensor's
operations, so their gradients come from the rules already there."""

from __future__ import annotations

import numpy as np

from deepzoo.autograd.tensor import Tensor, as_tensor


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b, with W stored [out, in] as in torch.nn.Linear."""
    y = x @ weight.T
    return y + bias if bias is not None else y


def im2col(x: Tensor, kh: int, kw: int, stride: int = 1, padding: int = 0) -> Tensor:
    """[N, C, H, W] -> [N·Ho·Wo, C·kh·kw]: one row per output position, holding the input patch it sees.

    The backward (col2im) adds each row's gradient back onto the patch it came from; overlapping patches
    add up. It runs over the kh·kw offsets, each a strided slice of the padded input.
    """
    n, c, h, w = x.shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"a {kh}x{kw} kernel does not fit a {h}x{w} input with padding {padding}")
    xp = np.pad(x.data, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, ho, wo, c, kh, kw), dtype=x.data.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[..., i, j] = xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride].transpose(0, 2, 3, 1)

    def backward(g):
        g = g.reshape(n, ho, wo, c, kh, kw)
        dxp = np.zeros_like(xp)
        for i in range(kh):
            for j in range(kw):
                dxp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += g[..., i, j].transpose(0, 3, 1, 2)
        return (dxp[:, :, padding:padding + h, padding:padding + w],)
    return x._make(cols.reshape(n * ho * wo, c * kh * kw), (x,), "im2col", backward)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0) -> Tensor:
    """Cross-correlation as torch.nn.functional.conv2d: x [N, C, H, W], weight [F, C, kh, kw] -> [N, F, Ho, Wo].

    im2col turns it into one matrix product: out[n, f, p] = Σ_(c,i,j) patch_p[c, i, j] · weight[f, c, i, j].
    """
    n, c, h, w = x.shape
    f, c2, kh, kw = weight.shape
    if c != c2:
        raise ValueError(f"conv2d: the input has {c} channels, the weight expects {c2}")
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    out = im2col(x, kh, kw, stride, padding) @ weight.reshape(f, c * kh * kw).T        # [N·Ho·Wo, F]
    if bias is not None:
        out = out + bias
    return out.reshape(n, ho, wo, f).transpose(0, 3, 1, 2)


def max_pool2d(x: Tensor, k: int) -> Tensor:
    """Non-overlapping k x k max pooling (stride k; rows and columns beyond a multiple of k are dropped)."""
    n, c, h, w = x.shape
    ho, wo = h // k, w // k
    x = x[:, :, :ho * k, :wo * k] if (h % k or w % k) else x
    blocks = x.reshape(n, c, ho, k, wo, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, k * k)
    return blocks.max(axis=-1)


def cross_entropy(logits: Tensor, target) -> Tensor:
    """Mean over the batch of -log softmax(logits)[target]: logits [N, K], target N class indices."""
    target = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=np.int64)
    logp = as_tensor(logits).log_softmax(axis=1)
    return -logp[np.arange(len(target)), target].mean()
