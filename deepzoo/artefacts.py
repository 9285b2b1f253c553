"""What a run folder keeps so that it is a portable model: everything inference needs besides the weights.

A recipe that trains through the engine names, in ``Recipe.artefacts``, the things that turn a user's raw
input into tensors and the model's outputs back into answers: a vocabulary and label names (text), a BPE
tokenizer (translation), a character table (char GPT), normalisation statistics, input size and class
names (images), the graph (GCN). They are written into ``RUN/inference/`` when the run is created, before
any training, so that even a killed run's checkpoints can be used::

    RUN/inference/
      manifest.json      format version, recipe, and the sha256 of every file below
      inference.json     small facts: labels, input shape, normalisation, tokenizer name, ...
      vocab.json, tokenizer.json, graph.safetensors, ...   (per family)

``Recipe.restore`` rebuilds the model (untrained) and its prediction context from the config and these
files alone; the weights then come from the checkpoint. No dataset is read: a run folder copied to
another machine predicts there. A missing or damaged file, or a folder written by a newer deepzoo, is
one :class:`DeepzooError` naming the file.

The folder is built under a temporary name and renamed into place, so it is whole or absent.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from deepzoo.errors import DeepzooError
from deepzoo.files import fsync_dir, temp_dir

_REUSE: contextvars.ContextVar = contextvars.ContextVar("deepzoo_reuse_artefacts", default=None)


@contextlib.contextmanager
def reusing(run_dir: Path, recipe: str):
    """While a run is built again to be resumed or evaluated, :func:`reused` gives its stored files."""
    token = _REUSE.set((Path(run_dir), recipe))
    try:
        yield
    finally:
        _REUSE.reset(token)


def reused(name: str) -> str | None:
    """The text of the stored inference file ``name`` of the run being resumed or evaluated, else None.

    A tokenizer learnt from the data (WordPiece, BPE) is not a function of the data alone: HF ``tokenizers``
    breaks ties between pieces of equal count in hash-map order, which changes from process to process. A
    resumed run must keep the ids its weights were trained with, so a recipe that learns a tokenizer takes the
    stored one when there is one."""
    current = _REUSE.get()
    if current is None or not (current[0] / FOLDER / MANIFEST).exists():
        return None
    stored = Artefacts(*current)
    return stored.text(name) if name in stored.digests else None


FOLDER = "inference"
MANIFEST = "manifest.json"
FORMAT = 1  # bump when a recipe's artefacts change in a way older code cannot read


def _encode(obj: Any) -> bytes:
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, str):
        return obj.encode("utf-8")
    return (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write(run_dir: Path, files: dict[str, Any], recipe: str, weights: str = "best") -> Path:
    """Write ``files`` ({name: JSON-able object, str or bytes}) as ``run_dir/inference/``, atomically.
    ``weights`` says which checkpoint inference takes: ``best`` (chosen on validation) or ``last`` (a run
    without a validation split)."""
    from deepzoo import __version__
    run_dir = Path(run_dir)
    final = run_dir / FOLDER
    tmp = temp_dir(run_dir, prefix=f".{FOLDER}.")
    try:
        digests = {}
        for name, obj in files.items():
            data = _encode(obj)
            digests[name] = hashlib.sha256(data).hexdigest()
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        manifest = {"format": FORMAT, "recipe": recipe, "deepzoo": __version__, "weights": weights,
                    "files": digests}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(run_dir)
    return final


class Artefacts:
    """The ``inference/`` folder of a run, read back: each file checked against the manifest's sha256."""

    def __init__(self, run_dir: Path, recipe: str) -> None:
        self.run_dir, self.folder = Path(run_dir), Path(run_dir) / FOLDER
        path = self.folder / MANIFEST
        if not path.exists():
            raise MissingArtefacts(f"{path} is missing: {self.run_dir} was made by an older deepzoo (or the folder "
                                   f"was not copied whole); retrain it, or pass --data-dir once to rebuild "
                                   f"{FOLDER}/ from the training data")
        try:
            self.manifest = json.loads(path.read_text())
            files, fmt = self.manifest["files"], self.manifest["format"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DeepzooError(f"{path} is damaged ({e}); retrain, or pass --data-dir once to rebuild it") from None
        if not isinstance(fmt, int) or fmt > FORMAT:
            raise DeepzooError(f"{path}: format {fmt} was written by a newer deepzoo "
                               f"({self.manifest.get('deepzoo')}); this one reads format {FORMAT}: upgrade deepzoo")
        if self.manifest.get("recipe") != recipe:
            raise DeepzooError(f"{path} belongs to a {self.manifest.get('recipe')} run, but config.json "
                               f"says {recipe}")
        self.digests = files
        self.weights = self.manifest.get("weights", "best")

    def bytes(self, name: str) -> bytes:
        path = self.folder / name
        if name not in self.digests:
            raise DeepzooError(f"{path}: not in {self.folder / MANIFEST}; this run was made by another version "
                               f"of the recipe: retrain it, or pass --data-dir once to rebuild {FOLDER}/")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DeepzooError(f"{path} is missing (the run folder was not copied whole); copy it again, "
                               f"or pass --data-dir once to rebuild {FOLDER}/") from None
        if hashlib.sha256(data).hexdigest() != self.digests[name]:
            raise DeepzooError(f"{path} is damaged (its sha256 differs from {MANIFEST}); copy the run folder "
                               f"again, or pass --data-dir once to rebuild {FOLDER}/")
        return data

    def json(self, name: str = "inference.json") -> Any:
        try:
            return json.loads(self.bytes(name).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise DeepzooError(f"{self.folder / name} is not valid JSON ({e})") from None

    def text(self, name: str) -> str:
        return self.bytes(name).decode("utf-8")

    def tensors(self, name: str) -> dict:
        from safetensors import SafetensorError
        from safetensors.torch import load
        try:
            return load(self.bytes(name))
        except SafetensorError as e:
            raise DeepzooError(f"{self.folder / name} is damaged ({e})") from None


class MissingArtefacts(DeepzooError):
    """A run folder without ``inference/`` (written before deepzoo kept it): it can be rebuilt from data."""


def tensor_bytes(tensors: dict) -> bytes:
    """A dict of tensors as safetensors bytes (for an artefact file)."""
    from safetensors.torch import save
    return save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
