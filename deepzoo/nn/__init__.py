"""Building blocks, in two interchangeable implementations picked by a flag.

``impl="torch"`` gives PyTorch's built-ins (torch.nn, torch.nn.functional, torch.optim): fused
kernels, the fast choice for training. ``impl="scratch"`` gives deepzoo's own readable versions
(deepzoo.nn.layers, .losses, .optim), whose forward passes and update rules are written out in
elementary tensor ops. The two take the same arguments, have the same parameter and state names,
and are proven numerically equal by tests/test_nn_blocks.py.

    B = blocks("scratch")
    model = torch.nn.Sequential(B.Linear(4, 8), B.ReLU(), B.Linear(8, 2))
    loss = loss_functions("scratch").cross_entropy(model(x), y)
    opt = optimizer_class("adamw", "scratch")(model.parameters(), lr=1e-3, weight_decay=1e-2)

Pass ``dim`` to Softmax / LogSoftmax explicitly: torch's versions default to an inferred dim.
"""

import types

import torch
import torch.nn.functional as F

from deepzoo.errors import DeepzooError
from deepzoo.nn import layers as _layers
from deepzoo.nn import losses as _losses
from deepzoo.nn import optim as _optim
from deepzoo.nn import rnn as _rnn

import functools

IMPLS = ("torch", "scratch")
OPTIMIZERS = ("sgd", "adam", "adamw")

_BLOCK_NAMES = ("Linear", "Conv2d", "BatchNorm2d", "MaxPool2d", "Dropout", "ReLU", "Sigmoid", "Tanh", "Softmax",
                "LogSoftmax", "Flatten")
_LOSS_NAMES = ("mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy")


def _check_impl(impl):
    if impl not in IMPLS:
        raise DeepzooError(f"unknown implementation {impl!r}; choose one of: {', '.join(IMPLS)}")


def blocks(impl: str = "torch") -> types.SimpleNamespace:
    """The layer classes (Linear, Conv2d, MaxPool2d, Dropout, ReLU, ...) of the chosen implementation."""
    _check_impl(impl)
    source = torch.nn if impl == "torch" else _layers
    return types.SimpleNamespace(**{name: getattr(source, name) for name in _BLOCK_NAMES})


def loss_functions(impl: str = "torch") -> types.SimpleNamespace:
    """The loss functions (mse_loss, binary_cross_entropy[_with_logits], cross_entropy) of the chosen implementation."""
    _check_impl(impl)
    source = F if impl == "torch" else _losses
    return types.SimpleNamespace(**{name: getattr(source, name) for name in _LOSS_NAMES})


def optimizer_class(name: str, impl: str = "torch") -> type:
    """The optimizer class for name in {"sgd", "adam", "adamw"}, e.g. ``optimizer_class("adam", "scratch")``."""
    _check_impl(impl)
    if name not in OPTIMIZERS:
        raise DeepzooError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    source = torch.optim if impl == "torch" else _optim
    return {"sgd": source.SGD, "adam": source.Adam, "adamw": source.AdamW}[name]


def recurrent(mode: str, impl: str = "torch"):
    """The recurrent network class for mode in {"rnn", "gru", "lstm"}, called as
    ``cls(input_size, hidden_size, num_layers=..., bidirectional=..., batch_first=..., dropout=...)``
    (always pass batch_first: torch defaults to False, deepzoo.nn.rnn to True)."""
    _check_impl(impl)
    if mode not in _rnn.MODES:
        raise DeepzooError(f"unknown recurrent cell {mode!r}; choose one of: {', '.join(_rnn.MODES)}")
    if impl == "torch":
        return {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[mode]
    return functools.partial(_rnn.RNN, mode)
