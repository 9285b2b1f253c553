"""Neural-network layers written out from elementary tensor operations.

Each forward pass below is the textbook formula in plain tensor ops (matmul, unfold, exp, log,
max, where); PyTorch autograd derives the backward pass. Every class keeps the parameter names,
shapes and initialisation of its ``torch.nn`` twin, so state dicts load either way, and
``tests/test_nn_blocks.py`` checks that outputs and gradients agree with the built-ins.

Shapes: N = batch, C = channels, H x W = image height x width.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def _pair(value):
    """3 -> (3, 3); (3, 5) -> (3, 5)."""
    return (value, value) if isinstance(value, int) else tuple(value)


# ----------------------------------------------------------------------------------------------
# Activation functions
# ----------------------------------------------------------------------------------------------


def relu(x):
    """relu(x) = max(x, 0).

    Written as ``where(x <= 0, 0, x)``: the slope is 1 for x > 0 and 0 for x <= 0 (torch also uses
    0 at exactly x = 0), and a NaN input stays NaN.
    """
    return torch.where(x <= 0, 0.0, x)


def sigmoid(x):
    """sigmoid(x) = 1 / (1 + exp(-x)).

    exp(-x) overflows for very negative x, so use e = exp(-|x|), which lies in (0, 1]:

        x >= 0:  sigmoid(x) = 1 / (1 + e)
        x <  0:  sigmoid(x) = e / (1 + e)      (multiply top and bottom by exp(x))

    -|x| is written as ``where(x >= 0, -x, x)`` rather than ``-x.abs()``: autograd gives |x| the
    slope 0 at x = 0, which would make sigmoid'(0) come out as 0 instead of 1/4.
    """
    e = torch.exp(torch.where(x >= 0, -x, x))
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


def tanh(x):
    """tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x)).

    Dividing top and bottom by exp(|x|) gives, with a = |x| and e = exp(-2a) in (0, 1],

        tanh(a) = (1 - e) / (1 + e),     tanh(-a) = -tanh(a),

    which cannot overflow. For small a, 1 - e cancels badly, so it is computed as
    -expm1(-2a) (expm1(t) = exp(t) - 1, accurate near 0). As in :func:`sigmoid`, |x| is written
    with ``where`` so that the slope at x = 0 comes out as 1.
    """
    a = torch.where(x >= 0, x, -x)
    one_minus_e = -torch.expm1(-2 * a)
    t = one_minus_e / (2 - one_minus_e)
    return torch.where(x >= 0, t, -t)


def softmax(x, dim=-1):
    """softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m),  with m = max_j x_j.

    Subtracting m changes nothing mathematically (it cancels between top and bottom) but keeps
    every exp() argument <= 0, so nothing overflows. m is treated as a constant (detached).
    """
    m = x.amax(dim=dim, keepdim=True).detach()
    e = torch.exp(x - m)
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(x, dim=-1):
    """log_softmax(x)_i = (x_i - m) - log(sum_j exp(x_j - m)),  with m = max_j x_j.

    The log of the softmax, computed without forming the softmax: the log-sum-exp trick.
    """
    m = x.amax(dim=dim, keepdim=True).detach()
    shifted = x - m
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def dropout(x, p=0.5, training=True):
    """Inverted dropout: y = x * mask / (1 - p), with mask_i ~ Bernoulli(1 - p).

    Each entry is kept with probability 1 - p and scaled by 1 / (1 - p), so E[y] = x and nothing
    needs rescaling at evaluation time, where dropout is the identity. The mask is drawn from
    torch's global random number generator (seed it with ``torch.manual_seed``).
    """
    if not training or p == 0:
        return x
    keep = torch.rand_like(x) < 1 - p
    return x * keep.to(x.dtype) / (1 - p)


# ----------------------------------------------------------------------------------------------
# Layers with parameters
# ----------------------------------------------------------------------------------------------


class Linear(nn.Module):
    """Fully connected layer: y = x W^T + b.

    x: (..., in_features), W: (out_features, in_features), b: (out_features,),
    y: (..., out_features).

    Initialisation, as in ``torch.nn.Linear``: W ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform
    with a = sqrt(5) works out to exactly that) and b ~ U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        y = x @ self.weight.T
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(nn.Module):
    """2-D convolution (really cross-correlation, as in every deep-learning library):

        y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * x_pad[n, c, i*sh + u, j*sw + v]

    computed as "im2col + matmul": ``unfold`` copies every kh x kw patch of the padded input into
    a column, giving cols of shape (N, C*kh*kw, L) with L = H_out * W_out patches; the weight,
    flattened to (O, C*kh*kw), times cols gives (N, O, L), which is reshaped to (N, O, H_out, W_out),

        H_out = (H + 2*ph - kh) // sh + 1,    W_out = (W + 2*pw - kw) // sw + 1.

    Initialisation as ``torch.nn.Conv2d``, with fan_in = C * kh * kw.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 device=None, dtype=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw, device=device, dtype=dtype))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        n, _, h, w = x.shape
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph, pw = self.padding
        h_out = (h + 2 * ph - kh) // sh + 1
        w_out = (w + 2 * pw - kw) // sw + 1

        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (N, C*kh*kw, L)
        y = self.weight.reshape(self.out_channels, -1) @ cols                          # (N, O, L)
        if self.bias is not None:
            y = y + self.bias[:, None]
        return y.reshape(n, self.out_channels, h_out, w_out)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class BatchNorm2d(nn.Module):
    """Batch normalisation over the channels of images (Ioffe & Szegedy 2015).

    In training, each channel c is normalised with the statistics of the current batch, taken over
    the batch and both spatial axes (m = N * H * W values), then scaled and shifted by learned
    gamma (``weight``) and beta (``bias``):

        mu_c      = (1/m) sum_{n,i,j} x[n, c, i, j]
        var_c     = (1/m) sum_{n,i,j} (x[n, c, i, j] - mu_c)^2            (biased: divides by m)
        y[n,c,i,j] = gamma_c * (x[n, c, i, j] - mu_c) / sqrt(var_c + eps) + beta_c

    and running estimates for evaluation are updated as exponential moving averages,

        running_mean <- (1 - momentum) running_mean + momentum mu_c
        running_var  <- (1 - momentum) running_var  + momentum var_c * m / (m - 1)   (unbiased)

    In evaluation the running estimates replace mu_c and var_c, so the output of one image no longer
    depends on the others in its batch. Gradients flow through mu_c and var_c (autograd derives the
    three-term backward pass). Parameters and buffers have torch.nn.BatchNorm2d's names.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, device=device, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(num_features, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, device=device, dtype=dtype))
            self.register_buffer("running_var", torch.ones(num_features, device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError(f"BatchNorm2d expects a 4-D input (N, C, H, W), got {x.dim()}-D")
        dtype = x.dtype
        x = x.float() if dtype in (torch.float16, torch.bfloat16) else x  # statistics in fp32, as torch
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            dims = (0, 2, 3)
            m = x.numel() // x.shape[1]
            if self.training and m == 1:
                raise ValueError(f"BatchNorm2d needs more than one value per channel in training, got input {tuple(x.shape)}")
            mean = x.mean(dim=dims)
            var = ((x - mean[None, :, None, None]) ** 2).mean(dim=dims)
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked += 1
                    f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                    self.running_mean.mul_(1 - f).add_(f * mean)
                    self.running_var.mul_(1 - f).add_(f * var * m / max(m - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(dtype)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


# ----------------------------------------------------------------------------------------------
# Layers without parameters
# ----------------------------------------------------------------------------------------------


class MaxPool2d(nn.Module):
    """2-D max pooling: y[n, c, i, j] = max_{u, v} x_pad[n, c, i*sh + u, j*sw + v].

    The input is padded with -inf (so padding never wins the max), ``unfold`` lays every
    kh x kw window out as a column, and the max is taken over each column. The gradient flows
    only to the maximum of each window (to the first one on ties, as in torch).
    stride defaults to kernel_size (non-overlapping windows).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding = _pair(padding)

    def forward(self, x):
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph, pw = self.padding
        h_out = (h + 2 * ph - kh) // sh + 1
        w_out = (w + 2 * pw - kw) // sw + 1

        x = F.pad(x, (pw, pw, ph, ph), value=float("-inf"))
        cols = F.unfold(x, self.kernel_size, stride=self.stride)  # (N, C*kh*kw, L)
        cols = cols.reshape(n, c, kh * kw, h_out * w_out)          # one window per column
        return cols.max(dim=2).values.reshape(n, c, h_out, w_out)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Dropout(nn.Module):
    """Inverted dropout (see :func:`dropout`); the identity in eval mode. Requires 0 <= p < 1."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must satisfy 0 <= p < 1, got {p}")
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(nn.Module):
    """Module form of :func:`relu`: max(x, 0)."""

    def forward(self, x):
        return relu(x)


class Sigmoid(nn.Module):
    """Module form of :func:`sigmoid`: 1 / (1 + exp(-x))."""

    def forward(self, x):
        return sigmoid(x)


class Tanh(nn.Module):
    """Module form of :func:`tanh`: (exp(x) - exp(-x)) / (exp(x) + exp(-x))."""

    def forward(self, x):
        return tanh(x)


class Softmax(nn.Module):
    """Module form of :func:`softmax` along ``dim`` (default: the last one)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(nn.Module):
    """Module form of :func:`log_softmax` along ``dim`` (default: the last one)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return log_softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Flatten(nn.Module):
    """Merge dimensions start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
