"""Checkpoints that survive a crash at any instant.

A checkpoint is a folder ``checkpoints/epoch-0007/`` holding

- ``model.safetensors``: the weights (safetensors: loading never unpickles code),
- ``optim.safetensors``: the optimizer's tensors (momentum buffers, Adam moments),
- ``state.json``: everything else needed to continue bit for bit: epoch, global step, the optimizer's
  scalar state, the random-number-generator states, early-stopping bookkeeping, elapsed time.

It is written into a temporary folder, each file flushed to disk, then renamed into place; only then
is ``checkpoints/latest.json`` replaced (``os.replace`` is atomic) to point at it. A run killed at
any moment therefore has a ``latest.json`` naming a complete checkpoint, or none yet.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_json, fsync_dir, temp_dir

LATEST = "latest.json"


# --- random-number-generator states -------------------------------------------------------------

def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode()


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def rng_state(data_generator: torch.Generator) -> dict:
    state = {
        "torch": _b64(torch.get_rng_state()),
        "data": _b64(data_generator.get_state()),
        "numpy": list(np.random.get_state()[1].tolist()), "numpy_pos": int(np.random.get_state()[2]),
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict, data_generator: torch.Generator) -> None:
    torch.set_rng_state(_unb64(state["torch"]))
    data_generator.set_state(_unb64(state["data"]))
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0))
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_unb64(s) for s in state["cuda"]])


# --- optimizer state: tensors to safetensors, the rest to JSON ---------------------------------

def split_optimizer_state(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, pstate in sd["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for flat, value in list(tensors.items()) + list(meta["scalars"].items()):
        idx, key = flat.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


# --- save / load --------------------------------------------------------------------------------

def model_tensors(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict as (tensors, aliases). A tensor shared under two names (tied weights, e.g. a
    language model's embedding and output matrices) is stored once; ``aliases`` maps each other name
    to the stored one, and ``load_weights`` puts it back."""
    tensors, aliases, seen = {}, {}, {}
    for name, value in model.state_dict().items():
        key = (value.data_ptr(), value.shape, value.stride()) if value.numel() else None
        if key is not None and key in seen:
            aliases[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        tensors[name] = value.detach().cpu().contiguous()
    return tensors, aliases


def save_weights(model: torch.nn.Module, path: Path) -> None:
    tensors, aliases = model_tensors(model)
    save_file(tensors, str(path), metadata={"aliases": json.dumps(aliases)} if aliases else None)


def _publish(ckpt_root: Path, name: str, write: Callable[[Path], None]) -> Path:
    """``ckpt_root/name``, whole or not at all: ``write`` fills a temporary folder, each file is flushed
    to disk, then the folder is renamed into place."""
    tmp = temp_dir(ckpt_root, prefix=f".{name}.")
    try:
        write(tmp)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        final = ckpt_root / name
        if final.exists():  # left by a run killed after this rename but before latest.json moved on
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def save(ckpt_root: Path, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
         state: dict, best: bool, keep: int = 1, best_weights: tuple[int, dict] | None = None) -> Path:
    """Write checkpoint ``epoch`` atomically and point ``latest.json`` at it.

    ``best`` marks it as the best so far; the best checkpoint and the ``keep`` most recent are kept.
    ``best_weights`` = (epoch, state dict): a best epoch that had no checkpoint of its own (the engine writes
    by the clock); its weights alone are written first, as ``epoch-NNNN/model.safetensors``, and become
    the best. (Only weights are read from a best checkpoint: the run resumes from the last.)
    """
    ckpt_root.mkdir(parents=True, exist_ok=True)
    best_name = None
    if best_weights is not None:
        best_epoch, weights = best_weights
        best_name = f"epoch-{best_epoch:04d}"
        _publish(ckpt_root, best_name, lambda tmp: save_file(weights, str(tmp / "model.safetensors")))
    name = f"epoch-{epoch:04d}"

    def write(tmp: Path) -> None:
        save_weights(model, tmp / "model.safetensors")
        opt_tensors, opt_meta = split_optimizer_state(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optim.safetensors"))
        (tmp / "state.json").write_text(json.dumps({**state, "optimizer": opt_meta}, indent=1))
    final = _publish(ckpt_root, name, write)
    fsync_dir(ckpt_root)
    pointer = read_latest(ckpt_root) or {}
    pointer = {"last": name, "best": name if best else best_name or pointer.get("best", name)}
    atomic_write_json(ckpt_root / LATEST, pointer)
    # Prune: everything not named by the pointer, beyond the `keep` most recent.
    epochs = sorted(p for p in ckpt_root.glob("epoch-*") if p.is_dir())
    for p in epochs[:-keep]:
        if p.name not in pointer.values():
            shutil.rmtree(p, ignore_errors=True)
    for p in ckpt_root.glob(".epoch-*"):  # temporaries of a killed run
        shutil.rmtree(p, ignore_errors=True)
    return final


def read_latest(ckpt_root: Path) -> dict | None:
    path = ckpt_root / LATEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DeepzooError(f"{path} is not valid JSON ({e}); the checkpoint pointer is damaged") from None


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict saved by ``save_weights``, shared tensors under all their names again."""
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
            aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise DeepzooError(f"cannot read weights {path}: {e}") from None
    for name, stored in aliases.items():
        tensors[name] = tensors[stored]
    return tensors


def load(ckpt_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict:
    """Load weights (and optimizer state) from one checkpoint folder; return its state dict."""
    model.load_state_dict(load_weights(ckpt_dir / "model.safetensors"))
    try:
        state = json.loads((ckpt_dir / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DeepzooError(f"cannot read {ckpt_dir / 'state.json'}: {e}") from None
    if optimizer is not None:
        tensors = load_weights(ckpt_dir / "optim.safetensors")
        optimizer.load_state_dict(join_optimizer_state(tensors, state["optimizer"]))
    return state


# --- recipes with their own loops (word2vec, DQN, Q-learning, the NumPy MLP) ----------------------------

def generator_state(rng: np.random.Generator) -> dict:
    """A NumPy Generator's whole state (JSON: its bit generator's counters, as Python ints)."""
    return rng.bit_generator.state


def set_generator_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def torch_rng_state() -> str:
    return _b64(torch.get_rng_state())


def set_torch_rng_state(state: str) -> None:
    torch.set_rng_state(_unb64(state))


class LoopCheckpoints:
    """Checkpoints of a recipe that trains with a loop of its own, not the engine's.

    The loop asks :meth:`due` at each point where it can stop and later go on exactly (after a batch of
    words, at the end of an episode, after an epoch): true once ``every`` seconds have passed since the last
    checkpoint (0: at every such point). Then it hands over its whole state to :meth:`save`: arrays (tables,
    weights, optimiser moments, a replay buffer) and a JSON-able dict (its position, random-generator
    states, bookkeeping). They are written as the engine's checkpoints are: ``checkpoints/NAME/`` with
    ``arrays.safetensors`` and ``state.json``, made whole in a temporary folder, renamed into place, and only
    then named by ``latest.json``; the one before is removed. A run killed at any moment resumes from the
    last complete checkpoint (:meth:`restore`, which also drops the ``metrics.jsonl`` rows written after it).
    """

    def __init__(self, run_dir: Path, every: float) -> None:
        self.root, self.metrics = Path(run_dir) / "checkpoints", Path(run_dir) / "metrics.jsonl"
        self.every, self.saved_at = every, time.monotonic()
        self.resumed: tuple[dict[str, np.ndarray], dict] | None = None   # what restore() read, for the loop

    def restore(self) -> dict | None:
        """Read the latest checkpoint into ``resumed`` and return its state; None if there is none."""
        from safetensors.numpy import load_file
        latest = read_latest(self.root)
        if latest is None:
            return None
        folder = self.root / latest["last"]
        try:
            arrays = load_file(str(folder / "arrays.safetensors"))
            state = json.loads((folder / "state.json").read_text())
        except (SafetensorError, OSError, json.JSONDecodeError) as e:
            raise DeepzooError(f"cannot read the checkpoint {folder}: {e}") from None
        rows = self.metric_rows()[:state["metrics_rows"]]           # rows of a killed stretch go
        from deepzoo.files import atomic_write_bytes
        atomic_write_bytes(self.metrics, "".join(json.dumps(r) + "\n" for r in rows).encode())
        self.resumed = (arrays, state)
        return state

    def metric_rows(self) -> list[dict]:
        """The complete rows of metrics.jsonl (a line cut short by a kill is left out)."""
        rows = []
        if self.metrics.exists():
            for line in self.metrics.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return rows

    def due(self) -> bool:
        return time.monotonic() - self.saved_at >= self.every

    def save(self, name: str, arrays: dict[str, np.ndarray], state: dict) -> Path:
        from safetensors.numpy import save_file
        self.root.mkdir(parents=True, exist_ok=True)
        state = {**state, "metrics_rows": len(self.metric_rows())}

        def write(tmp: Path) -> None:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / "arrays.safetensors"))
            (tmp / "state.json").write_text(json.dumps(state))
        final = _publish(self.root, name, write)
        fsync_dir(self.root)
        atomic_write_json(self.root / LATEST, {"last": name, "best": name})
        for p in [*self.root.glob("*"), *self.root.glob(".*")]:
            if p.is_dir() and p.name != name:
                shutil.rmtree(p, ignore_errors=True)
        self.saved_at = time.monotonic()
        return final
