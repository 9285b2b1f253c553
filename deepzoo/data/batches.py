"""Mini-batches over tensors held in memory.

For datasets that fit in memory (MNIST is 47 MB as uint8) slicing one big tensor is many times faster
than ``torch.utils.data.DataLoader`` fetching samples one by one. Shuffling and augmentation draw from
an explicit ``torch.Generator`` that the checkpoint saves, so a resumed run sees the same batches.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any, Callable, Iterator, Protocol, Sequence

import torch

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Batches(Protocol):
    """What the engine iterates: ``epoch(generator)`` yields ``(input, target)`` pairs, where the
    input is a tensor or a tuple of tensors passed to the model as positional arguments."""

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple[Any, torch.Tensor]]: ...

    def __len__(self) -> int: ...


class TensorBatches:
    """Iterate ``(x, y)`` mini-batches over aligned tensors.

    ``transform(x, generator)`` is applied to the input of each batch (training augmentation).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, transform: Transform | None = None) -> None:
        if len(x) != len(y):
            raise ValueError(f"inputs and targets differ in length: {len(x)} != {len(y)}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.transform = transform
        self.rank, self.world = 0, 1

    def shard(self, rank: int, world: int) -> None:
        """Yield only this process's share of each global batch (training under torchrun)."""
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches. Shuffled: a DistributedSampler over the rows, seeded by one draw from
        ``generator``; with W processes, process r takes the sampler's positions r, r + W, ... of the
        epoch's permutation, batch_size / W at a time, so the W shares of step k are exactly the rows
        of step k in a single process (which runs the same sampler with W = 1)."""
        n = len(self.x)
        if self.shuffle:
            from torch.utils.data import DistributedSampler
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            sampler = DistributedSampler(range(n), num_replicas=self.world, rank=self.rank, shuffle=True,
                                         seed=seed, drop_last=self.drop_last and self.world > 1)
            order = torch.tensor(list(sampler), dtype=torch.long)
        else:
            order = None
            if self.world > 1:
                order = torch.arange(n)[self.rank::self.world]
        b = self.batch_size // self.world
        for i in range(len(self)):
            if order is None:
                xb, yb = self.x[i * self.batch_size:(i + 1) * self.batch_size], self.y[i * self.batch_size:(i + 1) * self.batch_size]
            else:
                idx = order[i * b:(i + 1) * b]
                xb, yb = self.x[idx], self.y[idx]
            if self.transform is not None:
                xb = self.transform(xb, generator)
            yield xb, yb

    __iter__ = epoch


def random_shift(max_shift: int) -> Transform:
    """Translate each image by up to ``max_shift`` pixels in x and y, filling with zeros.

    Works on the whole batch with one gather: pad by ``s = max_shift``, then output pixel (i, j) of
    image n reads padded pixel (i + dy_n, j + dx_n), with dy_n, dx_n drawn uniformly from 0..2s.
    """
    def shift(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if max_shift == 0:
            return x
        n, c, h, w = x.shape
        s, width = max_shift, w + 2 * max_shift
        padded = torch.nn.functional.pad(x, (s, s, s, s)).reshape(n, c, -1)
        dy = torch.randint(0, 2 * s + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * s + 1, (n,), generator=generator)
        grid = (torch.arange(h)[:, None] * width + torch.arange(w)[None, :]).reshape(1, -1)
        index = (grid + (dy * width + dx)[:, None])[:, None, :].expand(n, c, h * w)
        return padded.gather(2, index).reshape(n, c, h, w)
    return shift


def split(n: int, fractions_or_sizes: tuple, seed: int) -> list[torch.Tensor]:
    """Random disjoint index sets; sizes may be ints (counts) or floats (fractions of n).

    The last part takes the remainder. The permutation depends only on ``seed``.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    sizes = [int(round(s * n)) if isinstance(s, float) else int(s) for s in fractions_or_sizes]
    parts, start = [], 0
    for size in sizes:
        parts.append(perm[start:start + size])
        start += size
    parts.append(perm[start:])
    return parts


def keyed_split(keys: Sequence[str], fractions: Sequence[float], seed: int) -> list[list[int]]:
    """Disjoint index lists, one per fraction (the fractions sum to 1), each in increasing order: row i
    goes to the part whose share of [0, 1) holds ``u_i``, the first 8 bytes of BLAKE2b of
    ``"{seed}\\n{key_i}"`` read as a fraction of 2**64 (``key_i`` stripped of surrounding whitespace).

    Which part a row lands in depends on its key and the seed alone, never on the other rows (unlike
    :func:`split`, whose permutation moves every row when one is added). So a sample of a file (the
    packaged samples are sets of rows of the full files) splits exactly as those rows split in the full
    file, appending rows to a file leaves the old ones where they were, and rows with the same key (the
    same text twice) always share a part, so a test text is never also a training text. The price: the
    sizes are not exact but binomial around ``fraction * n`` (10% of 7,765 rows: 777 +- 27), and a file
    made of a few texts repeated many times is cut far from its fractions, since each distinct text goes
    to one part whole.
    """
    total = sum(fractions)
    if not fractions or any(f < 0 for f in fractions) or abs(total - 1) > 1e-6:
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {list(fractions)}")
    bounds, acc = [], 0.0
    for f in fractions[:-1]:
        acc += f
        bounds.append(acc)
    parts: list[list[int]] = [[] for _ in fractions]
    prefix = f"{seed}\n".encode()
    for i, key in enumerate(keys):
        digest = hashlib.blake2b(prefix + key.strip().encode("utf-8"), digest_size=8).digest()
        parts[bisect.bisect_right(bounds, int.from_bytes(digest, "big") / 2**64)].append(i)
    return parts
