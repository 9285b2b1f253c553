"""The computation graph of an expression, after its backward pass: as text, as Graphviz DOT, or drawn
(PNG / SVG) by Graphviz's ``dot`` when it is installed.

``deepzoo explain graph "tanh(w1*x1 + w2*x2 + b)" --values x1=2,x2=0,w1=-3,w2=1,b=6.88`` builds the
expression from scalar tensors (an expression is parsed, never evaluated: only names, numbers, + - * / **,
unary minus and the functions tanh, relu, sigmoid, exp and log are accepted), runs ``backward()`` from it,
and shows every node with its value and its gradient dL/d(node).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import numpy as np

from deepzoo.autograd.tensor import Tensor
from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes

FUNCTIONS = {"tanh": Tensor.tanh, "relu": Tensor.relu, "sigmoid": Tensor.sigmoid, "exp": Tensor.exp,
             "log": Tensor.log}
OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
             ast.Div: lambda a, b: a / b}

NEURON = "tanh(w1*x1 + w2*x2 + b)"              # micrograd's example neuron
NEURON_VALUES = "x1=2,x2=0,w1=-3,w2=1,b=6.8813735870195432"


def parse_values(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise DeepzooError(f"--values: expected name=number pairs such as x=2,w=-1, got {item!r}") from None
        if not sep:
            raise DeepzooError(f"--values: expected name=number, got {item!r}")
    return out


def build(expression: str, values: dict[str, float], seed: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
    """The expression as a graph of scalar tensors; names missing from ``values`` get N(0, 1) values."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise DeepzooError(f"cannot read the expression {expression!r}: {e.msg}") from None
    rng = np.random.default_rng(seed)
    leaves: dict[str, Tensor] = {}

    def visit(node) -> Tensor | float:
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise DeepzooError(f"{node.id} is a function: write {node.id}(...)")
            if node.id not in leaves:
                value = values.get(node.id, round(float(rng.normal()), 3))
                leaves[node.id] = Tensor(np.float64(value), requires_grad=True, name=node.id)
            return leaves[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](lift(visit(node.left)), visit(node.right))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = visit(node.right)
            if isinstance(exponent, Tensor):
                raise DeepzooError("only a number may be an exponent: x**2")
            return lift(visit(node.left)) ** exponent
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = lift(visit(node.operand))
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS \
                and len(node.args) == 1 and not node.keywords:
            return FUNCTIONS[node.func.id](lift(visit(node.args[0])))
        raise DeepzooError(f"the expression may use names, numbers, + - * / **, and {', '.join(FUNCTIONS)}(...); "
                           f"found {ast.unparse(node)!r}")

    def lift(x):
        return x if isinstance(x, Tensor) else Tensor(np.float64(x))
    out = lift(visit(tree.body))
    unknown = sorted(set(values) - set(leaves))
    if unknown:
        raise DeepzooError(f"--values names {', '.join(unknown)}, which the expression does not use")
    out.backward()
    return out, leaves


def _labels(output: Tensor) -> tuple[list[Tensor], dict[int, str]]:
    order = output.topological_order()
    names, k = {}, 0
    for node in order:
        if node.name:
            names[id(node)] = node.name
        elif not node.parents:
            names[id(node)] = f"{float(node.data):g}" if node.data.size == 1 else f"const{list(node.shape)}"
        else:
            k += 1
            names[id(node)] = f"n{k}"
    return order, names


def _fmt(a) -> str:
    if a is None:
        return "-"
    a = np.asarray(a)
    return f"{float(a):.4f}" if a.size == 1 else f"array{list(a.shape)}"


def to_text(output: Tensor) -> str:
    """One line per node, inputs first: ``n3 = mul(w1, x1)   value -6.0000   grad 0.5000``."""
    order, names = _labels(output)
    rows = []
    for node in order:
        if not node.parents and not node.name:
            continue                                      # constants appear inside the expressions that use them
        left = names[id(node)] if not node.parents else \
            f"{names[id(node)]} = {node.op}({', '.join(names[id(p)] for p in node.parents)})"
        rows.append((left, _fmt(node.data), _fmt(node.grad)))
    if not rows:                                          # the expression is a number: L itself
        rows.append(("L", _fmt(output.data), _fmt(output.grad)))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'node':{width}s}   {'value':>10s}   {'dL/dnode':>10s}"]
    lines += [f"{a:{width}s}   {v:>10s}   {g:>10s}" for a, v, g in rows]
    return "\n".join(lines)


def to_dot(output: Tensor) -> str:
    """Graphviz DOT: a box per tensor (name, value, gradient), an ellipse per operation."""
    order, names = _labels(output)
    lines = ["digraph computation {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];']
    for node in order:
        label = f"{names[id(node)]} | value {_fmt(node.data)} | grad {_fmt(node.grad)}"
        lines.append(f'  t{id(node)} [shape=record, label="{{{label}}}"];')
        if node.parents:
            lines.append(f'  o{id(node)} [shape=ellipse, label="{node.op}"];')
            lines.append(f"  o{id(node)} -> t{id(node)};")
            for p in node.parents:
                lines.append(f"  t{id(p)} -> o{id(node)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(output: Tensor, path: str | Path) -> Path:
    """Write the graph to ``path``: ``.dot`` (the source), or ``.png`` / ``.svg`` drawn by Graphviz's dot."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".dot", ".png", ".svg"):
        raise DeepzooError(f"--out must end in .dot, .png or .svg, got {path.name}")
    if not path.parent.is_dir():
        raise DeepzooError(f"folder {path.parent} does not exist")
    source = to_dot(output)
    if suffix == ".dot":
        atomic_write_bytes(path, source.encode())
        return path
    dot = shutil.which("dot")
    if dot is None:
        raise DeepzooError("drawing a PNG or SVG needs Graphviz's dot (apt install graphviz, or conda install "
                           "graphviz); --out graph.dot writes the source, and without --out the graph is printed as text")
    done = subprocess.run([dot, f"-T{suffix[1:]}"], input=source.encode(), capture_output=True, timeout=60)
    if done.returncode != 0:
        raise DeepzooError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    atomic_write_bytes(path, done.stdout)
    return path
