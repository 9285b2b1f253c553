"""A tensor that records its computation graph, and reverse-mode differentiation through it.

Every operation on :class:`Tensor` returns a new tensor that remembers its inputs (``parents``), the
name of the operation, and a *local backward rule*: given dL/d(output), add dL/d(input) to each input's
``grad``. ``backward()`` orders the graph so that every node comes after all the nodes it feeds
(a topological order), seeds dL/dL = 1 at the end, and applies the rules from the end to the start.
That is the chain rule, node by node:

    dL/dx = Σ over the uses y of x:  dL/dy · ∂y/∂x

The values are NumPy arrays; the rules are written with NumPy. Broadcasting is handled in one place:
a gradient flowing to an input that was broadcast is summed over the broadcast axes
(:func:`unbroadcast`). tests/test_autograd.py compares every operation with PyTorch.
"""

from __future__ import annotations

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: over the leading axes broadcasting added, and over the axes where
    ``shape`` has size 1."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def as_tensor(x) -> "Tensor":
    return x if isinstance(x, Tensor) else Tensor(x)


class Tensor:
    def __init__(self, data, requires_grad: bool = False, parents: tuple = (), op: str = "", name: str = ""):
        data = np.asarray(data)
        if not np.issubdtype(data.dtype, np.floating):
            data = data.astype(np.float64)
        self.data = data
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad or any(p.requires_grad for p in parents)
        self.parents, self.op, self.name = parents, op, name
        self._backward = None            # (grad of this tensor) -> adds into the parents' grads

    # -- bookkeeping ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        label = f" {self.name}" if self.name else ""
        return f"Tensor{label}(shape={self.shape}, op={self.op or 'leaf'})"

    def item(self) -> float:
        return float(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def _accumulate(self, grad: np.ndarray) -> None:
        if self.requires_grad:
            self.grad = grad.astype(self.data.dtype, copy=False) if self.grad is None else self.grad + grad

    def _make(self, data, parents: tuple, op: str, backward) -> "Tensor":
        out = Tensor(data, parents=parents, op=op)
        if out.requires_grad:
            out._backward = backward
        return out

    def zero_grad(self) -> None:
        self.grad = None

    def detach(self) -> "Tensor":
        return Tensor(self.data)

    # -- the backward pass ------------------------------------------------------------------------
    def topological_order(self) -> list["Tensor"]:
        """Every node this tensor depends on, each after all of its parents (iterative depth-first)."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(node.parents) if id(p) not in seen)
        return order

    def backward(self, grad: np.ndarray | None = None) -> None:
        """dL/d(node) into ``.grad`` of every node that requires a gradient, L being this tensor (a scalar
        unless ``grad`` is given). Walking the topological order backwards, a node is reached only after
        every node it feeds, so its gradient is complete when its rule passes it on. Leaves accumulate
        across calls (call ``zero_grad`` between steps)."""
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() of a tensor of shape {self.shape} needs grad= (or reduce it to a scalar)")
            grad = np.ones_like(self.data)
        order = self.topological_order()
        for node in order:
            if node.parents:
                node.grad = None                           # intermediate results: fresh for this pass
        self._accumulate(np.asarray(grad, dtype=self.data.dtype))
        for node in reversed(order):                       # from the output back to the inputs
            if node.grad is None or node._backward is None:
                continue
            for parent, parent_grad in zip(node.parents, node._backward(node.grad)):
                if parent_grad is not None:
                    parent._accumulate(parent_grad)

    # -- elementwise arithmetic, with broadcasting ------------------------------------------------
    def __add__(self, other):
        other = as_tensor(other)
        return self._make(self.data + other.data, (self, other), "add",
                          lambda g: (unbroadcast(g, self.shape), unbroadcast(g, other.shape)))

    __radd__ = __add__

    def __neg__(self):
        return self._make(-self.data, (self,), "neg", lambda g: (-g,))

    def __sub__(self, other):
        other = as_tensor(other)
        return self._make(self.data - other.data, (self, other), "sub",
                          lambda g: (unbroadcast(g, self.shape), unbroadcast(-g, other.shape)))

    def __rsub__(self, other):
        return as_tensor(other) - self

    def __mul__(self, other):
        other = as_tensor(other)
        return self._make(self.data * other.data, (self, other), "mul",          # d(ab) = b da + a db
                          lambda g: (unbroadcast(g * other.data, self.shape), unbroadcast(g * self.data, other.shape)))

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = as_tensor(other)
        return self._make(self.data / other.data, (self, other), "div",          # d(a/b) = da/b - a db/b²
                          lambda g: (unbroadcast(g / other.data, self.shape),
                                     unbroadcast(-g * self.data / other.data ** 2, other.shape)))

    def __rtruediv__(self, other):
        return as_tensor(other) / self

    def __pow__(self, k: float):
        if isinstance(k, Tensor):
            raise TypeError("only a constant exponent is supported: x ** 2.0")
        return self._make(self.data ** k, (self,), f"pow {k:g}", lambda g: (g * k * self.data ** (k - 1),))

    # -- matrix product ---------------------------------------------------------------------------
    def __matmul__(self, other):
        """A @ B for 2-D A [n, k] and B [k, m] (B may be 1-D): dA = G Bᵀ, dB = Aᵀ G."""
        other = as_tensor(other)
        if self.ndim != 2 or other.ndim not in (1, 2):
            raise ValueError(f"matmul takes a 2-D left operand and a 1-D or 2-D right one, got {self.shape} @ {other.shape}")

        def backward(g):
            if other.ndim == 1:
                return np.outer(g, other.data), self.data.T @ g
            return g @ other.data.T, self.data.T @ g
        return self._make(self.data @ other.data, (self, other), "matmul", backward)

    # -- reductions -------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        def backward(g):
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, self.shape).copy(),)
        return self._make(self.data.sum(axis=axis, keepdims=keepdims), (self,), "sum", backward)

    def mean(self, axis=None, keepdims: bool = False):
        n = self.data.size if axis is None else np.prod([self.shape[a] for a in np.atleast_1d(axis)])
        return self.sum(axis, keepdims) * (1.0 / n)

    def max(self, axis: int, keepdims: bool = False):
        """The maximum along ``axis``; the gradient goes to the first maximal entry."""
        idx = self.data.argmax(axis=axis)
        out = np.take_along_axis(self.data, np.expand_dims(idx, axis), axis)

        def backward(g):
            full = np.zeros_like(self.data)
            np.put_along_axis(full, np.expand_dims(idx, axis), g if keepdims else np.expand_dims(g, axis), axis)
            return (full,)
        return self._make(out if keepdims else out.squeeze(axis), (self,), "max", backward)

    # -- elementwise functions --------------------------------------------------------------------
    def exp(self):
        e = np.exp(self.data)
        return self._make(e, (self,), "exp", lambda g: (g * e,))

    def log(self):
        return self._make(np.log(self.data), (self,), "log", lambda g: (g / self.data,))

    def relu(self):
        return self._make(np.maximum(self.data, 0), (self,), "relu", lambda g: (g * (self.data > 0),))

    def tanh(self):
        t = np.tanh(self.data)
        return self._make(t, (self,), "tanh", lambda g: (g * (1 - t ** 2),))

    def sigmoid(self):
        s = 0.5 * (1 + np.tanh(0.5 * self.data))           # = 1 / (1 + e^-x), without overflow
        return self._make(s, (self,), "sigmoid", lambda g: (g * s * (1 - s),))

    def log_softmax(self, axis: int = -1):
        """x - logsumexp(x): stable (the maximum is subtracted first). d/dx: g - softmax · Σ g."""
        shifted = self.data - self.data.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        softmax = np.exp(out)
        return self._make(out, (self,), "log_softmax", lambda g: (g - softmax * g.sum(axis=axis, keepdims=True),))

    # -- shapes and indexing ----------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._make(self.data.reshape(shape), (self,), "reshape", lambda g: (g.reshape(self.shape),))

    def transpose(self, *axes):
        axes = axes or tuple(reversed(range(self.ndim)))
        inverse = np.argsort(axes)
        return self._make(self.data.transpose(axes), (self,), "transpose", lambda g: (g.transpose(inverse),))

    @property
    def T(self):
        return self.transpose()

    def __getitem__(self, index):
        """Basic and integer-array indexing; the backward scatters with np.add.at, so repeated indices add up."""
        index = tuple(i.data.astype(np.int64) if isinstance(i, Tensor) else i for i in index) \
            if isinstance(index, tuple) else (index.data.astype(np.int64) if isinstance(index, Tensor) else index)

        def backward(g):
            full = np.zeros_like(self.data)
            np.add.at(full, index, g)
            return (full,)
        return self._make(self.data[index], (self,), "index", backward)


def tensor(data, requires_grad: bool = False, name: str = "") -> Tensor:
    return Tensor(data, requires_grad=requires_grad, name=name)
