"""Receptive fields: how much of the input one output pixel of each layer sees.

Walking the layers in order, with r the receptive field (in input pixels) and j the jump (how many input
pixels one step on this layer's map moves), a layer with kernel k and stride s gives

    r <- r + (k - 1) * j,     j <- j * s          (r = 1, j = 1 at the input)

so a 3x3 convolution adds 2 j pixels and a stride-2 layer doubles every later layer's contribution.
Three stacked 3x3 convolutions: r = 1 + 2 + 2 + 2 = 7, the field of one 7x7 convolution, with
3 * (3 * 3 * C * C) = 27 C^2 weights against 7 * 7 * C * C = 49 C^2 (C channels in and out, no bias),
and three ReLUs instead of one.

The layers are found by running the model once on a dummy input with forward hooks on its leaf modules,
so the table follows the real execution order. In a residual block the receptive field grows along the
convolutions; the shortcut sees less: a 1x1 projection (shortcut B) is listed but does not add, and the
identity (shortcut A) has no layer to list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from deepzoo.errors import DeepzooError

SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class Row:
    name: str
    kind: str
    output: tuple          # (C, H, W) or (features,)
    kernel: int | None
    stride: int | None
    field: int | None      # receptive field in input pixels; None: the whole input
    parameters: int
    on_path: bool = True   # False for a shortcut, which does not grow the field


def _kernel_stride(m: nn.Module) -> tuple[int, int]:
    k, s = m.kernel_size, m.stride
    k = k if isinstance(k, int) else k[0]
    s = s if isinstance(s, int) else s[0]
    return k, s


def _is_spatial(m: nn.Module) -> bool:
    # deepzoo's from-scratch Conv2d / MaxPool2d have the same attributes as torch's
    return isinstance(m, SPATIAL) or (hasattr(m, "kernel_size") and hasattr(m, "stride"))


def layer_table(model: nn.Module, input_shape: tuple) -> list[Row]:
    """One :class:`Row` per convolution, pooling and fully connected layer of ``model``, in execution order."""
    records = []
    hooks = []
    for name, m in model.named_modules():
        if name and not list(m.children()) and (_is_spatial(m) or hasattr(m, "in_features")):  # conv, pool, linear
            hooks.append(m.register_forward_hook(lambda mod, inp, out, name=name: records.append((name, mod, out.shape))))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    except RuntimeError as e:  # e.g. a map pooled below 1x1
        raise DeepzooError(f"the layers do not fit an input of {'x'.join(map(str, input_shape))}: "
                           f"{str(e).splitlines()[0]}") from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    rows, r, j, flat = [], 1, 1, False
    for name, m, shape in records:
        params = sum(p.numel() for p in m.parameters())
        out = tuple(shape[1:])
        if _is_spatial(m):
            k, s = _kernel_stride(m)
            shortcut = "shortcut" in name
            if not shortcut:
                r, j = r + (k - 1) * j, j * s
            rows.append(Row(name, type(m).__name__, out, k, s, None if flat else r, params, not shortcut))
        else:
            flat = True  # a fully connected layer sees the whole input
            rows.append(Row(name, type(m).__name__, out, None, None, None, params))
    return rows


_TOKEN = re.compile(r"^(conv|pool)(\d+)(?:s(\d+))?$")


def from_spec(spec: str, channels: int) -> nn.Sequential:
    """``"conv3,conv3,conv3"`` -> three 3x3 convolutions (C -> C channels, no bias, 'same' padding,
    each followed by ReLU); ``convKsS`` sets a stride, ``poolK`` is a KxK max-pool."""
    layers = []
    for token in (t.strip() for t in spec.split(",")):
        m = _TOKEN.match(token)
        if not m:
            raise DeepzooError(f"receptive-field spec: cannot read {token!r}; write layers like "
                               f"conv3,conv3,pool2 or conv7s2 (K = kernel, sS = stride)")
        kind, k, s = m.group(1), int(m.group(2)), int(m.group(3) or (1 if m.group(1) == "conv" else m.group(2)))
        if not (1 <= k <= 64 and 1 <= s <= 64):
            raise DeepzooError(f"receptive-field spec: kernel and stride must be 1 to 64 in {token!r}")
        if kind == "conv":
            layers += [nn.Conv2d(channels, channels, k, s, k // 2, bias=False), nn.ReLU()]
        else:
            layers.append(nn.MaxPool2d(k, s))
    return nn.Sequential(*layers)


def _fmt_params(n: int, channels: int | None) -> str:
    if channels and n % (channels * channels) == 0 and n:
        return f"{n:,} ({n // (channels * channels)} C²)"
    return f"{n:,}"


def format_table(rows: list[Row], input_shape: tuple, total: int, channels: int | None = None,
                 batch_norm: bool = False) -> str:
    from deepzoo.report.format import table
    lines = [["input", "", "x".join(map(str, input_shape)), "", "1", ""]]
    for row in rows:
        lines.append([row.name + ("" if row.on_path else " (shortcut)"), row.kind, "x".join(map(str, row.output)),
                      f"{row.kernel}/{row.stride}" if row.kernel else "",
                      "all" if row.field is None else str(row.field), _fmt_params(row.parameters, channels)])
    text = table(lines, ["layer", "type", "output", "kernel/stride", "receptive field", "parameters"])
    note = " (batch-norm scales and shifts included, which the rows omit)" if batch_norm else ""
    return text + f"\n{total:,} parameters in all{note}"


def comparison(channels: int) -> tuple[list[list[str]], str]:
    """The notes' comparison, computed: one 7x7 convolution against three stacked 3x3 ones."""
    rows = []
    for label, spec in (("one 7x7 conv", "conv7"), ("three 3x3 convs", "conv3,conv3,conv3")):
        model = from_spec(spec, channels)
        layers = layer_table(model, (channels, 32, 32))
        weights = sum(p.numel() for p in model.parameters())
        relus = sum(isinstance(m, nn.ReLU) for m in model.modules())
        rows.append([label, str(layers[-1].field), f"{weights // (channels * channels)} C²",
                     f"{weights:,}", str(relus)])
    header = ["stack", "receptive field", "weights", f"weights at C={channels}", "non-linearities"]
    return rows, header


def explain(target: str, channels: int = 64, size: int = 32) -> str:
    """The text ``deepzoo explain receptive-field TARGET`` prints."""
    from deepzoo import recipes
    from deepzoo.report.format import table
    if target in ("7x7-vs-3x3", "3x3-vs-7x7"):
        rows, header = comparison(channels)
        return ("One 7x7 convolution against three stacked 3x3 convolutions, C channels in and out, no bias:\n"
                + table(rows, header))
    if _TOKEN.match(target.split(",")[0].strip()):
        model, shape, per_c = from_spec(target, channels), (channels, size, size), channels
    else:
        recipe = recipes.get(target)
        if recipe.make_model is None:
            raise DeepzooError(f"{target} is not an image model; give a CNN recipe (e.g. resnet20-cifar10, "
                               f"cnn-mnist) or a spec such as conv3,conv3,conv3")
        model, shape, per_c = recipe.make_model(recipe.full_defaults()), recipe.input_shape, None
    rows = layer_table(model, shape)
    has_bn = any("BatchNorm" in type(m).__name__ for m in model.modules())
    return format_table(rows, shape, sum(p.numel() for p in model.parameters()), per_c, has_bn)
