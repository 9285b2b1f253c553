"""``deepzoo runs``: the run folders under a folder, as a table, and ``--compare``: their curves on one plot.

A run folder's state is read from its files alone (nothing runs):

- ``finished``: ``summary.json`` exists;
- ``diverged``: ``diverged.json`` exists (written by the engine when the loss became NaN or infinite);
- ``stopped``: epochs were logged or a checkpoint written, but there is no summary: the run was killed,
  interrupted, or is still training (``deepzoo resume RUN`` continues it);
- ``not started``: only ``config.json`` (or the run failed before its first epoch).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from deepzoo import config as cfglib
from deepzoo.errors import DeepzooError
from deepzoo.figures import format_value, seconds_text
from deepzoo.report.format import table

DIVERGED = "diverged.json"
MAX_DEPTH = 4               # runs/tour-X/recipe/..., runs/experiment-X/net/...


def find_runs(folder: str | Path) -> list[Path]:
    """Run folders (those with a config.json naming a recipe) under ``folder``, or ``folder`` itself."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeepzooError(f"{folder} is not a folder (deepzoo runs FOLDER; runs go to ./runs by default)")
    found = []

    def walk(d: Path, depth: int) -> None:
        if _meta(d) is not None:
            found.append(d)
            return                                   # a run folder's subfolders are not runs
        if depth >= MAX_DEPTH:
            return
        try:
            children = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            walk(child, depth + 1)

    walk(folder, 0)
    return found


def _meta(run_dir: Path) -> dict | None:
    try:
        meta = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) and "recipe" in meta and "config" in meta else None


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def metrics_rows(run_dir: Path) -> list[dict]:
    from deepzoo.train.engine import read_metrics
    return read_metrics(run_dir)


def _fmt_setting(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return Path(value).name if "/" in value else value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def changed_settings(meta: dict, recipe) -> list[str]:
    """``key=value`` for each setting of the run that differs from the recipe's defaults (with its preset,
    when it had one: then ``preset=NAME`` first), each key abbreviated to its last part where that is
    unambiguous (``epochs=3``, ``lr=0.01``, ``model.impl=scratch``)."""
    defaults = recipe.full_defaults()
    out = []
    preset = meta.get("preset")
    if preset:
        out.append(f"preset={preset}")
        if preset in recipe.presets:
            try:
                defaults = cfglib.apply(copy.deepcopy(defaults), recipe.presets[preset], f"preset {preset}")
            except DeepzooError:
                pass
    want, have = cfglib.flatten(defaults), cfglib.flatten(meta.get("config", {}))
    tails: dict[str, int] = {}
    for key in want.keys() | have.keys():
        tail = key.rsplit(".", 1)[-1]
        tails[tail] = tails.get(tail, 0) + 1
    for key in sorted(have):
        if key in want and want[key] == have[key]:
            continue
        tail = key.rsplit(".", 1)[-1]
        out.append(f"{tail if tails[tail] == 1 else key}={_fmt_setting(have[key])}")
    return out


def state_of(run_dir: Path, meta: dict | None = None, rows: list[dict] | None = None) -> tuple[str, str]:
    """(state, detail): see the module's docstring."""
    rows = metrics_rows(run_dir) if rows is None else rows
    meta = meta or _meta(run_dir) or {}
    epochs = (meta.get("config", {}).get("train") or {}).get("epochs")
    of = f"/{epochs}" if epochs else ""
    if (run_dir / "summary.json").exists():
        return "finished", ""
    diverged = _json(run_dir / DIVERGED)
    if diverged is not None:
        return "diverged", f"at epoch {diverged.get('epoch', '?')}{of}"
    if rows or (run_dir / "checkpoints" / "latest.json").exists():
        last = rows[-1].get("epoch", len(rows)) if rows else 0
        return "stopped", f"after epoch {last}{of}"
    return "not started", ""


def describe(run_dir: Path, root: Path | None = None) -> dict:
    """One run folder, as a row of `deepzoo runs` (and its --json)."""
    from deepzoo import recipes
    meta = _meta(run_dir)
    if meta is None:
        raise DeepzooError(f"{run_dir} is not a deepzoo run folder (no readable config.json)")
    rows = metrics_rows(run_dir)
    state, detail = state_of(run_dir, meta, rows)
    try:
        recipe = recipes.get(meta["recipe"])
    except DeepzooError:
        recipe = None
    summary = _json(run_dir / "summary.json") if state == "finished" else None
    ref = recipe.reference if recipe else None
    metric = summary["metric"] if summary else (ref.metric if ref else None)
    seconds = summary.get("train_seconds") if summary else (rows[-1].get("train_seconds") if rows else None)
    try:
        started = (run_dir / "config.json").stat().st_mtime
    except OSError:
        started = 0.0
    name = str(run_dir.relative_to(root)) if root is not None and run_dir != root else run_dir.name
    return {"run": name, "path": str(run_dir), "recipe": meta["recipe"],
            "changed": changed_settings(meta, recipe) if recipe else [],
            "state": state, "detail": detail, "metric": metric,
            "value": summary.get("value") if summary else None,
            "reference": summary["reference"]["value"] if summary else ref.value if ref else None,
            "meets_reference": summary.get("meets_reference") if summary else None,
            "train_seconds": seconds, "epochs": len(rows), "started": started,
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else ""}


def _abbrev(items: list[str], width: int) -> str:
    text = " ".join(items) or "defaults"
    return text if len(text) <= width else text[:width - 1] + "…"


def runs_table(folder: str | Path, changed_width: int = 28) -> tuple[str, list[dict]]:
    folder = Path(folder)
    found = [describe(d, folder) for d in find_runs(folder)]
    found.sort(key=lambda r: (r["started"], r["run"]))
    if not found:
        return f"no run folders under {folder}", []
    rows = []
    for r in found:
        m = r["metric"] or ""
        figure = format_value(m, r["value"]) if r["value"] is not None else "-"
        ref = format_value(m, r["reference"]) if r["reference"] is not None else "-"
        verdict = {True: " meets", False: " below"}.get(r["meets_reference"], "")
        rows.append([r["run"], r["recipe"], _abbrev(r["changed"], changed_width), figure, ref + verdict,
                     seconds_text(r["train_seconds"]) if r["train_seconds"] is not None else "",
                     r["date"], (r["state"] + " " + r["detail"]).strip()])
    text = table(rows, ["run", "recipe", "changed from defaults", "figure", "reference", "time", "started", "state"])
    return text, found


# --- --compare -----------------------------------------------------------------------------------

def resolve_run(arg: str, folder: str | Path) -> Path:
    """A run named on the command line: a path, or a folder name under FOLDER."""
    for candidate in (Path(arg), Path(folder) / arg):
        if _meta(candidate) is not None:
            return candidate
    raise DeepzooError(f"{arg} is not a run folder (no config.json naming a recipe, here or under {folder})")


def monitored(rows: list[dict], metric: str | None) -> str | None:
    """The validation figure the run's curves show beside the losses: val_<name> of the reference
    metric when logged, else the first logged figure that is not a loss, a rate or a time."""
    if not rows:
        return None
    keys = [k for k in rows[-1] if isinstance(rows[-1][k], (int, float))]
    if metric:
        for candidate in (metric.replace("test_", "val_", 1), metric):
            if candidate in keys:
                return candidate
    skip = {"epoch", "step", "lr", "train_seconds"}
    for prefix in ("val_", "eval_", "train_"):
        for k in keys:
            if k.startswith(prefix) and k not in skip and not k.endswith(("loss", "_per_s", "seconds")):
                return k
    return None


def compare(run_args: list[str], folder: str | Path, out: str | Path) -> str:
    """Plot the runs' losses (left: training solid, validation dashed) and monitored figure (right) against
    the epoch, one colour per run, into ``out`` (PNG); return the side-by-side table."""
    import matplotlib.ticker as ticker

    from deepzoo.report.plots import plt, save_png
    runs = [resolve_run(a, folder) for a in run_args]
    if len(runs) < 1:
        raise DeepzooError("--compare needs at least one run folder")
    names = [str(r) for r in run_args]
    info = [describe(r) for r in runs]
    curves = [metrics_rows(r) for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown: set[str] = set()
    for i, (name, rows, d) in enumerate(zip(names, curves, info)):
        c = colours[i % len(colours)]
        x = [r.get("epoch", j + 1) for j, r in enumerate(rows)]
        for key, style in (("train_loss", "-"), ("val_loss", "--")):
            if any(key in r for r in rows):
                left.plot(x, [r.get(key) for r in rows], style, color=c, marker=".", label=f"{name} {key}")
        m = monitored(rows, d["metric"])
        if m:
            right.plot(x, [r.get(m) for r in rows], "-", color=c, marker=".", label=f"{name} {m}")
            shown.add(m)
    for ax, title in ((left, "losses (training solid, validation dashed)"),
                      (right, shown.pop() if len(shown) == 1 else "monitored figures")):
        ax.set(xlabel="epoch", title=title)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        if ax.lines:
            ax.legend(fontsize=7)
    left.set_ylabel("loss")
    if left.lines and all(v > 0 for line in left.lines for v in line.get_ydata() if v is not None):
        left.set_yscale("log")
    save_png(fig, out, dpi=90)
    return side_by_side(names, info, curves)


def side_by_side(names: list[str], info: list[dict], curves: list[list[dict]]) -> str:
    def best(rows, key, maximise):
        vals = [(r[key], r.get("epoch", j + 1)) for j, r in enumerate(rows) if isinstance(r.get(key), (int, float))]
        if not vals:
            return "-"
        v, e = (max if maximise else min)(vals, key=lambda ve: ve[0])     # the first epoch at the best
        return f"{format_value(key, v)} (epoch {e})"

    fields = []
    for d, rows in zip(info, curves):
        m = monitored(rows, d["metric"])
        last = rows[-1] if rows else {}
        fields.append({
            "recipe": d["recipe"],
            "changed": _abbrev(d["changed"], 40),
            "state": (d["state"] + " " + d["detail"]).strip(),
            "epochs": str(len(rows)),
            "monitored": m or "-",
            "best monitored": best(rows, m, not m.endswith(("loss", "ppl", "fd", "nelbo"))) if m else "-",
            "last train_loss": format_value("train_loss", last.get("train_loss")),
            "last val_loss": format_value("val_loss", last.get("val_loss")),
            "figure": (f"{format_value(d['metric'], d['value'])} {d['metric']}" if d["value"] is not None else "-"),
            "reference": format_value(d["metric"] or "", d["reference"]) if d["reference"] is not None else "-",
            "time": seconds_text(d["train_seconds"]) if d["train_seconds"] is not None else "-",
        })
    keys = list(fields[0]) if fields else []
    rows = [[k] + [f[k] for f in fields] for k in keys]
    return table(rows, [""] + names)
