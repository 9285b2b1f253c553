"""The RNN-vs-Transformer throughput experiment: what it writes and what it measures (never how fast:
timings are figures of the experiment, not pass/fail conditions)."""

import json

import pytest

from deepzoo.errors import DeepzooError
from deepzoo.experiments.seq_throughput import MODELS, QUICK, build, findings, format_table, run, verdict


def test_run_measures_both_models_at_every_length_and_writes_plot_and_json(tmp_path):
    result = run(tmp_path, lengths=[8, 4], batch=2, width=16, steps=1, warmup=0, progress=False,
                 log=lambda *a: None)
    assert [(r["model"], r["length"]) for r in result["rows"]] == [(m, n) for m in MODELS for n in (4, 8)]
    for r in result["rows"]:
        assert r["step_seconds"] > 0
        assert r["tokens_per_second"] == 2 * r["length"] / r["step_seconds"]   # the same expression: exact
    assert set(result["transformer_over_lstm"]) == {4, 8}
    assert (tmp_path / "seq_throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "seq_throughput.json").read_text())
    assert saved["parameters"] == result["parameters"]
    assert "L=4" in format_table(result) and "ratio" in format_table(result)
    f = result["findings"]
    assert f["lowest_ratio"]["ratio"] <= f["highest_ratio"]["ratio"]
    assert f["transformer_faster_at"] == [n for n in (4, 8) if result["transformer_over_lstm"][n] > 1]
    assert (tmp_path / "seq_throughput.md").read_text().count("\n| ") == 1 + len(MODELS) + 1


def test_the_two_models_are_of_comparable_size_and_causal_lms():
    import torch
    lstm, gpt = build("lstm", 128, 64), build("transformer", 128, 64)
    n = {m: sum(p.numel() for p in net.parameters()) for m, net in (("lstm", lstm), ("gpt", gpt))}
    assert 0.5 < n["gpt"] / n["lstm"] < 2
    x = torch.randint(256, (2, 10))
    assert lstm(x).shape == gpt(x).shape == (2, 10, 256)


def test_bad_settings_are_one_clear_error(tmp_path):
    with pytest.raises(DeepzooError, match="lengths"):
        run(tmp_path, lengths=[1])
    with pytest.raises(DeepzooError, match="multiple of the 4 heads"):
        run(tmp_path, lengths=[4], width=18)


def test_the_tours_quick_form_wrote_its_figure_table_and_data(quick_tour):
    out = quick_tour / "experiments" / "seq-throughput"         # the session's `deepzoo tour --quick`
    result = json.loads((out / "seq_throughput.json").read_text())
    assert result["quick"] and {k: result["settings"][k] for k in ("batch", "width", "steps", "warmup")} == \
        {k: QUICK[k] for k in ("batch", "width", "steps", "warmup")}
    assert [(r["model"], r["length"]) for r in result["rows"]] == [(m, n) for m in MODELS for n in QUICK["lengths"]]
    assert set(result["transformer_over_lstm"]) == {str(n) for n in QUICK["lengths"]}   # (JSON keys are strings)
    assert result["findings"] == findings(result)
    assert (out / "seq_throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "seq_throughput.md").read_text()
    assert md.count("\n| ") == 1 + len(MODELS) + 1 and verdict(result) in md
