"""Metrics accumulated over an evaluation pass, batch by batch.

Each metric keeps running sums so the figure over the whole split is exact, whatever the batch size.
"""

from __future__ import annotations

import math

import torch

from deepzoo.report.format import format_metric  # noqa: F401  (re-exported: callers import it from here)


class Metric:
    name = "metric"
    higher_is_better = True

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError


def predicted_class(output: torch.Tensor) -> torch.Tensor:
    """argmax of the logits; for one logit (binary), the sign: p = sigmoid(z) > 0.5  <=>  z > 0."""
    if output.ndim == 1 or output.shape[-1] == 1:
        return (output.reshape(-1) > 0).long()
    return output.argmax(dim=-1)


class Accuracy(Metric):
    name = "acc"

    def reset(self) -> None:
        self.correct, self.count = 0, 0

    def update(self, output, target) -> None:
        self.correct += int((predicted_class(output) == target.reshape(-1).long()).sum())
        self.count += target.numel()

    def compute(self) -> float:
        return self.correct / max(self.count, 1)


class RMSE(Metric):
    """Root mean squared error, in the target's units."""
    name = "rmse"
    higher_is_better = False

    def reset(self) -> None:
        self.sse, self.count = 0.0, 0

    def update(self, output, target) -> None:
        self.sse += float(((output.reshape(-1) - target.reshape(-1)) ** 2).sum())
        self.count += target.numel()

    def compute(self) -> float:
        return (self.sse / max(self.count, 1)) ** 0.5


class R2(Metric):
    """Coefficient of determination: 1 - SSE / SST, SST about the split's own mean."""
    name = "r2"

    def reset(self) -> None:
        self.sse, self.s, self.s2, self.n = 0.0, 0.0, 0.0, 0

    def update(self, output, target) -> None:
        y = target.reshape(-1).double()
        self.sse += float(((output.reshape(-1).double() - y) ** 2).sum())
        self.s += float(y.sum())
        self.s2 += float((y * y).sum())
        self.n += y.numel()

    def compute(self) -> float:
        sst = self.s2 - self.s * self.s / max(self.n, 1)
        return 1.0 - self.sse / sst if sst > 0 else float("nan")


class Perplexity(Metric):
    """exp of the mean cross-entropy per predicted token: output [B, T, V], target [B, T]."""
    name = "ppl"
    higher_is_better = False

    def reset(self) -> None:
        self.nll, self.count = 0.0, 0

    def update(self, output, target) -> None:
        self.nll += float(torch.nn.functional.cross_entropy(output.reshape(-1, output.shape[-1]).float(),
                                                            target.reshape(-1), reduction="sum"))
        self.count += target.numel()

    def compute(self) -> float:
        return math.exp(self.nll / max(self.count, 1))
