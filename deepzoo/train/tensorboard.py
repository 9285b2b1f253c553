"""``--set train.tensorboard=true``: the run's scalars as TensorBoard event files in ``RUN/tensorboard/``.

Written by rank 0 only, after each epoch's checkpoint: every number of the epoch's metrics row (losses,
metrics, learning rate, training seconds) against the epoch, tagged ``train/loss``, ``val/acc``, ``lr``, ...;
and every step's training loss against the step (``step/train_loss``). A resumed run continues the same
folder with ``purge_step`` set to the first step it redoes, so TensorBoard drops what a killed epoch had
written. Needs the optional ``tensorboard`` package (``pip install tensorboard``, or the ``tensorboard``
extra of deepzoo); without it the run stops before training with one line saying so.
"""

from __future__ import annotations

from pathlib import Path

from deepzoo.errors import DeepzooError

FOLDER = "tensorboard"


def open_writer(run_dir: Path, purge_step: int | None = None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise DeepzooError("train.tensorboard=true needs the tensorboard package: pip install tensorboard "
                           "(or pip install \"deepzoo[tensorboard]\")") from None
    return SummaryWriter(log_dir=str(Path(run_dir) / FOLDER), purge_step=purge_step)


def tag(key: str) -> str:
    """``train_loss`` -> ``train/loss``, ``val_acc`` -> ``val/acc``; ``lr`` stays ``lr``."""
    head, sep, tail = key.partition("_")
    return f"{head}/{tail}" if sep and head in ("train", "val", "test", "eval") else key


def write_epoch(writer, row: dict) -> None:
    epoch = row["epoch"]
    for key, value in row.items():
        if key not in ("epoch", "step") and isinstance(value, (int, float)) and not isinstance(value, bool):
            writer.add_scalar(tag(key), value, epoch)
    writer.flush()
