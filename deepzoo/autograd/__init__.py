"""A small autograd engine on NumPy, to read beside PyTorch's and to check against it.

    from deepzoo.autograd import Tensor
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    w = Tensor([[0.5], [-1.0]], requires_grad=True)
    y = (x @ w).tanh().sum()
    y.backward()            # x.grad, w.grad: dy/dx, dy/dw

- :mod:`deepzoo.autograd.tensor`: the tensor, its operations and their local backward rules, and the
  backward pass (a reverse walk of the topological order).
- :mod:`deepzoo.autograd.functional`: linear, conv2d (by im2col), max_pool2d, cross_entropy.
- :mod:`deepzoo.autograd.nn`: Module, Linear, Conv2d, MLP; the SGD and Adam optimisers.
- :mod:`deepzoo.autograd.graph`: the computation graph as text or as a Graphviz drawing.
"""

from deepzoo.autograd.tensor import Tensor, tensor  # noqa: F401
