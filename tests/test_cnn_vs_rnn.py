"""The CNN-vs-RNN experiment trains the nets on the same data and reports what it measured."""

import json

import pytest

from deepzoo.errors import DeepzooError
from deepzoo.experiments.cnn_vs_rnn import RECIPES, findings, format_table, run, verdict
from deepzoo.train.run import load_model


def test_quick_run_reports_each_net(quick_tour):
    out = quick_tour / "experiments" / "cnn-vs-rnn"             # the session's `deepzoo tour --quick`
    result = json.loads((out / "cnn_vs_rnn.json").read_text())
    assert result["quick"] and [r["recipe"] for r in result["rows"]] == list(RECIPES["sst2"])
    assert (out / "cnn_vs_rnn.png").stat().st_size > 0
    for row in result["rows"]:
        _, cfg, task = load_model(out / row["recipe"])
        assert cfg["model"]["embed_dim"] == result["embed_dim"] and cfg["train"]["epochs"] == result["epochs"]
        total = sum(p.numel() for p in task.model.parameters())
        assert row["parameters"] == total
        assert row["parameters_without_embedding"] == total - task.model.embed.weight.numel()
        assert row["train_sentences_per_s"] > 0 and row["inference_sentences_per_s"] > 0
        assert 0.0 <= row["test_acc"] <= 1.0
    assert max(r["train_speed_vs_fastest"] for r in result["rows"]) == 1.0
    assert result["findings"] == findings(result)
    assert "textcnn-sst2" in format_table(result) and verdict(result) in format_table(result)
    md = (out / "cnn_vs_rnn.md").read_text()
    assert md.count("\n| ") == 1 + len(result["rows"]) and verdict(result) in md


@pytest.mark.parametrize("kwargs, message", [
    ({"dataset": "imdb"}, "unknown dataset"),
    ({"epochs": 0}, "--epochs"),
    ({"embed_dim": 0}, "--embed-dim"),
    ({"names": ["bilstm-chnsenticorp"]}, "not a sst2 network"),
])
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(DeepzooError, match=message):
        run(tmp_path, **{"quick": True, **kwargs})
    assert not any(tmp_path.iterdir())
