"""A LeNet-style convolutional network (LeCun et al. 1998), as in the Caffe MNIST example.

A convolution slides a small kernel over the image: each output pixel is a weighted sum of a
k x k patch of every input channel,

    y[c_out, i, j] = b[c_out] + sum_{c_in, u, v} W[c_out, c_in, u, v] * x[c_in, i*s + u, j*s + v]

so the same few weights detect a pattern (an edge, a stroke end) wherever it appears. ReLU keeps the
positive responses; 2x2 max-pooling keeps the strongest response in each 2x2 block, halving the map
and making the features tolerant to small shifts. Each output pixel "sees" a patch of the input, its
receptive field, which grows with every conv and pool:

    layer            output        receptive field   parameters (c1=20, c2=50, hidden=500)
    input            1 x 28 x 28   1
    conv 5x5, c1     c1 x 24 x 24  5                 26 c1                =    520
    max-pool 2       c1 x 12 x 12  6
    conv 5x5, c2     c2 x 8 x 8    14                (25 c1 + 1) c2       = 25,050
    max-pool 2       c2 x 4 x 4    16
    flatten, FC      hidden                          (16 c2 + 1) hidden   = 400,500
    FC               10                              (hidden + 1) 10      =  5,010

The fully connected layers then classify from the 16 c2 features. ``channels_last`` stores activations
as N x H x W x C, which PyTorch's CPU convolutions (oneDNN) run markedly faster (see benchmarks/mnist.py).
"""

from __future__ import annotations

import torch
from torch import nn

from deepzoo.nn import blocks


class LeNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, c1: int = 20, c2: int = 50,
                 hidden: int = 500, dropout: float = 0.5, image_size: int | tuple[int, int] = 28,
                 channels_last: bool = True, impl: str = "torch") -> None:
        super().__init__()
        b = blocks(impl)
        self.channels_last = channels_last
        self.features = nn.Sequential(
            b.Conv2d(in_channels, c1, 5), b.ReLU(), b.MaxPool2d(2),
            b.Conv2d(c1, c2, 5), b.ReLU(), b.MaxPool2d(2),
        )
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size   # or (height, width)
        side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        self.classifier = nn.Sequential(
            b.Flatten(), b.Linear(c2 * side_h * side_w, hidden), b.ReLU(), b.Dropout(dropout),
            b.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(self.features(x))
