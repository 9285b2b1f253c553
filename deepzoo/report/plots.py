"""Training curves as a PNG (losses on the left, the other metrics on the right), and save_png, through
which every plot of the package is written."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

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
    if losses and all(r.get(k) is not None and r[k] > 0 for r in rows for k in losses):
        axes[0, 0].set_yscale("log")
    if losses:
        axes[0, 0].legend()
    if others:
        for k in others:
            axes[0, 1].plot(epochs, [r.get(k) for r in rows], marker=".", label=k)
        axes[0, 1].set(xlabel="epoch", title="validation metrics")
        axes[0, 1].legend()
    for ax in axes[0]:                                # epochs are whole numbers: no tick at 1.5
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
    """Write grey images [N, 1, H, W] (or colour ones, [N, 3, H, W]) with values in [0, 1] as one PNG grid,
    ``nrow`` images a row, 1-pixel dark gaps, each pixel ``scale`` x ``scale``; atomically."""
    import numpy as np
    from PIL import Image
    a = np.asarray(images.detach().float().clamp(0, 1).cpu())
    a = a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)
    n, h, w = a.shape[:3]
    rows = -(-n // nrow)
    grid = np.full((rows * (h + 1) + 1, nrow * (w + 1) + 1) + a.shape[3:], 0.2, dtype=np.float32)
    for k in range(n):
        i, j = divmod(k, nrow)
        grid[1 + i * (h + 1):1 + i * (h + 1) + h, 1 + j * (w + 1):1 + j * (w + 1) + w] = a[k]
    img = Image.fromarray((grid * 255).round().astype(np.uint8)).resize(
        (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def plot_embedding_2d(vectors, labels, classes: list, path, title: str, highlight=None) -> tuple[Path, str]:
    """Vectors [N, D] projected to 2-D (t-SNE from scikit-learn, or PCA when D <= 2 or N is tiny) and
    drawn as one point per row, coloured by ``labels`` (-1: unlabelled, grey); ``highlight`` (indices)
    are drawn larger with a black edge (e.g. the training nodes). Returns (path, the method used)."""
    import numpy as np
    v = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(labels)
    if v.shape[1] <= 2:
        xy, method = np.pad(v, ((0, 0), (0, 2 - v.shape[1]))), "the vectors themselves"
    elif len(v) < 10:
        v = v - v.mean(0)
        xy, method = v @ np.linalg.svd(v, full_matrices=False)[2][:2].T, "PCA"
    else:
        import inspect

        from sklearn.manifold import TSNE
        # 500 iterations (250 of them exaggerated) and a coarser Barnes-Hut angle: on Cora's 2,708 nodes the
        # same map as 1,000 iterations at 0.5, in a third of the time (7 s instead of 22 s on one core)
        steps = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"   # sklearn < 1.5
        xy = TSNE(2, perplexity=min(30.0, (len(v) - 1) / 3), init="pca", random_state=0, angle=0.8,
                  **{steps: 500}).fit_transform(v)
        method = "t-SNE"
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    unl = labels < 0
    if unl.any():
        ax.scatter(xy[unl, 0], xy[unl, 1], s=6, c="lightgrey", label="unlabelled")
    for k, name in enumerate(classes):
        sel = labels == k
        ax.scatter(xy[sel, 0], xy[sel, 1], s=8, color=cmap(k % cmap.N), label=str(name))
    if highlight is not None and len(highlight):
        h = np.asarray(highlight)
        ax.scatter(xy[h, 0], xy[h, 1], s=30, facecolors="none", edgecolors="black", linewidths=0.7,
                   label="training nodes")
    ax.set(xticks=[], yticks=[], title=f"{title}\n({method} of the hidden vectors)")
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    return save_png(fig, path, dpi=110), method
