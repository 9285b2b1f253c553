"""Deep CNNs for CIFAR-10: the notes' 7-layer CNN, a VGG-style net, and ResNet with its plain twin.

**Stacks of small convolutions (VGG, Simonyan & Zisserman 2015).** Conv 3x3 + ReLU, twice, then 2x2
max-pooling, repeated, then fully connected layers. Three stacked 3x3 convolutions see a 7x7 patch
(receptive field 1 + 3 * 2 = 7), like one 7x7 convolution, but with C channels in and out they have
3 * 9 C^2 = 27 C^2 weights against 49 C^2, and three non-linearities instead of one
(``deepzoo explain receptive-field 7x7-vs-3x3``).

**Batch normalisation** after every convolution (:class:`deepzoo.nn.layers.BatchNorm2d` writes it out)
keeps each layer's inputs at zero mean and unit variance, which is what lets nets of 20+ layers train
with a large learning rate at all.

**Degradation and residual learning (He et al. 2016).** Stacking more layers on a plain net makes its
*training* error go up, not down (plain-56 is worse than plain-20): the deeper net could copy the
shallow one and set the extra layers to the identity, but SGD does not find that solution. A residual
block asks its layers for the change only,

    y = relu( F(x) + shortcut(x) ),    F(x) = BN(conv3x3( relu(BN(conv3x3(x))) ))

so the identity is F = 0, and the gradient reaches early layers through the shortcut unchanged:
dL/dx = dL/dy * (dF/dx + 1). When a block halves the map and doubles the channels, the shortcut is
either **A**, the identity on every second pixel with the new channels zero (no parameters, the
paper's CIFAR choice), or **B**, a projection: 1x1 convolution with stride 2 and BN.

**ResNet for CIFAR (He et al. 2016, section 4.2)**, depth 6n + 2: a 3x3 conv with 16 channels, then
three stages of n blocks on 32x32 / 16x16 / 8x8 maps with 16 / 32 / 64 channels (the first block of
stages 2 and 3 has stride 2), global average pooling, and a 10-way fully connected layer.
n = 3, 5, 9 give ResNet-20 (0.27M parameters), ResNet-32 (0.46M) and ResNet-56 (0.85M). The *plain*
net is the same, layer for layer, without the shortcuts.

``channels_last`` stores activations as N x H x W x C, which oneDNN's CPU convolutions run faster;
measured in benchmarks/cifar.py, like train.precision=bf16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.errors import DeepzooError
from deepzoo.nn import blocks


class ResidualBlock(nn.Module):
    """Two 3x3 conv + BN layers and (when ``residual``) a shortcut around them.

    ``shortcut``: "A" (identity, zero-padded channels when they grow) or "B" (1x1 projection when the
    shape changes, identity otherwise).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, residual: bool = True, shortcut: str = "A",
                 impl: str = "torch") -> None:
        super().__init__()
        b = blocks(impl)
        self.conv1, self.bn1 = b.Conv2d(cin, cout, 3, stride, 1, bias=False), b.BatchNorm2d(cout)
        self.conv2, self.bn2 = b.Conv2d(cout, cout, 3, 1, 1, bias=False), b.BatchNorm2d(cout)
        self.relu = b.ReLU()
        self.residual, self.kind = residual, shortcut
        self.reshape = stride != 1 or cin != cout
        self.pad = cout - cin
        self.stride = stride
        self.shortcut = None
        if residual and self.reshape and shortcut == "B":
            self.shortcut = nn.Sequential(b.Conv2d(cin, cout, 1, stride, bias=False), b.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))   # F(x)
        if self.residual:
            if self.shortcut is not None:                                # B: projection
                out = out + self.shortcut(x)
            elif self.reshape:                                           # A: subsample, zero channels
                out = out + F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.pad))
            else:
                out = out + x                                            # identity
        return self.relu(out)


class ResNetCIFAR(nn.Module):
    """ResNet-(6n+2) for 32x32 images, or its plain counterpart (``residual=False``). Global average
    pooling before the classifier lets it take images of any size (``in_channels`` of them)."""

    def __init__(self, depth: int = 20, num_classes: int = 10, residual: bool = True, shortcut: str = "A",
                 width: int = 16, channels_last: bool = True, impl: str = "torch", in_channels: int = 3) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise DeepzooError(f"model.depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
        if shortcut not in ("A", "B"):
            raise DeepzooError(f"model.shortcut must be 'A' (identity) or 'B' (projection), got {shortcut!r}")
        b = blocks(impl)
        n = (depth - 2) // 6
        self.channels_last = channels_last
        self.stem = nn.Sequential(b.Conv2d(in_channels, width, 3, 1, 1, bias=False), b.BatchNorm2d(width), b.ReLU())
        stages, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            for j in range(n):
                stages.append(ResidualBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, residual, shortcut, impl))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.fc = b.Linear(cin, num_classes)
        for m in self.modules():   # He et al.'s initialisation (their reference [13]) for the convolutions
            if isinstance(m, (nn.Conv2d, b.Conv2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stages(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))          # global average pooling, then the classifier


class ConvStack(nn.Module):
    """Conv 3x3 (+ BN) + ReLU layers with 2x2 max-pooling between groups, then fully connected layers.

    ``config`` lists output channels, "M" for a pool: the notes' 7-layer CNN is
    [32, 32, "M", 64, 64, "M", 128, 128, "M"] with one classifier layer (6 conv + 1 FC); the VGG-style
    net (vgg-cifar10) adds a fourth stage, doubling the channels per stage ([32, 32, M, 64, 64, M, 128,
    128, M, 256, 256, M], VGG's widths halved) and a hidden FC layer of 256 with dropout.
    """

    def __init__(self, config: list, hidden: list[int] = (), num_classes: int = 10, batch_norm: bool = True,
                 dropout: float = 0.0, image_size: int | tuple[int, int] = 32, channels_last: bool = True,
                 impl: str = "torch", in_channels: int = 3) -> None:
        super().__init__()
        b = blocks(impl)
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size   # or (height, width)
        layers, cin, side_h, side_w = [], in_channels, h, w
        for v in config:
            if v == "M":
                layers.append(b.MaxPool2d(2))
                side_h, side_w = side_h // 2, side_w // 2
            else:
                layers.append(b.Conv2d(cin, int(v), 3, 1, 1, bias=not batch_norm))
                if batch_norm:
                    layers.append(b.BatchNorm2d(int(v)))
                layers.append(b.ReLU())
                cin = int(v)
        if side_h < 1 or side_w < 1:
            raise DeepzooError(f"model.config pools {config.count('M')} times: too many for {w}x{h}")
        self.channels_last = channels_last
        self.features = nn.Sequential(*layers)
        head, fan_in = [b.Flatten()], cin * side_h * side_w
        for h in hidden:
            head += [b.Linear(fan_in, h), b.ReLU()] + ([b.Dropout(dropout)] if dropout > 0 else [])
            fan_in = h
        head.append(b.Linear(fan_in, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(self.features(x))
