"""Modules and optimisers for :mod:`deepzoo.autograd`: parameters are leaf tensors with
``requires_grad``; ``parameters()`` finds them; SGD and Adam follow torch.optim's update rules exactly."""

from __future__ import annotations

import numpy as np

from deepzoo.autograd import functional as F
from deepzoo.autograd.tensor import Tensor


class Module:
    def parameters(self) -> list[Tensor]:
        out = []
        for value in vars(self).values():
            items = value if isinstance(value, (list, tuple)) else [value]
            for v in items:
                if isinstance(v, Tensor) and v.requires_grad:
                    out.append(v)
                elif isinstance(v, Module):
                    out.extend(v.parameters())
        return out

    def named_parameters(self, prefix: str = "") -> dict[str, Tensor]:
        out = {}
        for key, value in vars(self).items():
            items = list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)]
            for i, v in items:
                name = f"{prefix}{key}" + (f".{i}" if i is not None else "")
                if isinstance(v, Tensor) and v.requires_grad:
                    out[name] = v
                elif isinstance(v, Module):
                    out.update(v.named_parameters(name + "."))
        return out

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def __call__(self, *args):
        return self.forward(*args)


def _uniform(rng: np.random.Generator, shape, fan_in: int, dtype) -> Tensor:
    """U(-1/√fan_in, 1/√fan_in): torch.nn.Linear's and Conv2d's default initialisation."""
    bound = 1.0 / np.sqrt(fan_in)
    return Tensor(rng.uniform(-bound, bound, shape).astype(dtype), requires_grad=True)


class Linear(Module):
    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float32):
        self.weight = _uniform(rng, (n_out, n_in), n_in, dtype)
        self.bias = _uniform(rng, (n_out,), n_in, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class Conv2d(Module):
    def __init__(self, c_in: int, c_out: int, k: int, rng: np.random.Generator, stride: int = 1, padding: int = 0,
                 dtype=np.float32):
        self.weight = _uniform(rng, (c_out, c_in, k, k), c_in * k * k, dtype)
        self.bias = _uniform(rng, (c_out,), c_in * k * k, dtype)
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class MLP(Module):
    """Linear -> ReLU -> ... -> Linear (logits)."""

    def __init__(self, sizes: list[int], rng: np.random.Generator, dtype=np.float32):
        self.layers = [Linear(a, b, rng, dtype) for a, b in zip(sizes[:-1], sizes[1:])]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = layer(x).relu()
        return self.layers[-1](x)


class SGD:
    """p <- p - lr · b, b <- μ b + (g + λ p) (b = the gradient at the first step), as torch.optim.SGD."""

    def __init__(self, params: list[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.params, self.lr, self.momentum, self.weight_decay = list(params), lr, momentum, weight_decay
        self.buffers: list[np.ndarray | None] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                self.buffers[i] = g.copy() if self.buffers[i] is None else self.momentum * self.buffers[i] + g
                g = self.buffers[i]
            p.data = p.data - self.lr * g

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """The momentum buffers (a checkpoint)."""
        return {f"buffer.{i}": b for i, b in enumerate(self.buffers) if b is not None}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.buffers = [state.get(f"buffer.{i}") for i in range(len(self.params))]


class Adam:
    """Kingma & Ba, as torch.optim.Adam: m <- β1 m + (1-β1) g, v <- β2 v + (1-β2) g²,
    p <- p - lr · m̂ / (√v̂ + ε) with m̂ = m / (1-β1^t), v̂ = v / (1-β2^t)."""

    def __init__(self, params: list[Tensor], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params, self.lr, self.betas, self.eps, self.weight_decay = list(params), lr, betas, eps, weight_decay
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            m_hat, v_hat = self.m[i] / (1 - b1 ** self.t), self.v[i] / (1 - b2 ** self.t)
            p.data = p.data - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """The moments and the step count (a checkpoint)."""
        return {"t": np.array([self.t]), **{f"m.{i}": m for i, m in enumerate(self.m)},
                **{f"v.{i}": v for i, v in enumerate(self.v)}}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"][0])
        self.m = [state[f"m.{i}"] for i in range(len(self.params))]
        self.v = [state[f"v.{i}"] for i in range(len(self.params))]
