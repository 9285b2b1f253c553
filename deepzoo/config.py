"""Recipe configuration: a nested dict of plain values, overridable from the command line.

A recipe declares its defaults as a nested dict (sections ``data``, ``model``, ``optim``, ``train``).
The user changes them, in this order (later wins):

1. a named preset of the recipe (``--preset quick``),
2. a TOML file (``--config my.toml``) whose tables mirror the sections,
3. ``--set section.key=value`` (the value is read as a TOML literal: ``0.1``, ``true``,
   ``[256, 256]``, ``"text"``; a bare word that is not TOML is taken as a string),
4. the shortcuts ``--epochs N`` and ``--seed S``.

Every key must already exist in the defaults, and the new value must have the default's type (an int
is accepted where a float is expected). Anything else is a :class:`DeepzooError` that names the key
and, for a typo, the closest valid keys.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from pathlib import Path
from typing import Any, Iterable

from deepzoo.errors import DeepzooError


def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": 0.1}``."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def parse_value(raw: str) -> Any:
    """Read a command-line value as a TOML literal, or as a plain string if it is not one."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    """Return ``value`` converted to the type of ``default``, or raise a clear error."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                list: "a list such as [1, 2]"}.get(type(default), type(default).__name__)
        raise DeepzooError(f"{source}: {key} must be {kind}, got {value!r}")
    return value


def _set(cfg: dict, dotted: str, value: Any, source: str) -> None:
    valid = flatten(cfg)
    if dotted not in valid:
        close = difflib.get_close_matches(dotted, valid, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DeepzooError(f"{source}: unknown config key '{dotted}'{hint} "
                           f"(valid keys: {', '.join(sorted(valid))})")
    *parents, leaf = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = _coerce(dotted, node[leaf], value, source)


def apply(cfg: dict, overrides: dict | Iterable[tuple[str, Any]], source: str) -> dict:
    """Return a copy of ``cfg`` with ``overrides`` (nested dict or (dotted key, value) pairs) applied."""
    cfg = copy.deepcopy(cfg)
    pairs = flatten(overrides).items() if isinstance(overrides, dict) else overrides
    for dotted, value in pairs:
        _set(cfg, dotted, value, source)
    return cfg


def parse_sets(items: Iterable[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=0.1"]`` -> ``[("optim.lr", 0.1)]``."""
    pairs = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise DeepzooError(f"--set {item!r}: expected key=value, for example --set optim.lr=0.01")
        pairs.append((key.strip(), parse_value(raw.strip())))
    return pairs


def load_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise DeepzooError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise DeepzooError(f"config file {path} is not valid TOML: {e}") from None


def resolve(defaults: dict, presets: dict[str, dict], preset: str | None = None,
            config_file: str | Path | None = None, sets: Iterable[str] = (),
            epochs: int | None = None, seed: int | None = None, overrides: dict | None = None) -> dict:
    """Build the final config of a run from a recipe's defaults and the user's overrides (``overrides``, a
    nested dict such as ``{"optim": {"lr": 0.01}}``, is the Python API's ``--set``, applied after it)."""
    cfg = copy.deepcopy(defaults)
    if preset is not None:
        if preset not in presets:
            raise DeepzooError(f"unknown preset '{preset}' (this recipe has: {', '.join(presets) or 'none'})")
        cfg = apply(cfg, presets[preset], f"preset {preset}")
    if config_file is not None:
        cfg = apply(cfg, load_toml(config_file), f"config file {config_file}")
    cfg = apply(cfg, parse_sets(sets), "--set")
    if overrides:
        cfg = apply(cfg, overrides, "override")
    if epochs is not None:
        cfg = apply(cfg, [("train.epochs", epochs)], "--epochs")
    if seed is not None:
        cfg = apply(cfg, [("seed", seed)], "--seed")
    return cfg
