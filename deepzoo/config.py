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
and, for a typo, the closest valid keys. Given a recipe's schema (:mod:`deepzoo.schema`), ``resolve`` then
checks every value of the result, its range or choices, before anything else happens.
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
        parsed = tomllib.loads(f"v = {raw}")
    except ValueError:        # TOMLDecodeError, or an integer of thousands of digits
        return raw
    return parsed["v"] if len(parsed) == 1 else raw   # "1\nx = 2" is no one value


def show(value: Any, width: int = 60) -> str:
    """A value as an error line shows it: repr (strings quoted, newlines escaped), cut short."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


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
        try:
            value = float(value) if ok else value
        except OverflowError:     # an integer beyond any float
            ok = False
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                list: "a list such as [1, 2]"}.get(type(default), type(default).__name__)
        raise DeepzooError(f"{source}: {key} must be {kind}, got {show(value)}")
    return value


def _set(cfg: dict, dotted: str, value: Any, source: str, renamed: dict | None = None) -> None:
    valid = flatten(cfg)
    if dotted not in valid and renamed and dotted in renamed:
        raise DeepzooError(f"{source}: config key {show(dotted)} is now called {' and '.join(renamed[dotted])}")
    if dotted not in valid:
        close = difflib.get_close_matches(dotted, valid, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DeepzooError(f"{source}: unknown config key {show(dotted)}{hint} "
                           f"(valid keys: {', '.join(sorted(valid))})")
    *parents, leaf = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = _coerce(dotted, node[leaf], value, source)


def apply(cfg: dict, overrides: dict | Iterable[tuple[str, Any]], source: str,
          sources: dict[str, str] | None = None, renamed: dict | None = None) -> dict:
    """Return a copy of ``cfg`` with ``overrides`` (nested dict or (dotted key, value) pairs) applied;
    ``sources``, when given, records ``source`` as where each key's value came from."""
    cfg = copy.deepcopy(cfg)
    pairs = flatten(overrides).items() if isinstance(overrides, dict) else overrides
    for dotted, value in pairs:
        _set(cfg, dotted, value, source, renamed)
        if sources is not None:
            sources[dotted] = source
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
    except OSError as e:
        raise DeepzooError(f"cannot read config file {path}: {e.strerror or e}") from None
    except ValueError as e:   # TOMLDecodeError, bytes that are not UTF-8, an integer of thousands of digits
        raise DeepzooError(f"config file {path} is not valid TOML: {e}") from None


def resolve(defaults: dict, presets: dict[str, dict], preset: str | None = None,
            config_file: str | Path | None = None, sets: Iterable[str] = (),
            epochs: int | None = None, seed: int | None = None, overrides: dict | None = None,
            schema=None) -> dict:
    """Build the final config of a run from a recipe's defaults and the user's overrides (``overrides``, a
    nested dict such as ``{"optim": {"lr": 0.01}}``, is the Python API's ``--set``, applied after it).

    With ``schema`` (:func:`deepzoo.schema.for_recipe`) every value of the result is checked: the first
    one not allowed is a DeepzooError naming where it came from (``--set``, the config file, ...), the key,
    what is allowed and the value."""
    cfg = copy.deepcopy(defaults)
    sources: dict[str, str] = {}
    renamed = schema.renamed if schema is not None else None
    if preset is not None:
        if preset not in presets:
            raise DeepzooError(f"unknown preset '{preset}' (this recipe has: {', '.join(presets) or 'none'})")
        cfg = apply(cfg, presets[preset], f"preset {preset}", sources, renamed)
    if config_file is not None:
        cfg = apply(cfg, load_toml(config_file), f"config file {config_file}", sources, renamed)
    cfg = apply(cfg, parse_sets(sets), "--set", sources, renamed)
    if overrides:
        cfg = apply(cfg, overrides, "override", sources, renamed)
    if epochs is not None:
        cfg = apply(cfg, [("train.epochs", epochs)], "--epochs", sources)
    if seed is not None:
        cfg = apply(cfg, [("seed", seed)], "--seed", sources)
    if schema is not None:
        schema.check(cfg, sources, where="default")
    return cfg
