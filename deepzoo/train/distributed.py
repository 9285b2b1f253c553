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

Two things make "the same update" hold beyond a plain loss:

* **BatchNorm** normalises with the statistics of the whole global batch, as one process would: under
  torchrun every BatchNorm layer becomes a synchronised one (:func:`sync_batchnorm`: PyTorch's
  SyncBatchNorm on GPUs; on CPUs, where PyTorch's has no kernel, :class:`BatchNormAcrossProcesses`).
* **Random draws of a recipe's own step** (a GAN's latent codes, a diffusion model's steps and noise): every
  process draws the whole global batch's numbers from the same seeded generator and keeps its own rows
  (:func:`local_rows`), so the numbers each image meets do not depend on how many processes share the batch.
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


class _SumAcrossProcesses(torch.autograd.Function):
    """y = sum over processes of x, on every process; its backward is the same sum of the gradients (each
    process's x reaches every process's y, so its gradient gathers every process's dL/dy)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class BatchNormAcrossProcesses(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose batch is the global batch, split over processes: on CPUs, where PyTorch's SyncBatchNorm
    has no kernel. Over the N = sum_p n_p values of each channel, with one all-reduce per moment:

        mu = (1/N) sum x,    sigma^2 = (1/N) sum (x - mu)^2,    y = gamma (x - mu) / sqrt(sigma^2 + eps) + beta

    and the running statistics move towards mu and the unbiased N / (N - 1) sigma^2, as nn.BatchNorm's do. The
    sums are differentiable all-reduces, so backward carries each image's influence on the statistics to every
    process. It has BatchNorm's parameters and buffers under the same names (checkpoints load either way);
    in evaluation mode, or on one process, it is plain BatchNorm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and current().enabled):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]                       # every axis but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)
        n = _SumAcrossProcesses.apply(torch.tensor(float(x.numel() // x.shape[1]), dtype=x.dtype))
        mean = _SumAcrossProcesses.apply(x.sum(dims)) / n
        var = _SumAcrossProcesses.apply(((x - mean.view(shape)) ** 2).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1), m)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def sync_batchnorm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` with every BatchNorm layer normalising over the global batch (in place for nested layers; the
    parameters and buffers are the same tensors, under the same names)."""
    if device.type != "cpu":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, BatchNormAcrossProcesses):
        synced = BatchNormAcrossProcesses(module.num_features, module.eps, module.momentum, module.affine,
                                          module.track_running_stats)
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            setattr(synced, name, tensor)
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, sync_batchnorm(child, device))
    return module


def check_batch(batch_size: int, ctx: Context) -> None:
    if ctx.enabled and batch_size % ctx.world:
        raise DeepzooError(f"data.batch_size ({batch_size}) is the global batch and must be divisible by the "
                           f"number of processes ({ctx.world})")
