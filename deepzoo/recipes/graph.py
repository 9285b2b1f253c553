"""Graph recipes: a two-layer GCN on Cora (the Planetoid split) and on the user's own graph (CSV files).

Training is full-batch and transductive: each epoch is one step on the 140 (Cora) training nodes, with
the whole graph propagated; the lowest validation loss picks the epoch whose weights are tested (Kipf &
Welling stop on the validation loss; picking by validation accuracy, as PyG's example does, gives 81.41%
against 81.71% over the same 10 seeds: benchmarks/gcn.py's "ours_loop" uses that rule).
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepzoo.data.batches import TensorBatches
from deepzoo.data.registry import samples_dir
from deepzoo.errors import DeepzooError
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task
from deepzoo.train.metrics import Accuracy


def load_graph(cfg: dict, data_dir):
    from deepzoo.data import graph as g
    d = cfg["data"]
    if d["format"] == "planetoid":
        folder = d["path"] or g.find_planetoid(data_dir, d["sample"], d["name"])
        return g.load_planetoid(folder, d["name"])
    if d["format"] == "csv":
        if not d["edges"] or not d["labels"]:
            raise DeepzooError("data.edges and data.labels must name your CSV files (data.features is optional)")
        return g.load_graph_csv(d["edges"], d["labels"], d["features"] or None, tuple(d["split"]), cfg["seed"])
    raise DeepzooError(f"data.format must be 'planetoid' or 'csv', got {d['format']!r}")


def build(cfg: dict, data_dir) -> Task:
    from deepzoo.data.graph import row_normalise
    from deepzoo.models.gcn import GCN
    m, o = cfg["model"], cfg["optim"]
    if m["hidden"] < 1 or m["layers"] < 1:
        raise DeepzooError(f"model.hidden and model.layers must be at least 1, got {m['hidden']} and {m['layers']}")
    if not 0 <= m["dropout"] < 1:
        raise DeepzooError(f"model.dropout must be in [0, 1), got {m['dropout']}")
    if o["name"] != "adam":
        raise DeepzooError(f"the GCN recipes train with Adam (weight decay on the first layer only); "
                           f"optim.name must be 'adam', got {o['name']!r}")
    graph = load_graph(cfg, data_dir)
    x = row_normalise(graph.features) if cfg["data"]["normalise_features"] else graph.features
    torch.manual_seed(cfg["seed"])
    model = GCN(x, graph.edge_index, len(graph.classes), hidden=m["hidden"], layers=m["layers"], dropout=m["dropout"])
    # Kipf & Welling: L2 regularisation (weight decay 5e-4) on the first layer's weights only
    optimizer = torch.optim.Adam([{"params": model.convs[0].parameters(), "weight_decay": o["weight_decay"]},
                                  {"params": model.convs[1:].parameters(), "weight_decay": 0.0}], lr=o["lr"])

    def split(name):
        idx = graph.splits[name]
        return TensorBatches(idx, graph.labels[idx], max(len(idx), 1)) if len(idx) else None
    from deepzoo.nn import loss_functions
    return Task(model=model, train=split("train"), val=split("val"), test=split("test"),
                loss=loss_functions("torch").cross_entropy, metrics=[Accuracy], monitor="val_loss",
                headline="test_acc", optimizer=optimizer, context={"graph": graph})


@torch.no_grad()
def predict(task: Task, cfg: dict, item: str) -> dict:
    """A node id -> its predicted class and probabilities; a path ending in .png -> a 2-D plot of the
    hidden vectors of every node (t-SNE), coloured by label, training nodes circled."""
    from deepzoo.report.plots import plot_embedding_2d
    graph, model = task.context["graph"], task.model.eval()
    if item.lower().endswith(".png"):
        out = Path(item)
        if not out.parent.is_dir():
            raise DeepzooError(f"folder {out.parent} does not exist")
        path, method = plot_embedding_2d(model.embed().cpu(), graph.labels, graph.classes, out,
                                         f"{cfg['recipe']} ({graph.num_nodes:,} nodes, {len(graph.classes)} classes)", highlight=graph.splits["train"])
        return {"input": item, "wrote": [str(path)], "projection": method}
    ids = {n: i for i, n in enumerate(graph.node_ids)}
    if item not in ids:
        raise DeepzooError(f"no node {item!r} in the graph (give a node id, or a .png path for the embedding plot)")
    i = ids[item]
    p = torch.softmax(model()[i], -1)
    top = p.argsort(descending=True)[:5]
    out = {"input": item, "class": graph.classes[int(top[0])],
           "probabilities": {graph.classes[int(k)]: round(float(p[k]), 4) for k in top}}
    if graph.labels[i] >= 0:
        out["label"] = graph.classes[int(graph.labels[i])]
        out["split"] = next((k for k, v in graph.splits.items() if bool((v == i).any())), "none")
    return out


_MODEL = {"hidden": 16, "layers": 2, "dropout": 0.5}
_OPTIM = {"name": "adam", "lr": 0.01, "weight_decay": 5e-4, "schedule": "constant"}
_DATA = {"format": "planetoid", "name": "cora", "path": "", "sample": False, "normalise_features": True,
         "edges": "", "labels": "", "features": "", "split": [0.6, 0.2, 0.2]}

register(Recipe(
    name="gcn-cora", family="GNN", dataset="cora",
    description="two-layer GCN (sparse D^-1/2 (A+I) D^-1/2 propagation) on Cora, the Planetoid split",
    reference=Reference("test_acc", 0.815, "Kipf & Welling 2017, Table 2 (GCN on Cora)",
                        "https://arxiv.org/abs/1609.02907"),
    defaults={"data": dict(_DATA), "model": dict(_MODEL), "optim": dict(_OPTIM), "train": {"epochs": 200}},
    presets={"quick": {"data": {"sample": True}, "train": {"epochs": 30}}},
    build=build, predict=predict,
    predict_help="a node id (its class), or a .png path (t-SNE of the hidden vectors)"))

_KARATE = samples_dir() / "graph" / "karate"
register(Recipe(
    name="gcn-graph", family="GNN", dataset="your graph",
    description="the same GCN on your graph: edges.csv (source,target), labels.csv (node,label[,split]), "
                "optional features.csv",
    reference=Reference("test_acc", None, "your graph has no published figure"),
    defaults={"data": {**_DATA, "format": "csv", "normalise_features": False,
                       "edges": str(_KARATE / "edges.csv"), "labels": str(_KARATE / "labels.csv")},
              "model": dict(_MODEL), "optim": dict(_OPTIM), "train": {"epochs": 200}},
    presets={"quick": {"train": {"epochs": 50}}},
    build=build, predict=predict,
    predict_help="a node id (its class), or a .png path (t-SNE of the hidden vectors)"))
