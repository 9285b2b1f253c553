"""deepzoo export: every exportable family to ONNX and TorchScript, checked against the PyTorch model.

Each family trains a tiny model for one epoch on a slice of a packaged sample (the export, not the accuracy,
is under test); export_report itself compares the file, loaded by its runtime, with PyTorch on 100 inputs.
"""

import warnings

import pytest
import torch

from conftest import run_deepzoo
from deepzoo.errors import DeepzooError
from deepzoo.export import (EXPORTERS, FORMATS, REFUSED, TOLERANCE, Spec, _run_onnx, _TextCNN, _to_onnx,
                            _Unpacked, export_report, spec)
from deepzoo.recipes import all_recipes

TEXT = ["data.dataset=csv", "data.path={data}/sst2.tsv", "data.text_column=sentence", "data.label_column=label"]
# one recipe of each exportable family, with settings that train in about a second
TINY = {
    "cnn-mnist": ["model.c1=4", "model.c2=8", "model.hidden=16", "data.batch_size=5000", "data.val_size=500"],
    "resnet20-cifar10": ["model.width=4", "data.train_size=120", "data.val_size=20", "data.batch_size=100"],
    "logreg-binary": [],
    "textcnn-sst2": ["model.embed_dim=16", "model.filters=8", *TEXT],
    "bilstm-sst2": ["model.embed_dim=16", "model.hidden=16", *TEXT],       # 2 layers, both directions, max-pool
    "gpt-shakespeare": ["data.steps_per_epoch=2", "model.n_embd=32", "model.n_layer=1",
                        "data.path={data}/shakespeare.txt"],
    "lstm-ptb": ["model.embed_dim=16", "model.hidden=16", "data.path={data}/ptb.txt"],
    "vae-mnist": ["model.hidden=32", "data.batch_size=4500"],
    "dcgan-mnist": ["model.width=8", "data.batch_size=2500"],
    "dqn-cartpole": ["train.steps=300", "agent.learning_starts=100", "agent.gradient_steps=2", "agent.train_every=100",
                     "agent.hidden=[16,16]", "eval.every=300", "eval.episodes=1", "eval.final_episodes=1"],
    "gcn-graph": [],
    "qlearning-frozenlake": ["train.episodes=100", "eval.episodes=10"],
}
STEPS = ("dqn-cartpole", "qlearning-frozenlake")      # trained in steps or episodes, not epochs


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models on a busy 2-core machine: one thread is several times faster than two."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """runs(name): the folder of a tiny trained run of the recipe (trained once per module)."""
    from deepzoo.data.registry import samples_dir
    from deepzoo.train.run import train
    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    data.mkdir()
    text = samples_dir() / "text"
    lines = lambda path, n: "".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:n])  # noqa: E731
    (data / "sst2.tsv").write_text(lines(text / "sst2" / "train.tsv", 301), encoding="utf-8")
    (data / "ptb.txt").write_text(lines(text / "ptb" / "sample-ptb.train.txt", 200), encoding="utf-8")
    (data / "shakespeare.txt").write_text(
        (text / "tinyshakespeare" / "sample-input.txt").read_text(encoding="utf-8")[:6000], encoding="utf-8")
    done = {}

    def get(name: str):
        if name not in done:
            sets = [s.format(data=data) for s in TINY[name]]
            train(name, preset="quick", sets=sets, epochs=None if name in STEPS else 1, out=root / name,
                  progress=False, log=lambda *_: None)
            done[name] = root / name
        return done[name]
    return get


def _rerun(path, fmt: str, s: Spec, k: int = 1):
    """The written file, loaded afresh from disk by its runtime, on the k-th check batch."""
    inputs, _ = s.checks[k]
    if fmt == "onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(s.inputs, inputs)})[0])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)      # torch 2.13 deprecates TorchScript
        return torch.jit.load(str(path))(*inputs)


@pytest.mark.parametrize("name", [n for n in TINY if n not in REFUSED])
def test_export_matches_pytorch(name, runs):
    run = runs(name)
    s, _ = spec(run)
    for fmt in FORMATS:
        r = export_report(run, fmt)
        path = run / FORMATS[fmt]
        assert r["path"] == str(path) and path.stat().st_size == r["bytes"] > 0
        assert r["max_abs_diff"] <= TOLERANCE * r["output_scale"], r
        assert len(set(r["batches"])) == len(r["batches"]) > 1          # several batch sizes: a dynamic batch
        if name != "gcn-graph":                                          # (the GCN: the graph and a subgraph)
            assert sum(r["batches"]) == 100
        got = _rerun(path, fmt, s)
        assert got.shape == s.checks[1][1].shape
        assert float((got - s.checks[1][1]).abs().max()) <= TOLERANCE * r["output_scale"]


def test_export_out_and_refusal(runs, tmp_path):
    r = export_report(runs("logreg-binary"), "torchscript", out=tmp_path / "sub" / "lr.pt")
    assert (tmp_path / "sub" / "lr.pt").is_file() and r["path"] == str(tmp_path / "sub" / "lr.pt")
    with pytest.raises(DeepzooError, match="cannot be exported: a tabular Q-learning policy is a lookup table") as e:
        export_report(runs("qlearning-frozenlake"), "onnx")
    assert "\n" not in str(e.value)
    assert not (runs("qlearning-frozenlake") / "model.onnx").exists()
    with pytest.raises(DeepzooError, match="--format must be one of onnx, torchscript"):
        export_report(runs("logreg-binary"), "tflite")


def test_every_recipe_exports_or_says_why():
    names = {r.name for r in all_recipes()}
    assert names <= set(EXPORTERS) | set(REFUSED), names - set(EXPORTERS) - set(REFUSED)
    assert not set(EXPORTERS) & set(REFUSED)


def _text_batch(lengths, vocab=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (len(lengths), max(lengths)), generator=g)
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    return ids, torch.tensor(lengths)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional,layers", [(False, 1), (False, 2), (True, 1), (True, 2)])
def test_unpacked_rnn_equals_packed(cell, bidirectional, layers):
    """The ONNX form of the recurrent classifiers gives the packed model's outputs, for every pooling."""
    from deepzoo.models.rnn import RNNClassifier
    torch.manual_seed(0)
    for pool in ("last", "max", "mean"):
        model = RNNClassifier(40, 3, cell=cell, embed_dim=6, hidden=5, layers=layers, bidirectional=bidirectional,
                              pool=pool).eval().double()     # float64: the two forms agree to ~1e-16
        for lengths in ([7, 3, 1, 5], [1], [2, 2]):
            ids, n = _text_batch(lengths)
            with torch.no_grad():
                torch.testing.assert_close(_Unpacked(model).double()(ids, n), model(ids, n), atol=1e-12, rtol=0)


def test_textcnn_wrapper_any_length():
    """TextCNN pads a batch shorter than its widest filter; the wrapper gives the same without a branch."""
    from deepzoo.models.textcnn import TextCNN
    torch.manual_seed(0)
    model = TextCNN(40, 2, embed_dim=6, widths=[2, 4, 5], filters=3).eval().double()   # float64, as above
    for lengths in ([1], [3, 2], [5, 1], [9, 4, 6]):
        ids, _ = _text_batch(lengths)
        with torch.no_grad():
            torch.testing.assert_close(_TextCNN(model).double()(ids), model(ids), atol=1e-12, rtol=0)


def test_unpacked_onnx_dynamic_batch_and_time():
    from deepzoo.models.rnn import RNNClassifier
    torch.manual_seed(0)
    model = RNNClassifier(40, 3, cell="gru", embed_dim=6, hidden=5, layers=2, bidirectional=True, pool="mean").eval()
    batches = [_text_batch(lengths, seed=k) for k, lengths in enumerate(([6, 2, 4], [1], [9, 3, 9, 7, 1]))]
    with torch.no_grad():
        checks = [(b, model(*b)) for b in batches]
    s = Spec("recurrent text classifier", model, ("ids", "lengths"), ("logits",),
             {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
             batches[0], checks, "random", onnx_module=_Unpacked(model))
    for got, (_, want) in zip(_run_onnx(_to_onnx(s), s), checks):
        # onnxruntime runs float32 with its own kernels: the logits (|y| < 1) come from sums of at most 2 x 5
        # recurrent and 6 input terms per gate over 9 steps, so the two orders of summation differ by at most a
        # few 1e-7 (seen: below 5e-7); 1e-5 is 20x that, and a wrong gate or direction moves them by ~1e-1.
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_cli_export(runs, tmp_path):
    out = tmp_path / "model.onnx"
    proc = run_deepzoo("export", str(runs("logreg-binary")), "--format", "onnx", "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "max abs diff" in proc.stdout and "onnxruntime matches PyTorch" in proc.stdout
    proc = run_deepzoo("export", str(runs("qlearning-frozenlake")), timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot be exported" in proc.stderr, proc.stderr
