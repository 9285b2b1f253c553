"""Graph convolution from scratch (Kipf & Welling, ICLR 2017).

One layer computes

    H' = Â H W + b,      Â = D̃^{-1/2} (A + I) D̃^{-1/2},   D̃_ii = Σ_j (A + I)_ij

so each node's new vector is a weighted sum over itself and its neighbours, the edge (i, j) weighted by
1 / sqrt(d̃_i d̃_j). Â is built once, as a sparse matrix with N + E non-zeros, and the propagation is one
sparse-dense product (O(E·F), not O(N²·F)). H W is computed first when it narrows the vectors (F_out <
F_in), so the sparse product runs on the narrower matrix. The input H may itself be sparse (Cora's
bag-of-words features are 1.3 % non-zero).

tests/test_graph.py checks :func:`normalised_adjacency` and :class:`GraphConv` against the dense formula
(outputs and gradients), and against torch_geometric's ``GCNConv`` when it is installed.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def normalised_adjacency(edge_index: torch.Tensor, num_nodes: int, self_loops: bool = True,
                         dtype: torch.dtype = torch.float32) -> "SparseMatrix":
    """Â = D̃^{-1/2} (A + I) D̃^{-1/2} as a :class:`SparseMatrix`, from an edge list [2, E] that holds both
    directions of every undirected edge (``self_loops=False``: D^{-1/2} A D^{-1/2})."""
    row, col = edge_index
    if self_loops:
        loop = torch.arange(num_nodes, device=edge_index.device)
        row, col = torch.cat([row, loop]), torch.cat([col, loop])
    weight = torch.ones(row.numel(), device=edge_index.device, dtype=dtype)
    degree = torch.zeros(num_nodes, device=edge_index.device, dtype=dtype).index_add_(0, row, weight)   # d̃_i = Σ_j Ã_ij
    inv_sqrt = degree.pow(-0.5).masked_fill(degree == 0, 0.0)
    adj = torch.sparse_coo_tensor(torch.stack([row, col]), inv_sqrt[row] * weight * inv_sqrt[col],
                                  (num_nodes, num_nodes), check_invariants=True)
    return SparseMatrix(adj)


def inverted_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout: keep each entry with probability 1 - p and scale it by 1 / (1 - p). (Written out
    because a uniform draw and a compare is about twice as fast on the CPU as F.dropout's Bernoulli.)"""
    if p <= 0:
        return x
    return x * (torch.rand_like(x) >= p) * (1.0 / (1.0 - p))


class SparseMatmul(torch.autograd.Function):
    """Y = S H for a constant sparse S, with the backward written out: dL/dH = Sᵀ dL/dY.

    Sᵀ is passed in (its index arrays built once), so the backward is one more sparse-dense product
    rather than a transpose of S at every step.
    """

    @staticmethod
    def forward(ctx, s: torch.Tensor, s_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        ctx.s_t = s_t
        return s @ h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, ctx.s_t @ grad


class SparseMatrix(nn.Module):
    """A constant sparse matrix kept as CSR index arrays for S and for Sᵀ (non-persistent buffers: they
    move with ``.to(device)`` and stay out of checkpoints), multiplied into dense matrices.

    ``matmul(h, dropout=p)`` drops each stored value with probability p and scales the others by
    1 / (1 - p) (dropout on a sparse input, as in Kipf's code); the same kept values serve S and Sᵀ.
    """

    def __init__(self, s: torch.Tensor) -> None:
        super().__init__()
        coo = s.to_sparse_coo().coalesce()
        rows, cols = coo.indices()
        n = coo.values().numel()
        self.shape = tuple(coo.shape)
        # S in CSR: entries sorted by (row, col), as coalesce() leaves them
        self.register_buffer("crow", _crow(rows, self.shape[0]), persistent=False)
        self.register_buffer("col", cols.clone(), persistent=False)
        self.register_buffer("values", coo.values().clone(), persistent=False)
        # Sᵀ in CSR: the same entries sorted by (col, row); perm takes S's value order to Sᵀ's
        perm = torch.argsort(cols * self.shape[0] + rows) if n else torch.zeros(0, dtype=torch.long)
        self.register_buffer("perm", perm, persistent=False)
        self.register_buffer("crow_t", _crow(cols[perm], self.shape[1]), persistent=False)
        self.register_buffer("col_t", rows[perm].clone(), persistent=False)

    def dense(self) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, self.values, self.shape, check_invariants=False).to_dense()

    def matmul(self, h: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        values = self.values
        if dropout > 0:
            values = inverted_dropout(values, dropout)
        s = torch.sparse_csr_tensor(self.crow, self.col, values, self.shape, check_invariants=False)
        s_t = torch.sparse_csr_tensor(self.crow_t, self.col_t, values[self.perm], self.shape[::-1],
                                      check_invariants=False)
        return SparseMatmul.apply(s, s_t, h)


def _crow(rows: torch.Tensor, n: int) -> torch.Tensor:
    """CSR row pointers of entries sorted by row."""
    counts = torch.bincount(rows, minlength=n)
    return torch.cat([torch.zeros(1, dtype=torch.long, device=rows.device), counts.cumsum(0)])


class GraphConv(nn.Module):
    """H' = Â H W + b, with W initialised as Glorot & Bengio (as in Kipf's code) and b at zero."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        bound = math.sqrt(6.0 / (in_features + out_features))
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, adj: "SparseMatrix", h, dropout: float = 0.0) -> torch.Tensor:
        """Dropout on the input H (``dropout`` > 0 only in training), then Â H W + b. H is a dense tensor
        or a :class:`SparseMatrix` (dropout then acts on its stored values)."""
        if isinstance(h, SparseMatrix):
            out = adj.matmul(h.matmul(self.weight, dropout))     # Â (X W), X sparse
        else:
            h = inverted_dropout(h, dropout)
            if self.weight.shape[1] <= self.weight.shape[0]:
                out = adj.matmul(h @ self.weight)                # Â (H W): the sparse product on the narrow side
            else:
                out = adj.matmul(h) @ self.weight                # (Â H) W
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, bias={self.bias is not None}"
