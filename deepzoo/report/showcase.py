"""What each trained model does, as HTML for the tour's report: a few test inputs with the model's answers.

Every answer comes from the run folder alone, through ``deepzoo.load(run).predict`` / ``.sample`` (the
portable model of deepzoo/artefacts.py); only the inputs (a few test images, sentences, rows) are read
from the recipe's data. Images are PNGs inlined as ``data:`` URIs, so the page is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

SENTIMENT = {"0": "negative", "1": "positive"}


def uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def img(png: bytes, alt: str, cls: str = "") -> str:
    return f"<img src='{uri(png)}' alt='{html.escape(alt, quote=True)}'" + (f" class='{cls}'" if cls else "") + ">"


def file_img(path, alt: str, cls: str = "") -> str:
    return img(Path(path).read_bytes(), alt, cls)


def array_png(a: np.ndarray, scale: int = 2) -> bytes:
    """uint8 HxW or HxWx3 -> a PNG, each pixel ``scale`` x ``scale``."""
    from PIL import Image
    im = Image.fromarray(np.ascontiguousarray(a))
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    im.save(buffer, format="PNG")
    return buffer.getvalue()


def grid_png(images, nrow: int, scale: int = 2) -> bytes:
    """Grey images [N, 1, H, W] in [0, 1] as a PNG grid (deepzoo.report.plots.save_image_grid)."""
    import tempfile

    from deepzoo.report.plots import save_image_grid
    with tempfile.TemporaryDirectory() as tmp:
        return save_image_grid(images, Path(tmp) / "grid.png", nrow=nrow, scale=scale).read_bytes()


def _e(x) -> str:
    return html.escape(str(x))


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='show'><tr>{head}</tr>{body}</table>"


def show(recipe, run_dir, work: Path, data_dir=None) -> str:
    """The HTML that shows what the model of ``run_dir`` does (``work``: a folder for files predict writes)."""
    import deepzoo
    model = deepzoo.load(run_dir)
    cfg = model.config
    work.mkdir(parents=True, exist_ok=True)
    name = recipe.name
    if recipe.dataset == "mnist" and recipe.sample is None:
        return _digits(model, data_dir)
    if recipe.dataset == "cifar10":
        return _cifar(model, cfg, data_dir)
    if recipe.sample is not None:
        return _generated(model, work)
    if name.startswith("word2vec"):
        return _word_vectors(model)
    if recipe.family == "RL":
        return _policy(model, name, Path(run_dir))
    if name.startswith("gcn"):
        return _graph(model, work)
    if name in ("logreg-binary", "mlp-regression"):
        return _tabular(model, cfg, name, work)
    if name == "lstm-ptb":
        return _continuations(model, ["the company said", "the market"])
    if name == "gpt-shakespeare":
        out = model.predict("ROMEO:", length=240, temperature=0.8, seed=0)
        return (f"<p>The prompt <code>ROMEO:</code> continued by 240 sampled characters (temperature 0.8):</p>"
                f"<pre>{_e(out['input'] + out['text'])}</pre>")
    if name == "transformer-multi30k":
        return _translations(model, cfg, data_dir)
    if name.startswith("bert-pretrain"):
        from deepzoo.recipes.pretrain import EXAMPLES
        return _fill_masks(model, EXAMPLES[model.context["language"]])
    return _sentences(model, cfg, data_dir)


def _digits(model, data_dir) -> str:
    from deepzoo.data.mnist import load_mnist
    x, y = load_mnist(data_dir, sample=model.config["data"]["sample"])["test"]
    x, y = x[:10], y[:10]
    answers = model.predict(list(x))
    cells = [_figure(array_png(255 - a), f"test digit {t}", a_["class"], max(a_["probabilities"].values()), str(t))
             for a, t, a_ in zip(x, y, answers)]
    return "<p>The first 10 test digits, each with the model's class and its probability (✗: wrong):</p>" + \
        "<div class='row'>" + "".join(cells) + "</div>"


def _cifar(model, cfg, data_dir) -> str:
    from deepzoo.data.cifar import LABEL_NAMES, load_cifar10
    d = cfg["data"]
    x, y = load_cifar10(data_dir, path=d["path"] or None, sample=d["sample"])["test"]
    x, y = x[:10], y[:10]
    answers = model.predict(list(x))
    cells = [_figure(array_png(a), f"test image: {LABEL_NAMES[t]}", r["class"], max(r["probabilities"].values()),
                     LABEL_NAMES[t]) for a, t, r in zip(x, y, answers)]
    return "<p>The first 10 test images, each with the model's class and its probability (✗: wrong):</p>" + \
        "<div class='row'>" + "".join(cells) + "</div>"


def _figure(png: bytes, alt: str, predicted: str, p: float, truth: str) -> str:
    mark = "" if predicted == truth else " <span class='bad'>✗</span>"
    return (f"<figure>{img(png, alt)}<figcaption>{_e(predicted)} {_pct(p)}{mark}"
            f"<br><small>true: {_e(truth)}</small></figcaption></figure>")


def _sentences(model, cfg, data_dir) -> str:
    from deepzoo.recipes.text import read_splits
    texts, labels = read_splits(cfg, data_dir)[0]["test"]
    names = model.context["labels"].names
    picks = list(range(0, len(texts), max(1, len(texts) // 6)))[:6]
    answers = model.predict([texts[i] for i in picks])
    sentiment = cfg["data"]["dataset"] in ("sst2", "chnsenticorp", "waimai") or names == ["0", "1"]
    say = (lambda c: SENTIMENT.get(c, c)) if sentiment else (lambda c: c)
    rows = []
    for i, a in zip(picks, answers):
        right = a["class"] == names[labels[i]]
        rows.append([_e(texts[i] if len(texts[i]) <= 160 else texts[i][:157] + "..."),
                     f"{_e(say(a['class']))} {_pct(a['probabilities'][a['class']])}" + ("" if right else " <span class='bad'>✗</span>"),
                     _e(say(names[labels[i]]))])
    return "<p>Test sentences and the model's answers:</p>" + _table(["sentence", "predicted", "label"], rows)


def _continuations(model, prompts: list[str]) -> str:
    rows = [[f"<code>{_e(r['input'])}</code>", _e(r["greedy"]), _e(r["sampled (T=1.0)"])] for r in model.predict(prompts)]
    return "<p>Prompts continued by 20 words:</p>" + _table(["prompt", "greedy", "sampled (temperature 1)"], rows)


def _fill_masks(model, texts: list[str]) -> str:
    rows = [[f"<code>{_e(r['input'])}</code>",
             ", ".join(f"{_e(w)} {_pct(p)}" for w, p in r["masks"][0].items())] for r in model.predict(texts)]
    return ("<p>Texts with a masked word, and the encoder's five likeliest pieces for it:</p>"
            + _table(["text", "guesses"], rows))


def _translations(model, cfg, data_dir) -> str:
    from deepzoo.recipes.translation import read_pairs
    pairs = read_pairs(cfg, data_dir)["test"][:5]
    out = model.predict([s for s, _ in pairs])
    rows = [[_e(s), _e(o["translation"]), _e(t)] for (s, t), o in zip(pairs, out)]
    return (f"<p>Test sentences translated (beam {out[0]['beam']}) beside the reference:</p>"
            + _table([_e(cfg["data"]["src"]), "model", f"reference ({_e(cfg['data']['tgt'])})"], rows))


ENGLISH_WORDS = ["company", "market", "president", "money", "stock", "year", "new", "say"]
CHINESE_WORDS = ["房间", "服务", "好吃", "干净", "酒店", "味道", "送餐"]
ANALOGIES = [("he", "his", "she"), ("year", "years", "month"), ("big", "bigger", "small"), ("buy", "bought", "sell"),
             ("good", "better", "bad"), ("房间", "干净", "服务"), ("好吃", "难吃", "干净"), ("酒店", "房间", "外卖")]


def _word_vectors(model) -> str:
    kv = model.module
    words = [w for w in ENGLISH_WORDS + CHINESE_WORDS if w in kv][:4] or list(kv.index_to_key[10:13])
    rows = [[f"<b>{_e(r['input'])}</b>", ", ".join(f"{_e(n['word'])} <small>{n['cosine']:.2f}</small>"
                                                    for n in r["neighbours"][:6])] for r in model.predict(words)]
    out = "<p>Nearest neighbours (cosine similarity):</p>" + _table(["word", "neighbours"], rows)
    analogy = next((a for a in ANALOGIES if all(w in kv for w in a)), None)
    if analogy is not None:
        r = model.predict(f"{analogy[0]}:{analogy[1]}::{analogy[2]}:?")
        out += (f"<p>Analogy <code>{_e(r['analogy'])}</code> &rarr; "
                + ", ".join(f"{_e(a['word'])} <small>{a['cosine']:.2f}</small>" for a in r["answers"][:5]) + "</p>")
    return out


def _policy(model, name: str, run_dir: Path) -> str:
    parts = []
    if name == "qlearning-frozenlake":
        policy = model.predict("policy")["policy"]
        parts.append(f"<p>The greedy policy on the map (S start, F frozen, H hole, G goal; arrows: the action "
                     f"taken there):</p><pre class='map'>{_e(policy)}</pre>")
    r = model.predict("100")
    parts.append(f"<p>100 greedy episodes of {_e(r['env'])}: mean return {r['mean_return']:.2f} ± "
                 f"{r['std_return']:.2f}, success rate {100 * r['success_rate']:.0f}%, mean length "
                 f"{r['mean_length']:.0f} steps.</p>")
    if (run_dir / "returns.png").exists():
        parts.append(file_img(run_dir / "returns.png", f"returns of {name} during training", "plot"))
    return "".join(parts)


def _graph(model, work: Path) -> str:
    r = model.predict(str(work / "embedding.png"))
    graph = model.context["graph"]
    return (f"<p>The hidden vectors of the {graph.num_nodes:,} nodes ({_e(r['projection'])}), coloured by "
            f"label; training nodes circled:</p>" + file_img(r["wrote"][0], "node embedding map", "plot"))


def _tabular(model, cfg, name: str, work: Path) -> str:
    from deepzoo.recipes.tabular import DEFAULT_TARGET, tabular_splits
    default_file = "breast_cancer.csv" if name == "logreg-binary" else "diabetes.csv"
    _, _, (x, y) = tabular_splits(cfg, default_file, cfg["data"]["target"] or DEFAULT_TARGET[name])
    answers = model.predict([row.tolist() for row in x])
    if name == "logreg-binary":
        rows = [[str(i + 1), f"{a['p']:.3f}", str(a["class"]) + ("" if a["class"] == int(t) else " <span class='bad'>✗</span>"),
                 str(int(t))] for i, (a, t) in enumerate(zip(answers[:8], y[:8]))]
        return ("<p>The first 8 test tumours: the model's probability of malignant, its class, the truth:</p>"
                + _table(["row", "p(malignant)", "predicted", "true"], rows))
    from deepzoo.report.plots import plt, save_png
    pred = np.array([a["prediction"] for a in answers])
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.scatter(np.asarray(y), pred, s=10)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    ax.set(xlabel="true progression", ylabel="predicted", title=f"{len(y)} test patients")
    path = save_png(fig, work / "predicted.png", dpi=80)
    return "<p>Predicted against true disease progression on the test split:</p>" + file_img(path, "predicted vs true", "plot")


def _generated(model, work: Path) -> str:
    r = model.predict(str(work / "samples.png"))
    labels = {"samples.png": "64 samples", "samples-interpolation.png": "interpolations (each row: between two "
              "points of the latent space)", "samples-denoising.png": "denoising: 8 digits from pure noise (left) "
              "to the image (right)", "samples-latent-map.png": "the 2-D latent space"}
    return "<div class='row'>" + "".join(
        f"<figure>{file_img(p, labels.get(Path(p).name, Path(p).name))}<figcaption>{_e(labels.get(Path(p).name, ''))}"
        f"</figcaption></figure>" for p in r["wrote"]) + "</div>"
