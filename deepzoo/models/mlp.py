"""The multi-layer perceptron (a fully connected, "dense" network).

One neuron computes ``a = f(w . x + b)``: a weighted sum of its inputs plus a bias, passed through a
non-linear activation ``f``. A layer is many neurons side by side, ``h = f(W x + b)``, and an MLP
stacks layers:

    h_0 = x
    h_l = dropout(f(W_l h_{l-1} + b_l))        l = 1 .. L
    z   = W_out h_L + b_out                    the output head

Without ``f`` the stack collapses into one linear map: with f the identity,

    z = W_out (W_L (... (W_1 x + b_1) ...) + b_L) + b_out = W x + b,
    W = W_out W_L ... W_1,     b = b_out + Σ_l W_out W_L ... W_{l+1} b_l,

so depth adds parameters but nothing a single linear layer could not compute (``activation="none"``
builds such a net; ``deepzoo experiment linear-collapse`` trains it and multiplies it out). With a
non-linear f, a wide enough MLP can approximate any continuous function. The output head decides the task, with the loss that matches it:

=================  ======================  ===========================================
task               head                    loss
=================  ======================  ===========================================
regression         z (linear)              mean squared error
binary             p = sigmoid(z)          binary cross-entropy
K classes          p = softmax(z)          cross-entropy  -log p_y
=================  ======================  ===========================================

The model returns ``z`` (the logits); the sigmoid/softmax live inside the loss, where they are
computed stably (log-sum-exp), and inside prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.nn import blocks

ACTIVATIONS = ("relu", "tanh", "sigmoid", "none")     # "none": f is the identity, no layer at all


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: list[int], out_features: int,
                 activation: str = "relu", dropout: float = 0.0, impl: str = "torch") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise DeepzooError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
        b = blocks(impl)
        act = {"relu": b.ReLU, "tanh": b.Tanh, "sigmoid": b.Sigmoid, "none": None}[activation]
        layers: list[nn.Module] = [b.Flatten()]
        width = in_features
        for h in hidden:
            layers.append(b.Linear(width, h))
            if act is not None:
                layers.append(act())
            if dropout > 0:
                layers.append(b.Dropout(dropout))
            width = h
        layers.append(b.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
