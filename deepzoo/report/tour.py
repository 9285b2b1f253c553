"""``deepzoo tour``: train every recipe and write one HTML page of figures and plots.

With ``quick`` each recipe runs its quick preset on the samples shipped in the package, so the tour
works offline on a fresh machine in minutes. Quick figures come from a few epochs on a small sample;
they show that everything runs end to end, not the published figure (the README's table has those,
from the default configs).
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

from deepzoo import recipes
from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes
from deepzoo.train.metrics import format_metric
from deepzoo.train.run import train


def tour(quick: bool = True, out=None, data_dir=None, only: list[str] | None = None,
         progress: bool = True, log=print) -> Path:
    chosen = [recipes.get(n) for n in only] if only else recipes.all_recipes()
    out = Path(out or f"runs/tour-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for recipe in chosen:
        log(f"== {recipe.name} ({'quick preset' if quick else 'default config'})")
        run_dir = out / recipe.name
        start = time.perf_counter()
        try:
            summary = train(recipe.name, preset="quick" if quick else None, out=run_dir,
                            data_dir=data_dir, progress=progress, log=log)
            error = None
        except DeepzooError as e:
            summary, error = None, str(e)
            log(f"   failed: {e}")
        results.append((recipe, run_dir, summary, error, time.perf_counter() - start))
    path = out / "report.html"
    atomic_write_bytes(path, _html(results, quick).encode())
    failed = [r.name for r, _, _, e, _ in results if e]
    if failed:
        raise DeepzooError(f"tour: {len(failed)} recipe(s) failed ({', '.join(failed)}); "
                           f"the report is in {path}")
    return path


def _html(results, quick: bool) -> str:
    rows, plots = [], []
    for recipe, run_dir, s, error, seconds in results:
        ref = recipe.reference
        value = s["value"] if s else None
        verdict = "error" if error else {True: "meets", False: "below", None: "n/a"}[s["meets_reference"]]
        rows.append(
            f"<tr><td>{recipe.name}</td><td>{html.escape(recipe.family)}</td><td>{html.escape(recipe.dataset)}</td>"
            f"<td>{ref.metric}</td><td>{format_metric(ref.metric, value)}</td>"
            f"<td>{format_metric(ref.metric, ref.value)}</td><td>{html.escape(ref.source)}</td>"
            f"<td class='{verdict}'>{verdict}</td><td>{seconds:.1f}s</td></tr>")
        png = run_dir / "curves.png"
        if png.exists():
            data = base64.b64encode(png.read_bytes()).decode()
            plots.append(f"<h3>{recipe.name}</h3><img alt='training curves of {recipe.name}' "
                         f"src='data:image/png;base64,{data}'>")
        if error:
            plots.append(f"<h3>{recipe.name}</h3><p class='error'>{html.escape(error)}</p>")
    note = ("Quick presets: a few epochs on the small samples shipped in the package. They show that "
            "every recipe runs end to end; the published figures are reached by the default configs "
            "on the full datasets (see the README)." if quick else
            "Default configs on the full datasets.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>deepzoo tour</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f3f3f3; }} .meets {{ color: #070; }} .below {{ color: #a60; }} .error {{ color: #b00; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>deepzoo tour</h1>
<p>{note}</p>
<table><tr><th>recipe</th><th>family</th><th>dataset</th><th>metric</th><th>reached</th>
<th>reference</th><th>source</th><th>vs reference</th><th>time</th></tr>
{''.join(rows)}
</table>
<h2>Training curves</h2>
{''.join(plots)}
</body></html>
"""
