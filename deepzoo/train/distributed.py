"""Data-parallel training on PyTorch's own engine: ``torch.distributed`` with DistributedDataParallel,
launched by ``torchrun``.

    torchrun --standalone --nproc_per_node=2 -m deepzoo train cnn-mnist --out runs/cnn2
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 --rdzv_backend=c10d \\
             --rdzv_endpoint=HOST:29500 -m deepzoo train cnn-mnist --out /shared/runs/cnn8

torchrun starts one process per worker and sets RANK, WORLD_SIZE and LOCAL_RANK; :func:`setup` then
joins the process group (gloo on CPUs, NCCL on GPUs, each process on GPU LOCAL_RANK). Each process
holds a full replica of the model; each step, every process takes its share of the same global batch
(``data.batch_size`` is the global batch; each process gets 1/WORLD_SIZE of its rows, the positions a
DistributedSampler assigns it), and DDP averages the gradients during backward, so every replica makes
the same update a single process would make on the whole batch. Validation and test run on every
process over the whole split (identical results, so every process takes the same early-stopping and
best-epoch decisions); only rank 0 writes the log, the metrics, the checkpoints and the summary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from deepzoo.errors import DeepzooError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether this process was started by torchrun with more than one worker."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def restarts() -> int:
    """How many times torchrun has restarted this job's workers after a failure (``--max-restarts``): 0 on
    the first attempt, and without torchrun."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def job_id() -> str | None:
    """torchrun's id of this job (``--rdzv-id``, or a fresh one per ``--standalone`` launch), the same for
    every restart of its workers; None without torchrun."""
    return os.environ.get("TORCHELASTIC_RUN_ID")


def setup() -> Context:
    """Join the process group if torchrun started us (once per process); a single process otherwise.

    The group meets in torchrun's key-value store under a prefix of its own for each restart: restarted
    workers must not read the addresses that the workers of an earlier attempt left there."""
    if not launched():
        return Context()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        store, rank, world = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"deepzoo/attempt-{restarts()}", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world)
    return current()


def current() -> Context:
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def device_for(ctx: Context, requested: str) -> str:
    """Under torchrun with GPUs each process takes the GPU of its LOCAL_RANK."""
    if ctx.enabled and torch.cuda.is_available() and requested in ("auto", "cuda"):
        return f"cuda:{ctx.local_rank}"
    return requested


def barrier() -> None:
    if current().enabled:
        dist.barrier()


def broadcast(value):
    """Rank 0's ``value`` on every process (any picklable object)."""
    if not current().enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(values: list[float]) -> list[float]:
    if not current().enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def local_rows(x, ctx: Context):
    """This process's share of a global batch: rows rank, rank + W, rank + 2W, ... (a tensor or a tuple)."""
    if isinstance(x, tuple):
        return tuple(local_rows(t, ctx) for t in x)
    return x[ctx.rank::ctx.world]


def check_batch(batch_size: int, ctx: Context) -> None:
    if ctx.enabled and batch_size % ctx.world:
        raise DeepzooError(f"data.batch_size ({batch_size}) is the global batch and must be divisible by the "
                           f"number of processes ({ctx.world})")
