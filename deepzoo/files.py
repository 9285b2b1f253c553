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


def append_jsonl(path: Path, row: Any) -> None:
    """Append one JSON line and flush it to disk (a killed run keeps every line written before)."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_image(path, mode: str):
    """Open an image file as a PIL image in ``mode`` ("L", "RGB"); a missing or unreadable file is one
    clear error naming it."""
    from PIL import Image, UnidentifiedImageError

    from deepzoo.errors import DeepzooError
    try:
        return Image.open(path).convert(mode)
    except FileNotFoundError:
        raise DeepzooError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DeepzooError(f"cannot read image {path}: {e}") from None
