"""Text pipeline: tokenisers, vocabulary, CSV/TSV reading, dataset loaders and batching.

The real-data tests (``shared_data``) pin the sizes measured on the shared copies of SST-2, ChnSentiCorp
and PTB (see each dataset's MANIFEST.md).
"""

import json
import subprocess
import sys
from collections import Counter

import pytest
import torch

from deepzoo.data import text as T
from deepzoo.data.text import (EOS, PAD, UNK, LabelMap, TextBatches, Vocab, bptt_windows, encode_stream,
                               encode_texts, get_tokenizer, lm_batches, read_labelled, tokenize_en, tokenize_zh)
from deepzoo.errors import DeepzooError

HOTEL_REVIEW = "房间很大，早餐也不错，就是WiFi信号太差了。"


# ---------------------------------------------------------------------------------------------- tokenisers


def test_tokenize_en_punctuation_and_clitics():
    assert tokenize_en("I don't think it's Mr. Smith's best... Sci-fi, 3.5/10!") == [
        "i", "do", "n't", "think", "it", "'s", "mr.", "smith", "'s", "best", "...", "sci-fi", ",", "3.5/10", "!"]
    assert tokenize_en("Can't stop: the U.S. (1999) -- \"wow\"?!") == [
        "ca", "n't", "stop", ":", "the", "u.s.", "(", "1999", ")", "--", '"', "wow", '"', "?!"]
    assert tokenize_en("o'clock, the '70s, 10,000 times; 'quoted'") == [
        "o'clock", ",", "the", "'70s", ",", "10,000", "times", ";", "'", "quoted", "'"]
    assert tokenize_en("  \n ") == []


def test_tokenize_en_keeps_sst2_tokens():
    # Lines of GLUE SST-2 (lower-cased, tokenised, trailing space): splitting them again changes nothing.
    lines = [
        "it 's a charming and often affecting journey . ",
        "the movie does n't have much to say , but it 's well-made and , like , never boring ... ",
        "mr. spielberg 's `` e.t. '' was better -- and so was gangster no. 1 ; i 'd rather see 10,000 b-movies ",
        "a sci-fi comedy-drama that ca n't decide what it wants to be ( or should i say , what it is n't ) ",
        "rock 'n' roll , the '70s , writer/director j. edgar and/or malcolm x. & co. , et al. ? ",
    ]
    for line in lines:
        assert tokenize_en(line) == line.split()


def test_tokenize_zh_word_segmentation():
    words = tokenize_zh(HOTEL_REVIEW)
    assert "".join(words) == HOTEL_REVIEW.lower()  # nothing lost but case
    assert {"房间", "早餐", "不错", "wifi", "信号"} <= set(words)  # multi-character words, Latin lower-cased
    assert sum(len(w) > 1 for w in words) >= 5
    assert tokenize_zh("房间  很大\n") == ["房间", "很大"]  # whitespace dropped


def test_tokenize_zh_char_mode():
    chars = tokenize_zh("房间很大，早餐 不错。", mode="char")
    assert chars == ["房", "间", "很", "大", "，", "早", "餐", "不", "错", "。"]
    assert tokenize_zh("WiFi很差2M宽", mode="char") == ["wifi", "很", "差", "2m", "宽"]
    with pytest.raises(DeepzooError, match="word, char"):
        tokenize_zh("x", mode="bpe")


def test_get_tokenizer():
    assert get_tokenizer("en")("Hello, World") == ["hello", ",", "world"]
    assert get_tokenizer("zh-char")("好吃") == ["好", "吃"]
    assert get_tokenizer("zh")("早餐不错") == ["早餐", "不错"]
    with pytest.raises(DeepzooError, match="en, zh, zh-char"):
        get_tokenizer("fr")


def test_import_is_cheap():
    """Importing the module must not import jieba (its dictionary takes a second to load)."""
    code = "import sys, deepzoo.data.text; print('jieba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------------------------- vocabulary

DOCS = [["b", "a", "c", "a"], ["d", "b", "a", "e"], ["c", "e", "f"]]  # a:3  b:2 c:2 e:2  d:1 f:1


def test_vocab_order_specials_and_min_freq():
    v = Vocab.build(DOCS)
    assert v.itos == [PAD, UNK, "a", "b", "c", "e", "d", "f"]  # by count, ties by first appearance
    assert (v.stoi[PAD], v.stoi[UNK]) == (0, 1) and len(v) == 8
    assert Vocab.build(DOCS, min_freq=2).itos == [PAD, UNK, "a", "b", "c", "e"]
    assert Vocab.build(DOCS, max_size=4).itos == [PAD, UNK, "a", "b"]
    v = Vocab.build(DOCS, specials=[EOS])
    assert v.itos[:4] == [PAD, UNK, EOS, "a"]
    assert Vocab.build(list(DOCS)).itos == Vocab.build(iter(DOCS)).itos  # deterministic, any iterable


def test_vocab_encode_decode_unknown():
    v = Vocab.build(DOCS, min_freq=2)
    assert v.encode(["a", "zzz", "f", "e"]) == [2, 1, 1, 5]
    assert v.decode([2, 1, 5]) == ["a", UNK, "e"]
    assert v.decode(torch.tensor([3, 0])) == ["b", PAD]
    assert v["zzz"] == 1 and "a" in v and "zzz" not in v


def test_vocab_literal_special_maps_to_its_index():
    v = Vocab.build([["x", UNK, UNK, UNK, EOS, PAD]], specials=[EOS])
    assert v.itos == [PAD, UNK, EOS, "x"]  # the literal specials are not counted as words
    assert v.encode([UNK, EOS, PAD]) == [1, 2, 0]


def test_vocab_save_load_round_trip(tmp_path):
    v = Vocab.build(DOCS + [["房间", "早餐"]], specials=[EOS])
    path = tmp_path / "sub" / "vocab.json"
    v.save(path, labels=LabelMap(["neg", "pos"]))
    assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]  # no temporary file left behind
    w = Vocab.load(path)
    assert w.itos == v.itos and w.stoi == v.stoi
    assert w.labels.names == ["neg", "pos"]
    assert Vocab.load(path).encode(["房间"]) == v.encode(["房间"])
    v2 = Vocab.build(DOCS)
    v2.save(path)  # overwrites atomically
    assert Vocab.load(path).itos == v2.itos and Vocab.load(path).labels is None


def test_vocab_load_errors(tmp_path):
    with pytest.raises(DeepzooError, match="not found"):
        Vocab.load(tmp_path / "missing.json")
    bad = tmp_path / "vocab.json"
    bad.write_text('{"format": "deepzoo-vocab",\n "itos": ["<pad>", "<unk>", "a"\n', encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"vocab.json, line 3: corrupt vocabulary file") as e:
        Vocab.load(bad)
    assert "\n" not in str(e.value)
    bad.write_text(json.dumps({"format": "deepzoo-vocab", "itos": ["a", "b"]}))
    with pytest.raises(DeepzooError, match="must start with <pad>, <unk>"):
        Vocab.load(bad)
    bad.write_text(json.dumps({"format": "deepzoo-vocab", "itos": ["<pad>", "<unk>", "a", "a"]}))
    with pytest.raises(DeepzooError, match="duplicate"):
        Vocab.load(bad)
    bad.write_text(json.dumps({"itos": ["<pad>", "<unk>"]}))
    with pytest.raises(DeepzooError, match="not a deepzoo vocabulary"):
        Vocab.load(bad)


def test_label_map(tmp_path):
    assert LabelMap.fit(["1", "0", "1", "-1", "10", "2"]).names == ["-1", "0", "1", "2", "10"]  # numeric order
    m = LabelMap.fit(["pos", "neg", "pos"])
    assert m.names == ["neg", "pos"] and m.encode(["pos", "neg"]) == [1, 0]
    assert m.decode(torch.tensor([0, 1])) == ["neg", "pos"]
    with pytest.raises(DeepzooError, match="'meh' is not one of the known labels"):
        m.encode(["meh"])
    m.save(tmp_path / "labels.json")
    assert LabelMap.load(tmp_path / "labels.json").names == ["neg", "pos"]


# ---------------------------------------------------------------------------------------------- CSV / TSV


def test_read_labelled_csv_quoted_newline_and_chinese(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('\ufefflabel,review\n'                 # byte-order mark, as Excel writes
                    '1,"房间很大,早餐""不错"""\n'           # quoted comma and doubled quotes
                    '0,"first line\nsecond line"\n'        # a newline inside a quoted field
                    '\n'                                   # a blank line is ignored
                    'pos , plain text\n', encoding="utf-8")
    texts, labels, skipped = read_labelled(path, "review", "label")
    assert texts == ['房间很大,早餐"不错"', "first line\nsecond line", " plain text"]
    assert labels == ["1", "0", "pos"] and skipped == 0


def test_read_labelled_tsv_and_sniffed(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('sentence\tlabel\nit \'s a "great" film , \t1\n很好\t0\n', encoding="utf-8")
    texts, labels, _ = read_labelled(path, "sentence", "label")
    assert texts == ['it \'s a "great" film , ', "很好"] and labels == ["1", "0"]  # TSV: quotes are text
    other = tmp_path / "data.txt"
    other.write_text("text;y\nbonjour;a\nsalut;b\n", encoding="utf-8")
    assert read_labelled(other, "text", "y")[:2] == (["bonjour", "salut"], ["a", "b"])


def test_read_labelled_bad_rows_name_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('label,review\n'
                    '1,good\n'                  # line 2
                    '0,"two\nlines"\n'          # lines 3-4
                    '1\n'                       # line 5: missing field
                    '0,"   "\n'                 # line 6: empty text
                    ',fine text\n'              # line 7: empty label
                    '1,"multi\nline",extra\n'   # lines 8-9: too many fields
                    '1,last\n', encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"bad.csv, line 5: 1 fields but the header has 2") as e:
        read_labelled(path, "review", "label")
    assert "\n" not in str(e.value)
    path.write_text(path.read_text(encoding="utf-8").replace("1\n0,\"   \"", "0,\"   \""), encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"bad.csv, line 5: empty text in column 'review'"):
        read_labelled(path, "review", "label")
    texts, labels, skipped = read_labelled(path, "review", "label", skip_bad=True)
    assert texts == ["good", "two\nlines", "last"] and labels == ["1", "0", "1"] and skipped == 3


def test_read_labelled_line_of_bad_row_after_multiline_record(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('label,review\n0,"a\nb\nc"\n1,\n', encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"line 5: empty text"):
        read_labelled(path, "review", "label")


def test_read_labelled_broken_quoting(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('label,review\n1,ok\n0,"never closed\n1,more\n', encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"q.csv, line 3: malformed CSV \(unexpected end of data\)"):
        read_labelled(path, "review", "label", skip_bad=True)
    path.write_text('label,review\n1,ok\n1,"quoted" then more\n', encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"q.csv, line 3: malformed CSV"):
        read_labelled(path, "review", "label")


def test_read_labelled_missing_column_and_file_errors(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("label,comment\n1,hi\n", encoding="utf-8")
    with pytest.raises(DeepzooError, match=r"x.csv, line 1: no column 'review'; "
                                           r"the header has columns 'label', 'comment'"):
        read_labelled(path, "review", "label")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DeepzooError, match="empty.csv is empty; expected a header row"):
        read_labelled(empty, "review", "label")
    with pytest.raises(DeepzooError, match="not found"):
        read_labelled(tmp_path / "nope.csv", "review", "label")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("label,review\n1,ok\n0,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DeepzooError, match=r"latin.csv, line 3: not valid UTF-8"):
        read_labelled(latin, "review", "label")


# ---------------------------------------------------------------------------------------------- batching


def test_encode_texts():
    v = Vocab.build([tokenize_en("the film is good . the end")])
    ids = encode_texts(["The film is GOOD!", "   ", "the the the the"], "en", v, max_len=3)
    assert ids == [v.encode(["the", "film", "is"]), [1], v.encode(["the"] * 3)]
    assert encode_texts(["good"], tokenize_en, v) == [v.encode(["good"])]


def _random_data(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 60, (n,), generator=g).tolist()
    ids = [torch.randint(2, 100, (L,), generator=g).tolist() for L in lengths]
    return ids, list(range(n))  # the label is the example's index, to track it through the batches


@pytest.mark.parametrize("shuffle,sort_within", [(True, True), (True, False), (False, True), (False, False)])
def test_text_batches_cover_every_example_once(shuffle, sort_within):
    ids, labels = _random_data(1000)
    batches = TextBatches(ids, labels, batch_size=32, shuffle=shuffle, sort_within=sort_within, pad_id=0)
    assert len(batches) == 32  # ceil(1000 / 32)
    seen = []
    out = list(batches.epoch(torch.Generator().manual_seed(1)))
    assert len(out) == len(batches)
    for padded, lengths, y in out:
        assert padded.dtype == lengths.dtype == y.dtype == torch.long
        assert padded.shape == (len(y), int(lengths.max())) and lengths.shape == y.shape
        for row, L, i in zip(padded, lengths, y.tolist()):
            assert L == len(ids[i]) and row[:L].tolist() == ids[i]
            assert (row[L:] == 0).all()
        if sort_within:
            assert (lengths[:-1] >= lengths[1:]).all()  # longest first within a batch
        seen += y.tolist()
    assert sorted(seen) == labels
    if not shuffle and not sort_within:
        assert seen == labels


def test_text_batches_pad_id_and_pairs():
    batches = TextBatches([[5, 6, 7], [8]], [1, 0], batch_size=2, pad_id=-1, pairs=True)
    ((padded, lengths), y), = list(batches.epoch())
    assert padded.tolist() == [[5, 6, 7], [8, -1, -1]] and lengths.tolist() == [3, 1] and y.tolist() == [1, 0]
    with pytest.raises(ValueError):
        TextBatches([[1], []], [0, 1], batch_size=2)


def test_sorted_buckets_reduce_padding():
    ids, labels = _random_data(3000)
    sorted_ = TextBatches(ids, labels, batch_size=32, shuffle=True, sort_within=True)
    plain = TextBatches(ids, labels, batch_size=32, shuffle=True, sort_within=False)
    g = torch.Generator().manual_seed(0)
    p_sorted, p_plain = sorted_.padding_fraction(g), plain.padding_fraction(g)
    assert p_plain > 0.4 and p_sorted < 0.05  # lengths uniform in 1..59: ~half padding without sorting


def test_text_batches_reproducible():
    ids, labels = _random_data(500)
    b = TextBatches(ids, labels, batch_size=16, shuffle=True, sort_within=True)
    run = lambda seed: [y.tolist() for _, _, y in b.epoch(torch.Generator().manual_seed(seed))]  # noqa: E731
    assert run(3) == run(3)
    assert run(3) != run(4)
    g = torch.Generator().manual_seed(3)
    assert [y.tolist() for _, _, y in b.epoch(g)] != [y.tolist() for _, _, y in b.epoch(g)]  # epochs differ


def test_lm_batches_and_bptt_windows():
    stream = torch.arange(103)
    data = lm_batches(stream, batch_size=4)
    assert data.shape == (4, 25) and data[1].tolist() == list(range(25, 50))  # contiguous rows
    windows = list(bptt_windows(data, bptt=10))
    assert [x.shape[1] for x, _ in windows] == [10, 10, 4]  # 24 targets per row
    for x, y in windows:
        assert x.shape == y.shape == (4, x.shape[1])
        assert torch.equal(y, x + 1)  # the target is the next token
    assert torch.equal(torch.cat([x for x, _ in windows], 1), data[:, :-1])
    assert len(list(bptt_windows(data, bptt=10, drop_last=True))) == 2
    v = Vocab.build([["a", "b"]], specials=[EOS])
    assert encode_stream([["a", "b", EOS], ["b", "zz", EOS]], v).tolist() == [3, 4, 2, 4, 1, 2]


# ---------------------------------------------------------------------------------------------- real data


def test_sst2(shared_data):
    d = T.load_sst2(shared_data)
    assert d.sizes() == {"train": 67349, "dev": 872}
    assert set(d["train"][1]) == set(d["dev"][1]) == {0, 1}
    assert Counter(d["dev"][1]) == {1: 444, 0: 428}
    texts = d["train"][0] + d["dev"][0]
    # Measured: 68,207 of the 68,221 sentences re-tokenise to exactly their GLUE tokens; the 14 others hold
    # "ol'", "anti-" (a dangling hyphen) or "wash." (Washington), which tokenize_en splits.
    assert sum(tokenize_en(s) != s.split() for s in texts) <= 14
    train_tokens = [tokenize_en(s) for s in d["train"][0]]
    assert sum(map(len, train_tokens)) == 633738
    # Only 507 words occur once: SST-2's training rows are the parse-tree phrases of the sentences, so
    # each word is repeated in every phrase that contains it.
    assert len(Vocab.build(train_tokens)) == 14817 and len(Vocab.build(train_tokens, min_freq=2)) == 14310


def test_chnsenticorp_split(shared_data):
    d = T.load_chnsenticorp(shared_data)
    assert d.dropped == 1  # one row has an empty review
    assert d.sizes() == {"train": 6207, "dev": 775, "test": 783}  # 80/10/10 by a hash of each text
    assert sum(d.sizes().values()) == 7766 - 1
    parts = [set(d[s][0]) for s in ("train", "dev", "test")]
    assert len(parts[0] | parts[1] | parts[2]) == 7765  # disjoint (the reviews are all distinct)
    again = T.load_chnsenticorp(shared_data)
    assert again.splits == d.splits
    assert T.load_chnsenticorp(shared_data, seed=1).splits != d.splits
    assert Counter(d["train"][1] + d["dev"][1] + d["test"][1]) == {1: 5322, 0: 2444 - 1}
    with pytest.raises(DeepzooError, match=r"ChnSentiCorp_htl_all.csv, line 6376: empty text in column 'review'"):
        read_labelled(shared_data / "chnsenticorp" / "ChnSentiCorp_htl_all.csv", "review", "label")


def test_chnsenticorp_jieba_vocab(shared_data):
    texts = T.load_chnsenticorp(shared_data)["train"][0]
    words = [tokenize_zh(t) for t in texts]
    chars = [tokenize_zh(t, mode="char") for t in texts]
    assert (len(Vocab.build(words)), len(Vocab.build(words, min_freq=2))) == (26469, 12606)
    assert (len(Vocab.build(chars)), len(Vocab.build(chars, min_freq=2))) == (4510, 3344)


def test_waimai_split(shared_data):
    d = T.load_waimai(shared_data)
    assert d.dropped == 0 and d.sizes() == {"train": 9606, "dev": 1158, "test": 1223}


def test_ptb(shared_data):
    d = T.load_ptb(shared_data)
    assert [len(d[s]) for s in ("train", "valid", "test")] == [42068, 3370, 3761]  # lines
    assert all(line[-1] == EOS for line in d["train"])
    n_tokens = [sum(map(len, d[s])) for s in ("train", "valid", "test")]
    # Words plus one <eos> per line: train 887,521 + 42,068 = 929,589 (valid 70,390 + 3,370, test 78,669 + 3,761).
    assert n_tokens == [929589, 73760, 82430]
    vocab = Vocab.build(d["train"], specials=[EOS])
    # 10,000 word types (9,999 in the text, the literal <unk> among them, plus <eos>) and <pad>.
    assert len(vocab) == 10001 and vocab.itos[:4] == [PAD, UNK, EOS, "the"]
    stream = encode_stream(d["train"], vocab)
    assert (stream == vocab.unk_index).sum() == 45020  # PTB's own <unk> tokens map to our unk id
    assert (stream == vocab.pad_index).sum() == 0
    assert all(t in vocab for s in ("valid", "test") for line in d[s] for t in line)  # closed vocabulary
    x = lm_batches(stream, 20)
    assert x.shape == (20, 929589 // 20)
