"""The tour: every quick preset learns (its figure clearly beats a model that learned nothing), the report
shows what each model does and every experiment's figure and table, and holds up in a real browser, a failing
recipe is reported and the tour goes on, and `deepzoo tour` means the quick tour."""

import dataclasses
import json
from pathlib import Path

import pytest

from deepzoo import experiments, recipes
from deepzoo.report import learned

NAMES = [r.name for r in recipes.all_recipes()]
EXPERIMENTS = [e.name for e in experiments.EXPERIMENTS]


@pytest.fixture(scope="module")
def tour_json(quick_tour) -> dict:
    return {e["recipe"]: e for e in json.loads((quick_tour / "tour.json").read_text())["recipes"]}


@pytest.mark.parametrize("name", NAMES)
def test_every_quick_preset_learns(name, tour_json):
    e = tour_json[name]                         # the session's `deepzoo tour --quick` (conftest.quick_tour)
    assert e["error"] is None, e["error"]
    v = e["learned"]
    better = (lambda a, b: a > b) if v["higher_is_better"] else (lambda a, b: a < b)
    for baseline, value in v["baselines"].items():   # every baseline measured, and beaten
        assert better(v["trained"], value), f"{name}: {v['metric']} {v['trained']} vs {baseline} {value}"
    assert v["learned"], (f"{name}: {v['metric']} {v['trained']} is not clearly better than the "
                          f"{v['baseline_name']} ({v['baseline']}; needs {v['threshold']}: {v['rule']})")
    assert e["seconds"]["total"] >= e["seconds"]["train"] > 0


def test_report_in_a_real_browser(quick_tour, tmp_path):
    """Headless Chromium opens the page: every image decodes, the console stays clean, one table row a recipe."""
    from conftest import headless_chromium
    driver = headless_chromium(tmp_path / "profile")
    report = quick_tour / "report.html"
    try:
        driver.set_page_load_timeout(120)
        driver.get(report.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.src.slice(0, 22)])")
        assert len(images) >= len(NAMES)
        broken = [alt for alt, complete, width, _ in images if not complete or width == 0]
        assert not broken, f"images that did not load: {broken}"
        assert all(src.startswith("data:image/png;base64,") for *_, src in images), "every image is inlined"
        rows = driver.execute_script("return Array.from(document.querySelectorAll('table.summary tr'))"
                                     ".slice(1).map(r => r.cells[0].innerText)")
        assert rows == NAMES
        rows = driver.execute_script("return Array.from(document.querySelectorAll('table.experiments tr'))"
                                     ".slice(1).map(r => r.cells[0].innerText)")
        assert rows == EXPERIMENTS                  # every experiment's quick form joins the tour
        figures = [alt for alt, *_ in images if alt.endswith(" experiment")]
        assert figures == [f"figure of the {name} experiment" for name in EXPERIMENTS]    # each decoded, above
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1200, min(height, 16000))
        shot = quick_tour / "report.png"           # kept beside the report, to look at
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 50_000
    finally:
        driver.quit()
    page = report.read_text()
    import re
    assert not re.search(r"""(src|href)=['"](?!data:|#)""", page), "a resource outside the page"
    assert "<script" not in page


def test_the_report_shows_what_each_model_does(quick_tour):
    page = (quick_tour / "report.html").read_text()
    for name in NAMES:
        assert f"id='{name}'" in page
    for shown in ("The first 10 test digits", "The first 10 test images", "Test sentences and the model's answers",
                  "Prompts continued", "ROMEO:", "translated", "Nearest neighbours", "Analogy",
                  "The greedy policy on the map", "returns of dqn-cartpole", "node embedding map",
                  "64 samples", "denoising", "interpolations", "The untrained model's samples",
                  "Predicted against true", "p(malignant)", "quick preset"):
        assert shown in page, shown


def test_the_report_shows_every_experiment_with_its_figure_and_table(quick_tour):
    ran = json.loads((quick_tour / "tour.json").read_text())["experiments"]
    assert [e["experiment"] for e in ran] == EXPERIMENTS
    page = (quick_tour / "report.html").read_text()
    stdout = (quick_tour / "stdout.txt").read_text()
    for spec, e in zip(experiments.EXPERIMENTS, ran):
        assert e["error"] is None, f"{spec.name}: {e['error']}"
        folder = quick_tour / "experiments" / spec.name
        assert e["figure"] == str(folder / f"{spec.module}.png") and e["verdict"] and e["seconds"] > 0
        for suffix in (".png", ".md", ".json"):               # figure, table and data in its run folder
            assert (folder / f"{spec.module}{suffix}").is_file(), f"{spec.name}: no {spec.module}{suffix}"
        assert json.loads((folder / f"{spec.module}.json").read_text())["quick"] is True
        assert f"id='experiment-{spec.name}'" in page and f"alt='figure of the {spec.name} experiment'" in page
        assert f"experiment {spec.name}" in stdout               # the summary table's row


def test_each_experiment_runs_with_the_tours_thread_count(tmp_path, monkeypatch):
    """A recipe may leave torch's thread count changed (numba.set_num_threads, in word2vec's kernel, sets the
    OpenMP runtime that torch shares): the tour puts the count it started with back before each experiment."""
    import torch

    from deepzoo.experiments import vanishing
    from deepzoo.report import tour
    seen = []
    monkeypatch.setattr(vanishing, "run", lambda *a, **kw: seen.append(torch.get_num_threads()) or {})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2 if before == 1 else 1)      # what a recipe left behind
        tour.run_experiment("vanishing", True, tmp_path, False, lambda *a: None, threads=before)
    finally:
        torch.set_num_threads(before)
    assert seen == [before]


def test_a_failing_recipe_is_reported_and_the_tour_goes_on(tmp_path, monkeypatch, capsys):
    from deepzoo.cli import main

    def broken(cfg, data_dir):
        raise RuntimeError("a bug, not a DeepzooError")
    recipe = recipes.get("mlp-regression")
    monkeypatch.setitem(recipes.RECIPES, "mlp-regression", dataclasses.replace(recipe, build=broken))
    out = tmp_path / "tour"
    status = main(["tour", "--recipes", "mlp-regression,logreg-binary", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "1 recipe(s) failed (mlp-regression)" in err and len(err.strip().splitlines()) == 1
    result = {e["recipe"]: e for e in json.loads((out / "tour.json").read_text())["recipes"]}
    assert "RuntimeError while training: a bug, not a DeepzooError" in result["mlp-regression"]["error"]
    assert "Traceback" in result["mlp-regression"]["traceback"]
    assert result["logreg-binary"]["error"] is None and result["logreg-binary"]["learned"]["learned"]
    page = (out / "report.html").read_text()
    assert "a bug, not a DeepzooError" in page and "Failed: mlp-regression" in page
    assert "The first 8 test tumours" in page          # the recipe after the failure ran and was shown


def test_tour_is_quick_by_default(monkeypatch):
    from deepzoo import cli
    from deepzoo.report import tour
    calls = []
    monkeypatch.setattr(tour, "tour", lambda **kw: calls.append(kw) or Path("report.html"))
    assert cli.main(["tour"]) == 0 and calls[-1]["quick"] is True
    assert cli.main(["tour", "--quick"]) == 0 and calls[-1]["quick"] is True
    assert cli.main(["tour", "--full", "--recipes", "cnn-mnist"]) == 0
    assert calls[-1]["quick"] is False and calls[-1]["only"] == ["cnn-mnist"]
    with pytest.raises(SystemExit):
        cli.main(["tour", "--quick", "--full"])


def test_learned_rules():
    v = learned.verdict("test_acc", 0.30, {"untrained model": 0.09, "majority class": 0.16}, n=100)
    assert v["baseline_name"] == "majority class" and v["learned"] and v["threshold"] == pytest.approx(0.29)
    assert not learned.verdict("test_acc", 0.28, {"majority class": 0.16}, n=100)["learned"]
    # 7 test nodes cannot show learning against a 57% majority: even 7 of 7 happens 2% of the time
    assert not learned.verdict("test_acc", 1.0, {"majority class": 4 / 7}, n=7)["learned"]
    assert learned.binomial_threshold(1000, 0.0) == pytest.approx(0.001)
    assert learned.verdict("test_ppl", 400.0, {"untrained model": 5000.0})["learned"]
    assert not learned.verdict("val_loss", 0.95, {"untrained model": 1.0})["learned"]
    assert not learned.verdict("test_r2", 0.05, {"untrained model": -0.3})["learned"]
    spread = {"trained_sd": 5.0, "trained_n": 10, "baseline_sd": 10.0, "baseline_n": 10}
    assert learned.verdict("eval_mean_return", 40.0, {"random policy": 20.0}, spread=spread)["learned"]
    assert not learned.verdict("eval_mean_return", 25.0, {"random policy": 20.0}, spread=spread)["learned"]


def test_curves_have_whole_epoch_ticks(tmp_path, monkeypatch):
    from deepzoo.report import plots
    figs = []
    monkeypatch.setattr(plots, "save_png", lambda fig, path, dpi=100: figs.append(fig) or Path(path))
    plots.plot_curves([{"epoch": e, "train_loss": 1 / e, "val_acc": 0.5 + e / 10} for e in (1, 2, 3)],
                      tmp_path / "c.png", "t")
    for ax in figs[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
