"""Graphs for node classification: the Planetoid files (Cora, CiteSeer, PubMed) and the user's own CSV files.

Both loaders return a :class:`Graph`: node features, an undirected edge list (each edge in both
directions, no self-loops, no duplicates), a label per node (-1 where a node has none) and the node
indices of the train / validation / test splits.

The Planetoid format (Yang et al. 2016, read by Kipf's GCN code and torch_geometric) is eight pickles,
``ind.NAME.{x,tx,allx,y,ty,ally,graph,test.index}`` (NAME: cora, citeseer, pubmed). The standard split:
the first len(y) nodes train (Cora 140, CiteSeer 120, PubMed 60), the next 500 validate, the 1,000 nodes of
``test.index`` test; CiteSeer's ``test.index`` has gaps, filled as PyG and Kipf fill them (see
:func:`load_planetoid`). The pickles were written by Python 2 with scipy; they are read here by an
unpickler that rebuilds only numpy arrays, CSR matrices (as plain fields, so scipy is not needed) and the
adjacency dict; anything else is refused.

The user's graph is up to three CSV files, each with a header row:

- edges: ``source,target`` (one undirected edge per row; node ids are any strings)
- labels: ``node,label`` and optionally ``split`` (train / val / test); nodes without a row are unlabelled
- features (optional): ``node,<feature>,<feature>,...`` numbers; without it each node's feature is
  its one-hot id (the identity matrix, as for a graph with no attributes)
"""

from __future__ import annotations

import csv
import io
import pickle
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepzoo.data import registry
from deepzoo.errors import DeepzooError


@dataclass
class Graph:
    features: torch.Tensor              # [N, F] float32
    edge_index: torch.Tensor            # [2, E] int64, both directions of every undirected edge
    labels: torch.Tensor                # [N] int64, -1 = unlabelled
    splits: dict                        # "train" / "val" / "test" -> int64 node indices
    classes: list = field(default_factory=list)    # label names, in label-id order
    node_ids: list = field(default_factory=list)   # the user's node ids, in node-index order
    source: str = ""

    @property
    def num_nodes(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        return (f"{self.source}: {self.num_nodes:,} nodes, {self.edge_index.shape[1] // 2:,} edges, "
                f"{self.features.shape[1]:,} features, {len(self.classes)} classes ({sizes})")


def undirected_edges(src: np.ndarray, dst: np.ndarray) -> torch.Tensor:
    """Both directions of each edge, self-loops dropped, duplicates merged, sorted by (source, target)."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    keep = src != dst
    pairs = np.stack([np.concatenate([src[keep], dst[keep]]), np.concatenate([dst[keep], src[keep]])], 1)
    pairs = np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)
    return torch.from_numpy(np.ascontiguousarray(pairs.T))


def row_normalise(x: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum (rows summing to 0 are left at 0): Kipf & Welling's feature scaling."""
    s = x.sum(1, keepdim=True)
    return x / torch.where(s == 0, torch.ones_like(s), s)


# --------------------------------------------------------------------------------------------------
# Planetoid

PLANETOID_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph")


class _CSR:
    """Stands in for ``scipy.sparse.csr_matrix`` while unpickling: keeps its fields, computes nothing."""

    def to_dense(self, where: str) -> np.ndarray:
        try:
            shape = tuple(int(s) for s in self.__dict__.get("_shape", self.__dict__.get("shape")))
            data, indices, indptr = (np.asarray(self.__dict__[k]) for k in ("data", "indices", "indptr"))
            # summed in float64, then rounded once to float32: scipy's todense() then PyG's .to(float),
            # also where a (non-canonical) matrix stores an entry twice
            rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
            if indices.size and (indices.min() < 0 or indices.max() >= shape[1]):
                raise IndexError(f"a column index outside 0..{shape[1] - 1}")
            # one bincount over the flat positions (np.add.at is ~50x slower on Cora's 49,216 entries)
            out = np.bincount(rows * shape[1] + indices, weights=data.astype(np.float64),
                              minlength=shape[0] * shape[1]).reshape(shape)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise DeepzooError(f"{where}: not a valid CSR matrix ({e})") from None
        return out.astype(np.float32)


class _PlanetoidUnpickler(pickle.Unpickler):
    _NUMPY = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
              ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
              ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self._NUMPY:
            return super().find_class(module, name)
        if name == "csr_matrix" and module in ("scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse"):
            return _CSR
        if (module, name) == ("collections", "defaultdict"):
            return defaultdict
        if (module, name) in (("__builtin__", "list"), ("builtins", "list")):
            return list
        if (module, name) == ("_codecs", "encode"):     # Python 3's protocol-2 pickles store bytes so
            return _latin1
        if (module, name) in (("__builtin__", "bytes"), ("builtins", "bytes")):   # ... and b"" so
            return _empty_bytes
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (a Planetoid file holds only arrays, "
                                     f"sparse matrices and an adjacency dict)")


def _latin1(text, encoding="latin1"):
    """``_codecs.encode`` as a pickle of bytes uses it (text -> bytes, latin1 only); nothing else is allowed."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def _empty_bytes(*args):
    if args:
        raise pickle.UnpicklingError("refusing bytes(...) with arguments")
    return b""


def _read_pickle(path: Path):
    try:
        return _PlanetoidUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except OSError as e:
        raise DeepzooError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001  (any unpickling failure is the file's fault)
        raise DeepzooError(f"{path}: {e}") from None


def _matrix(obj, path: Path) -> np.ndarray:
    if isinstance(obj, _CSR):
        return obj.to_dense(str(path))
    if isinstance(obj, np.ndarray) and obj.ndim == 2:
        return obj.astype(np.float32)
    raise DeepzooError(f"{path}: expected a 2-D matrix, found {type(obj).__name__}")


def planetoid_names(folder: str | Path) -> list[str]:
    """The names NAME of the Planetoid datasets in ``folder`` (those with an ``ind.NAME.graph`` file)."""
    try:
        return sorted(p.name[4:-6] for p in Path(folder).glob("ind.*.graph") if p.is_file())
    except OSError:
        return []


def load_planetoid(folder: str | Path, name: str = "cora") -> Graph:
    """The Planetoid files ``ind.NAME.*`` in ``folder``, with the standard split (Kipf & Welling 2017), read
    as torch_geometric's ``Planetoid`` and Kipf's ``load_data`` read them.

    Node order: the ``allx`` rows are nodes 0..len(allx)-1; row k of ``tx`` / ``ty`` is node
    ``test.index[k]``. The test nodes are meant to fill len(allx)..N-1, but CiteSeer's ``test.index`` has
    gaps (15 nodes isolated in the citation graph were left out of it): as PyG and Kipf do, the nodes span
    len(allx)..max(test.index), and a node in that span that ``test.index`` does not list has an all-zero
    feature row and no label (-1 here; PyG says 0) and belongs to no split. Splits: train the first
    len(y) nodes, val the next 500, test the nodes of ``test.index``; a node without a label is left out
    of its split (it cannot be scored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeepzooError(f"{folder} is not a folder (data.path must be a folder of Planetoid files ind.NAME.*)")

    def path(part):
        return folder / f"ind.{name}.{part}"
    parts = {}
    for part in (*PLANETOID_PARTS, "test.index"):
        if not path(part).is_file():
            others = [n for n in planetoid_names(folder) if n != name]
            every = ",".join((*PLANETOID_PARTS, "test.index"))
            hint = (f"; this folder holds Planetoid {', '.join(others)}: set data.name to {others[0]!r}" if others
                    else f" (a Planetoid dataset is the eight files ind.{name}.{{{every}}})")
            raise DeepzooError(f"{path(part)} is missing{hint}")
    for part in PLANETOID_PARTS:
        parts[part] = _read_pickle(path(part))
    index_path = path("test.index")
    try:
        test_index = np.array([int(line) for line in index_path.read_text().split()], dtype=np.int64)
    except OSError as e:
        raise DeepzooError(f"cannot read {index_path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DeepzooError(f"{index_path}: every line must be a node index ({e})") from None

    m = {p: _matrix(parts[p], path(p)) for p in ("x", "y", "tx", "ty", "allx", "ally")}
    for a, b, what in (("x", "y", "a training node's features and its label"),
                       ("allx", "ally", "a node's features and its label"),
                       ("tx", "ty", "a test node's features and its label")):
        if len(m[a]) != len(m[b]):
            raise DeepzooError(f"{path(a)} has {len(m[a])} rows but {path(b)} has {len(m[b])} (each row pairs "
                               f"{what})")
    if len(m["tx"]) != len(test_index):
        raise DeepzooError(f"{path('tx')} has {len(m['tx'])} rows but {index_path} lists {len(test_index)} nodes "
                           f"(one row per test node)")
    for a, b, what in (("x", "allx", "feature"), ("tx", "allx", "feature"), ("y", "ally", "class"),
                       ("ty", "ally", "class")):
        if m[a].shape[1] != m[b].shape[1]:
            raise DeepzooError(f"{path(a)} has {m[a].shape[1]} {what} columns but {path(b)} has {m[b].shape[1]}")
    n_all, n_train = len(m["allx"]), len(m["y"])
    if n_train > n_all:
        raise DeepzooError(f"{path('y')} has {n_train} rows, more than the {n_all} of {path('allx')} (the training "
                           f"nodes are the first rows of allx)")
    if len(test_index) == 0:
        raise DeepzooError(f"{index_path} lists no test nodes")
    uniq, counts = np.unique(test_index, return_counts=True)
    if (counts > 1).any():
        raise DeepzooError(f"{index_path}: node {uniq[counts > 1][0]} is listed {counts[counts > 1][0]} times")
    if test_index.min() != n_all:
        raise DeepzooError(f"{index_path}: the test nodes must start right after the {n_all} rows of "
                           f"{path('allx')}, at node {n_all}; the smallest is {test_index.min()}")

    # the nodes span allx's rows, then len(allx)..max(test.index); test node test.index[k] takes row k of
    # tx / ty; a node of the span that test.index skips keeps an all-zero row
    n = int(test_index.max()) + 1
    x = np.zeros((n, m["allx"].shape[1]), dtype=np.float32)
    y = np.zeros((n, m["ally"].shape[1]), dtype=np.float32)
    x[:n_all], y[:n_all] = m["allx"], m["ally"]
    x[test_index], y[test_index] = m["tx"], m["ty"]
    labels = np.where(y.sum(1) > 0, y.argmax(1), -1).astype(np.int64)

    graph = parts["graph"]
    if not isinstance(graph, dict):
        raise DeepzooError(f"{path('graph')}: expected a dict of adjacency lists, found {type(graph).__name__}")
    try:
        src = np.array([int(s) for s, nbrs in graph.items() for _ in nbrs], dtype=np.int64)
        dst = np.array([int(d) for nbrs in graph.values() for d in nbrs], dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DeepzooError(f"{path('graph')}: node ids must be integers ({e})") from None
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        bad = int(src.max() if src.max() >= n or src.min() < 0 else dst.max() if dst.max() >= n else dst.min())
        raise DeepzooError(f"{path('graph')}: node {bad} is out of range (allx and test.index give {n} nodes, "
                           f"0..{n - 1})")

    def labelled(idx):
        idx = np.asarray(idx, dtype=np.int64)
        return torch.from_numpy(idx[labels[idx] >= 0])
    splits = {"train": labelled(np.arange(n_train)), "val": labelled(np.arange(n_train, min(n_train + 500, n_all))),
              "test": labelled(np.sort(test_index))}
    missing = n - n_all - len(test_index)
    note = f"; {missing} nodes skipped by test.index: no features, no label" if missing else ""
    return Graph(features=torch.from_numpy(x), edge_index=undirected_edges(src, dst), labels=torch.from_numpy(labels),
                 splits=splits, classes=[str(i) for i in range(y.shape[1])], node_ids=[str(i) for i in range(n)],
                 source=f"Planetoid {name} ({folder}{note})")


def find_planetoid(data_dir=None, sample: bool = False, name: str = "cora") -> Path:
    """The folder of the Planetoid files: the copy shipped in the package when ``sample``, else the
    registry's verified ``planetoid`` folder (``--data-dir``, ``$DEEPZOO_DATA``, the cache)."""
    if sample:
        if name != "cora":
            raise DeepzooError(f"data.sample: the packaged sample is Planetoid Cora only (data.name = {name!r}); "
                               f"give the folder of the ind.{name}.* files as data.path")
        return registry.samples_dir() / "planetoid"
    if name != "cora":
        raise DeepzooError(f"data.name = {name!r}: only Planetoid Cora is registered (deepzoo data fetch "
                           f"planetoid); give the folder of the ind.{name}.* files as data.path")
    return registry.locate("planetoid", data_dir)


# --------------------------------------------------------------------------------------------------
# the user's CSV files

def _rows(path: Path, required: tuple[str, ...]):
    """(line number, row dict) for each data row of a CSV file whose header has the ``required`` columns."""
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise DeepzooError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DeepzooError(f"{path} is empty (expected a header row: {','.join(required)})") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise DeepzooError(f"{path} line 1: {e}") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise DeepzooError(f"{path} line 1: the header needs the column(s) {', '.join(missing)} "
                               f"(found {','.join(header)})")
        try:
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise DeepzooError(f"{path} line {reader.line_num}: {len(row)} fields, the header has {len(header)}")
                yield reader.line_num, header, [c.strip() for c in row]
        except (csv.Error, UnicodeDecodeError) as e:
            raise DeepzooError(f"{path} line {reader.line_num}: {e}") from None


def load_graph_csv(edges: str | Path, labels: str | Path, features: str | Path | None = None,
                   split: tuple = (0.6, 0.2, 0.2), seed: int = 0) -> Graph:
    """The user's graph from CSV files (see the module docstring). Without a ``split`` column the labelled
    nodes are shuffled (``seed``) and cut into train / val / test by the ``split`` fractions."""
    edges, labels = Path(edges), Path(labels)
    ids: dict[str, int] = {}
    x = None
    if features:
        features = Path(features)
        vectors = []
        for line, header, row in _rows(features, ("node",)):
            col = header.index("node")
            node = row[col]
            if node in ids:
                raise DeepzooError(f"{features} line {line}: node {node!r} has a second row")
            try:
                vectors.append([float(v) for i, v in enumerate(row) if i != col])
            except ValueError as e:
                raise DeepzooError(f"{features} line {line}: features must be numbers ({e})") from None
            ids[node] = len(ids)
        if not vectors or not vectors[0]:
            raise DeepzooError(f"{features}: no feature columns (header: node,<feature>,...)")
        x = torch.tensor(vectors, dtype=torch.float32)

    def node_index(node, path, line):
        if node not in ids:
            if features:
                raise DeepzooError(f"{path} line {line}: node {node!r} has no row in {features}")
            ids[node] = len(ids)
        return ids[node]

    src, dst = [], []
    for line, header, row in _rows(edges, ("source", "target")):
        s, t = row[header.index("source")], row[header.index("target")]
        if not s or not t:
            raise DeepzooError(f"{edges} line {line}: empty node id")
        src.append(node_index(s, edges, line))
        dst.append(node_index(t, edges, line))
    if not src:
        raise DeepzooError(f"{edges} has no edges")

    named: dict[int, tuple[str, str | None, int]] = {}
    for line, header, row in _rows(labels, ("node", "label")):
        node, label = row[header.index("node")], row[header.index("label")]
        part = row[header.index("split")].lower() if "split" in header else None
        if part is not None and part not in ("train", "val", "test", ""):
            raise DeepzooError(f"{labels} line {line}: split must be train, val or test, got {part!r}")
        i = node_index(node, labels, line)
        if i in named:
            raise DeepzooError(f"{labels} line {line}: node {node!r} is labelled twice (first on line {named[i][2]})")
        if not label:
            raise DeepzooError(f"{labels} line {line}: empty label")
        named[i] = (label, part or None, line)
    classes = sorted({lab for lab, _, _ in named.values()})
    if len(classes) < 2:
        raise DeepzooError(f"{labels}: node classification needs at least 2 classes, found {classes}")
    n = len(ids)
    y = torch.full((n,), -1, dtype=torch.long)
    for i, (lab, _, _) in named.items():
        y[i] = classes.index(lab)

    if any(part for _, part, _ in named.values()):
        if not all(part for _, part, _ in named.values()):
            raise DeepzooError(f"{labels}: give a split (train/val/test) for every labelled node or for none")
        splits = {k: torch.tensor(sorted(i for i, (_, p, _) in named.items() if p == k), dtype=torch.long)
                  for k in ("train", "val", "test")}
    else:
        if len(split) != 3 or min(split) < 0 or abs(sum(split) - 1) > 1e-6:
            raise DeepzooError(f"data.split must be three fractions (train, val, test) summing to 1, got {list(split)}")
        order = torch.tensor(sorted(named))[torch.randperm(len(named), generator=torch.Generator().manual_seed(seed))]
        a = round(split[0] * len(order))
        b = a + round(split[1] * len(order))
        splits = {"train": order[:a].sort().values, "val": order[a:b].sort().values, "test": order[b:].sort().values}
    if len(splits["train"]) == 0:
        raise DeepzooError(f"{labels}: no training nodes (check the split column or data.split)")
    if x is None:
        x = torch.eye(n)
    return Graph(features=x, edge_index=undirected_edges(np.array(src), np.array(dst)), labels=y, splits=splits,
                 classes=classes, node_ids=list(ids), source=f"{edges.name} + {labels.name}"
                 + (f" + {Path(features).name}" if features else " (one-hot node features)"))


def write_graph_csv(graph: Graph, folder: str | Path, with_features: bool = True) -> dict:
    """Write ``graph`` as the CSV files :func:`load_graph_csv` reads (with a split column); return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = graph.node_ids or [str(i) for i in range(graph.num_nodes)]
    paths = {"edges": folder / "edges.csv", "labels": folder / "labels.csv"}
    e = graph.edge_index
    with open(paths["edges"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target"])
        w.writerows((ids[s], ids[t]) for s, t in e[:, e[0] < e[1]].T.tolist())
    part = {int(i): k for k, idx in graph.splits.items() for i in idx}
    with open(paths["labels"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["node", "label", "split"])
        w.writerows((ids[i], graph.classes[int(graph.labels[i])], part[i]) for i in sorted(part))
    if with_features:
        paths["features"] = folder / "features.csv"
        with open(paths["features"], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["node"] + [f"f{j}" for j in range(graph.features.shape[1])])
            for i, row in enumerate(graph.features.tolist()):
                w.writerow([ids[i]] + [f"{v:g}" for v in row])
    return paths


# --------------------------------------------------------------------------------------------------
# a graph kept in a run folder (deepzoo/artefacts.py): the GCN is transductive, so a trained model
# predicts only with the graph it was trained on

def _index(t: torch.Tensor) -> torch.Tensor:
    """Indices as int32 when they fit (half the bytes), else int64."""
    t = t.detach().cpu()
    return t.to(torch.int32) if t.numel() == 0 or (int(t.min()) >= -2**31 and int(t.max()) < 2**31) else t.long()


def graph_tensors(graph: Graph) -> tuple[dict, dict]:
    """(tensors, facts) that :func:`graph_from_tensors` turns back into ``graph``, exactly.

    The features are kept in CSR form (row pointers, column indices, values) when that is smaller than the
    dense matrix (Cora's bag of words is 1.3 % non-zero: 0.4 MB instead of 15.5 MB), else dense; indices
    are int32 where they fit. The facts (JSON) hold the class names and node ids (null when they are just
    0..N-1, as Planetoid's are)."""
    x = graph.features.detach().cpu()
    n, f = x.shape
    tensors = {"edge_index": _index(graph.edge_index), "labels": _index(graph.labels)}
    tensors.update({f"split.{k}": _index(v) for k, v in graph.splits.items()})
    nnz = int((x != 0).sum())
    if nnz * 2 < n * f:          # CSR: ~2 numbers per non-zero, against 1 per entry
        csr = x.to_sparse_csr()
        tensors.update({"features.crow": _index(csr.crow_indices()), "features.col": _index(csr.col_indices()),
                        "features.values": csr.values().contiguous()})
        layout = "csr"
    else:
        tensors["features"] = x.contiguous()
        layout = "dense"
    ids = [str(i) for i in graph.node_ids] if graph.node_ids else None
    facts = {"nodes": n, "features": f, "layout": layout, "nonzero": nnz, "dtype": str(x.dtype).removeprefix("torch."),
             "edges": int(graph.edge_index.shape[1]) // 2, "splits": list(graph.splits),
             "classes": [str(c) for c in graph.classes],
             "node_ids": None if ids == [str(i) for i in range(n)] else ids}
    return tensors, facts


def graph_from_tensors(tensors: dict, facts: dict, where: str, source: str = "") -> Graph:
    """The :class:`Graph` that :func:`graph_tensors` wrote; any inconsistency is one error naming ``where``."""
    try:
        n, f = int(facts["nodes"]), int(facts["features"])
        if facts["layout"] == "csr":
            crow, col, values = (tensors[f"features.{k}"] for k in ("crow", "col", "values"))
            with warnings.catch_warnings():     # "Sparse CSR tensor support is in beta": noise at predict time
                warnings.filterwarnings("ignore", "Sparse CSR tensor support", UserWarning)
                x = torch.sparse_csr_tensor(crow.long(), col.long(), values, (n, f), check_invariants=True).to_dense()
        else:
            x = tensors["features"]
        edge_index, labels = tensors["edge_index"].long(), tensors["labels"].long()
        splits = {k: tensors[f"split.{k}"].long() for k in facts["splits"]}
        classes, ids = list(facts["classes"]), facts["node_ids"]
        node_ids = [str(i) for i in range(n)] if ids is None else list(ids)
        ok = (tuple(x.shape) == (n, f) and edge_index.ndim == 2 and edge_index.shape[0] == 2
              and labels.shape == (n,) and len(node_ids) == n
              and (edge_index.numel() == 0 or (int(edge_index.min()) >= 0 and int(edge_index.max()) < n))
              and (n == 0 or int(labels.max()) < len(classes))
              and all(v.numel() == 0 or (int(v.min()) >= 0 and int(v.max()) < n) for v in splits.values()))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DeepzooError(f"{where} is damaged or incomplete ({type(e).__name__}: {e})") from None
    if not ok:
        raise DeepzooError(f"{where}: the stored graph is inconsistent (shapes or indices out of range)")
    return Graph(features=x, edge_index=edge_index, labels=labels, splits=splits, classes=classes,
                 node_ids=node_ids, source=source)
