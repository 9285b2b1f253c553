"""Recipes: registry invariants, both implementations (torch / scratch) train, the tabular peer
reference is reproducible, and the shipped tabular recipes reach their references."""

import pytest

from deepzoo import recipes
from deepzoo.errors import DeepzooError
from deepzoo.recipes.tabular import ols_test_r2
from deepzoo.train.run import train


def test_every_recipe_has_quick_preset_and_reference():
    names = [r.name for r in recipes.all_recipes()]
    assert {"mlp-mnist", "cnn-mnist", "logreg-binary", "mlp-regression"} <= set(names)
    for r in recipes.all_recipes():
        assert "quick" in r.presets and r.reference.source
        # engine recipes are judged on their test split; word vectors on their evaluation sets;
        # gpt-shakespeare on validation loss, the figure nanoGPT reports (its split has no test part)
        assert (r.reference.metric.startswith("test_") or (r.fit is not None and r.evaluate is not None)
                or (r.name == "gpt-shakespeare" and r.reference.metric == "val_loss"))


def test_the_index_deepzoo_list_reads_is_the_registry():
    import json
    assert json.loads(recipes.INDEX.read_text(encoding="utf-8")) == recipes.index_json(), \
        "deepzoo/recipes/index.json is stale: run python scripts/readme_table.py"
    assert sorted(s.name for s in recipes.summaries()) == sorted(r.name for r in recipes.all_recipes())
    assert all(s.reference == recipes.get(s.name).reference for s in recipes.summaries())


def test_getting_one_recipe_imports_only_its_module():
    import subprocess
    import sys
    code = ("import sys\nfrom deepzoo import recipes\nr = recipes.get('gcn-cora')\n"
            "print(sorted(m for m in sys.modules if m.startswith('deepzoo.recipes.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['deepzoo.recipes.graph']"


def test_ols_peer_reference_is_what_the_recipe_claims():
    recipe = recipes.get("mlp-regression")
    # the reference is this float64 least-squares fit stored to 4 decimals (0.52334 -> 0.5233, 3.8e-5 off,
    # within half a unit); rounding in the float32 data preparation moves the fit by ~1e-7 at most
    assert ols_test_r2(recipe.full_defaults()) == pytest.approx(recipe.reference.value, abs=5e-5)


@pytest.mark.parametrize("name", ["mlp-mnist", "cnn-mnist"])
def test_scratch_blocks_train_the_same_recipe(name, tmp_path):
    """model.impl=scratch and optim.impl=scratch run the from-scratch layers and optimizer end to end,
    and the first steps agree with the built-ins (same initial weights, no dropout randomness)."""
    sets = ["data.val_size=500", "train.epochs=1", "data.augment_shift=0", "model.dropout=0.0"]
    result = {}
    for impl in ("torch", "scratch"):
        s = train(name, preset="quick", sets=sets + [f"model.impl={impl}", f"optim.impl={impl}"],
                  out=tmp_path / impl, progress=False, log=lambda m: None)
        result[impl] = s["results"]
    assert result["scratch"]["test_acc"] > 0.7
    # The two paths differ only by float32 rounding (the maths of every block is checked in float64 in
    # test_nn_blocks); after one quick epoch the validation losses agree to 6e-8 (mlp) and exactly (cnn)
    # here. Rounding differences can grow through training, on another CPU too, so the band is wide:
    # 2% leaves a factor of 1e5 for that growth; it is a wiring check (scratch blocks used end to end).
    assert result["scratch"]["val_loss"] == pytest.approx(result["torch"]["val_loss"], rel=2e-2)


def test_logreg_and_regression_reach_their_references(tmp_path):
    for name in ("logreg-binary", "mlp-regression"):
        s = train(name, out=tmp_path / name, progress=False, log=lambda m: None)
        assert s["meets_reference"], (name, s["value"], s["reference"])


def test_read_default_run_accepts_only_a_finished_default_run(tmp_path):
    from deepzoo.train.run import default_run, read_default_run, train
    quiet = dict(progress=False, log=lambda *_: None)
    train("logreg-binary", out=tmp_path / "default", **quiet)
    run_dir, summary = read_default_run(tmp_path / "default", "logreg-binary")
    assert summary["recipe"] == "logreg-binary" and run_dir == tmp_path / "default"
    assert default_run("logreg-binary", tmp_path / "default") == (run_dir, summary)
    train("logreg-binary", out=tmp_path / "changed", sets=["optim.lr=0.5"], **quiet)
    with pytest.raises(DeepzooError, match="differs in optim.lr"):
        read_default_run(tmp_path / "changed", "logreg-binary")
    assert read_default_run(tmp_path / "changed", "logreg-binary", ignore=("optim",))[0] == tmp_path / "changed"
    with pytest.raises(DeepzooError, match="it is logreg-binary"):
        read_default_run(tmp_path / "default", "mlp-regression")
    (tmp_path / "default" / "summary.json").unlink()
    with pytest.raises(DeepzooError, match="has not finished"):
        read_default_run(tmp_path / "default", "logreg-binary")


def test_a_run_made_before_a_key_existed_still_loads(tmp_path):
    """config.json of an older deepzoo lacks keys added since (train.precision): they take their defaults."""
    import json

    from deepzoo.train.run import evaluate, read_run, resume
    run = tmp_path / "old"
    train("logreg-binary", preset="quick", out=run, progress=False, log=lambda m: None)
    meta = json.loads((run / "config.json").read_text())
    del meta["config"]["train"]["precision"]
    (run / "config.json").write_text(json.dumps(meta))
    assert read_run(run)[3]["train"]["precision"] == "fp32"
    assert "test_acc" in evaluate(run)["results"]
    assert resume(run, progress=False, log=lambda m: None)["epochs_run"] == 20     # finished: nothing more to do


def test_char_gpt_scores_evenly_spread_windows_each_epoch_and_the_whole_text_at_the_end():
    import torch

    from deepzoo.recipes.charlm import ConsecutiveWindows
    data = torch.arange(1001)
    whole = ConsecutiveWindows(data, block=10, batch_size=4)          # 100 windows
    part = whole.spread(5)
    assert [int(x[0]) for x in part.x] == [0, 250, 500, 740, 990]      # first and last window included
    assert torch.equal(part.y, part.x + 1) and len(part) == 2
    assert len(whole.spread(1000).x) == 100
    task = recipes.get("gpt-shakespeare").build(
        {**recipes.get("gpt-shakespeare").full_defaults(), "recipe": "gpt-shakespeare"} |
        {"data": {**recipes.get("gpt-shakespeare").full_defaults()["data"], "sample": True}}, None)
    assert len(task.val_estimate.x) == min(256, len(task.val.x)) and task.test is None
