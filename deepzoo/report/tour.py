"""``deepzoo tour``: train every recipe and write one HTML page that shows what each model learned.

By default (``quick``) each recipe runs its quick preset on the samples shipped in the package, so the tour
works offline on a fresh machine in minutes; ``quick=False`` (``deepzoo tour --full``) trains the default
configs on the full datasets. For every recipe the page shows:

- its figure, and beside it the same figure for a model that learned nothing (the untrained model with the
  run's seed, the majority class, a random policy, the loss at the start: deepzoo/report/learned.py), with
  the verdict "learned" when the trained figure is clearly better;
- what the model does, from the run folder alone (``deepzoo.load(run).predict`` / ``.sample``;
  deepzoo/report/showcase.py): test images with the predicted classes, sentences with their sentiment, a
  prompt continued, translations, nearest words and an analogy, the policy on the map, sample grids and
  the denoising strip, the node embedding map;
- its training curves.

After the recipes, the experiments whose quick form joins the tour (``deepzoo.experiments.EXPERIMENTS``,
``tour=True``; ``deepzoo experiment list`` marks them) run that form (their default form with
``quick=False``) into ``OUT/experiments/NAME``, and the page shows each one's claim, figure and table.

A recipe or an experiment that fails, for any reason, is reported on the page with its error and the tour
goes on; the tour then raises a DeepzooError naming what failed (``deepzoo tour`` exits with status 2). Quick
figures come from a few epochs on small samples: they show that each model learns, not the published
figure (the README's table has those, from the default configs). ``tour.json`` beside ``report.html``
holds the same results for programs (benchmarks/tour.py, the tests).
"""

from __future__ import annotations

import html
import time
import traceback
from pathlib import Path

from deepzoo import recipes
from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes, atomic_write_json
from deepzoo.report import learned as learned_lib
from deepzoo.report.format import table
from deepzoo.report.showcase import file_img


def tour(quick: bool = True, out=None, data_dir=None, only: list[str] | None = None,
         progress: bool = True, log=print, experiments: list[str] | None = None) -> Path:
    """Train each recipe (``only``: these), check it learned, show it; run the experiments (``experiments``:
    these names; by default every one that joins the tour, or none when ``only`` names recipes); write
    ``OUT/report.html`` and ``OUT/tour.json``; return the report's path."""
    from deepzoo import experiments as experiments_lib
    from deepzoo.train.run import train
    if experiments is None:
        experiments = [] if only else [e.name for e in experiments_lib.EXPERIMENTS if e.tour]
    for name in experiments:
        experiments_lib.get(name)                    # an unknown name is one line, before anything trains
    chosen = [recipes.get(n) for n in only] if only else recipes.all_recipes()
    for recipe in list(chosen):     # a recipe that starts from another's run: that one trains first
        for _, needed in recipe.needs:
            if needed not in [r.name for r in chosen[:chosen.index(recipe)]]:
                chosen = [r for r in chosen if r.name != needed]
                chosen.insert(chosen.index(recipe), recipes.get(needed))
    out = Path(out or f"runs/tour-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    entries: list[dict] = []
    threads = _threads()
    for i, recipe in enumerate(chosen, 1):
        _threads(threads)
        log(f"== [{i}/{len(chosen)}] {recipe.name} ({'quick preset' if quick else 'default config'})")
        entry = {"recipe": recipe.name, "family": recipe.family, "dataset": recipe.dataset,
                 "preset": "quick" if quick else None, "run_dir": str(out / recipe.name), "error": None,
                 "seconds": {}}
        measured: dict = {}

        def on_built(task, cfg, recipe=recipe, measured=measured):
            try:
                measured.update(learned_lib.before(recipe, task, cfg))
            except Exception as e:                    # reported with the recipe; training goes on
                measured["error"] = _describe(e, "measuring the untrained model")

        start, cpu = time.perf_counter(), time.process_time()
        try:
            overrides: dict = {}
            for key, needed in recipe.needs:
                run = next(e for e in entries if e["recipe"] == needed)
                if run["error"]:
                    raise DeepzooError(f"it starts from the {needed} run, which failed")
                section, _, leaf = key.partition(".")
                overrides.setdefault(section, {})[leaf] = run["run_dir"]
            summary = train(recipe.name, preset="quick" if quick else None, out=out / recipe.name,
                            data_dir=data_dir, progress=progress, log=log, on_built=on_built,
                            overrides=overrides or None)
            entry.update(metric=summary["metric"], value=summary["value"], train_seconds=summary["train_seconds"],
                         meets_reference=summary["meets_reference"])
            if "error" in measured:
                entry["error"], entry["traceback"] = measured.pop("error")
        except Exception as e:                        # any failure: reported, and the tour goes on
            entry["error"], entry["traceback"] = _describe(e, "training")
        entry["seconds"]["train"] = round(time.perf_counter() - start, 2)
        entry["cpu_seconds"] = round(time.process_time() - cpu, 2)   # all threads: with the wall time, the load
        entry["_measured"] = measured
        if entry["error"]:
            log(f"   failed: {entry['error']}")
        entries.append(entry)

    # Then judge and show each model; generated digits are scored by this tour's cnn-mnist, if it trained.
    classifier = next((Path(e["run_dir"]) for e in entries if e["recipe"] == "cnn-mnist" and not e["error"]), None)
    for entry in entries:
        recipe, measured = recipes.get(entry["recipe"]), entry.pop("_measured")
        if entry["error"]:
            continue
        start, cpu = time.perf_counter(), time.process_time()
        run_dir = Path(entry["run_dir"])
        try:
            verdict = learned_lib.after(recipe, run_dir, measured, classifier)
            entry["_untrained_samples"] = verdict.pop("_untrained_samples", None)
            entry["learned"] = verdict
        except Exception as e:
            entry["error"], entry["traceback"] = _describe(e, "checking that it learned")
        try:
            from deepzoo.report.showcase import show
            entry["_show"] = show(recipe, run_dir, out / "showcase" / recipe.name, data_dir)
        except Exception as e:
            if not entry["error"]:
                entry["error"], entry["traceback"] = _describe(e, "showing what it does")
        entry["seconds"]["report"] = round(time.perf_counter() - start, 2)
        entry["cpu_seconds"] = round(entry["cpu_seconds"] + time.process_time() - cpu, 2)
        if entry["error"]:
            log(f"   {recipe.name} failed: {entry['error']}")
    for entry in entries:
        entry["seconds"]["total"] = round(sum(entry["seconds"].values()), 2)
    ran = [run_experiment(name, quick, out / "experiments" / name, progress, log, data_dir, threads)
           for name in experiments]
    _threads(threads)
    total = time.perf_counter() - started

    result = {"quick": quick, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "total_seconds": round(total, 1),
              "machine": machine(), "recipes": [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries],
              "experiments": ran}
    atomic_write_json(out / "tour.json", result)
    path = out / "report.html"
    atomic_write_bytes(path, render(entries, result).encode())
    log(summary_table(result))
    failed = [e["recipe"] for e in entries if e["error"]]
    failed_experiments = [e["experiment"] for e in ran if e["error"]]
    if failed or failed_experiments:
        what = ([f"{len(failed)} recipe(s) failed ({', '.join(failed)})"] if failed else []) + \
            ([f"{len(failed_experiments)} experiment(s) failed ({', '.join(failed_experiments)})"]
             if failed_experiments else [])
        raise DeepzooError(f"tour: {'; '.join(what)}; the report is in {path}")
    return path


def run_experiment(name: str, quick: bool, folder: Path, progress: bool, log, data_dir=None,
                   threads: int | None = None) -> dict:
    """One experiment's quick form (its default form with quick=False) into ``folder``: its verdict line,
    table and figure's path for the page, or the error that stopped it. ``data_dir`` goes to the experiments
    that read a dataset (their ``run`` takes ``data_dir``); ``threads``: torch's thread count to run with."""
    import importlib
    import inspect
    if threads:
        _threads(threads)

    from deepzoo import experiments
    spec = experiments.get(name)
    log(f"== experiment {name} ({'quick form' if quick else 'default form'})")
    entry = {"experiment": name, "claim": spec.claim, "notes": spec.notes, "run_dir": str(folder), "error": None}
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"deepzoo.experiments.{spec.module}")
        data = {"data_dir": data_dir} if "data_dir" in inspect.signature(module.run).parameters else {}
        result = module.run(folder, quick=quick, progress=progress, log=log, **data)
        entry.update(verdict=module.verdict(result), table=module.format_table(result),
                     figure=str(folder / f"{spec.module}.png"))
    except Exception as e:                            # reported with the experiment; the tour goes on
        entry["error"], entry["traceback"] = _describe(e, "running the experiment")
        log(f"   failed: {entry['error']}")
    entry["seconds"] = round(time.perf_counter() - start, 2)
    return entry


def _threads(n: int | None = None) -> int:
    """torch's intra-op thread count; with ``n``, set it first. The tour puts the count it started with back
    before each recipe and experiment: a recipe may leave it changed (numba.set_num_threads, which word2vec's
    compiled kernel calls, sets the OpenMP runtime that torch shares, so under OMP_NUM_THREADS=1 every later
    run would compute on all the cores)."""
    import torch
    if n and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _describe(e: BaseException, stage: str) -> tuple[str, str | None]:
    """(one line for the page, the traceback for a failure that is not a DeepzooError, else None)."""
    if isinstance(e, DeepzooError):
        return str(e), None
    return f"{type(e).__name__} while {stage}: {e}", traceback.format_exc()


def machine() -> dict:
    """The CPU's name and its vector instruction sets (from /proc/cpuinfo), torch's version and threads."""
    import torch

    from deepzoo.figures import cpu
    name, flags = cpu()
    flags = [f for f in flags if f == "avx2" or f.startswith(("avx512", "amx"))]
    return {"cpu": name, "cpu_flags": flags, "cores": __import__("os").cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def fmt(metric: str, value) -> str:
    """A figure for the page: proportions as percentages, the rest with 4 significant digits."""
    if value is None:
        return "-"
    if metric.endswith(learned_lib.PROPORTION):
        return f"{100 * value:.1f}%"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def _short(metric: str) -> str:
    """``sample_fd (cnn-mnist features, 1,000 samples)`` -> ``sample_fd``."""
    return metric.split(" (", 1)[0]


def learned_text(v: dict) -> str:
    others = ", ".join(f"{k} {fmt(v['metric'], x)}" for k, x in v["baselines"].items() if k != v["baseline_name"])
    return (f"{fmt(v['metric'], v['trained'])} against {fmt(v['metric'], v['baseline'])} for the "
            f"{v['baseline_name']}" + (f" ({others})" if others else ""))


def summary_table(result: dict) -> str:
    rows = []
    for e in result["recipes"]:
        v = e.get("learned")
        rows.append([e["recipe"], "FAILED" if e["error"] else ("learned" if v and v["learned"] else "NOT LEARNED"),
                     f"{v['metric']} {fmt(v['metric'], v['trained'])} vs {fmt(v['metric'], v['baseline'])} "
                     f"({v['baseline_name']})" if v else (e["error"] or "")[:80],
                     f"{e['seconds'].get('total', 0):.1f}s"])
    for e in result.get("experiments", []):
        rows.append([f"experiment {e['experiment']}", "FAILED" if e["error"] else "ran",
                     (e["error"] or e["verdict"])[:80], f"{e['seconds']:.1f}s"])
    return (table(rows, ["recipe", "verdict", "figure vs baseline", "time"])
            + f"\ntotal {result['total_seconds']:.0f}s on {result['machine']['cpu']}")


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1150px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h2 small { font-weight: normal; color: #666; font-size: 0.6em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: left;
       vertical-align: top; } th { background: #f3f3f3; }
table.summary td:nth-child(n+4) { white-space: nowrap; } small { color: #666; }
.ok { color: #070; font-weight: 600; } .bad, .error { color: #b00; font-weight: 600; } .note { color: #555; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; text-align: center; font-size: 0.85em; } figure img { image-rendering: pixelated; }
img.plot { max-width: 100%; display: block; margin: 0.5em 0; } img.curves { max-width: 100%; }
pre { background: #f7f7f7; padding: 0.5em; white-space: pre-wrap; } pre.map { font-size: 1.4em; line-height: 1.2;
      display: inline-block; }
table.show td { max-width: 520px; } details { margin: 0.5em 0; }
"""


def render(entries: list[dict], result: dict) -> str:
    """The self-contained page (images inlined as data: URIs; no script, no external file)."""
    quick = result["quick"]
    m = result["machine"]
    rows, sections = [], []
    for e in entries:
        name = e["recipe"]
        v = e.get("learned")
        figure = base = "-"
        if e["error"]:
            check = verdict = "<span class='error'>failed</span>"
        else:
            verdict = "quick preset" if quick else {True: "meets", False: "below", None: "n/a"}[e.get("meets_reference")]
            check = "-"
            if v:
                check = "<span class='ok'>yes</span>" if v["learned"] else "<span class='bad'>no</span>"
                base = f"{fmt(v['metric'], v['baseline'])} <small>{html.escape(v['baseline_name'])}</small>"
                figure = f"{fmt(v['metric'], v['trained'])} <small>{html.escape(_short(v['metric']))}</small>"
        rows.append(f"<tr><td><a href='#{name}'>{name}</a></td><td>{html.escape(e['family'])}</td>"
                    f"<td>{html.escape(e['dataset'])}</td><td>{figure}</td><td>{base}</td><td>{check}</td>"
                    f"<td>{verdict}</td><td>{e['seconds'].get('total', 0):.1f}s</td></tr>")
        sections.append(_section(e, quick))
    note = ("Quick presets: a few epochs on the small samples shipped in the package. Each figure stands "
            "beside the same figure for a model that learned nothing (the untrained model with the run's "
            "seed, the majority class, a random policy, the loss at the start); the published figures are "
            "reached by the default configs on the full datasets (see the README)." if quick else
            "Default configs on the full datasets; each figure beside its published reference and beside a "
            "model that learned nothing.")
    flags = ", ".join(m["cpu_flags"]) or "none of avx2/avx512/amx"
    failed = [e["recipe"] for e in entries if e["error"]] + \
        [f"experiment {e['experiment']}" for e in result.get("experiments", []) if e["error"]]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>deepzoo tour</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style></head><body>
<h1>deepzoo tour</h1>
<p class="note">{html.escape(result['date'])}: {len(entries)} recipes in {result['total_seconds']:.0f} s on
{html.escape(m['cpu'])} ({flags}; torch {html.escape(m['torch'])}, {m['threads']} threads,
{html.escape(m['cpu_capability'])} kernels).{f" <span class='error'>Failed: {html.escape(', '.join(failed))}.</span>" if failed else ""}</p>
<p>{note}</p>
<table class="summary"><tr><th>recipe</th><th>family</th><th>dataset</th><th>figure</th>
<th>without learning</th><th>learned?</th><th>vs reference</th><th>time</th></tr>
{''.join(rows)}
</table>
{''.join(sections)}
{_experiments(result.get("experiments", []), quick)}
</body></html>
"""


def _experiments(ran: list[dict], quick: bool) -> str:
    """The experiments' part of the page: a table (claim, verdict, time), then each one's figure and table."""
    if not ran:
        return ""
    rows, sections = [], []
    for e in ran:
        name = e["experiment"]
        outcome = f"<span class='error'>{html.escape(e['error'])}</span>" if e["error"] else html.escape(e["verdict"])
        rows.append(f"<tr><td><a href='#experiment-{name}'>{name}</a></td><td>{html.escape(e['claim'])}</td>"
                    f"<td>{outcome}</td><td>{e['seconds']:.1f}s</td></tr>")
        parts = [f"<section id='experiment-{name}'><h2>experiment {name} <small>{html.escape(e['notes'])}"
                 f"</small></h2><p class='note'>{html.escape(e['claim'])}</p>"]
        if e["error"]:
            parts.append(f"<p class='error'>{html.escape(e['error'])}</p>")
            if e.get("traceback"):
                parts.append(f"<details><summary>traceback</summary><pre>{html.escape(e['traceback'])}</pre></details>")
        else:
            parts.append(file_img(e["figure"], f"figure of the {name} experiment", "plot"))
            parts.append(f"<pre>{html.escape(e['table'])}</pre>")
        parts.append(f"<p class='note'>{e['seconds']:.1f} s; <code>deepzoo experiment {name}"
                     f"{' --quick' if quick else ''}</code> runs it alone.</p></section>")
        sections.append("".join(parts))
    note = ("Each experiment's quick form: small models and seconds of training, which check that it runs, not "
            "the claim; <code>deepzoo experiment list</code> gives the verdicts of the default forms." if quick else
            "Each experiment's default form.")
    return (f"<h2 id='experiments'>Experiments: the notes' claims</h2><p>{note}</p>"
            "<table class='experiments'><tr><th>experiment</th><th>claim</th><th>this run</th><th>time</th></tr>"
            f"{''.join(rows)}</table>{''.join(sections)}")


def _section(e: dict, quick: bool) -> str:
    name = e["recipe"]
    recipe = recipes.get(name)
    parts = [f"<section id='{name}'><h2>{name} <small>{html.escape(e['family'])} &middot; "
             f"{html.escape(e['dataset'])}</small></h2><p class='note'>{html.escape(recipe.description)}</p>"]
    if e["error"]:
        parts.append(f"<p class='error'>{html.escape(e['error'])}</p>")
        if e.get("traceback"):
            parts.append(f"<details><summary>traceback</summary><pre>{html.escape(e['traceback'])}</pre></details>")
    v = e.get("learned")
    if v:
        parts.append(f"<p><span class='{'ok' if v['learned'] else 'bad'}'>{'Learned' if v['learned'] else 'Not learned'}"
                     f"</span>: {html.escape(v['metric'])} {html.escape(learned_text(v))}; "
                     f"<span class='note'>the rule: {html.escape(v['rule'])}, so "
                     f"{'at least' if v['higher_is_better'] else 'at most'} {fmt(v['metric'], v['threshold'])}.</span></p>")
    if not quick and e.get("value") is not None:
        ref = recipe.reference
        parts.append(f"<p>Reference: {fmt(ref.metric, ref.value)} ({html.escape(ref.source)}).</p>")
    if e.get("_show"):
        parts.append(e["_show"])
    if e.get("_untrained_samples") is not None:
        from deepzoo.report.showcase import grid_png, img
        parts.append("<p>The untrained model's samples, for comparison:</p>"
                     + img(grid_png(e["_untrained_samples"], nrow=16), f"samples of the untrained {name}"))
    curves = Path(e["run_dir"]) / "curves.png"
    if curves.exists() and not name.startswith(("qlearning", "dqn")):
        parts.append(file_img(curves, f"training curves of {name}", "curves"))
    parts.append(f"<p class='note'>{e['seconds'].get('total', 0):.1f} s: training {e['seconds'].get('train', 0):.1f} s "
                 f"(of which {e.get('train_seconds', 0):.1f} s in epochs), checking and showing "
                 f"{e['seconds'].get('report', 0):.1f} s.</p></section>")
    return "".join(parts)
