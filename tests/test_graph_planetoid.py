"""The Planetoid family (Cora, CiteSeer, PubMed in the ``ind.NAME.*`` files): read as torch_geometric's
``read_planetoid_data`` reads them, including CiteSeer's test index with gaps, on small fixtures written
here the way the originals were (scipy CSR matrices, numpy arrays and an adjacency dict, pickled with
protocol 2); the errors for broken folders; the GCN recipe on such a folder through data.path + data.name."""

import pickle
from collections import defaultdict

import numpy as np
import pytest
import torch

from deepzoo.data import graph as g
from deepzoo.errors import DeepzooError

QUIET = dict(progress=False, log=lambda *_: None)


def write_planetoid(folder, name, *, n_train=20, n_all=540, span=60, skip=(3, 17, 18, 41), features=12,
                    classes=4, binary=True, seed=0):
    """A Planetoid folder ``ind.NAME.*``: nodes 0..n_all-1 in allx (the first n_train also in x / y), test
    nodes n_all..n_all+span-1 listed in test.index in a shuffled order except the offsets in ``skip`` (the
    gaps, as in CiteSeer); returns the node indices that test.index leaves out."""
    sp = pytest.importorskip("scipy.sparse", reason="scipy writes the fixture's CSR matrices")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = n_all + span
    assert span - 1 not in skip                        # the last node is listed: it fixes the span
    x = (rng.random((n, features)) < 0.25) * (1.0 if binary else rng.random((n, features)))
    x[5] = 0                                           # a training node without words (a zero row stays so)
    labels = rng.integers(0, classes, n)
    onehot = np.eye(classes, dtype=np.int64)[labels]
    test = np.array([n_all + k for k in range(span) if k not in skip])
    order = rng.permutation(test)                      # tx row k is node order[k]

    def csr(rows):
        return sp.csr_matrix(x[rows].astype(np.float32))
    parts = {"x": csr(np.arange(n_train)), "y": onehot[:n_train], "allx": csr(np.arange(n_all)),
             "ally": onehot[:n_all], "tx": csr(order), "ty": onehot[order]}
    adj = defaultdict(list)
    for s, t in rng.integers(0, n, (3 * n, 2)):
        adj[int(s)].append(int(t))
        adj[int(t)].append(int(s))
    adj[7].extend([7, 8, 8])                           # a self-loop and a duplicate, as in the originals
    adj[9].append(10)                                  # one direction only
    missing = [n_all + k for k in skip]
    for node in missing:
        adj.pop(node, None)
        for nbrs in adj.values():
            while node in nbrs:
                nbrs.remove(node)
    if missing:
        adj[missing[0]] = [missing[0]]                 # an isolated node: a self-loop only
        adj[missing[-1]] = [int(test[0])]              # a skipped node still has an edge
        adj[int(test[0])].append(missing[-1])
    parts["graph"] = adj
    for part, obj in parts.items():
        (folder / f"ind.{name}.{part}").write_bytes(pickle.dumps(obj, protocol=2))
    (folder / f"ind.{name}.test.index").write_text("".join(f"{i}\n" for i in order))
    return missing


def undirected(edge_index: torch.Tensor) -> set:
    return {(min(s, t), max(s, t)) for s, t in edge_index.T.tolist()}


def assert_same_as_pyg(graph, data, missing=()):
    assert torch.equal(graph.features, data.x)         # identical, not close
    labelled = graph.labels >= 0
    assert torch.equal(graph.labels[labelled], data.y[labelled])
    assert (~labelled).nonzero().view(-1).tolist() == sorted(missing)
    assert (data.y[~labelled] == 0).all()              # PyG's argmax of an all-zero row; ours: -1, no label
    assert not graph.features[list(missing)].any()
    assert undirected(graph.edge_index) == undirected(data.edge_index)
    for split, mask in (("train", data.train_mask), ("val", data.val_mask), ("test", data.test_mask)):
        ours = torch.zeros(graph.num_nodes, dtype=torch.bool)
        ours[graph.splits[split]] = True
        assert torch.equal(ours, mask), split


# PyG fills the gaps of test.index only for the name "citeseer" (as Kipf's load_data does); the others
# have none. PubMed's features are TF-IDF weights (floats), the others' 0/1.
@pytest.mark.parametrize("name, skip, binary", [("citeseer", (3, 17, 18, 41), True), ("cora", (), True),
                                                ("pubmed", (), False)])
def test_planetoid_fixture_reads_as_torch_geometric_reads_it(tmp_path, name, skip, binary):
    pyg_io = pytest.importorskip("torch_geometric.io", reason="torch_geometric is not installed (pip install "
                                 "torch_geometric): it is the reference reader")
    missing = write_planetoid(tmp_path, name, skip=skip, binary=binary)
    graph = g.load_planetoid(tmp_path, name)
    data = pyg_io.read_planetoid_data(str(tmp_path), name)
    assert graph.num_nodes == data.num_nodes == 600
    assert_same_as_pyg(graph, data, missing)
    sizes = {k: len(v) for k, v in graph.splits.items()}
    assert sizes == {"train": 20, "val": 500, "test": 60 - len(skip)}
    for node in missing:                                # in no split
        assert all(node not in v.tolist() for v in graph.splits.values())
    if missing:
        assert f"{len(missing)} nodes skipped by test.index" in graph.source


def test_shared_cora_reads_as_torch_geometric_reads_it(shared_data):
    pyg_io = pytest.importorskip("torch_geometric.io", reason="torch_geometric is not installed (pip install "
                                 "torch_geometric): it is the reference reader")
    folder = shared_data / "planetoid"
    assert_same_as_pyg(g.load_planetoid(folder, "cora"), pyg_io.read_planetoid_data(str(folder), "cora"))


def _replace(folder, name, part, obj):
    (folder / f"ind.{name}.{part}").write_bytes(pickle.dumps(obj, protocol=2))


def _error(folder, name="citeseer") -> str:
    with pytest.raises(DeepzooError) as e:
        g.load_planetoid(folder, name)
    assert "\n" not in str(e.value)                     # one line
    return str(e.value)


def test_planetoid_errors_name_the_file(tmp_path):
    sp = pytest.importorskip("scipy.sparse", reason="scipy writes the fixture's CSR matrices")
    f = tmp_path / "citeseer"
    write_planetoid(f, "citeseer")
    text = (f / "ind.citeseer.test.index").read_text()
    # a name that does not match the files
    assert _error(f, "pubmed") == (f"{f}/ind.pubmed.x is missing; this folder holds Planetoid citeseer: "
                                   f"set data.name to 'citeseer'")
    assert "is not a folder" in _error(tmp_path / "nowhere")
    # one row too few in tx against test.index; ty against tx; ally against allx
    _replace(f, "citeseer", "tx", sp.csr_matrix(np.zeros((55, 12), np.float32)))
    assert _error(f) == f"{f}/ind.citeseer.tx has 55 rows but {f}/ind.citeseer.ty has 56 (each row pairs a test " \
                        f"node's features and its label)"
    _replace(f, "citeseer", "ty", np.zeros((55, 4), np.int64))
    assert _error(f) == (f"{f}/ind.citeseer.tx has 55 rows but {f}/ind.citeseer.test.index lists 56 nodes "
                         f"(one row per test node)")
    write_planetoid(f, "citeseer")
    _replace(f, "citeseer", "ally", np.zeros((539, 4), np.int64))
    assert _error(f).startswith(f"{f}/ind.citeseer.allx has 540 rows but {f}/ind.citeseer.ally has 539")
    write_planetoid(f, "citeseer")
    _replace(f, "citeseer", "tx", sp.csr_matrix(np.zeros((56, 11), np.float32)))
    assert _error(f) == f"{f}/ind.citeseer.tx has 11 feature columns but {f}/ind.citeseer.allx has 12"
    write_planetoid(f, "citeseer")
    # test.index: a node twice; not starting right after allx; not numbers
    (f / "ind.citeseer.test.index").write_text(text.replace(text.split()[0], text.split()[1]))
    assert "ind.citeseer.test.index: node" in _error(f) and "is listed 2 times" in _error(f)
    (f / "ind.citeseer.test.index").write_text(text.replace("540\n", "9999\n"))
    assert _error(f) == (f"{f}/ind.citeseer.test.index: the test nodes must start right after the 540 rows of "
                         f"{f}/ind.citeseer.allx, at node 540; the smallest is 541")
    (f / "ind.citeseer.test.index").write_text(text + "node\n")
    assert _error(f).startswith(f"{f}/ind.citeseer.test.index: every line must be a node index")
    (f / "ind.citeseer.test.index").write_text(text)
    _replace(f, "citeseer", "graph", {0: [1], 1: [600]})
    assert _error(f) == (f"{f}/ind.citeseer.graph: node 600 is out of range (allx and test.index give 600 "
                         f"nodes, 0..599)")
    (f / "ind.citeseer.graph").unlink()
    assert _error(f).startswith(f"{f}/ind.citeseer.graph is missing (a Planetoid dataset is the eight files")


def test_unpickler_takes_protocol_2_bytes_but_no_other_codec(tmp_path):
    import codecs
    (tmp_path / "a").write_bytes(pickle.dumps(np.arange(3), protocol=2))   # bytes via _codecs.encode
    assert g._read_pickle(tmp_path / "a").tolist() == [0, 1, 2]

    class Rot13:
        def __reduce__(self):
            return (codecs.encode, ("abc", "rot13"))
    (tmp_path / "b").write_bytes(pickle.dumps(Rot13(), protocol=2))
    with pytest.raises(DeepzooError, match="refusing _codecs.encode"):
        g._read_pickle(tmp_path / "b")


def test_planetoid_name_and_sample_errors(tmp_path):
    with pytest.raises(DeepzooError, match=r"data.name = 'pubmed': only Planetoid Cora is registered .* data.path"):
        g.find_planetoid(None, False, "pubmed")
    with pytest.raises(DeepzooError, match="data.sample: the packaged sample is Planetoid Cora only"):
        g.find_planetoid(None, True, "citeseer")


def test_reference_follows_data_name():
    from deepzoo.recipes import get
    from deepzoo.recipes.graph import reference_for
    cfg = get("gcn-cora").full_defaults()
    for name, value in (("cora", 0.815), ("citeseer", 0.703), ("CiteSeer", 0.703), ("pubmed", 0.790)):
        ref = reference_for({**cfg, "data": {**cfg["data"], "name": name}})
        assert ref.value == value and "Kipf & Welling 2017, Table 2" in ref.source
    assert reference_for({**cfg, "data": {**cfg["data"], "name": "mine"}}).value is None
    assert reference_for(get("gcn-graph").full_defaults(), "csv") == "csv"
    assert get("gcn-cora").reference == reference_for(cfg)


def test_gcn_trains_on_a_planetoid_folder_with_gaps(tmp_path):
    """data.path + data.name: the recipe reads the folder, trains, and keeps the graph (gaps included)
    in the run, so the run predicts with no dataset."""
    from deepzoo.train.run import predict, train
    missing = write_planetoid(tmp_path / "data", "citeseer")
    s = train("gcn-cora", out=tmp_path / "run", epochs=5, sets=[f"data.path={tmp_path / 'data'}",
                                                                   "data.name=citeseer"], **QUIET)
    assert s["epochs_run"] == 5 and 0 <= s["results"]["test_acc"] <= 1
    assert s["reference"]["value"] == 0.703 and "CiteSeer" in s["reference"]["source"]   # follows data.name
    (tmp_path / "data" / "ind.citeseer.graph").unlink()   # the run keeps its own copy of the graph
    out = predict(tmp_path / "run", [str(missing[0]), "540"])
    assert "label" not in out[0] and out[1]["split"] == "test"
