"""Graph recipes: a two-layer GCN on a Planetoid graph (Cora by default; CiteSeer and PubMed with data.name
and data.path) with the standard split, and on the user's own graph (CSV files).

Training is full-batch and transductive: each epoch is one step on the 140 (Cora) training nodes, with
the whole graph propagated; the lowest validation loss picks the epoch whose weights are tested (Kipf &
Welling stop on the validation loss; picking by validation accuracy, as PyG's example does, gives 81.41%
against 81.71% over the same 10 seeds: benchmarks/gcn.py's "ours_loop" uses that rule).

A trained run predicts with no dataset (deepzoo/artefacts.py). The model answers only for the nodes of the
graph it was trained on, so the run keeps that graph, as the model sees it (features after
data.normalise_features), in ``inference/graph.safetensors``: features in CSR form when sparse (Cora: 0.4
MB for the 2,708 x 1,433 bag of words), the edge list, labels and splits; class names and node ids go to
``inference/inference.json``. A graph over :data:`STORE_GRAPH_BELOW` bytes is not copied: inference.json
records its source files (absolute paths) and a sha256 of the graph they gave, and prediction reads them
again, failing with the name of a file that is missing, or if the files now give another graph.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from deepzoo.artefacts import tensor_bytes
from deepzoo.data.batches import TensorBatches
from deepzoo.data.registry import samples_dir
from deepzoo.errors import DeepzooError
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task
from deepzoo.train.metrics import Accuracy

# Kipf & Welling 2017, Table 2 (GCN, the Planetoid split): the published figure follows data.name
_KIPF = "https://arxiv.org/abs/1609.02907"
PLANETOID_REFERENCES = {
    "cora": Reference("test_acc", 0.815, "Kipf & Welling 2017, Table 2 (GCN on Cora)", _KIPF),
    "citeseer": Reference("test_acc", 0.703, "Kipf & Welling 2017, Table 2 (GCN on CiteSeer)", _KIPF),
    "pubmed": Reference("test_acc", 0.790, "Kipf & Welling 2017, Table 2 (GCN on PubMed)", _KIPF),
}


def reference_for(cfg: dict, default: Reference | None = None) -> Reference | None:
    """The published figure for the graph ``cfg`` trains on: Kipf & Welling's for Cora, CiteSeer and PubMed
    (by data.name, any case), none for another Planetoid graph; ``default`` (the recipe's) for CSV graphs."""
    d = cfg.get("data", {})
    if d.get("format") != "planetoid":
        return default
    name = str(d.get("name", "cora"))
    return PLANETOID_REFERENCES.get(name.lower(), Reference(
        "test_acc", None, f"no published figure for Planetoid {name!r} (Kipf & Welling report Cora, CiteSeer, "
                          f"PubMed)"))


STORE_GRAPH_BELOW = 50_000_000   # bytes: a larger graph is referenced by its source files, not copied
GRAPH_FILE = "graph.safetensors"


def graph_sources(cfg: dict, data_dir) -> dict:
    """Where the graph comes from: the format and the absolute paths of its files."""
    from deepzoo.data import graph as g
    d = cfg["data"]
    if d["format"] == "planetoid":
        folder = Path(d["path"] or g.find_planetoid(data_dir, d["sample"], d["name"])).resolve()
        files = [str(folder / f"ind.{d['name']}.{part}") for part in (*g.PLANETOID_PARTS, "test.index")]
        return {"format": "planetoid", "name": d["name"], "folder": str(folder), "files": files}
    if d["format"] == "csv":
        if not d["edges"] or not d["labels"]:
            raise DeepzooError("data.edges and data.labels must name your CSV files (data.features is optional)")
        paths = {k: str(Path(d[k]).resolve()) if d[k] else None for k in ("edges", "labels", "features")}
        return {"format": "csv", **paths, "files": [v for v in paths.values() if v]}
    raise DeepzooError(f"data.format must be 'planetoid' or 'csv', got {d['format']!r}")


def read_graph(cfg: dict, sources: dict):
    """The graph as the model sees it: read from ``sources`` (:func:`graph_sources`), features normalised
    when data.normalise_features."""
    from deepzoo.data import graph as g
    if sources["format"] == "planetoid":
        graph = g.load_planetoid(sources["folder"], sources["name"])
    else:
        graph = g.load_graph_csv(sources["edges"], sources["labels"], sources["features"],
                                 tuple(cfg["data"]["split"]), cfg["seed"])
    if cfg["data"]["normalise_features"]:
        graph = dataclasses.replace(graph, features=g.row_normalise(graph.features))
    return graph


def make_gcn(cfg: dict, graph):
    """The GCN over ``graph`` (its features as the model takes them), initialised from cfg's seed."""
    from deepzoo.models.gcn import GCN
    m = cfg["model"]
    torch.manual_seed(cfg["seed"])
    return GCN(graph.features, graph.edge_index, len(graph.classes), hidden=m["hidden"], layers=m["layers"],
               dropout=m["dropout"])


def build(cfg: dict, data_dir) -> Task:
    m, o = cfg["model"], cfg["optim"]
    if m["hidden"] < 1 or m["layers"] < 1:
        raise DeepzooError(f"model.hidden and model.layers must be at least 1, got {m['hidden']} and {m['layers']}")
    if not 0 <= m["dropout"] < 1:
        raise DeepzooError(f"model.dropout must be in [0, 1), got {m['dropout']}")
    if o["name"] != "adam":
        raise DeepzooError(f"the GCN recipes train with Adam (weight decay on the first layer only); "
                           f"optim.name must be 'adam', got {o['name']!r}")
    sources = graph_sources(cfg, data_dir)
    graph = read_graph(cfg, sources)
    model = make_gcn(cfg, graph)
    # Kipf & Welling: L2 regularisation (weight decay 5e-4) on the first layer's weights only
    optimizer = torch.optim.Adam([{"params": model.convs[0].parameters(), "weight_decay": o["weight_decay"]},
                                  {"params": model.convs[1:].parameters(), "weight_decay": 0.0}], lr=o["lr"])

    def split(name):
        idx = graph.splits[name]
        return TensorBatches(idx, graph.labels[idx], max(len(idx), 1)) if len(idx) else None
    from deepzoo.nn import loss_functions
    return Task(model=model, train=split("train"), val=split("val"), test=split("test"),
                loss=loss_functions("torch").cross_entropy, metrics=[Accuracy], monitor="val_loss",
                headline="test_acc", optimizer=optimizer, context={"graph": graph, "sources": sources})


def _stored(cfg: dict, graph) -> tuple[dict, dict, bytes]:
    from deepzoo.data.graph import graph_tensors
    tensors, facts = graph_tensors(graph)
    return tensors, facts, tensor_bytes(tensors)


def _digest(facts: dict, data: bytes) -> str:
    return hashlib.sha256(data + json.dumps(facts, sort_keys=True).encode()).hexdigest()


def artefacts(task: Task, cfg: dict) -> dict:
    """The graph the model was trained on, as it sees it: graph.safetensors + its facts in inference.json;
    or, over STORE_GRAPH_BELOW bytes, the source files' paths and the sha256 of the graph they give."""
    graph, sources = task.context["graph"], task.context["sources"]
    _, facts, data = _stored(cfg, graph)
    label = f"Planetoid {sources['name']}" if sources["format"] == "planetoid" else graph.source
    info = {"graph": {**facts, "source": label, "normalised": bool(cfg["data"]["normalise_features"]),
                      "stored": len(data) < STORE_GRAPH_BELOW, "bytes": len(data)}}
    if info["graph"]["stored"]:
        return {"inference.json": info, GRAPH_FILE: data}
    info["graph"]["sources"] = sources
    info["graph"]["sha256"] = _digest(facts, data)
    return {"inference.json": info}


def restore(cfg: dict, stored) -> Task:
    """The GCN over the stored graph (or the graph read again from the recorded source files)."""
    from deepzoo.data.graph import graph_from_tensors
    info = stored.json()
    where = stored.folder / "inference.json"
    g = info.get("graph")
    if not isinstance(g, dict) or "stored" not in g:
        raise DeepzooError(f"{where} does not describe the graph (no 'graph' entry); retrain, or pass "
                           f"--data-dir once to rebuild it")
    if g["stored"]:
        graph = graph_from_tensors(stored.tensors(GRAPH_FILE), g, str(stored.folder / GRAPH_FILE), g.get("source", ""))
    else:
        graph = _read_sources(cfg, g, where)
    return Task.for_inference(make_gcn(cfg, graph), {"graph": graph})


def _read_sources(cfg: dict, g: dict, where: Path):
    sources = g["sources"]
    for f in sources["files"]:
        if not Path(f).is_file():
            raise DeepzooError(f"{f} is missing: this run's graph ({g['bytes'] / 1e6:.0f} MB) was too large to "
                               f"keep in the run folder, so {where} names its source files; put the file back "
                               f"at that path")
    graph = read_graph(cfg, sources)
    _, facts, data = _stored(cfg, graph)
    if _digest(facts, data) != g["sha256"]:
        raise DeepzooError(f"the graph read from {', '.join(sources['files'])} differs from the one this run was "
                           f"trained on (sha256 in {where}); the model's answers would not be its own")
    return graph


@torch.no_grad()
def predict(task: Task, cfg: dict, items: list) -> list[dict]:
    """Each item: a node id -> its predicted class and probabilities (all nodes from one forward pass); a
    path ending in .png -> a 2-D plot of the hidden vectors of every node (t-SNE), coloured by label,
    training nodes circled. Every item is checked before any work is done."""
    graph, model = task.context["graph"], task.model.eval()
    ids = {n: i for i, n in enumerate(graph.node_ids)}
    for item in items:
        name = str(item)
        if name.lower().endswith(".png"):
            if not Path(name).parent.is_dir():
                raise DeepzooError(f"folder {Path(name).parent} does not exist")
        elif name not in ids:
            raise DeepzooError(f"no node {name!r} in the graph (give a node id, or a .png path for the embedding plot)")
    probs, split_of, results = None, None, []
    for item in items:
        name = str(item)
        if name.lower().endswith(".png"):
            results.append(_plot(task, cfg, name))
            continue
        if probs is None:
            probs = torch.softmax(model(), -1).cpu()
            split_of = {int(i): k for k, v in graph.splits.items() for i in v.tolist()}
        i = ids[name]
        p = probs[i]
        top = p.argsort(descending=True)[:5]
        out = {"input": name, "class": graph.classes[int(top[0])],
               "probabilities": {graph.classes[int(k)]: round(float(p[k]), 4) for k in top}}
        if graph.labels[i] >= 0:
            out["label"] = graph.classes[int(graph.labels[i])]
            out["split"] = split_of.get(i, "none")
        results.append(out)
    return results


def _plot(task: Task, cfg: dict, item: str) -> dict:
    from deepzoo.report.plots import plot_embedding_2d
    graph, model = task.context["graph"], task.model.eval()
    path, method = plot_embedding_2d(model.embed().cpu(), graph.labels, graph.classes, Path(item),
                                     f"{cfg['recipe']} ({graph.num_nodes:,} nodes, {len(graph.classes)} classes)",
                                     highlight=graph.splits["train"])
    return {"input": item, "wrote": [str(path)], "projection": method}


_YOURS = Reference("test_acc", None, "your graph has no published figure")
_MODEL = {"hidden": 16, "layers": 2, "dropout": 0.5}
_OPTIM = {"name": "adam", "lr": 0.01, "weight_decay": 5e-4, "schedule": "constant"}
_DATA = {"format": "planetoid", "name": "cora", "path": "", "sample": False, "normalise_features": True,
         "edges": "", "labels": "", "features": "", "split": [0.6, 0.2, 0.2]}

register(Recipe(
    name="gcn-cora", family="GNN", dataset="cora",
    description="two-layer GCN (sparse D^-1/2 (A+I) D^-1/2 propagation) on Cora, the Planetoid split "
                "(data.name=citeseer|pubmed + data.path: the other Planetoid graphs)",
    reference=PLANETOID_REFERENCES["cora"], reference_for=lambda cfg: reference_for(cfg, _YOURS),
    defaults={"data": dict(_DATA), "model": dict(_MODEL), "optim": dict(_OPTIM), "train": {"epochs": 200}},
    presets={"quick": {"data": {"sample": True}, "train": {"epochs": 30}}},
    build=build, predict=predict, artefacts=artefacts, restore=restore,
    predict_help="a node id (its class), or a .png path (t-SNE of the hidden vectors)"))

_KARATE = samples_dir() / "graph" / "karate"
register(Recipe(
    name="gcn-graph", family="GNN", dataset="your graph",
    description="the same GCN on your graph: edges.csv (source,target), labels.csv (node,label[,split]), "
                "optional features.csv",
    reference=_YOURS, reference_for=lambda cfg: reference_for(cfg, _YOURS),
    defaults={"data": {**_DATA, "format": "csv", "normalise_features": False,
                       "edges": str(_KARATE / "edges.csv"), "labels": str(_KARATE / "labels.csv")},
              "model": dict(_MODEL), "optim": dict(_OPTIM), "train": {"epochs": 200}},
    # quick: Kipf & Welling's semi-supervised setting, few labels (7 training nodes); 24 test nodes, not 7,
    # so that the test figure can show learning
    presets={"quick": {"data": {"split": [0.2, 0.1, 0.7]}, "train": {"epochs": 50}}},
    build=build, predict=predict, artefacts=artefacts, restore=restore,
    predict_help="a node id (its class), or a .png path (t-SNE of the hidden vectors)"))
