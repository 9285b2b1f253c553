"""Writing files so that a crash never leaves half of one.

Write to a temporary file in the same folder, flush it to disk, then ``os.replace`` it onto the final
name: on POSIX and Windows the rename is atomic, so a reader (or a resumed run) sees the old file or
the new one, never a mixture.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The permissions ``open(path, "w")`` would leave: an existing file's own, else 0o666 less the umask
    (``mkstemp`` creates its file 0o600, which would make every run folder private)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def temp_dir(parent: Path, prefix: str) -> Path:
    """A new folder in ``parent``, to be filled and then renamed into place, with the permissions
    ``mkdir`` would give it (0o777 less the umask) rather than ``mkdtemp``'s private 0o700."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any, indent: int = 2) -> None:
    """JSON, UTF-8, non-ASCII characters kept as they are (a Chinese vocabulary stays readable)."""
    text = json.dumps(obj, indent=indent, sort_keys=isinstance(obj, dict), ensure_ascii=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def append_jsonl(path: Path, row: Any, sync: bool = True) -> None:
    """Append one JSON line and flush it to the OS (a killed process keeps every line written before); with
    ``sync``, also to the disk (a power cut keeps it too)."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        if sync:
            os.fsync(f.fileno())


def fsync_file(path: Path) -> None:
    """Flush what the OS holds of ``path`` to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def read_image(item, mode: str):
    """What a user has, as a PIL image in ``mode`` ("L", "RGB"): a file path, a PIL image, or an array
    (NumPy or torch; height x width, or height x width x channels, or channels x height x width with 1 or 3
    channels; uint8 0-255 or floats in [0, 1]). A missing or unreadable file is one clear error naming it."""
    from PIL import Image, UnidentifiedImageError

    from deepzoo.errors import DeepzooError
    if isinstance(item, Image.Image):
        return item.convert(mode)
    if hasattr(item, "__array__") and not isinstance(item, (str, os.PathLike)):
        return _array_image(item).convert(mode)
    try:
        return Image.open(item).convert(mode)
    except FileNotFoundError:
        raise DeepzooError(f"image {item} does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DeepzooError(f"cannot read image {item}: {e}") from None
    except (TypeError, AttributeError):
        raise DeepzooError(f"expected an image: a file path, a PIL image or an array, got {type(item).__name__}") from None


def image_name(item) -> str:
    """How a predict result names its input: the path, or the kind and size of an in-memory image."""
    if isinstance(item, (str, os.PathLike)):
        return str(item)
    shape = getattr(item, "shape", None) or getattr(item, "size", None)
    return f"<{type(item).__name__} {'x'.join(str(n) for n in shape)}>" if shape else f"<{type(item).__name__}>"


def _array_image(item):
    import numpy as np
    from PIL import Image

    from deepzoo.errors import DeepzooError
    a = np.asarray(item.detach().cpu() if hasattr(item, "detach") else item)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)                               # channels first -> channels last
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise DeepzooError(f"an image array must be HxW, HxWx1/3 or 1/3xHxW; got shape {tuple(a.shape)}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if a.size and (a.min() < 0 or a.max() > 1):
            raise DeepzooError(f"a float image array must hold values in [0, 1] (got {a.min():.3g} to "
                               f"{a.max():.3g}); give uint8 0-255 values instead")
        a = np.round(a * 255).astype(np.uint8)
    return Image.fromarray(a)
