"""Try to break the command line: every recipe's every key given values of the wrong type, out of range,
empty, huge, NaN or infinite, not among the choices, or plain garbage; and random argv to every subcommand.

Whatever comes in, the answer is exit status 0, or 2 with one line ``deepzoo: error: ...`` (or argparse's
usage line and its error), never a traceback, and never a run folder left behind. The CLI runs in this
process (``deepzoo.cli.main``; a fresh process costs 3 s of importing torch) with its parser built once, in
an empty folder so that anything it writes shows. Nothing here trains: the functions that would start work
(building a recipe's data and model, the tour, the experiments, a download) are replaced by one that raises
:class:`WouldWork`, which counts as a pass: the input got through every check.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import pytest
from conftest import deepzoo_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepzoo import cli, recipes, schema

RECIPES = recipes.all_recipes()
SCHEMAS = {r.name: schema.for_recipe(r) for r in RECIPES}
PAIRS = sorted((name, key) for name, s in SCHEMAS.items() for key in s.keys)
# A fixed sequence of examples (the suite gives the same answer every time); DEEPZOO_FUZZ=N tries N random
# ones instead (e.g. DEEPZOO_FUZZ=20000 for a long hunt).
_HUNT = int(os.environ.get("DEEPZOO_FUZZ", "0"))
FUZZ = settings(deadline=None, derandomize=not _HUNT, database=None, max_examples=_HUNT or 800,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class WouldWork(Exception):
    """Raised where the command would start real work: the input passed every check."""


@pytest.fixture
def sandbox(tmp_path_factory, monkeypatch):
    """An empty working folder, the parser built once, and the entry points of real work stubbed out."""
    from deepzoo.data import registry
    from deepzoo.experiments import (cnn_vs_rnn, degradation, layernorm, linear_collapse, long_range,
                                     pretrain_finetune, seq_throughput, vanishing, vit_vs_resnet)
    from deepzoo.report import tour
    from deepzoo.train import run

    def stop(*args, **kwargs):
        raise WouldWork

    def fake_tour(quick=True, out=None, data_dir=None, only=None, progress=True, log=print, experiments=None):
        from deepzoo import experiments as experiments_lib
        for name in experiments or ():
            experiments_lib.get(name)         # the real tour's first step: unknown names are one line
        for name in only or ():
            recipes.get(name)
        raise WouldWork

    def fake_fetch(name, dest_root=None, mirror=None, progress=True):
        registry.get(name)
        raise WouldWork

    monkeypatch.setattr(cli, "build_parser", functools.lru_cache(maxsize=1)(cli.build_parser))
    monkeypatch.setattr(run, "_build", stop)          # every training path builds the recipe first
    monkeypatch.setattr(tour, "tour", fake_tour)
    monkeypatch.setattr(registry, "fetch", fake_fetch)
    for module in (vanishing, cnn_vs_rnn, seq_throughput, degradation, vit_vs_resnet, pretrain_finetune, long_range,
                   layernorm, linear_collapse):
        monkeypatch.setattr(module, "run", stop)
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    return cwd


def cli_run(cwd: Path, *argv: str) -> tuple[int | str, str, str]:
    """Run argv; check it ended cleanly and left nothing behind; return (status or "work", stdout, stderr)."""
    try:
        status, out, err = deepzoo_main(*argv)
    except WouldWork:
        status, out, err = "work", "", ""
    left = sorted(os.listdir(cwd))
    assert not left, f"deepzoo {argv!r} left {left} behind"
    assert "Traceback" not in err + out, f"deepzoo {argv!r}:\n{err}"
    assert status in (0, 2, "work"), f"deepzoo {argv!r} exited {status}:\n{err}"
    if status == 2:
        lines = err.rstrip("\n").split("\n")        # (argparse echoes a token as given: "\x0c" is no new line)
        if lines and lines[0].startswith("usage: "):                  # argparse: usage, then its error
            assert re.match(r"deepzoo( [\w-]+)*: error: ", lines[-1]), f"deepzoo {argv!r}:\n{err}"
        else:
            assert len(lines) == 1 and lines[0].startswith("deepzoo: error: ") and err.endswith("\n"), \
                f"deepzoo {argv!r} did not fail in one line:\n{err}"
    return status, out, err


# --- every key, values its declaration refuses -------------------------------------------------------

def toml(value) -> str:
    """A Python value as the TOML literal --set reads."""
    if isinstance(value, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, "nan" if value != value else repr(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


# values that break the rule a key's own `check` adds (what the generic cases below cannot know)
CHECKS = {
    "train.device": ['"gpu"', '"cuda:"', '"CPU"', '"cuda:0 "'],
    "model.depth": ["21", "24", "2"],
    "model.width": ["12", "1004"],                       # ddpm: multiples of 8
    "model.config": ['["M"]', '[8, "X"]', '["M", "M", "M", "M", "M", "M", 8]', "[0]", "[8, true]", "[]"],
    "data.split": ["[0.5, 0.5, 0.5]", "[0.5, 0.5]", "[1.5, -0.5, 0]", '["a", 0, 1]', "[nan, 0.5, 0.5]"],
    "data.name": ['"a/b"'],
    "env.id": ['"Frozen Lake"', '"x\\ny"'],
    "env.kwargs": ['"map_name ="', '"= 3"', "\"a = 'unclosed\""],
    "model.cutoffs": ["[2000, 1000]", "[500, 500]"],           # lstm-ptb: rising
}


def refused(key: schema.Key, dotted: str) -> list[str]:
    """TOML literals ``key`` must refuse, from its own declaration: wrong types, NaN and infinities, the
    values just outside its range, huge ones, empty strings where a name is needed, unknown choices, NUL."""
    bad = {"bool": ['"yes"', "1", "[true]"], "int": ['"7"', "2.5", "true", "[1]", "nan"],
           "float": ['"0.1"', "true", "[0.5]", "nan", "inf", "-inf", "1979-05-27"],
           "str": ["1", "true", "[]", '"a\\u0000b"', "{ a = 1 }"], "list": ['"a"', "1", "{ a = 1 }"]}[key.type][:]
    if key.type in ("int", "float"):
        huge = ["1e300", "-1e300"] if key.type == "float" else [str(2**63), str(-2**70), "9" * 40]
        bad += [v for v in huge if not key.ok(float(v) if key.type == "float" else int(v))]
        kind = int if key.type == "int" else float
        step = 1 if kind is int else 1e-9 * max(1.0, abs(key.hi or 1), abs(key.lo or 1))
        if key.lo is not None:
            bad.append(toml(kind(key.lo) if key.lo_open else kind(key.lo - step)))
        if key.hi is not None:
            bad.append(toml(kind(key.hi) if key.hi_open else kind(key.hi + step)))
        if kind is int and key.lo is not None:
            bad.append(toml(float(key.lo)))                    # an integral float is still no integer
    if key.choices:
        wrong = ["zzz", "", " " + str(key.choices[0])] if key.type == "str" else [min(key.choices) - 1, 99]
        bad += [toml(v) for v in wrong]
    if key.type == "str" and not key.empty and not key.choices:
        bad += ['""', '"   "']
    if key.type == "list" and key.item is not None:
        if key.min_len:
            bad.append("[]")
        bad += ['["x", 1]', "[[1]]"] + ([toml([key.item.lo - 1])] if key.item.lo is not None else [])
        if key.max_len is not None and key.item.choices:
            bad.append(toml(list(key.item.choices) * 2))
    if key.check is not None:
        assert dotted in CHECKS, f"{dotted} has a check of its own: give CHECKS values it refuses"
        bad += CHECKS[dotted]
    return bad


def test_every_key_refuses_what_its_schema_refuses(sandbox):
    """Each of the ~1,000 (recipe, key) pairs, with the ~12 values its declaration refuses: one error line
    naming the key, before anything is written (through --print-config; one value each through a real train)."""
    tried = 0
    for name, dotted in PAIRS:
        key = SCHEMAS[name].keys[dotted]
        for i, raw in enumerate(refused(key, dotted)):
            argv = ["train", name, "--set", f"{dotted}={raw}"]
            status, out, err = cli_run(sandbox, *argv, *(() if i == 0 else ("--print-config",)))
            assert status == 2 and f" {dotted} " in err, f"deepzoo {' '.join(argv)} was accepted: {out[:200]}"
            tried += 1
    assert tried > 10_000


def test_values_the_schema_allows_are_accepted(sandbox):
    """Every choice of every key, its range's closed ends, true and false: accepted (or refused only by a
    rule between two keys, e.g. data.src = data.tgt)."""
    says = tuple(r.says for r in schema.RULES)
    for name, dotted in PAIRS:
        key = SCHEMAS[name].keys[dotted]
        good = list(key.choices) or ([True, False] if key.type == "bool" else [])
        if key.type in ("int", "float"):
            good += [v for v, is_open in ((key.lo, key.lo_open), (key.hi, key.hi_open)) if v is not None and not is_open]
        for value in good:
            status, out, err = cli_run(sandbox, "train", name, "--set", f"{dotted}={toml(value)}", "--print-config")
            assert status == 0 or any(s in err for s in says), err
            if status == 0:
                assert printed(out, dotted) == value


def printed(out: str, dotted: str):
    """The value --print-config shows for ``dotted``."""
    line = next(line for line in out.split("\n") if line.startswith(f"{dotted} = "))   # ("\x85" is no break)
    return json.loads(line[len(dotted) + 3:].rsplit("  # ", 1)[0])


# --- random values, through --set and through a config file -------------------------------------------

# what an argument can hold: any character but NUL (no operating system passes one in argv); a byte that is
# not UTF-8 reaches sys.argv as a lone surrogate, so those stay
TEXT = st.text(st.characters(blacklist_characters="\x00"), max_size=16)
NASTY = ["nan", "inf", "-inf", "1e400", "-0.0", "0", "-1", "1e308", str(2**63), str(2**64), "9" * 5000, "0x10",
         '""', '" "', '"\\u0000"', "true", "false", "[]", "[0]", "[-1, 2]", '["a"]', "[[1]]", "{a = 1}",
         "1979-05-27", "12:00:00", '"zzz"', "gelu", "1.5", "0.5", "3", "1\nseed = 3", "=", "'''", '"\\"', "[1,",
         "M", '["M"]', "cuda:7", "fp16", "csv", "path"]
values = st.one_of(
    st.sampled_from(NASTY),
    st.integers(-2**70, 2**70).map(str),
    st.floats().map(toml),
    TEXT,
    TEXT.map(json.dumps),
    st.lists(st.one_of(st.integers(-5, 70_000), st.floats(allow_nan=True), st.sampled_from(["M", "x"])),
             max_size=5).map(toml),
)


@FUZZ
@given(pair=st.sampled_from(PAIRS), raw=values, via_file=st.booleans())
def test_random_values_never_crash(sandbox, tmp_path_factory, pair, raw, via_file):
    name, dotted = pair
    if via_file:                            # the same value from a TOML file, outside the working folder
        section, _, leaf = dotted.rpartition(".")
        path = tmp_path_factory.getbasetemp() / "fuzz.toml"
        path.write_text((f"[{section}]\n" if section else "") + f"{leaf} = {raw}\n", encoding="utf-8",
                        errors="surrogatepass")
        args = ["--config", str(path)]
    else:
        args = ["--set", f"{dotted}={raw}"]
    status, out, err = cli_run(sandbox, "train", name, *args, "--print-config")
    if status == 0:                         # accepted: the value printed is one the schema allows
        value = printed(out, dotted)
        assert SCHEMAS[name].keys[dotted].ok(value), (dotted, value)
    else:
        assert status == 2
        if not via_file:
            assert dotted in err            # the key is named (a rule names all its keys)
        again = cli_run(sandbox, "train", name, *args, "--out", "run")    # the real command: the same line
        assert again[0] == 2 and again[2] == err


# --- random argv to every subcommand -----------------------------------------------------------------

FLAGS = {
    (): ["--version", "--help", "-h", "nonsense", "--set"],
    ("train",): ["--epochs", "--set", "--config", "--preset", "--out", "--seed", "--device", "--print-config",
                 "--quiet", "--data-dir", "--help", "-h"],
    ("resume",): ["--quiet", "--data-dir", "--help"],
    ("eval",): ["--data-dir"],
    ("predict",): ["--json", "--length", "--temperature", "--top-k", "--seed", "--beam", "--data-dir"],
    ("export",): ["--format", "--out", "onnx", "torchscript"],
    ("tour",): ["--quick", "--out", "--recipes", "--experiments", "--quiet", "--data-dir"],
    ("list",): ["--help"],
    ("data",): ["list", "fetch", "--help"],
    ("data", "list"): ["--data-dir"],
    ("data", "fetch"): ["--mirror", "--quiet", "--data-dir", "mnist", "cifar10", "ptb"],
    ("experiment",): ["vanishing", "cnn-vs-rnn", "seq-throughput", "degradation", "vit-vs-resnet",
                      "pretrain-finetune", "long-range", "layernorm", "linear-collapse", "list"],
    ("experiment", "long-range"): ["--distances", "--seconds", "--steps", "--width", "--quick", "--seed", "--out",
                                   "--quiet"],
    ("experiment", "layernorm"): ["--models", "transformer", "mlp", "--quick", "--seed", "--out", "--quiet"],
    ("experiment", "linear-collapse"): ["--datasets", "mnist", "rings", "--width", "--quick", "--seed", "--out",
                                        "--quiet"],
    ("experiment", "list"): ["--json", "--help"],
    ("experiment", "vit-vs-resnet"): ["--minutes", "--sizes", "--quick", "--seed", "--out", "--quiet"],
    ("experiment", "pretrain-finetune"): ["--quick", "--pretrain-steps", "--finetune-steps", "--eval-every",
                                          "--slice-chars", "--seed", "--out", "--quiet"],
    ("experiment", "vanishing"): ["--out", "--seq-len", "--hidden", "--seeds", "--impl", "torch", "scratch", "--quick"],
    ("experiment", "cnn-vs-rnn"): ["--dataset", "sst2", "chnsenticorp", "--epochs", "--quick", "--embed-dim",
                                   "--seed", "--out", "--quiet", "--data-dir"],
    ("experiment", "seq-throughput"): ["--lengths", "--batch", "--width", "--steps", "--quick", "--out", "--quiet"],
    ("experiment", "degradation"): ["--epochs", "--train-size", "--quick", "--seed", "--out", "--quiet"],
    ("explain",): ["receptive-field", "graph"],
    ("explain", "receptive-field"): ["--channels", "--size", "7x7-vs-3x3", "conv3,conv3,pool2", "conv3s2",
                                     "cnn-mnist", "gcn-cora", "pool9"],
    ("explain", "graph"): ["--values", "--seed", "x*y + exp(x)", "tanh(w*x + b)", "x=1,y=2", "x**y", "relu(x)/0",
                           "sigmoid(", "2**1e6", "log(-x)", "f(x)", "x.y", "x=a", "x[0]", "'a'", "lambda: 0"],
}


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory) -> list[str]:
    """Run folders and config files an argument may name, each wrong its own way (outside the working folder)."""
    root = tmp_path_factory.mktemp("odd")
    configs = {
        "old-names": {"recipe": "qlearning-taxi", "config": {"agent": {"epsilon": 0.5, "decay_fraction": 0.5}}},
        "bad-value": {"recipe": "mlp-mnist", "config": {"optim": {"lr": -1.0}}},
        "bad-type": {"recipe": "cnn-mnist", "config": {"model": {"hidden": "wide"}}},
        "bad-section": {"recipe": "cnn-mnist", "config": {"model": 3}},
        "no-recipe": {"config": {}}, "unknown-recipe": {"recipe": "nope", "config": {}},
        "not-a-dict": ["recipe"], "config-not-a-dict": {"recipe": "cnn-mnist", "config": 3},
        "word2vec": {"recipe": "word2vec-ptb", "config": {}}, "gan": {"recipe": "gan-mnist", "config": {}},
    }
    paths = []
    for name, meta in configs.items():
        (root / name).mkdir()
        (root / name / "config.json").write_text(json.dumps(meta))
        paths.append(str(root / name))
    (root / "bad-json").mkdir()
    (root / "bad-json" / "config.json").write_text("{")
    (root / "empty").mkdir()
    for name, text in (("nan.toml", "[optim]\nlr = nan\n"), ("bad.toml", "[optim\n"), ("top.toml", "optim = 3\n"),
                       ("big.toml", "seed = " + "9" * 5000 + "\n"), ("ok.toml", "[optim]\nlr = 0.01\n")):
        (root / name).write_text(text)
        paths.append(str(root / name))
    (root / "latin1.toml").write_bytes(b"[optim]\nname = '\xe9'\n")
    return paths + [str(root / "bad-json"), str(root / "empty"), str(root / "latin1.toml"), str(root),
                    str(root / "missing"), str(root / "missing.png")]


def argv_strategy(odd: list[str]):
    def tokens(cmd):
        return st.one_of(
            st.sampled_from(FLAGS[cmd]), st.sampled_from(FLAGS[cmd]),
            st.sampled_from([r.name for r in RECIPES] + ["quick", "runs", "policy", "100", "digit.png"]),
            st.sampled_from(odd),
            st.integers(-10**6, 10**12).map(str),
            st.sampled_from(["nan", "inf", "-1", "0", "1e400", "", " ", "--", "-", "x=1", "optim.lr=-1",
                             "model.activation=gelu", "train.epochs=0", "seed=" + "9" * 5000, "=", "a,b"]),
            TEXT,
        )
    return st.sampled_from(sorted(FLAGS)).flatmap(
        lambda cmd: st.lists(tokens(cmd), max_size=6).map(lambda rest: [*cmd, *rest]))


@FUZZ
@given(data=st.data())
def test_random_argv_never_crash(sandbox, odd_files, data):
    argv = data.draw(argv_strategy(odd_files), label="argv")
    cli_run(sandbox, *argv)
