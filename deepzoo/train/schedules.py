"""Learning-rate schedules as plain functions of the step.

The engine sets ``lr = optim.lr * factor(step)`` before every optimizer step, so a schedule is a
single formula and its whole state is the global step, which the checkpoint already holds. With
``T`` total steps, ``W`` warm-up steps and progress ``t = (step - W) / (T - W)`` in [0, 1]:

=============  ==============================================
constant       1
step           gamma ** floor(e / step_size)     e = max(0, epoch - decay_start), epoch from 0
exponential    gamma ** e                        (StepLR with step_size 1)
linear         1 - t
cosine         min + (1 - min) * (1 + cos(pi t)) / 2
inverse_sqrt   sqrt(W / (step + 1))              the Transformer's ("Noam") decay after warm-up
=============  ==============================================

and during warm-up the factor rises linearly, ``(step + 1) / W``: Adam's first steps are noisy and a
short warm-up keeps them from throwing the weights far away. Warm-up followed by cosine decay is the
"one-cycle" policy (Smith & Topin 2018) without its momentum cycling.
"""

from __future__ import annotations

import math

from deepzoo.errors import DeepzooError

SCHEDULES = ("constant", "step", "exponential", "linear", "cosine", "inverse_sqrt")


def lr_factor(name: str, step: int, total_steps: int, steps_per_epoch: int, warmup_steps: int = 0,
              gamma: float = 0.1, step_size: int = 1, min_factor: float = 0.0, decay_start: int = 0) -> float:
    if name not in SCHEDULES:
        raise DeepzooError(f"optim.schedule: unknown schedule '{name}' (choose from {', '.join(SCHEDULES)})")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    epoch = max(0, step // max(steps_per_epoch, 1) - decay_start)
    t = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
    if name == "constant":
        return 1.0
    if name == "step":
        return gamma ** (epoch // max(step_size, 1))
    if name == "exponential":
        return gamma ** epoch
    if name == "inverse_sqrt":
        return max((max(warmup_steps, 1) / (step + 1)) ** 0.5, min_factor)
    if name == "linear":
        return max(1.0 - t, min_factor)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
