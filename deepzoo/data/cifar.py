"""CIFAR-10: the canonical python-pickle batches, the shared numpy file, and augmentation on batches.

Three layouts hold the same images (32x32 RGB, 10 classes, labels 0-9 indexing :data:`LABEL_NAMES`):

* ``cifar-10-batches-py/`` (what ``cifar-10-python.tar.gz`` from the dataset page unpacks to):
  ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``, each a pickled dict whose ``b"data"`` is a
  uint8 array [10000, 3072] (1024 red, then 1024 green, then 1024 blue values, each row-major) and whose
  ``b"labels"`` is a list of ints. The pickles are read with an unpickler that only rebuilds numpy
  arrays, so a doctored file cannot run code.
* ``cifar-10-python.tar.gz`` itself: the same pickles, read from inside the archive.
* ``cifar10.npz`` (the registry's ``cifar10`` dataset, a lossless partial copy): ``x_train`` [N, 32, 32, 3]
  uint8 = data_batch_1-3, ``x_test`` = the first 1,000 images of test_batch.

Every loader returns HWC uint8 arrays, ``{"train": (x, y), "test": (x, y)}``, x [N, 32, 32, 3], y int64 [N].
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from deepzoo.data import registry
from deepzoo.errors import DeepzooError

LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
PICKLE_FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
SAMPLE = "cifar10-sample.npz"

# per-channel mean and standard deviation of the 50,000 training images, pixels in [0, 1]
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


# --------------------------------------------------------------------------------------------------
# reading

class _ArrayUnpickler(pickle.Unpickler):
    """Rebuild only what a CIFAR batch holds: dicts, lists, bytes, strings, ints and numpy arrays."""
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
                ("_codecs", "encode")}  # bytes in protocol-2 pickles written by Python 3

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (a CIFAR batch holds only arrays)")
        return super().find_class(module, name)


def read_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch (its bytes) -> (images [N, 32, 32, 3] uint8, labels [N] int64)."""
    try:
        d = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001  (any unpickling failure is the file's fault)
        raise DeepzooError(f"cannot read CIFAR batch {where}: {e}") from None
    if not isinstance(d, dict) or b"data" not in d or not ({b"labels", b"fine_labels"} & set(d)):
        raise DeepzooError(f"{where} is not a CIFAR-10 batch (expected a dict with b'data' and b'labels')")
    data = np.asarray(d[b"data"])
    try:
        labels = np.asarray(d.get(b"labels", d.get(b"fine_labels")), dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise DeepzooError(f"{where}: b'labels' is not a list of integers ({e})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DeepzooError(f"{where}: b'data' is {data.dtype} {data.shape}, expected uint8 [N, 3072]")
    if len(labels) != len(data):
        raise DeepzooError(f"{where}: {len(data)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DeepzooError(f"{where}: labels must be 0-9, found {int(labels.min())}..{int(labels.max())}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _from_pickles(read, where: str, train_batches) -> dict:
    xs, ys = zip(*(read(name) for name in train_batches))
    return {"train": (np.concatenate(xs), np.concatenate(ys)), "test": read(TEST_BATCH),
            "source": where}


def load_pickle_folder(folder: Path, train_batches=TRAIN_BATCHES) -> dict:
    """The canonical ``cifar-10-batches-py/`` folder (the five training batches and the test batch)."""
    def read(name):
        path = folder / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise DeepzooError(f"CIFAR-10 batch {path} is missing (the folder needs {', '.join(train_batches)} "
                               f"and {TEST_BATCH})") from None
        except OSError as e:
            raise DeepzooError(f"cannot read CIFAR-10 batch {path}: {e.strerror or e}") from None
        return read_batch(raw, str(path))
    return _from_pickles(read, str(folder), train_batches)


def load_archive(path: Path, train_batches=TRAIN_BATCHES) -> dict:
    """``cifar-10-python.tar.gz`` as downloaded, read without unpacking it."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def read(name):
                if name not in members:
                    raise DeepzooError(f"{path} has no member {PICKLE_FOLDER}/{name}")
                return read_batch(tar.extractfile(members[name]).read(), f"{path}:{members[name].name}")
            return _from_pickles(read, str(path), train_batches)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DeepzooError(f"cannot read archive {path}: {e}") from None


def load_npz(path: Path) -> dict:
    """A numpy file with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (HWC uint8 images)."""
    try:
        with np.load(path, allow_pickle=False) as d:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in d.files]
            if missing:
                raise DeepzooError(f"{path} lacks the arrays {', '.join(missing)} (it has {', '.join(d.files)})")
            arrays = {k: d[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DeepzooError(f"cannot read {path}: {e}") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            raise DeepzooError(f"{path}: x_{split} is {x.dtype} {x.shape}, expected uint8 [N, 32, 32, 3]")
        if y.ndim == 2 and y.shape[1] == 1:  # Keras keeps labels as [N, 1]
            y = arrays[f"y_{split}"] = y.reshape(-1)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DeepzooError(f"{path}: y_{split} is {y.dtype} {y.shape}, expected integer labels [N]")
        if len(y) != len(x):
            raise DeepzooError(f"{path}: x_{split} has {len(x)} images but y_{split} has {len(y)} labels")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DeepzooError(f"{path}: y_{split} must be 0-9")
    return {"train": (arrays["x_train"], arrays["y_train"].astype(np.int64)),
            "test": (arrays["x_test"], arrays["y_test"].astype(np.int64)), "source": str(path)}


def load_path(path: str | os.PathLike) -> dict:
    """CIFAR-10 from a path the user gives: a pickle folder, the .tar.gz, or an .npz file."""
    path = Path(path)
    if path.is_dir():
        inner = path / PICKLE_FOLDER
        return load_pickle_folder(inner if inner.is_dir() else path)
    if not path.exists():
        raise DeepzooError(f"data.path: {path} does not exist (give a cifar-10-batches-py folder, "
                           f"{ARCHIVE} or an .npz file)")
    if path.suffix.lower() == ".npz":
        return load_npz(path)
    if path.name in TRAIN_BATCHES + (TEST_BATCH,):
        raise DeepzooError(f"data.path: {path} is one batch; give the folder that holds all six "
                           f"({', '.join(TRAIN_BATCHES)}, {TEST_BATCH})")
    if not tarfile.is_tarfile(path):
        raise DeepzooError(f"data.path: {path} is not a tar archive or an .npz file (give a "
                           f"cifar-10-batches-py folder, {ARCHIVE} or an .npz file)")
    return load_archive(path)


def canonical_path(path: str | os.PathLike) -> bool:
    """Whether ``data.path`` is CIFAR-10 in a canonical layout (:func:`load_path` reads it: the pickles'
    folder, the folder above it, the archive or one batch) rather than your own images
    (deepzoo/data/images.py: class folders, IDX files, an .npz)."""
    path = Path(path)
    if path.is_dir():
        return any((folder / name).is_file() for folder in (path, path / PICKLE_FOLDER)
                   for name in TRAIN_BATCHES + (TEST_BATCH,))
    return path.is_file() and path.suffix.lower() != ".npz" and (
        path.name in TRAIN_BATCHES + (TEST_BATCH,) or tarfile.is_tarfile(path))


def load_cifar10(data_dir=None, path=None, sample: bool = False) -> dict:
    """CIFAR-10 as ``{"train": (x, y), "test": (x, y), "source": where}``.

    ``path`` (``data.path``) wins; else the sample shipped in the package when ``sample``; else, in each
    search root (``--data-dir``, ``$DEEPZOO_DATA``, the cache) a ``cifar-10-batches-py/`` folder or the
    downloaded archive (``deepzoo data fetch cifar10-python`` puts it in the cache), under ``ROOT/cifar10/``,
    ``ROOT/cifar10-python/`` or ``ROOT/``, or the registry's ``cifar10.npz`` (the partial copy). The first
    root that holds any of them wins, so ``--data-dir`` beats the cache. The archive and the npz are checked
    against their sha256; an unpacked pickle folder is read as it is.
    """
    if path:
        return load_path(path)
    if sample:
        file = registry.samples_dir() / "cifar10" / SAMPLE
        if not file.is_file():
            raise DeepzooError(f"packaged CIFAR-10 sample {file} is missing; reinstall deepzoo "
                               f"(or rebuild it with scripts/make_cifar_sample.py)")
        return load_npz(file)
    for root in registry.search_roots(data_dir):  # the first root that holds any layout wins
        for folder in (root / "cifar10", root / "cifar10-python", root):
            if (folder / PICKLE_FOLDER / TEST_BATCH).is_file():
                return load_pickle_folder(folder / PICKLE_FOLDER)  # unpacked by the user: read as is
            if (folder / ARCHIVE).is_file():
                spec = registry.get("cifar10-python").files[0]
                problem = registry._check_file(folder / ARCHIVE, spec)
                if problem:
                    raise DeepzooError(f"corrupted download {folder / ARCHIVE} ({problem}); delete it and run "
                                       f"`deepzoo data fetch cifar10-python`")
                return load_archive(folder / ARCHIVE)
            if (folder / "cifar10.npz").is_file():
                return load_npz(registry.locate("cifar10", root) / "cifar10.npz")  # verified (sha256)
    try:
        return load_npz(registry.locate("cifar10", data_dir) / "cifar10.npz")
    except DeepzooError as e:
        raise DeepzooError(f"{e}; or get the canonical CIFAR-10 (50,000 + 10,000 images) with "
                           f"`deepzoo data fetch cifar10-python`") from None


# --------------------------------------------------------------------------------------------------
# tensors and augmentation

def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 HWC [N, 32, 32, 3] -> float32 NCHW [N, 3, 32, 32], standardised per channel."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def crop_and_flip(padding: int = 4, flip: bool = True):
    """The standard CIFAR augmentation, on a whole batch at once (He et al. 2016, section 4.2).

    Random crop with padding: pad each image with ``padding`` zeros (after standardisation, so the
    padding is the mean colour) and cut a random 32x32 window, i.e. shift the image by dy, dx in
    [-padding, padding]. It is one gather over the batch (:func:`deepzoo.data.batches.random_shift`).
    Horizontal flip: mirror a random half of the images (``torch.where`` over a per-image coin).
    """
    from deepzoo.data.batches import random_shift
    shift = random_shift(padding)

    def augment(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = shift(x, generator) if padding > 0 else x
        if flip:
            coin = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(coin[:, None, None, None], x.flip(3), x)
        return x
    return augment
