"""MNIST: the IDX file format and a loader for the four original files (or the small packaged sample).

IDX (http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero bytes, a type code (0x08 = uint8)
and the number of dimensions, then each dimension as a big-endian int32, then the data in C order. The
official files are gzip-compressed; :func:`read_idx` also reads uncompressed ones.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from deepzoo.data import registry
from deepzoo.errors import DeepzooError

__all__ = ["FILES", "SAMPLE_FILES", "read_idx", "write_idx", "load_mnist"]

#: split -> (images file, labels file), the official names
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
#: the packaged sample: same format, names marked so it is never mistaken for the full files
SAMPLE_FILES = {split: tuple("sample-" + name for name in names) for split, names in FILES.items()}

# IDX type code -> numpy dtype (big-endian as stored)
_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}

_FIX = "delete it and run `deepzoo data fetch mnist`"


def read_idx(path: str | os.PathLike, fix: str = _FIX) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a numpy array in native byte order.

    Any problem (not gzip, truncated gzip, bad magic, payload of the wrong length) is a
    :class:`DeepzooError` naming the file; ``fix`` is the advice appended to the message.
    """
    path = Path(path)

    def bad(what: str) -> DeepzooError:
        return DeepzooError(f"cannot read IDX file {path}: {what}; {fix}")

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DeepzooError(f"IDX file {path} not found; {fix}") from None
    except OSError as e:
        raise DeepzooError(f"cannot read IDX file {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(raw)
        except EOFError:
            raise bad("truncated gzip data (the file is incomplete)") from None
        except (OSError, zlib.error) as e:
            raise bad(f"corrupt gzip data ({e})") from None
    else:
        data = raw
    if len(data) < 4:
        raise bad(f"only {len(data)} bytes, too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] not in _TYPES or data[3] == 0:
        raise bad(f"bad magic number 0x{data[:4].hex()} (expected 0x0000080N for uint8 data with N dimensions)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise bad(f"header truncated ({len(data)} bytes, expected at least {header})")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in dims):
        raise bad(f"negative dimension in header {dims}")
    dtype = _TYPES[data[2]]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise bad(f"payload is {len(data) - header} bytes, expected {expected} for shape {dims}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)  # writable, native order


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as a gzip-compressed IDX file, deterministically (no file name, mtime 0)."""
    arr = np.asarray(array)
    native = arr.dtype.newbyteorder("=")
    if native not in _CODES:
        raise DeepzooError(f"cannot write {path}: IDX has no type for dtype {arr.dtype}")
    if arr.ndim == 0 or arr.ndim > 255:
        raise DeepzooError(f"cannot write {path}: IDX needs 1 to 255 dimensions, got {arr.ndim}")
    code = _CODES[native]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes()
    payload = np.ascontiguousarray(arr, dtype=_TYPES[code]).tobytes()
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6) as gz:
        gz.write(header)
        gz.write(payload)
    os.replace(tmp, path)


def _load_split(folder: Path, split: str, fix: str, files: dict = FILES) -> tuple[np.ndarray, np.ndarray]:
    img_name, lbl_name = files[split]
    images = read_idx(folder / img_name, fix=fix)
    labels = read_idx(folder / lbl_name, fix=fix)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DeepzooError(
            f"{folder / img_name} holds {images.dtype} data of shape {images.shape}, expected uint8 [N, 28, 28]; {fix}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DeepzooError(f"{folder / lbl_name} holds {labels.dtype} data of shape {labels.shape}, expected uint8 [N]; {fix}")
    if len(images) != len(labels):
        raise DeepzooError(
            f"{folder / img_name} has {len(images)} images but {folder / lbl_name} has {len(labels)} labels; {fix}"
        )
    if labels.size and labels.max() > 9:
        raise DeepzooError(f"{folder / lbl_name} has label {int(labels.max())}, expected 0-9; {fix}")
    return images, labels.astype(np.int64)


def load_mnist(data_dir: str | os.PathLike | None = None, sample: bool = False) -> dict:
    """MNIST as ``{"train": (images, labels), "test": (images, labels)}``.

    Images are uint8 arrays [N, 28, 28], labels int64 arrays [N] with values 0-9. The full data set
    (60,000 / 10,000) is found and verified through :func:`deepzoo.data.registry.locate`. ``sample=True``
    loads the small sample shipped inside the package instead (the first 5,000 / 1,000 images of the official
    files); ``data_dir`` is then ignored.
    """
    if sample:
        folder = registry.samples_dir() / "mnist"
        fix = "the packaged sample is damaged: reinstall deepzoo (or rebuild it with scripts/make_samples.py)"
        files = SAMPLE_FILES
        for split in files.values():
            for name in split:
                if not (folder / name).is_file():
                    raise DeepzooError(f"packaged MNIST sample file {folder / name} is missing; {fix}")
    else:
        folder, fix, files = registry.locate("mnist", data_dir), _FIX, FILES
    return {split: _load_split(folder, split, fix, files) for split in FILES}
