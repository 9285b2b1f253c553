"""The NumPy autograd engine against PyTorch: every operation's value and gradient on random inputs
(broadcasting included), a finite-difference check, the layers, and the optimisers step for step."""

import numpy as np
import pytest
import torch

from deepzoo.autograd import Tensor
from deepzoo.autograd import functional as F
from deepzoo.autograd import nn

RNG = np.random.default_rng(0)


def pair(*shape, positive=False):
    a = RNG.normal(size=shape)
    if positive:
        a = np.abs(a) + 0.5
    return Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def check(ours, theirs, inputs):
    """Same value; then the same gradient for every input, for a random upstream gradient.

    Float64 throughout (u = 1.1e-16): NumPy's BLAS and torch's kernels sum in different orders, per CPU.
    Values sum at most 27 terms (conv): any two orders agree within 2 * 27 * u * 25 ~ 1.5e-13. The
    longest gradient sums (conv weight gradients over 2 x 7 x 6 = 84 positions, sum|terms| <= ~100)
    agree within 2 * 84 * u * 100 ~ 2e-12, hence atol 1e-11 there (seen: <= 4e-15 for both). A wrong
    derivative or broadcast reduction is off by > 1e-2."""
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = RNG.normal(size=ours.shape)
    ours.backward(g)
    theirs.backward(torch.tensor(g))
    for mine, ref in inputs:
        np.testing.assert_allclose(mine.grad, ref.grad.numpy(), rtol=1e-9, atol=1e-11)


UNARY = {
    "exp": (lambda x: x.exp(), torch.exp, False),
    "log": (lambda x: x.log(), torch.log, True),
    "relu": (lambda x: x.relu(), torch.relu, False),
    "tanh": (lambda x: x.tanh(), torch.tanh, False),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, False),
    "neg": (lambda x: -x, lambda x: -x, False),
    "pow": (lambda x: x ** 3.0, lambda x: x ** 3.0, False),
    "sqrt": (lambda x: x ** 0.5, torch.sqrt, True),
    "log_softmax": (lambda x: x.log_softmax(1), lambda x: torch.log_softmax(x, 1), False),
    "sum_all": (lambda x: x.sum(), lambda x: x.sum(), False),
    "sum_axis0": (lambda x: x.sum(axis=0), lambda x: x.sum(0), False),
    "sum_keepdims": (lambda x: x.sum(axis=1, keepdims=True), lambda x: x.sum(1, keepdim=True), False),
    "mean_axis1": (lambda x: x.mean(axis=1), lambda x: x.mean(1), False),
    "max_axis1": (lambda x: x.max(axis=1), lambda x: x.max(1).values, False),
    "reshape": (lambda x: x.reshape(2, 6), lambda x: x.reshape(2, 6), False),
    "transpose": (lambda x: x.T, lambda x: x.T, False),
    "index_rows": (lambda x: x[np.array([0, 2, 2, 1])], lambda x: x[torch.tensor([0, 2, 2, 1])], False),
    "index_pairs": (lambda x: x[np.arange(3), np.array([1, 0, 3])],
                    lambda x: x[torch.arange(3), torch.tensor([1, 0, 3])], False),
    "slice": (lambda x: x[1:, ::2], lambda x: x[1:, ::2], False),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_operations_equal_torch(name):
    ours_fn, torch_fn, positive = UNARY[name]
    a, ta = pair(3, 4, positive=positive)
    check(ours_fn(a), torch_fn(ta), [(a, ta)])


SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((3, 4), ()), ((1,), (2, 3))]
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b}


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_binary_operations_with_broadcasting_equal_torch(op, shapes):
    (a, ta), (b, tb) = pair(*shapes[0]), pair(*shapes[1], positive=op == "div")
    check(BINARY[op](a, b), BINARY[op](ta, tb), [(a, ta), (b, tb)])


def test_scalars_on_either_side():
    a, ta = pair(2, 3, positive=True)
    check(2.0 - a * 3.0 + 1.0 / a, 2.0 - ta * 3.0 + 1.0 / ta, [(a, ta)])


@pytest.mark.parametrize("right", [(4, 5), (4,)])
def test_matmul_equals_torch(right):
    (a, ta), (b, tb) = pair(3, 4), pair(*right)
    check(a @ b, ta @ tb, [(a, ta), (b, tb)])


def test_a_reused_node_sums_its_gradients():
    a, ta = pair(3)
    check(a * a + a.exp() * a, ta * ta + ta.exp() * ta, [(a, ta)])


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 1)])
def test_conv2d_by_im2col_equals_torch(stride, padding):
    (x, tx), (w, tw), (b, tb) = pair(2, 3, 7, 6), pair(4, 3, 3, 3), pair(4)
    check(F.conv2d(x, w, b, stride, padding), torch.nn.functional.conv2d(tx, tw, tb, stride, padding),
          [(x, tx), (w, tw), (b, tb)])


def test_max_pool2d_equals_torch():
    x, tx = pair(2, 3, 6, 5)                              # 5 columns: the last is dropped, as in torch
    check(F.max_pool2d(x, 2), torch.nn.functional.max_pool2d(tx, 2), [(x, tx)])


def test_cross_entropy_equals_torch():
    x, tx = pair(5, 4)
    y = np.array([0, 3, 1, 1, 2])
    check(F.cross_entropy(x, y), torch.nn.functional.cross_entropy(tx, torch.tensor(y)), [(x, tx)])


def test_log_softmax_is_stable_for_large_inputs():
    x = Tensor(np.array([[1000.0, 0.0, -1000.0]]), requires_grad=True)
    out = x.log_softmax(1)
    assert np.isfinite(out.data).all() and out.data[0, 0] == 0.0


def test_finite_differences_of_a_small_network():
    """Central differences (h = 1e-6, float64) on every weight of a conv + pool + MLP + cross-entropy net."""
    rng = np.random.default_rng(1)
    conv, mlp = nn.Conv2d(1, 2, 3, rng, padding=1, dtype=np.float64), nn.MLP([2 * 3 * 3, 5, 3], rng, dtype=np.float64)
    x, y = Tensor(rng.normal(size=(4, 1, 6, 6))), np.array([0, 2, 1, 2])

    def loss():
        h = F.max_pool2d(conv(x).tanh(), 2)
        return F.cross_entropy(mlp(h.reshape(4, -1)), y)
    params = conv.parameters() + mlp.parameters()
    loss().backward()
    for p in params:
        numeric = np.zeros_like(p.data)
        for i in np.ndindex(p.shape):
            old = p.data[i]
            p.data[i] = old + 1e-6
            up = loss().item()
            p.data[i] = old - 1e-6
            down = loss().item()
            p.data[i] = old
            numeric[i] = (up - down) / 2e-6
        # central differences in float64: truncation h^2 |f'''| / 6 ~ 1e-12; rounding ~ (a few ulps of a
        # loss ~1, ~1e-15) / h ~ 1e-9 whatever the CPU's BLAS (seen: 2e-10); a wrong gradient is off by
        # much more than rtol 1e-5 of it
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-5, atol=1e-8)


def test_linear_layers_equal_torch_modules_with_the_same_weights():
    rng = np.random.default_rng(2)
    mlp = nn.MLP([6, 5, 3], rng, dtype=np.float64)
    ref = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for mine, theirs in zip(mlp.layers, (ref[0], ref[2])):
            theirs.weight.copy_(torch.tensor(mine.weight.data))
            theirs.bias.copy_(torch.tensor(mine.bias.data))
    x = rng.normal(size=(4, 6))
    y = np.array([0, 1, 2, 1])
    loss = F.cross_entropy(mlp(Tensor(x)), y)
    ref_loss = torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y))
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-12)   # float64, sums of <= 6 terms: ~1e-16
    loss.backward()
    ref_loss.backward()
    for mine, theirs in zip(mlp.parameters(), ref.parameters()):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-10)   # (seen: <= 6e-17)
    assert list(mlp.named_parameters()) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]


@pytest.mark.parametrize("kind", ["sgd", "sgd-momentum", "adam"])
def test_optimisers_follow_torch_step_for_step(kind):
    rng = np.random.default_rng(3)
    start = rng.normal(size=(3, 2))
    p, tp = Tensor(start.copy(), requires_grad=True), torch.tensor(start.copy(), requires_grad=True)
    if kind == "adam":
        opt, ref = nn.Adam([p], lr=0.05, weight_decay=0.01), torch.optim.Adam([tp], lr=0.05, weight_decay=0.01)
    else:
        m = 0.9 if kind == "sgd-momentum" else 0.0
        opt, ref = nn.SGD([p], lr=0.1, momentum=m, weight_decay=0.01), torch.optim.SGD([tp], lr=0.1, momentum=m,
                                                                                        weight_decay=0.01)
    for _ in range(5):
        opt.zero_grad()
        ref.zero_grad()
        ((p * p).sum() + p.sum()).backward()
        ((tp * tp).sum() + tp.sum()).backward()
        opt.step()
        ref.step()
    # float64, elementwise updates on values ~0.5..2: a few ulps per step, 5 steps (seen: 4e-16)
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10)


def test_backward_of_a_non_scalar_needs_a_gradient():
    with pytest.raises(ValueError, match="needs grad="):
        Tensor(np.ones(3), requires_grad=True).exp().backward()


# --------------------------------------------------------------------------------------------------
# the graph, the command line and the recipe

def test_explain_graph_gives_micrographs_neuron_gradients():
    from deepzoo.autograd import graph
    out, leaves = graph.build(graph.NEURON, graph.parse_values(graph.NEURON_VALUES))
    assert out.item() == pytest.approx(0.7071, abs=1e-4)
    expected = {"x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0, "b": 0.5}
    assert {k: round(float(v.grad), 4) for k, v in leaves.items()} == expected
    text = graph.to_text(out)
    assert "tanh(n4)" in text.replace("n5 = ", "") and text.splitlines()[0].split() == ["node", "value", "dL/dnode"]
    assert graph.to_dot(out).count("->") == 4 * 3 + 2     # 4 two-input operations and tanh, each with its output edge


@pytest.mark.parametrize("expr, message", [("__import__('os')", "may use names"), ("x ** y", "only a number"),
                                          ("tanh", "is a function"), ("x +", "cannot read")])
def test_explain_graph_refuses_what_it_cannot_draw(expr, message):
    from deepzoo.autograd import graph
    from deepzoo.errors import DeepzooError
    with pytest.raises(DeepzooError, match=message):
        graph.build(expr, {})


def test_explain_graph_command_writes_dot(tmp_path):
    from conftest import run_deepzoo
    p = run_deepzoo("explain", "graph", "x*y + exp(x)", "--values", "x=1,y=2", "--out", str(tmp_path / "g.dot"),
                    check=True)
    assert "n3 = add(n1, n2)" in p.stdout and "4.7183" in p.stdout
    assert (tmp_path / "g.dot").read_text().startswith("digraph computation {")
    bad = run_deepzoo("explain", "graph", "x", "--values", "z=1")
    assert bad.returncode == 2 and "does not use" in bad.stderr and "Traceback" not in bad.stderr


def test_autograd_recipe_trains_saves_and_predicts(tmp_path):
    from PIL import Image

    from deepzoo.data.mnist import load_mnist
    from deepzoo.train.run import evaluate, predict, train
    s = train("autograd-mlp-mnist", preset="quick", out=tmp_path / "run", progress=False, log=lambda *_: None)
    assert s["results"]["test_acc"] > 0.8 and (tmp_path / "run" / "weights.safetensors").exists()
    assert evaluate(tmp_path / "run")["results"]["test_acc"] == s["results"]["test_acc"]
    x, y = load_mnist(None, sample=True)["test"]
    Image.fromarray(x[0]).save(tmp_path / "digit.png")
    (out,) = predict(tmp_path / "run", [str(tmp_path / "digit.png")])
    assert out["class"] in [str(k) for k in range(10)] and abs(sum(out["probabilities"].values()) - 1) < 1e-3   # 10 probabilities rounded to 4 places
