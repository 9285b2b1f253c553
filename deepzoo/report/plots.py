"""Training curves as a PNG (losses on the left, the other metrics on the right), and save_png, through
which every plot of the package is written."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepzoo.files import atomic_write_bytes  # noqa: E402


def plot_curves(rows: list[dict], path: Path, title: str) -> Path | None:
    if not rows:
        return None
    epochs = [r["epoch"] for r in rows]
    skip = {"epoch", "step", "train_seconds", "lr"}
    keys = [k for k in rows[-1] if k not in skip and not k.endswith("_per_s")]
    losses = [k for k in keys if k.endswith("loss")]
    others = [k for k in keys if k not in losses]
    fig, axes = plt.subplots(1, 2 if others else 1, figsize=(10 if others else 5.5, 3.8), squeeze=False)
    for k in losses:
        axes[0, 0].plot(epochs, [r.get(k) for r in rows], marker=".", label=k)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss")
    if all(r.get(k, 1) > 0 for r in rows for k in losses):
        axes[0, 0].set_yscale("log")
    axes[0, 0].legend()
    if others:
        for k in others:
            axes[0, 1].plot(epochs, [r.get(k) for r in rows], marker=".", label=k)
        axes[0, 1].set(xlabel="epoch", title="validation metrics")
        axes[0, 1].legend()
    fig.suptitle(title)
    return save_png(fig, path, dpi=90)


def save_png(fig, path, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` as a PNG atomically (never a half-written file), close it."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def save_image_grid(images, path, nrow: int, scale: int = 2) -> Path:
    """Write grey images [N, 1, H, W] with values in [0, 1] as one PNG grid, ``nrow`` images a row,
    1-pixel dark gaps, each pixel ``scale`` x ``scale``; atomically."""
    import numpy as np
    from PIL import Image
    a = np.asarray(images.detach().float().clamp(0, 1).cpu())[:, 0]
    n, h, w = a.shape
    rows = -(-n // nrow)
    grid = np.full((rows * (h + 1) + 1, nrow * (w + 1) + 1), 0.2, dtype=np.float32)
    for k in range(n):
        i, j = divmod(k, nrow)
        grid[1 + i * (h + 1):1 + i * (h + 1) + h, 1 + j * (w + 1):1 + j * (w + 1) + w] = a[k]
    img = Image.fromarray((grid * 255).round().astype(np.uint8)).resize(
        (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
