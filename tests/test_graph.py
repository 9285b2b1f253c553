"""Graph networks: the normalised adjacency and the graph convolution against the dense formula (and
torch_geometric's GCNConv when it is installed), the Planetoid and CSV loaders, the GCN recipes."""

import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

from deepzoo.data import graph as g
from deepzoo.data import registry
from deepzoo.errors import DeepzooError
from deepzoo.models.gcn import GCN
from deepzoo.nn.graph import GraphConv, SparseMatrix, normalised_adjacency

SAMPLE = registry.samples_dir() / "planetoid"
# Float64 comparisons of the sparse graph convolution with the dense formula (and torch_geometric): the
# same sums in other orders (CSR kernels vs dense matmuls, per CPU). In float64 (u = 1.1e-16) the longest
# sums here (weight gradients over 12 nodes, products of <= 12 neighbours: ~150 terms of size <= ~5)
# differ between any two orders by at most 2 * 150 * u * 750 ~ 2.5e-11 (seen: <= 9e-16); a missing
# D^-1/2, self-loop or transpose is off by > 1e-2.
TOL = dict(atol=1e-10, rtol=1e-10)


def random_graph(n=12, e=30, seed=0):
    gen = torch.Generator().manual_seed(seed)
    src, dst = torch.randint(0, n - 1, (2, e), generator=gen)   # node n-1 stays isolated
    return g.undirected_edges(src.numpy(), dst.numpy()), n


def dense_adjacency(edge_index, n):
    """Â = D̃^{-1/2} (A + I) D̃^{-1/2}, written with dense matrices."""
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[0], edge_index[1]] = 1.0
    a = a + torch.eye(n, dtype=torch.float64)
    d = a.sum(1).pow(-0.5)
    return d[:, None] * a * d[None, :]


def test_normalised_adjacency_equals_dense_formula():
    edges, n = random_graph()
    adj = normalised_adjacency(edges, n, dtype=torch.float64)
    torch.testing.assert_close(adj.dense(), dense_adjacency(edges, n), **TOL)
    assert adj.dense()[n - 1, n - 1] == 1.0           # an isolated node keeps only itself


def test_undirected_edges_symmetric_no_loops_no_duplicates():
    e = g.undirected_edges(np.array([0, 1, 1, 2, 3]), np.array([1, 0, 1, 3, 2]))
    assert e.tolist() == [[0, 1, 2, 3], [1, 0, 3, 2]]


@pytest.mark.parametrize("out", [3, 9])        # H W first (narrowing) and (Â H) W first (widening)
def test_graph_conv_outputs_and_gradients_equal_dense_formula(out):
    edges, n = random_graph()
    torch.manual_seed(0)
    conv = GraphConv(5, out).double()
    torch.nn.init.normal_(conv.bias)
    h = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    y = conv(normalised_adjacency(edges, n, dtype=torch.float64), h)
    w, b = conv.weight.detach().clone().requires_grad_(), conv.bias.detach().clone().requires_grad_()
    h2 = h.detach().clone().requires_grad_()
    y_ref = dense_adjacency(edges, n) @ h2 @ w + b
    torch.testing.assert_close(y, y_ref, **TOL)
    grad = torch.randn_like(y)
    y.backward(grad)
    y_ref.backward(grad)
    for mine, ref in ((h.grad, h2.grad), (conv.weight.grad, w.grad), (conv.bias.grad, b.grad)):
        torch.testing.assert_close(mine, ref, **TOL)


def test_sparse_input_with_dropout_matches_dense_product_with_the_same_mask():
    torch.manual_seed(1)
    x = (torch.rand(7, 6, dtype=torch.float64) < 0.3) * torch.rand(7, 6, dtype=torch.float64)
    s = SparseMatrix(x)
    assert torch.equal(s.dense(), x)                    # a change of storage, no arithmetic
    w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(5)
    y = s.matmul(w, dropout=0.5)
    torch.manual_seed(5)
    keep = torch.rand_like(s.values) >= 0.5            # the same draw: which stored values survive
    dropped = torch.sparse_csr_tensor(s.crow, s.col, s.values * keep * 2.0, s.shape,
                                      check_invariants=False).to_dense()
    w2 = w.detach().clone().requires_grad_()
    y_ref = dropped @ w2
    torch.testing.assert_close(y, y_ref, **TOL)
    grad = torch.randn_like(y)
    y.backward(grad)
    y_ref.backward(grad)
    torch.testing.assert_close(w.grad, w2.grad, **TOL)  # the backward used the transpose of the same mask
    assert 0 < int(keep.sum()) < keep.numel()


def test_sparse_and_dense_features_give_the_same_model():
    edges, n = random_graph(n=20, e=40)
    x = (torch.rand(20, 30) < 0.05).double()          # sparse enough to be stored sparse
    torch.manual_seed(0)
    # float64: a CSR product against a dense one, two layers deep, sums in other orders (see TOL)
    sparse = GCN(x, edges, classes=3).double().eval()
    assert isinstance(sparse.x, SparseMatrix)
    dense = GCN(x, edges, classes=3, sparse_features=False).double().eval()
    assert isinstance(dense.x, torch.Tensor)
    dense.load_state_dict(sparse.state_dict())
    torch.testing.assert_close(sparse(), dense(), **TOL)
    assert set(sparse.state_dict()) == {"convs.0.weight", "convs.0.bias", "convs.1.weight", "convs.1.bias"}


def test_graph_conv_equals_torch_geometric_gcnconv():
    pyg = pytest.importorskip("torch_geometric.nn", reason="torch_geometric is not installed")
    edges, n = random_graph()
    torch.manual_seed(0)
    ref = pyg.GCNConv(5, 4).double()
    conv = GraphConv(5, 4).double()
    with torch.no_grad():
        conv.weight.copy_(ref.lin.weight.T)
        conv.bias.copy_(torch.randn(4))
        ref.bias.copy_(conv.bias)
    h = torch.randn(n, 5, dtype=torch.float64)
    torch.testing.assert_close(conv(normalised_adjacency(edges, n, dtype=torch.float64), h), ref(h, edges), **TOL)


# --------------------------------------------------------------------------------------------------
# loaders

def check_cora(graph):
    assert graph.features.shape == (2708, 1433)
    assert graph.edge_index.shape == (2, 10556)        # 5,278 undirected edges, both directions
    assert [len(graph.splits[k]) for k in ("train", "val", "test")] == [140, 500, 1000]
    assert graph.splits["train"].tolist() == list(range(140))
    assert graph.splits["test"].min() == 1708 and graph.splits["test"].max() == 2707
    assert torch.bincount(graph.labels).tolist() == [351, 217, 418, 818, 426, 298, 180]
    assert set(graph.features.unique().tolist()) == {0.0, 1.0}


def test_packaged_cora_is_the_registry_copy_and_loads():
    spec = {f.name: f.sha256 for f in registry.get("planetoid").files}
    for name, sha in spec.items():
        assert hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest() == sha, name
    check_cora(g.load_planetoid(SAMPLE))


def test_shared_cora_loads(shared_data):
    check_cora(g.load_planetoid(registry.locate("planetoid", shared_data)))


def test_planetoid_unpickler_refuses_code(tmp_path):
    for name in os.listdir(SAMPLE):
        (tmp_path / name).write_bytes((SAMPLE / name).read_bytes())

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    (tmp_path / "ind.cora.x").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DeepzooError, match="ind.cora.x: refusing to load"):
        g.load_planetoid(tmp_path)
    (tmp_path / "ind.cora.x").write_bytes((SAMPLE / "ind.cora.x").read_bytes())
    (tmp_path / "ind.cora.graph").unlink()
    with pytest.raises(DeepzooError, match="ind.cora.graph is missing"):
        g.load_planetoid(tmp_path)


def test_csv_round_trip_gives_the_same_graph(tmp_path):
    cora = g.load_planetoid(SAMPLE)
    paths = g.write_graph_csv(cora, tmp_path)
    back = g.load_graph_csv(paths["edges"], paths["labels"], paths["features"])
    assert back.node_ids == cora.node_ids                # the features file fixes the node order
    assert torch.equal(back.edge_index, cora.edge_index)
    assert torch.equal(back.features, cora.features)
    for k in ("train", "val", "test"):
        assert torch.equal(back.splits[k], cora.splits[k])
        assert [back.classes[i] for i in back.labels[back.splits[k]]] == \
               [cora.classes[i] for i in cora.labels[cora.splits[k]]]


def write(path, text):
    path.write_text(text)
    return path


def test_csv_without_features_uses_one_hot_ids_and_random_split(tmp_path):
    edges = write(tmp_path / "e.csv", "source,target\na,b\nb,c\nc,d\nd,a\ne,a\n")
    labels = write(tmp_path / "l.csv", "node,label\na,x\nb,y\nc,x\nd,y\ne,x\n")
    graph = g.load_graph_csv(edges, labels, split=(0.6, 0.2, 0.2), seed=3)
    assert graph.node_ids == ["a", "b", "c", "d", "e"] and graph.classes == ["x", "y"]
    assert torch.equal(graph.features, torch.eye(5))
    assert sorted(torch.cat(list(graph.splits.values())).tolist()) == [0, 1, 2, 3, 4]
    assert [len(v) for v in graph.splits.values()] == [3, 1, 1]


@pytest.mark.parametrize("edges, labels, features, message", [
    ("source,target\na,b\nb,zz\n", "node,label\na,x\nb,y\n", "node,f\na,1\nb,2\n",
     r"e.csv line 3: node 'zz' has no row in .*f.csv"),
    ("src,dst\na,b\n", "node,label\na,x\nb,y\n", None, r"e.csv line 1: the header needs the column\(s\) source, target"),
    ("source,target\na,b\n", "node,label\na,x\na,y\n", None, r"l.csv line 3: node 'a' is labelled twice"),
    ("source,target\na,b\n", "node,label,split\na,x,train\nb,y,dev\n", None, r"l.csv line 3: split must be"),
    ("source,target\na,b\n", "node,label\na,x\nb,x\n", None, r"at least 2 classes"),
    ("source,target\na,b\n", "node,label\na,x\nb,y\n", "node,f\na,1\nb,oops\n", r"f.csv line 3: features must be numbers"),
    ("source,target\na,b,c\n", "node,label\na,x\nb,y\n", None, r"e.csv line 2: 3 fields, the header has 2"),
])
def test_csv_errors_name_file_and_line(tmp_path, edges, labels, features, message):
    e, lab = write(tmp_path / "e.csv", edges), write(tmp_path / "l.csv", labels)
    f = write(tmp_path / "f.csv", features) if features else None
    with pytest.raises(DeepzooError, match=message):
        g.load_graph_csv(e, lab, f)


# --------------------------------------------------------------------------------------------------
# recipes

def test_gcn_cora_reaches_the_paper_figure_on_the_packaged_cora(tmp_path):
    """The packaged copy is the whole of Cora: 200 epochs (the paper's budget) through the engine."""
    from deepzoo.train.run import train
    s = train("gcn-cora", out=tmp_path / "run", sets=["data.sample=true"], progress=False, log=lambda *_: None)
    assert s["epochs_run"] == 200
    assert s["results"]["test_acc"] >= 0.79          # one seed; benchmarks/gcn.py reports the 10-seed mean
    ckpt = next((tmp_path / "run" / "checkpoints").glob("*/model.safetensors"))
    assert ckpt.stat().st_size < 200_000              # the weights only: the graph is not in the checkpoint


def test_gcn_graph_predict_and_plot(tmp_path):
    from deepzoo.train.run import predict, train
    train("gcn-graph", preset="quick", out=tmp_path / "run", progress=False, log=lambda *_: None)
    node, plot = predict(tmp_path / "run", ["33", str(tmp_path / "emb.png")])
    assert node["class"] in ("Mr. Hi", "Officer") and node["label"] == "Officer"
    assert abs(sum(node["probabilities"].values()) - 1) < 1e-3
    assert (tmp_path / "emb.png").stat().st_size > 10_000 and plot["projection"] == "t-SNE"
    with pytest.raises(DeepzooError, match="no node 'nobody'"):
        predict(tmp_path / "run", ["nobody"])


def test_bad_graph_config_fails_before_a_folder_is_made(tmp_path):
    from deepzoo.train.run import train
    with pytest.raises(DeepzooError, match="model.dropout must be in"):
        train("gcn-cora", preset="quick", out=tmp_path / "run", sets=["model.dropout=1.5"], progress=False)
    with pytest.raises(DeepzooError, match="no such file|cannot read"):
        train("gcn-graph", preset="quick", out=tmp_path / "run", sets=[f"data.edges={tmp_path}/none.csv"],
              progress=False)
    assert not (tmp_path / "run").exists()
