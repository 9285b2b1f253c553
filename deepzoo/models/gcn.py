"""A graph convolutional network for semi-supervised node classification (Kipf & Welling, ICLR 2017).

The two-layer model of the paper:

    Z = softmax( Â · ReLU( Â X W⁽⁰⁾ ) · W⁽¹⁾ ),      Â = D̃^{-1/2} (A + I) D̃^{-1/2}

Each layer mixes every node's vector with its neighbours' (one hop per layer, so two layers see two
hops), then transforms it. Training is transductive: the whole graph goes through the network at every
step, and the cross-entropy is taken over the labelled training nodes only, so the unlabelled nodes
still shape their neighbours' vectors. Dropout (p = 0.5) is applied to the input features and to the
hidden layer; weight decay (5e-4) only to the first layer's weights, as in the paper's code.

The graph (features and Â) lives in the module as non-persistent buffers: it moves with ``.to(device)``
but is not written into checkpoints, which hold only the weights. ``forward(nodes)`` returns the logits
of the given node indices, so the engine's batches are simply index tensors of the splits.
"""

from __future__ import annotations

import torch
from torch import nn

from deepzoo.nn.graph import GraphConv, SparseMatrix, normalised_adjacency

SPARSE_BELOW = 0.1   # store the features as a sparse tensor when fewer than 10 % of them are non-zero


class GCN(nn.Module):
    def __init__(self, features: torch.Tensor, edge_index: torch.Tensor, classes: int, hidden: int = 16,
                 layers: int = 2, dropout: float = 0.5, sparse_features: bool | None = None) -> None:
        super().__init__()
        n, f = features.shape
        if sparse_features is None:   # auto: sparse when fewer than SPARSE_BELOW of the entries are non-zero
            sparse_features = float((features != 0).float().mean()) < SPARSE_BELOW
        if sparse_features:
            self.x = SparseMatrix(features)
        else:
            self.register_buffer("x", features, persistent=False)
        self.adj = normalised_adjacency(edge_index, n, dtype=features.dtype)
        widths = [f] + [hidden] * (layers - 1) + [classes]
        self.convs = nn.ModuleList(GraphConv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = dropout

    def embed(self) -> torch.Tensor:
        """Every node's hidden vector: the output of all layers but the last (what the 2-D plot shows)."""
        p = self.dropout if self.training else 0.0
        h = self.x
        for conv in self.convs[:-1]:
            h = torch.relu(conv(self.adj, h, dropout=p))       # H⁽ˡ⁺¹⁾ = ReLU(Â dropout(H⁽ˡ⁾) W⁽ˡ⁾)
        return h

    def forward(self, nodes: torch.Tensor | None = None) -> torch.Tensor:
        """Logits Z = Â dropout(H) W + b of the last layer, for ``nodes`` (default: every node)."""
        p = self.dropout if self.training else 0.0
        logits = self.convs[-1](self.adj, self.embed(), dropout=p)
        return logits if nodes is None else logits[nodes]
