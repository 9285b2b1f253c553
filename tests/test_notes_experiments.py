"""The notes' remaining claims as experiments: long-range, layernorm, linear-collapse, and
`deepzoo experiment list`. Each quick form (run by the session's quick tour) writes a sane figure, table and
JSON, and every experiment's command passes --quick on and prints its table; the parts that
carry the claims are checked exactly: the task puts the answer d positions back, an activation-free MLP
*is* the product of its weights (float64), LayerNorm is really gone from the "without" models, and a
diverging run is caught. Timings are figures of the experiments, never pass/fail conditions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from conftest import deepzoo_main
from deepzoo import experiments
from deepzoo.errors import DeepzooError
from deepzoo.experiments import layernorm, linear_collapse, long_range
from deepzoo.models.mlp import MLP

ROOT = Path(__file__).resolve().parents[1]


def sane_png(path: Path, min_size=(500, 300)) -> None:
    """A real PNG of a plausible size with something drawn on it (not one flat colour)."""
    import numpy as np
    from PIL import Image
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as im:
        assert im.width >= min_size[0] and im.height >= min_size[1], im.size
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert pixels.std() > 5 and (pixels < 128).mean() > 0.005, "a blank figure"


# --- long-range ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("length,distance", [(201, 10), (201, 200), (33, 1), (33, 31), (5, 4)])
def test_the_task_puts_the_answer_exactly_d_positions_before_the_query(length, distance):
    g = torch.Generator().manual_seed(distance)
    x, y = long_range.make_batch(64, length, distance, g)
    assert x.shape == (64, length) and y.shape == (64,)
    assert (x[:, -1] == long_range.QUERY).all()
    is_value = (x >= long_range.DISTRACTORS) & (x < long_range.QUERY)
    assert (is_value.sum(dim=1) == 1).all(), "exactly one value token per sequence"
    position = is_value.int().argmax(dim=1)
    assert (length - 1 - position == distance).all(), "the value sits d positions before the query"
    assert torch.equal(x[torch.arange(64), position] - long_range.DISTRACTORS, y)
    others = x.clone()
    others[torch.arange(64), position] = 0
    assert (others[:, :-1] < long_range.DISTRACTORS).all(), "every other position is a distractor"
    assert len(set(y.tolist())) > 1, "the answers vary"


def test_the_task_refuses_a_distance_that_does_not_fit():
    g = torch.Generator().manual_seed(0)
    for d in (0, 33, -1):
        with pytest.raises(DeepzooError, match="distance"):
            long_range.make_batch(2, 33, d, g)


def test_the_two_nets_have_the_same_width_and_about_the_same_parameters():
    lstm, transformer = long_range.build("lstm", 64, 201), long_range.build("transformer", 64, 201)
    n_lstm, n_transformer = long_range.count_parameters(lstm), long_range.count_parameters(transformer)
    assert (n_lstm, n_transformer) == (35_400, 35_720)            # the docstring's figures
    x, _ = long_range.make_batch(3, 201, 50, torch.Generator().manual_seed(0))
    assert lstm(x).shape == transformer(x).shape == (3, long_range.VALUES)


def test_the_transformer_is_causal():
    """Changing a token after position t leaves every output at positions <= t unchanged."""
    torch.manual_seed(0)
    net = long_range.build("transformer", 32, 20).eval()
    x, _ = long_range.make_batch(2, 20, 5, torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 12] = (y[:, 12] + 1) % long_range.DISTRACTORS
    with torch.no_grad():
        h = net.block(net.positions(net.embed(x)), causal=True)
        k = net.block(net.positions(net.embed(y)), causal=True)
    assert torch.equal(h[:, :12], k[:, :12]) and not torch.equal(h[:, 12:], k[:, 12:])


def test_long_range_quick_form_in_the_tour(quick_tour):
    out = quick_tour / "experiments" / "long-range"          # the session's `deepzoo tour --quick`
    result = json.loads((out / "long_range.json").read_text())
    assert result["quick"] and result["length"] == max(result["distances"]) + 1
    assert [(r["model"], r["distance"]) for r in result["rows"]] == \
        [(m, d) for d in long_range.QUICK["distances"] for m in long_range.MODELS]
    for r in result["rows"]:
        assert 0 <= r["accuracy"] <= 1 and r["steps"] >= 1 and r["train_seconds"] >= long_range.QUICK["seconds"]
    p = result["parameters"]
    assert abs(p["lstm"] - p["transformer"]) / p["lstm"] < 0.05
    md = (out / "long_range.md").read_text()
    assert md.count("\n| ") == 1 + len(result["distances"]) and "chance 12.5%" in md
    sane_png(out / "long_range.png")


def test_a_fixed_number_of_steps_is_the_same_for_both_nets(tmp_path):
    result = long_range.run(tmp_path, distances=[2, 4], steps=3, width=8, progress=False, log=lambda *a: None)
    assert {r["steps"] for r in result["rows"]} == {3} and result["budget"] == {"steps": 3}
    with pytest.raises(DeepzooError, match="multiple of the 4 heads"):
        long_range.run(tmp_path, distances=[2], steps=1, width=6, progress=False)


# --- layernorm ----------------------------------------------------------------------------------------

def test_without_layernorm_means_every_layernorm_gone_and_nothing_else_changed():
    from deepzoo.nn.attention import LayerNorm
    torch.manual_seed(0)
    with_ln = layernorm.transformer(65, 2, 32, 16, norm=True)
    torch.manual_seed(0)
    without = layernorm.transformer(65, 2, 32, 16, norm=False)
    assert sum(isinstance(m, LayerNorm) for m in with_ln.modules()) == 5      # 2 a block and the final one
    assert not any(isinstance(m, (LayerNorm, torch.nn.LayerNorm)) for m in without.modules())
    a, b = dict(with_ln.named_parameters()), dict(without.named_parameters())
    assert set(b) < set(a) and all("norm" in k for k in set(a) - set(b))
    assert all(torch.equal(a[k], b[k]) for k in b), "the shared weights start the same"
    m_with, m_without = layernorm.mlp(784, 10, 3, 16, True), layernorm.mlp(784, 10, 3, 16, False)
    assert sum(isinstance(m, LayerNorm) for m in m_with.modules()) == 3
    assert not any(isinstance(m, LayerNorm) for m in m_without.modules())


def test_a_diverging_run_is_caught_and_stops():
    settings = {**layernorm.SETTINGS["mlp"], **layernorm.QUICK["mlp"], "steps": 30}
    blown = layernorm.train_run("mlp", False, 30.0, settings)
    assert blown["diverged_at"] is not None and blown["final_loss"] is None
    assert blown["steps"] == blown["diverged_at"] - 1 < 30
    calm = layernorm.train_run("mlp", True, 1e-2, settings)
    assert calm["diverged_at"] is None and calm["steps"] == 30 and calm["final_loss"] < calm["bound"]


def test_layernorm_quick_form_in_the_tour(quick_tour):
    out = quick_tour / "experiments" / "layernorm"           # the session's `deepzoo tour --quick`
    result = json.loads((out / "layernorm.json").read_text())
    expected = [(m, norm, lr) for m in layernorm.MODELS for lr in layernorm.QUICK[m]["lrs"] for norm in (True, False)]
    assert [(r["model"], r["layernorm"], r["lr"]) for r in result["rows"]] == expected
    for r in result["rows"]:
        steps = result["settings"][r["model"]]["steps"]
        if r["diverged_at"]:
            assert r["final_loss"] is None and r["steps"] < steps
        else:
            assert r["steps"] == steps and 0 < r["final_loss"] < r["bound"]
        if r["steps_to_target"]:
            assert layernorm.SMOOTH <= r["steps_to_target"] <= r["steps"]
    assert set(result["findings"]) == {f"{m} {w} LayerNorm" for m in layernorm.MODELS for w in ("with", "without")}
    assert (out / "layernorm.md").read_text().count("\n| ") == 1 + len(expected) // 2
    sane_png(out / "layernorm.png")


# --- linear-collapse ----------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_an_activation_free_mlp_is_exactly_the_product_of_its_weights(depth):
    """W = W_L ... W_1 and b = Σ_l W_L ... W_{l+1} b_l reproduce the network's outputs in float64."""
    torch.manual_seed(depth)
    model = MLP(12, [9, 15, 11][:depth - 1], 5, activation="none").double().eval()
    W, b = linear_collapse.collapse(model)
    assert W.shape == (5, 12) and b.shape == (5,) and W.dtype == torch.float64
    x = torch.randn(50, 12, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(model(x), x @ W.T + b, rtol=0, atol=1e-13)
    if depth == 3:                                           # the formula written out, for one case
        (A1, c1), (A2, c2), (A3, c3) = [(m.weight.detach(), m.bias.detach()) for m in model.net
                                        if isinstance(m, torch.nn.Linear)]
        assert torch.allclose(W, A3 @ A2 @ A1, rtol=0, atol=1e-13)
        assert torch.allclose(b, A3 @ A2 @ c1 + A3 @ c2 + c3, rtol=0, atol=1e-13)


def test_the_product_does_not_exist_with_an_activation():
    torch.manual_seed(0)
    relu = MLP(6, [8], 3, activation="relu").double()
    with pytest.raises(DeepzooError, match="ReLU"):
        linear_collapse.collapse(relu)
    # and it is not a technicality: no single affine map fits a ReLU net (it is not additive)
    x1, x2 = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    with torch.no_grad():
        gap = relu(x1 + x2) - relu(x1) - relu(x2) + relu(torch.zeros_like(x1))
    assert gap.abs().max() > 1e-3


def test_the_scratch_layers_and_dropout_collapse_too():
    torch.manual_seed(0)
    model = MLP(7, [6, 6], 4, activation="none", dropout=0.5, impl="scratch").double().eval()
    W, b = linear_collapse.collapse(model)
    x = torch.randn(20, 7, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(model(x), x @ W.T + b, rtol=0, atol=1e-13)


def test_activation_none_is_a_valid_choice_of_the_mlp_and_of_the_recipes():
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid))
                   for m in MLP(4, [3, 3], 2, activation="none").modules())
    with pytest.raises(DeepzooError, match="unknown activation"):
        MLP(4, [3], 2, activation="identity")
    for recipe in ("mlp-mnist", "mlp-regression"):
        status, out, err = deepzoo_main("train", recipe, "--set", "model.activation=\"none\"", "--print-config")
        assert status == 0 and re.search(r'activation\s*=\s*"none"', out), err
    status, _, err = deepzoo_main("train", "mlp-mnist", "--set", "model.activation=\"linear\"", "--print-config")
    assert status == 2 and "none" in err


def test_rings_cannot_be_separated_by_a_line():
    x, y = linear_collapse.rings(1000, torch.Generator().manual_seed(0))
    assert x[y == 0].mean(0).abs().max() < 0.15 and x[y == 1].mean(0).abs().max() < 0.2   # the same mean
    r = x.norm(dim=1)
    assert ((r > 1.5) == (y == 1)).double().mean() > 0.9               # but the radius tells them apart


def test_linear_collapse_quick_form_in_the_tour(quick_tour):
    out = quick_tour / "experiments" / "linear-collapse"     # the session's `deepzoo tour --quick`
    result = json.loads((out / "linear_collapse.json").read_text())
    for name in linear_collapse.DATASETS:
        rows = result["datasets"][name]["rows"]
        assert [(r["depth"], r["activation"]) for r in rows] == \
            [(1, "(one linear layer)")] + [(d, a) for d in (2, 3, 4) for a in ("none", "relu")]
        for r in rows:
            assert 0 <= r["test_acc"] <= 1
            if r["activation"] != "relu":
                c = r["collapsed"]
                assert c["shape"] == [2 if name == "rings" else 10, 2 if name == "rings" else 784]
                assert c["max_abs_difference"] < 1e-9 and c["test_acc_of_product"] == c["test_acc_of_net_float64"]
            else:
                assert "collapsed" not in r
        assert result["findings"][name]["product_accuracy_equals_net"]
    assert (out / "linear_collapse.md").read_text().count("\n| ") == 1 + 2 * 7
    sane_png(out / "linear_collapse.png")


# --- deepzoo experiment list, and the tour ------------------------------------------------------------

def test_experiment_list_names_every_experiment_with_its_claim_note_and_verdict():
    from deepzoo import cli
    parser = cli.build_parser()
    sub = next(a for a in parser._subparsers._group_actions[0].choices["experiment"]._actions
               if a.dest == "experiment")
    commands = set(sub.choices) - {"list"}
    assert {e.name for e in experiments.EXPERIMENTS} == commands       # nothing missing from the list
    status, out, _ = deepzoo_main("experiment", "list")
    assert status == 0
    for e in experiments.EXPERIMENTS:
        assert e.name in out and e.claim.split()[0] in out
        assert re.match(r"00[0-4] \(", e.notes), e.notes
        assert "(measured" not in e.verdict and len(e.verdict) > 60, f"{e.name}: no measured verdict"
        for f in e.results.split(", "):
            assert (ROOT / "benchmarks" / "results" / f).is_file(), f"{e.name}: {f} is not in benchmarks/results"
        module = __import__(f"deepzoo.experiments.{e.module}", fromlist=["run"])
        assert callable(module.run) and "verdict" in module.__doc__.lower()
    data = json.loads(deepzoo_main("experiment", "list", "--json")[1])
    assert [d["name"] for d in data] == [e.name for e in experiments.EXPERIMENTS]


def test_an_experiment_joins_the_tour_with_its_figure_and_a_failing_one_is_reported(tmp_path, monkeypatch):
    from deepzoo.report import tour
    out = tmp_path / "tour"
    path = tour.tour(only=["logreg-binary"], experiments=["vanishing"], out=out, progress=False,   # (a second)
                     log=lambda *a: None)
    result = json.loads((out / "tour.json").read_text())
    (entry,) = result["experiments"]
    assert entry["experiment"] == "vanishing" and entry["error"] is None and "per-step factor" in entry["verdict"]
    assert (out / "experiments" / "vanishing" / "vanishing.png").is_file()
    page = path.read_text()
    assert "id='experiment-vanishing'" in page and "figure of the vanishing experiment" in page
    assert not re.search(r"""(src|href)=['"](?!data:|#)""", page), "a resource outside the page"

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the experiment")
    monkeypatch.setattr(linear_collapse, "run", broken)
    with pytest.raises(DeepzooError, match=r"1 experiment\(s\) failed \(linear-collapse\)"):
        tour.tour(only=["logreg-binary"], experiments=["linear-collapse"], out=tmp_path / "t2", progress=False,
                  log=lambda *a: None)
    page = (tmp_path / "t2" / "report.html").read_text()
    assert "a bug in the experiment" in page and "Failed: experiment linear-collapse" in page
    with pytest.raises(DeepzooError, match="unknown experiment"):
        tour.tour(only=["logreg-binary"], experiments=["nope"], out=tmp_path / "t3", progress=False)
    assert not (tmp_path / "t3").exists()


def test_the_quick_tour_runs_the_experiments_that_join_it(monkeypatch):
    from deepzoo import cli
    from deepzoo.report import tour
    calls = []
    monkeypatch.setattr(tour, "tour", lambda **kw: calls.append(kw) or Path("report.html"))
    assert cli.main(["tour"]) == 0 and calls[-1]["experiments"] is None          # the default: those that join
    assert cli.main(["tour", "--experiments", "none"]) == 0 and calls[-1]["experiments"] == []
    assert cli.main(["tour", "--experiments", "layernorm,long-range"]) == 0
    assert calls[-1]["experiments"] == ["layernorm", "long-range"]
    joining = [e.name for e in experiments.EXPERIMENTS if e.tour]
    assert joining == [e.name for e in experiments.EXPERIMENTS]                 # every one has a quick form
    assert all(e.quick for e in experiments.EXPERIMENTS)


@pytest.mark.parametrize("spec", experiments.EXPERIMENTS, ids=lambda e: e.name)
def test_each_experiment_command_passes_quick_and_prints_its_table(spec, quick_tour, monkeypatch, tmp_path):
    """`deepzoo experiment NAME --quick` hands quick=True to run() and prints the table and the files; run()
    is the tour's own result read back from its JSON (no second run), so format_table takes a result
    read back from JSON too."""
    import importlib
    module = importlib.import_module(f"deepzoo.experiments.{spec.module}")
    saved = json.loads((quick_tour / "experiments" / spec.name / f"{spec.module}.json").read_text())
    calls = []
    monkeypatch.setattr(module, "run", lambda out, **kw: calls.append((out, kw)) or saved)
    status, out, err = deepzoo_main("experiment", spec.name, "--quick", "--out", str(tmp_path / "x"))
    assert status == 0, err
    ((where, kw),) = calls
    assert str(where) == str(tmp_path / "x") and kw["quick"] is True
    assert module.format_table(saved) in out and module.verdict(saved) in out
    assert f"{spec.module}.png" in out and f"{spec.module}.md" in out and f"{spec.module}.json" in out
