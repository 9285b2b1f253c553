"""Your own images, for every image recipe: ``--set data.path=...``.

Three layouts are read; which one is decided by what ``data.path`` is:

1. **A folder of class folders** (torchvision's ImageFolder convention). Each sub-folder is a class,
   named after the folder; its images (PNG, JPEG, BMP or WebP, found in it and in its own sub-folders)
   are that class's examples. Other files (a README, a labels.txt) and hidden entries are ignored::

       my_images/cat/001.png  my_images/cat/002.jpg  my_images/dog/a.webp ...

   The class folders may sit under split folders, ``train/`` (required then) and ``val/`` and ``test/``
   (each optional); a class of ``val/`` or ``test/`` must also be one of ``train/``::

       my_images/train/cat/...  my_images/train/dog/...  my_images/test/cat/...

2. **IDX files in MNIST's layout** (gzip-compressed or not), all in one folder. A file whose name holds
   ``images`` holds the images and one whose name holds ``labels`` the labels; ``train`` in the name puts
   it in the training split, ``t10k`` or ``test`` in the test split, ``val`` in the validation split. The
   official names of MNIST, Fashion-MNIST, KMNIST and EMNIST follow the rule
   (``train-images-idx3-ubyte.gz``, ``emnist-letters-test-labels-idx1-ubyte.gz``, ...). The images are
   uint8 [N, H, W] (grey) or [N, H, W, C] / [N, C, H, W] with C = 1 or 3.

3. **An .npz file** with ``x_train`` and ``y_train``, and optionally ``x_val``/``y_val`` and
   ``x_test``/``y_test``. Images are [N, H, W], [N, H, W, C] (channels last) or [N, C, H, W] (channels
   first), C = 1 or 3, of any size, uint8 0-255 or floats in [0, 1]. (An array whose first and last axes
   could both be channels, [N, 3, H, 3], is read as channels last.) Labels are integers or strings, [N]
   or [N, 1]; an optional ``class_names`` array names the integer labels 0..K-1.

Classes are the folder names, or the distinct label values, sorted (``class_names`` when the npz has it);
labels become 0..K-1 in that order. Every image of a dataset must have one size, unless
``data.image_size=S`` resizes each to S x S (bilinear, with Pillow's antialiasing when shrinking; the
aspect ratio is not kept). An image has 1 channel when every image of the dataset is grey, else 3 (RGB;
an alpha channel is dropped). A split the data do not have is cut from the training images, by the
fractions of ``data.split`` (train / val / test) and the run's seed, with the project's one split
helper :func:`deepzoo.data.batches.split`; the fractions of the splits the data already have are left
out and the others rescaled. A file that cannot be read is an error naming it, or, with
``data.skip_bad_rows=true``, skipped and counted in one printed line.

The result, :class:`ImageData`, holds each split as uint8 [N, C, H, W] images and int64 labels; the
recipes standardise them with the per-channel mean and deviation of the training split
(:func:`channel_stats`), which the run folder keeps with the class names (:func:`inference_facts`), so
that ``deepzoo predict`` reads, resizes and standardises a new picture the same way (:func:`prepare`).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from deepzoo.errors import DeepzooError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLITS = ("train", "val", "test")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
_SKIP_HINT = "fix or delete it, or set data.skip_bad_rows=true to skip unreadable images"


@dataclass
class ImageData:
    """One dataset: ``splits[name] = (x uint8 [N, C, H, W], y int64 [N])`` for the splits present,
    ``classes[k]`` the name of label k, ``source`` the path read and ``layout`` how it was read."""
    splits: dict
    classes: list[str]
    source: str
    layout: str
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every image."""
        return tuple(int(v) for v in self.splits["train"][0].shape[1:])


# --------------------------------------------------------------------------------------------------
# reading: one entry point, three layouts

def load(path: str | os.PathLike, image_size: int = 0, skip_bad: bool = False,
         log: Callable[[str], None] = print) -> ImageData:
    """The images at ``path`` (a folder of class folders, a folder of IDX files, or an .npz), as the data
    split them (no split is cut here: see :func:`split_data`)."""
    path = Path(path)
    if not path.exists():
        raise DeepzooError(f"data.path: {path} does not exist (give a folder of class folders, a folder of "
                           f"IDX files or an .npz file)")
    if path.is_dir():
        data = _load_idx(path) if _idx_files(path) else _load_folder(path, image_size, skip_bad)
    elif path.suffix.lower() == ".npz":
        data = _load_npz(path)
    else:
        raise DeepzooError(f"data.path: {path} is not a folder or an .npz file (give a folder of class folders, "
                           f"a folder of IDX files or an .npz file)")
    if image_size and data.layout != "folder":      # the folder reader resizes while it reads
        data.splits = {k: (_resize(x, image_size), y) for k, (x, y) in data.splits.items()}
    _same_size(data)
    if data.skipped:
        log(f"skipped {data.skipped} unreadable image{'s' if data.skipped > 1 else ''} of {path} "
            f"(data.skip_bad_rows = true); the first: {data.notes[0]}")
    return data


# --- 1. a folder of class folders ------------------------------------------------------------------

def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    """The images in ``folder`` and its sub-folders, in a fixed (sorted) order; hidden entries skipped."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files)
                if not f.startswith(".") and Path(f).suffix.lower() in EXTENSIONS]
    return out


def _load_folder(path: Path, image_size: int, skip_bad: bool) -> ImageData:
    subdirs = _visible_dirs(path)
    if not subdirs:
        has_images = any(p.suffix.lower() in EXTENSIONS for p in path.iterdir())
        raise DeepzooError(f"data.path: {path} has no class folders" + (
            " (it holds images directly: put each class's images in a folder named after the class)"
            if has_images else " (and no IDX files): give a folder of class folders, IDX files or an .npz"))
    split_dirs = {}
    if (path / "train").is_dir():                       # split folders above the class folders
        aliases = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
        for d in subdirs:
            if d.name not in aliases:
                raise DeepzooError(f"data.path: {path} has train/ and also {d.name}/; above the class folders "
                                   f"only train/, val/ and test/ may be")
            if aliases[d.name] in split_dirs:
                raise DeepzooError(f"data.path: {path} has two validation folders ({split_dirs['val'].name}/ "
                                   f"and {d.name}/); keep one")
            split_dirs[aliases[d.name]] = d
    else:
        split_dirs["train"] = path
    classes = [d.name for d in _visible_dirs(split_dirs["train"])]
    if not classes:
        raise DeepzooError(f"data.path: {split_dirs['train']} has no class folders")
    files: dict[str, list[tuple[Path, int]]] = {}
    for split, folder in split_dirs.items():
        names = [d.name for d in _visible_dirs(folder)]
        stray = [n for n in names if n not in classes]
        if stray:
            raise DeepzooError(f"data.path: {folder / stray[0]} is a class that {split_dirs['train']} lacks "
                               f"(the training classes are {', '.join(classes)})")
        files[split] = []
        for name in names:
            found = _image_files(folder / name)
            if not found:
                raise DeepzooError(f"data.path: class folder {folder / name} holds no images "
                                   f"(PNG, JPEG, BMP or WebP)")
            files[split] += [(f, classes.index(name)) for f in found]
    # read every image (as grey or RGB, and resized if asked), then give every one the same channels
    read: dict[str, list] = {}
    skipped, notes = 0, []
    for split, entries in files.items():
        read[split] = []
        for file, label in entries:
            try:
                a = _read_file(file, image_size)
            except DeepzooError as e:
                if not skip_bad:
                    raise
                skipped += 1
                notes.append(str(e).removeprefix("data.path: ").split("; fix or delete")[0])
                continue
            read[split].append((file, a, label))
    for split, entries in read.items():
        if not entries:
            raise DeepzooError(f"data.path: no image of {split_dirs[split]} could be read (the first of the "
                               f"{skipped} skipped: {notes[0]})")
    first = {}                                          # (height, width) -> the first file of that size
    for entries in read.values():
        for file, a, _ in entries:
            first.setdefault(a.shape[:2], file)
            if len(first) > 1:
                (s1, f1), (s2, f2) = first.items()
                raise DeepzooError(f"data.path: the images differ in size ({f1} is {s1[1]}x{s1[0]}, {f2} is "
                                   f"{s2[1]}x{s2[0]}); set data.image_size=N to resize every image to NxN")
    colour = any(a.ndim == 3 for entries in read.values() for _, a, _ in entries)

    def chw(a: np.ndarray) -> np.ndarray:               # [H, W] or [H, W, 3] -> [1 or 3, H, W]
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3 if colour else 1, axis=2)
        return a.transpose(2, 0, 1)
    splits = {split: (np.stack([chw(a) for _, a, _ in entries]),
                      np.array([label for _, _, label in entries], dtype=np.int64))
              for split, entries in read.items()}
    return ImageData(splits, classes, str(path), "folder", skipped, notes)


def _read_file(file: Path, image_size: int) -> np.ndarray:
    """One image file -> uint8 [H, W] (grey) or [H, W, 3] (colour), resized to image_size if given."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    try:
        with Image.open(file) as img:
            img.load()
            img = ImageOps.exif_transpose(img)          # a phone photo stored on its side comes upright
            img = img.convert("L" if img.mode in _GREY_MODES else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        reason = str(e).replace(repr(str(file)), "").replace(str(file), "").strip(" :") or type(e).__name__
        raise DeepzooError(f"data.path: cannot read image {file} ({reason}); {_SKIP_HINT}") from None
    if image_size and img.size != (image_size, image_size):
        img = img.resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


# --- 2. IDX files ------------------------------------------------------------------------------------

def _idx_role(name: str) -> tuple[str, str] | None:
    """(split, "images" | "labels") that an IDX file's name gives it, or None."""
    n = name.lower()
    kind = "images" if "images" in n else "labels" if "labels" in n else None
    split = "train" if "train" in n else "test" if ("t10k" in n or "test" in n) else "val" if "val" in n else None
    return (split, kind) if kind and split else None


def _idx_files(folder: Path) -> dict:
    roles: dict = {}
    for f in sorted(folder.iterdir()):
        role = _idx_role(f.name) if f.is_file() and not f.name.startswith(".") else None
        if role and f.suffix.lower() not in EXTENSIONS + (".npz", ".txt", ".csv", ".json", ".md"):
            if role in roles:
                raise DeepzooError(f"data.path: {roles[role].name} and {f.name} in {folder} both look like the "
                                   f"{role[0]} {role[1]} (keep one)")
            roles[role] = f
    return roles


def _load_idx(folder: Path) -> ImageData:
    from deepzoo.data.mnist import read_idx
    roles = _idx_files(folder)
    fix = "give IDX files as MNIST's (see deepzoo/data/images.py)"
    raw = {}
    for split in SPLITS:
        have = [k for k in ("images", "labels") if (split, k) in roles]
        if len(have) == 1:
            missing = "labels" if have == ["images"] else "images"
            holding = {"train": "'train'", "val": "'val'", "test": "'t10k' or 'test'"}[split]
            raise DeepzooError(f"data.path: {folder} has {roles[(split, have[0])].name} but no {split} {missing} "
                               f"file (a name holding {holding} and '{missing}')")
        if have:
            x = read_idx(roles[(split, "images")], fix=fix)
            y = read_idx(roles[(split, "labels")], fix=fix)
            where = roles[(split, "images")]
            if x.dtype != np.uint8:
                raise DeepzooError(f"data.path: {where} holds {x.dtype} pixels; expected uint8")
            raw[split] = (_as_nchw(x, str(where)), _labels(y, str(roles[(split, 'labels')])), where,
                          roles[(split, "labels")])
    if "train" not in raw:
        raise DeepzooError(f"data.path: {folder} has IDX files but no training pair (names holding 'train' "
                           f"and 'images' / 'labels')")
    for split, (x, y, fx, fy) in raw.items():
        if len(x) != len(y):
            raise DeepzooError(f"data.path: {fx} has {len(x)} images but {fy} has {len(y)} labels")
    classes, ys = _classes({k: v[1] for k, v in raw.items()}, None, str(folder))
    return ImageData({k: (v[0], ys[k]) for k, v in raw.items()}, classes, str(folder), "idx")


# --- 3. an .npz file ----------------------------------------------------------------------------------

def _load_npz(path: Path) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DeepzooError(f"data.path: cannot read {path} ({e})") from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise DeepzooError(f"data.path: {path} lacks {' and '.join(missing)} (it has {', '.join(arrays) or 'nothing'}"
                           f"; an image .npz needs x_train and y_train, and may have x_val, y_val, x_test, y_test)")
    raw = {}
    for split in SPLITS:
        xk, yk = f"x_{split}", f"y_{split}"
        if (xk in arrays) != (yk in arrays):
            raise DeepzooError(f"data.path: {path} has {xk if xk in arrays else yk} but not "
                               f"{yk if xk in arrays else xk}")
        if xk in arrays:
            x, y = _pixels(arrays[xk], f"{path}: {xk}"), arrays[yk]
            if y.ndim == 2 and y.shape[1] == 1:        # Keras keeps labels as [N, 1]
                y = y.reshape(-1)
            if y.ndim != 1:
                raise DeepzooError(f"data.path: {path}: {yk} has shape {y.shape}; expected labels [N]")
            if len(x) != len(y):
                raise DeepzooError(f"data.path: {path}: {xk} has {len(x)} images but {yk} has {len(y)} labels")
            raw[split] = (_as_nchw(x, f"{path}: {xk}"), y)
    names = None
    if "class_names" in arrays:
        names = [str(v) for v in np.asarray(arrays["class_names"]).reshape(-1)]
    classes, ys = _classes({k: v[1] for k, v in raw.items()}, names, str(path))
    return ImageData({k: (v[0], ys[k]) for k, v in raw.items()}, classes, str(path), "npz")


# --- shared by the array layouts --------------------------------------------------------------------

def _pixels(x: np.ndarray, where: str) -> np.ndarray:
    """Any numeric image array -> uint8 0-255 (floats must lie in [0, 1])."""
    if x.dtype == np.uint8:
        return x
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise DeepzooError(f"data.path: {where} holds {x.dtype} values; expected uint8 pixels or floats in [0, 1]")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if np.issubdtype(x.dtype, np.integer):
        if lo < 0 or hi > 255:
            raise DeepzooError(f"data.path: {where} holds integers from {lo:g} to {hi:g}; expected pixels 0-255")
        return x.astype(np.uint8)
    if not np.isfinite(x).all() or lo < 0 or hi > 1:
        raise DeepzooError(f"data.path: {where} holds floats from {lo:.3g} to {hi:.3g}; expected [0, 1] "
                           f"(or uint8 0-255)")
    return np.round(x * 255).astype(np.uint8)


def _as_nchw(x: np.ndarray, where: str) -> np.ndarray:
    """[N, H, W], [N, H, W, C] or [N, C, H, W] (C = 1 or 3) -> uint8 [N, C, H, W]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise DeepzooError(f"data.path: {where} has shape {tuple(x.shape)}; expected images [N, H, W], "
                           f"[N, H, W, C] or [N, C, H, W] with C = 1 or 3")
    if len(x) == 0 or min(x.shape[2:]) < 1:
        raise DeepzooError(f"data.path: {where} holds no images (shape {tuple(x.shape)})")
    return np.ascontiguousarray(x)


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DeepzooError(f"data.path: {where} holds {y.dtype} {tuple(y.shape)}; expected integer labels [N]")
    return y


def _classes(ys: dict, names: list[str] | None, where: str) -> tuple[list[str], dict]:
    """Class names and the labels as 0..K-1: ``names`` for integer labels 0..K-1, else the sorted distinct
    values of every split."""
    if any(not (np.issubdtype(y.dtype, np.integer) or y.dtype.kind in "UO") for y in ys.values()):
        raise DeepzooError(f"data.path: {where}: labels must be integers or strings")
    if names is not None:
        for split, y in ys.items():
            if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= len(names))):
                raise DeepzooError(f"data.path: {where}: with class_names ({len(names)} names) y_{split} must "
                                   f"hold integers 0 to {len(names) - 1}")
        return names, {k: y.astype(np.int64) for k, y in ys.items()}
    values = np.unique(np.concatenate([y.astype(str) if y.dtype.kind in "UO" else y for y in ys.values()]))
    return [str(v) for v in values], {k: np.searchsorted(values, y).astype(np.int64) for k, y in ys.items()}


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image
    if x.shape[2:] == (size, size):
        return x
    mode = "L" if x.shape[1] == 1 else "RGB"
    out = np.empty((len(x), x.shape[1], size, size), dtype=np.uint8)
    for i, img in enumerate(x):
        a = img[0] if mode == "L" else img.transpose(1, 2, 0)
        r = np.asarray(Image.fromarray(a, mode).resize((size, size), Image.BILINEAR))
        out[i] = r[None] if mode == "L" else r.transpose(2, 0, 1)
    return out


def _same_size(data: ImageData) -> None:
    shapes = {k: x.shape[1:] for k, (x, _) in data.splits.items()}
    if len(set(s[1:] for s in shapes.values())) > 1:
        described = ", ".join(f"{k} {s[2]}x{s[1]}" for k, s in shapes.items())
        raise DeepzooError(f"data.path: {data.source}: the splits' images differ in size ({described}); set "
                           f"data.image_size=N to resize every image to NxN")
    if len(set(s[0] for s in shapes.values())) > 1:     # grey in one split, colour in another: colour
        data.splits = {k: (np.repeat(x, 3, 1) if x.shape[1] == 1 else x, y) for k, (x, y) in data.splits.items()}


# --------------------------------------------------------------------------------------------------
# splits, statistics, and what the run folder keeps

def split_data(data: ImageData, fractions, seed: int) -> dict:
    """``{"train": (x, y), "val": (x, y) | None, "test": (x, y) | None}``: the data's own splits, and the
    missing ones cut from the training images by ``fractions`` = [train, val, test] (the fractions of the
    splits the data have are dropped and the others rescaled), with :func:`deepzoo.data.batches.split`
    and ``seed``."""
    from deepzoo.data.batches import split
    x, y = data.splits["train"]
    want = {name: float(f) for name, f in zip(SPLITS, fractions) if name == "train" or name not in data.splits}
    total = sum(want.values())
    n = len(x)
    sizes = {name: int(round(n * want[name] / total)) for name in ("val", "test") if name in want}
    val_idx, test_idx, train_idx = split(n, (sizes.get("val", 0), sizes.get("test", 0)), seed=seed)
    if len(train_idx) == 0:
        raise DeepzooError(f"data.path: {data.source} has {n} training images, none left to train on after "
                           f"cutting the validation and test images by data.split; use more images or "
                           f"other fractions")
    out = {"train": (x[train_idx.numpy()], y[train_idx.numpy()])}
    for name, idx in (("val", val_idx), ("test", test_idx)):
        if name in data.splits:
            out[name] = data.splits[name]
        else:
            out[name] = (x[idx.numpy()], y[idx.numpy()]) if len(idx) else None
    return out


def require_classes(data: ImageData) -> None:
    """A classifier needs two classes or more, in the training images."""
    present = np.unique(data.splits["train"][1])
    if len(present) < 2:
        only = data.classes[int(present[0])] if len(present) else "none"
        raise DeepzooError(f"data.path: {data.source} has one class ({only}) in its training images; a "
                           f"classifier needs at least two")


def channel_stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 [N, C, H, W] images, pixels scaled to [0, 1]
    (a channel that never varies gets deviation 1, so standardising leaves it centred, not divided by 0)."""
    mean, std = [], []
    for c in range(x.shape[1]):
        v = torch.from_numpy(np.ascontiguousarray(x[:, c])).double().div_(255.0)
        m, s = float(v.mean()), float(v.std(unbiased=False))
        mean.append(round(m, 6))
        std.append(round(s, 6) if s > 1e-6 else 1.0)
    return mean, std


def standardise(x: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 [N, C, H, W], (pixel / 255 - mean) / std per channel."""
    t = torch.from_numpy(np.array(x, dtype=np.uint8, copy=True)).float().div_(255.0)
    c = len(mean)
    return (t - torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1)) / \
        torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1)


def inference_facts(data: ImageData, parts: dict, mean, std) -> dict:
    """inference.json of a classifier trained on your images: the input (channels, size, scaling and
    standardisation: what :func:`prepare` does) and the class names."""
    c, h, w = data.shape
    return {"input": {"channels": c, "height": h, "width": w, "scale": 1 / 255, "mean": list(mean),
                      "std": list(std), "prepare": "resize"},
            "classes": list(data.classes),
            "data": {"source": data.source, "layout": data.layout,
                     **{k: (0 if v is None else int(len(v[1]))) for k, v in parts.items()}}}


def stored_input(info: dict, where) -> tuple[tuple[int, int, int], list[str]] | None:
    """((channels, height, width), class names) of a run on your own images, read back from its
    inference.json ``info``; None for a run on the recipe's own dataset."""
    inp = info.get("input") if isinstance(info, dict) else None
    if not isinstance(inp, dict) or inp.get("prepare") != "resize":
        return None
    try:
        shape = tuple(int(inp[k]) for k in ("channels", "height", "width"))
        classes = [str(c) for c in info["classes"]]
        ok = shape[0] in (1, 3) and min(shape) > 0 and len(inp["mean"]) == len(inp["std"]) == shape[0] \
            and len(classes) >= 2
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise DeepzooError(f"{where} is damaged (its input or classes are not what a run on your own images "
                           f"keeps); copy the run folder again")
    return shape, classes


def prepare(item, info: dict) -> torch.Tensor:
    """A picture (a path, a PIL image or an array) as the run's input: grey or RGB as trained, resized
    to the training size (bilinear) if it differs, standardised: [1, C, H, W]."""
    from PIL import Image

    from deepzoo.files import read_image
    img = read_image(item, "L" if info["channels"] == 1 else "RGB")
    if img.size != (info["width"], info["height"]):
        img = img.resize((info["width"], info["height"]), Image.BILINEAR)
    a = np.asarray(img, dtype=np.uint8)
    a = a[None, None] if a.ndim == 2 else a.transpose(2, 0, 1)[None]
    return standardise(a, info["mean"], info["std"])


def check_min_size(data: ImageData, recipe: str, net: str, need: tuple[int, int], why: str) -> None:
    """One error line when the images are smaller than the network takes."""
    _, h, w = data.shape
    if h < need[0] or w < need[1]:
        raise DeepzooError(f"data.path: {data.source} has {w}x{h} images, but {recipe}'s {net} needs at least "
                           f"{need[1]}x{need[0]} ({why}); set data.image_size={max(need)} or more to resize them")


def check_multiple(data: ImageData, recipe: str, net: str, k: int, why: str) -> None:
    """One error line when the image sides are not multiples of ``k``."""
    _, h, w = data.shape
    if h % k or w % k or h < k or w < k:
        near = max(k, round(max(h, w) / k) * k)
        raise DeepzooError(f"data.path: {data.source} has {w}x{h} images, but {recipe}'s {net} takes sides that "
                           f"are multiples of {k} ({why}); set data.image_size={near} to resize them")
