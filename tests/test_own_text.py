"""Your own text in separate files: labelled texts as train / validation / test files (CSV, TSV or JSON
lines) for the text classifiers, the three files of a word-level corpus for the language model, and the
one row split that every labelled-text door shares (a sample of a file splits as the file does)."""

import json
from pathlib import Path

import pytest

from conftest import deepzoo_main
from deepzoo import recipes
from deepzoo.data import text as T
from deepzoo.data.batches import keyed_split
from deepzoo.errors import DeepzooError
from deepzoo.recipes.lm import read_corpus
from deepzoo.recipes.text import read_splits

SMALL = ["--set", "model.embed_dim=16", "--set", "model.hidden=16", "--set", "data.batch_size=8",
         "--set", "optim.lr=0.01", "--set", "data.tokenizer=en", "--quiet"]


# --- the one split -----------------------------------------------------------------------------------

def test_keyed_split_puts_each_row_by_its_own_text():
    keys = [f"review number {i}" for i in range(2000)]
    parts = keyed_split(keys, (0.8, 0.1, 0.1), seed=0)
    assert sorted(i for p in parts for i in p) == list(range(2000))         # a partition
    assert [round(len(p) / 2000, 1) for p in parts] == [0.8, 0.1, 0.1]
    where = {keys[i]: k for k, p in enumerate(parts) for i in p}
    subset = keys[::7] + ["review number 5"]                                # a sample, with a duplicate
    sub_parts = keyed_split(subset, (0.8, 0.1, 0.1), seed=0)
    assert all(where[subset[i]] == k for k, p in enumerate(sub_parts) for i in p)
    assert keyed_split(keys, (0.8, 0.1, 0.1), seed=1) != parts
    assert keyed_split(["  same  ", "same"], (0.5, 0.5), seed=3) in ([[0, 1], []], [[], [0, 1]])


@pytest.mark.parametrize("name", ["chnsenticorp", "waimai"])
def test_sample_and_full_file_split_alike(name, shared_data):
    """The packaged sample's reviews are rows of the full file; each lands in the part it has there."""
    for seed in (0, 7):
        cfg = recipes.get(f"bilstm-{name}").full_defaults()
        cfg["data"].update(split_seed=seed)
        full, _ = read_splits({**cfg, "data": {**cfg["data"], "sample": False}}, shared_data)
        sample, _ = read_splits({**cfg, "data": {**cfg["data"], "sample": True}}, shared_data)
        where = {text: part for part, (texts, _) in full.items() for text in texts}
        placed = [where[text] == part for part, (texts, _) in sample.items() for text in texts]
        assert len(placed) == 2000 and all(placed)
        if seed == 0:     # 1,500 reviews plus 500 of the full file's test part under seed 0 (make_text_samples.py)
            assert 600 < len(sample["test"][0]) < 700 and 1100 < len(sample["train"][0]) < 1300
        else:             # for any other seed those 2,000 reviews are split 80/10/10 like the rest
            assert 0.07 < len(sample["test"][0]) / 2000 < 0.13


# --- labelled texts in separate files ------------------------------------------------------------------

GOOD = ["good food", "really good", "good and fast", "good value"]
BAD = ["bad food", "really bad", "bad and slow", "bad value"]


def _rows(n: int, start: int):
    """n distinct rows (a number makes each text its own), half pos and half neg."""
    return [(f"{(GOOD if i % 2 else BAD)[i // 2 % 4]} {start + i}", "pos" if i % 2 else "neg") for i in range(n)]


def _csv(path: Path, rows, text="review", label="label") -> Path:
    path.write_text(f"{text},{label}\n" + "".join(f'"{t}",{l}\n' for t, l in rows), encoding="utf-8")
    return path


def _tsv(path: Path, rows) -> Path:
    path.write_text("review\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in rows), encoding="utf-8")
    return path


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps({"review": t, "label": l}) + "\n" for t, l in rows), encoding="utf-8")
    return path


def test_train_val_test_files_train_and_predict(tmp_path):
    train = _csv(tmp_path / "train.csv", _rows(80, 0))
    val, test = _tsv(tmp_path / "val.tsv", _rows(16, 1000)), _jsonl(tmp_path / "test.jsonl", _rows(20, 2000))
    run = tmp_path / "run"
    status, out, err = deepzoo_main("train", "lstm-text", "--set", f"data.train_path={train}",
                                    "--set", f"data.val_path={val}", "--set", f"data.test_path={test}",
                                    "--set", "data.text_column=review", *SMALL, "--epochs", "4", "--out", str(run))
    assert status == 0, err
    assert "validation:" not in out, "a validation file given is used whole"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["value"] >= 0.9, "one word tells the class: the 20 test rows are learnt"
    assert json.loads((run / "inference" / "inference.json").read_text())["labels"] == ["neg", "pos"]
    status, out, err = deepzoo_main("predict", str(run), "really good 5", "bad and slow", "--json")
    assert status == 0, err
    assert [json.loads(line)["class"] for line in out.splitlines()] == ["pos", "neg"]


def test_validation_is_cut_from_train_without_a_val_file(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", _rows(60, 0))
    test = _csv(tmp_path / "test.csv", _rows(10, 500))
    cfg = recipes.get("lstm-text").full_defaults()
    cfg["data"].update(train_path=str(train), test_path=str(test), text_column="review")
    parts, labels = read_splits(cfg, None)
    assert labels.names == ["neg", "pos"] and len(parts["test"][0]) == 10
    assert len(parts["train"][0]) + len(parts["val"][0]) == 60 and 1 <= len(parts["val"][0]) <= 14
    # the same cut as the one split, so the validation rows are a function of the training file and the seed
    assert parts["val"][0] == T.split_labelled([t for t, _ in _rows(60, 0)], [0] * 60, 0,
                                               (("train", 0.9), ("val", 0.1)))["val"][0]


def test_json_lines_rows(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "ok", "label": 1, "id": 3}\n\n{"text": "no", "label": 0}\n'
                    '{"text": "fine", "label": "neutral "}\n', encoding="utf-8")
    rows = T.read_labelled_rows(path, "text", "label")
    assert (rows.texts, rows.labels, rows.lines) == (["ok", "no", "fine"], ["1", "0", "neutral"], [1, 3, 4])
    path.write_text('{"text": "ok", "label": 1}\n{"text": "no", "label": null}\n[1]\n{"text": "a", "label": 1}\n',
                    encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"data.jsonl, line 2: key 'label' holds null; a label is text or a number"):
        T.read_labelled_rows(path, "text", "label")
    rows = T.read_labelled_rows(path, "text", "label", skip_bad=True)
    assert rows.texts == ["ok", "a"] and rows.skipped == 2
    path.write_text('{"sentence": "ok", "label": 1}\n', encoding="utf-8")
    with pytest.raises(DeepzooError) as e:
        T.read_labelled_rows(path, "text", "label", skip_bad=True)
    assert str(e.value) == f"{path}, line 1: no key 'text'; the object has keys 'sentence', 'label'"
    array = tmp_path / "data.json"
    array.write_text('[{"text": "ok", "label": 1}]', encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"data.json: one JSON array; give JSON lines instead"):
        T.read_labelled_rows(array, "text", "label")


def _bad_cases(tmp_path: Path) -> dict:
    train = _csv(tmp_path / "train.csv", _rows(40, 0))
    test = _csv(tmp_path / "test.csv", _rows(10, 100))
    wrong = _csv(tmp_path / "wrong.csv", _rows(10, 100), text="sentence")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text("review,label\n")
    unseen = _csv(tmp_path / "unseen.csv", _rows(3, 100) + [("so so", "neutral")])
    own = ["--set", f"data.train_path={train}", "--set", "data.text_column=review"]
    return {
        "missing column": (own + ["--set", f"data.test_path={wrong}"],
                           f"{wrong}, line 1: no column 'review'; the header has columns 'sentence', 'label'"),
        "empty test file": (own + ["--set", f"data.test_path={empty}"],
                            f"{empty} is empty; expected a header row naming the columns 'review' and 'label'"),
        "header only": (own + ["--set", f"data.test_path={header}"],
                        f"{header} (test_path): no rows, only a header; give the test examples"),
        "unseen label": (own + ["--set", f"data.val_path={unseen}", "--set", f"data.test_path={test}"],
                         f"{unseen}, line 5: label 'neutral' is not a label of the training file {train} "
                         f"(neg, pos); fix the row or add examples of 'neutral' to training"),
        "path and train_path": (own + ["--set", f"data.test_path={test}", "--set", f"data.path={train}"],
                                "--set: give data.path (one file to cut) or data.train_path (files already split), "
                                "not both (--set data.path= clears it), got data.path = "
                                f"{str(train)!r:.37}..., data.train_path = {str(train)!r:.37}..."),
        "train without test": (own, "--set: data.train_path and data.test_path go together (data.val_path is "
                                    f"optional), got data.train_path = {str(train)!r:.37}..., data.val_path = '', "
                                    "data.test_path = ''"),
    }


@pytest.mark.parametrize("case", ["missing column", "empty test file", "header only", "unseen label",
                                  "path and train_path", "train without test"])
def test_bad_own_files_are_one_line_errors(case, tmp_path):
    args, expected = _bad_cases(tmp_path)[case]
    run = tmp_path / "run"
    status, out, err = deepzoo_main("train", "lstm-text", *args, "--out", str(run))
    assert (status, err) == (2, f"deepzoo: error: {expected}\n")
    assert not run.exists(), "no run folder is left behind"


def test_own_files_need_the_csv_dataset(tmp_path):
    train = _csv(tmp_path / "train.csv", _rows(40, 0))
    status, _, err = deepzoo_main("train", "bilstm-chnsenticorp", "--set", f"data.train_path={train}",
                                  "--set", f"data.test_path={train}", "--out", str(tmp_path / "run"))
    assert status == 2 and err.startswith("deepzoo: error: --set: your own files need data.dataset = csv, got ")
    assert not (tmp_path / "run").exists()


# --- the three files of a corpus ---------------------------------------------------------------------

def _corpus(folder: Path) -> dict[str, Path]:
    """A word-level corpus laid out like WikiText: heading lines, blank lines, <unk> markers, case kept.
    valid holds "zebra" 4 times and test "Zebra" twice and "yak" once: words training never saw."""
    words = "the cat sat on a mat and The dog ran to its house".split()
    def lines(n, extra=""):
        out = [" = Heading = ", ""]
        for i in range(n):
            out.append(" " + " ".join(words[(i + k) % len(words)] for k in range(6)) + (" <unk>" if i % 4 == 0 else ""))
        return out + ([extra] if extra else [])
    paths = {}
    for part, n, extra in (("train", 120, ""), ("valid", 20, " zebra zebra = Heading = zebra zebra"),
                           ("test", 20, " Zebra yak Zebra ")):
        paths[part] = folder / f"wiki.{part}.tokens"
        paths[part].write_text("\n".join(lines(n, extra)) + "\n", encoding="utf-8")
    return paths


def test_three_file_corpus_trains_counts_unseen_words_and_predicts(tmp_path):
    paths = _corpus(tmp_path)
    corpus = read_corpus({"data": {"train_path": str(paths["train"]), "valid_path": str(paths["valid"]),
                                   "test_path": str(paths["test"]), "path": "", "sample": False}}, None)
    assert corpus["train"][0] == ["=", "Heading", "=", T.EOS] and corpus["train"][1] == [T.EOS]
    assert corpus["train"][2][-2:] == ["<unk>", T.EOS] and "The" in corpus["train"][5]
    valid_words = sum(map(len, corpus["valid"]))
    test_words = sum(map(len, corpus["test"]))
    run = tmp_path / "run"
    status, out, err = deepzoo_main("train", "lstm-ptb", "--preset", "quick",
                                    *[f"--set=data.{p}_path={paths[p]}" for p in ("train", "valid", "test")],
                                    "--set", "data.batch_size=4", "--epochs", "1", "--quiet", "--out", str(run))
    assert status == 0, err
    assert f"valid: 4 of {valid_words:,} words not in the training vocabulary -> <unk>\n" in out
    assert f"test: 3 of {test_words:,} words not in the training vocabulary -> <unk>\n" in out
    itos = json.loads((run / "inference" / "vocab.json").read_text())["itos"]
    assert {"=", "Heading", "The", "the"} <= set(itos) and itos.count("<unk>") == 1
    status, out, err = deepzoo_main("predict", str(run), "The CAT zebra", "--json")
    assert status == 0, err
    assert json.loads(out)["unknown_words"] == ["zebra"], "cased words are kept, unknown ones named"


def test_three_file_corpus_errors(tmp_path):
    paths = _corpus(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    train, valid = f"--set=data.train_path={paths['train']}", f"--set=data.valid_path={paths['valid']}"
    cases = [
        ([train, valid], "--set: give the three files of a corpus: data.train_path, data.valid_path and "
                         f"data.test_path, got data.train_path = {str(paths['train'])!r:.37}..., "
                         f"data.valid_path = {str(paths['valid'])!r:.37}..., data.test_path = ''"),
        ([train, valid, f"--set=data.test_path={empty}"], f"{empty} (data.test_path): no words; give the test text"),
        ([train, valid, f"--set=data.test_path={paths['test']}", "--set=data.batch_size=78"],
         f"{paths['test']}: the test text has 154 words (with <eos>), too few for data.batch_size = 78 rows of "
         "at least 2; lower data.batch_size or give more text"),
    ]
    for args, expected in cases:
        status, _, err = deepzoo_main("train", "lstm-ptb", "--preset", "quick", *args, "--out", str(tmp_path / "run"))
        assert (status, err) == (2, f"deepzoo: error: {expected}\n")
        assert not (tmp_path / "run").exists()


def test_three_file_door_reads_ptb_as_the_registry_does(shared_data):
    """Same files, new door: the same token streams, so the same perplexity for the same config."""
    folder = shared_data / "ptb"
    cfg = {"data": {**{f"{p}_path": str(folder / f"ptb.{p}.txt") for p in ("train", "valid", "test")},
                    "path": "", "sample": False}}
    assert read_corpus(cfg, None) == T.load_ptb(shared_data)
