"""Training on torch.distributed: two CPU processes (gloo, started by torchrun) against one process with
the same global batch, two torchrun launchers as two nodes on loopback (c10d rendezvous) against one
process, and a killed torchrun run resumed under torchrun."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

# no dropout and no augmentation: then two processes must make the very updates one process makes
ARGS = ["train", "mlp-mnist", "--preset", "quick", "--set", "model.dropout=0.0", "--set", "data.augment_shift=0",
        "--set", "train.log_steps=true", "--set", "train.device=cpu", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def launch(args, processes=1, **kw):
    head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] \
        if processes > 1 else [sys.executable]
    return subprocess.Popen([*head, "-m", "deepzoo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, **kw)


def finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def weights(run, epoch):
    return load_file(str(run / f"checkpoints/epoch-{epoch:04d}/model.safetensors"))


def steps(run):
    return [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]


# Why float64, and why 1e-9. One process takes the mean gradient of 128 rows; two processes each take the
# mean of 64 and DDP averages the two. The maths is the same, the order of the additions is not, so the
# results differ by rounding, and that rounding compounds over the 64 steps by an amount that depends on the
# CPU's kernels: in fp32 it reached 4e-7 (relative) on one CPU and 1e-4 on another (an AVX2-only EPYC), so
# any fp32 tolerance is fitted to the CPUs seen so far. In float64 each addition is exact to ~1e-16; measured
# over the whole run the two sides differ by 9e-16 in the per-step loss and 6e-15 in the weights (relative),
# so 1e-9 leaves five orders of magnitude for other CPUs, and still sits seven orders below a real fault: a 2%
# error in the learning rate of the two-process run moves the loss by 6e-2 and the weights by 0.1-0.37 of
# their largest entry (checked below, in the same test).
TOL = 1e-9


def divergence(one, two) -> dict[str, float]:
    """The largest relative differences between two runs: per-step loss, and each final weight tensor
    (against that tensor's largest entry)."""
    a, b = steps(one), steps(two)
    assert [x["step"] for x in a] == [y["step"] for y in b]
    out = {"loss": max(abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(a, b))}
    wa, wb = weights(one, 2), weights(two, 2)
    assert wa.keys() == wb.keys()
    for k in wa:
        if not wa[k].is_floating_point():                # counters (BatchNorm's batches seen): equal
            assert torch.equal(wa[k], wb[k]), k
            continue
        assert wa[k].dtype == wb[k].dtype == torch.float64, k
        out[k] = float((wb[k] - wa[k]).abs().max() / wa[k].abs().max())
    return out


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    args = ARGS + ["--epochs", "2", "--set", "train.precision=fp64"]
    one, two, fault = tmp_path / "one", tmp_path / "two", tmp_path / "fault"
    finish(launch(args + ["--out", str(one)]))
    out = finish(launch(args + ["--out", str(two)], processes=2))
    assert "2 processes, torch.distributed" in out and out.count("mlp-mnist: test_acc") == 1   # rank 0 reports
    assert len(steps(one)) == len(steps(two)) == 2 * 32   # 4,000 images, global batch 128: 32 steps an epoch
    far = {k: v for k, v in divergence(one, two).items() if not v <= TOL}
    assert not far, f"two processes differ from one by more than {TOL}: {far}"
    b = steps(two)
    assert b[-1]["loss"] < 0.5 * b[0]["loss"]          # it trained
    sa, sb = (json.loads((r / "summary.json").read_text())["results"] for r in (one, two))
    assert sa["test_acc"] == sb["test_acc"]
    # The same comparison catches a real fault: the two-process run with its learning rate 2% too high.
    lr = json.loads((one / "config.json").read_text())["config"]["optim"]["lr"]
    finish(launch(args + ["--set", f"optim.lr={lr * 1.02!r}", "--out", str(fault)], processes=2))
    caught = divergence(one, fault)
    assert all(v > 1e4 * TOL for v in caught.values()), caught


# --- the generative recipes: their own steps under DDP ----------------------------------------------------

def mnist_npz(path, n: int = 512):
    """The first n digits of the packaged MNIST sample as an .npz (data.path): 8 steps of 64, a quick run."""
    import numpy as np
    from deepzoo.data.mnist import load_mnist
    x, y = load_mnist(sample=True)["train"]
    np.savez(path, x_train=x[:n], y_train=y[:n], x_test=x[n:n + 128], y_test=y[n:n + 128])
    return path


@pytest.mark.parametrize("recipe", ["gan-mnist", "dcgan-mnist", "ddpm-mnist"])
def test_generative_recipes_two_processes_equal_one(recipe, tmp_path):
    """A GAN's two-player step, DCGAN's BatchNorm and the DDPM's noise-prediction step under DDP: every process
    draws the global batch's latent codes (steps and noise) and keeps its rows, each player's gradients are
    averaged by its DDP wrapper, and BatchNorm normalises over the global batch. Two processes make the
    updates one process makes, to the float64 tolerance above. (Measured: 1e-13 to 2e-12 of each weight
    tensor's largest entry, per-step losses within 2e-14; with DCGAN's BatchNorm left per process the weights
    differ by 1.16 and the losses by 3e-2.)"""
    data = mnist_npz(tmp_path / "digits.npz")
    args = ["train", recipe, "--preset", "quick", "--epochs", "2", "--set", f"data.path={data}",
            "--set", "data.split=[1.0, 0.0, 0.0]", "--set", "train.precision=fp64", "--set", "train.log_steps=true",
            "--set", "train.device=cpu", "--set", "data.batch_size=64", "--set", "train.checkpoint_seconds=0", "--quiet"]
    one, two = tmp_path / "one", tmp_path / "two"
    finish(launch(args + ["--out", str(one)]))
    out = finish(launch(args + ["--out", str(two)], processes=2))
    assert "2 processes, torch.distributed" in out
    assert len(steps(one)) == len(steps(two)) == 2 * 8      # 512 training images, global batch 64
    far = {k: v for k, v in divergence(one, two).items() if not v <= TOL}
    assert not far, f"two processes differ from one by more than {TOL}: {far}"
    if recipe == "ddpm-mnist":                          # it trained: the noise-prediction error fell
        assert steps(two)[-1]["loss"] < 0.85 * steps(two)[0]["loss"]   # (measured: 1.13 to 0.79)


def _batchnorm_worker(rank: int, world: int, init: str, x, w, out) -> None:
    import torch.distributed as dist
    from deepzoo.train.distributed import BatchNormAcrossProcesses
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    bn = BatchNormAcrossProcesses(x.shape[1], momentum=0.3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 1.5, x.shape[1]))
        bn.bias.copy_(torch.linspace(-1, 1, x.shape[1]))
    mine = x[rank::world].clone().requires_grad_(True)
    y = bn(mine)
    (y * w[rank::world]).sum().backward()
    out.put((rank, y.detach(), mine.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var,
             int(bn.num_batches_tracked)))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.parametrize("shape", [(8, 3), (8, 4, 5, 5)])
def test_batchnorm_across_processes_equals_batchnorm_over_the_whole_batch(shape, tmp_path):
    """Two processes with half the rows each: outputs, the gradients of the inputs and (summed over the
    processes, as DDP's average of per-process means is) of gamma and beta, and the running statistics equal
    PyTorch's BatchNorm on the whole batch."""
    import torch.multiprocessing as mp
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 1, torch.randn(shape, generator=g, dtype=torch.float64)
    ref = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(shape[1], momentum=0.3).double()
    with torch.no_grad():
        ref.weight.copy_(torch.linspace(0.5, 1.5, shape[1]))
        ref.bias.copy_(torch.linspace(-1, 1, shape[1]))
    xr = x.clone().requires_grad_(True)
    y = ref(xr)
    (y * w).sum().backward()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_batchnorm_worker, args=(r, 2, f"file://{tmp_path / 'store'}", x, w, q)) for r in (0, 1)]
    for p in procs:
        p.start()
    got = dict((r[0], r[1:]) for r in (q.get(timeout=120), q.get(timeout=120)))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    close = dict(rtol=1e-12, atol=1e-12)
    for r in (0, 1):
        out, gx, _, _, mean, var, tracked = got[r]
        torch.testing.assert_close(out, y.detach()[r::2], **close)
        torch.testing.assert_close(gx, xr.grad[r::2], **close)
        torch.testing.assert_close(mean, ref.running_mean, **close)
        torch.testing.assert_close(var, ref.running_var, **close)
        assert tracked == 1
    torch.testing.assert_close(got[0][2] + got[1][2], ref.weight.grad, **close)
    torch.testing.assert_close(got[0][3] + got[1][3], ref.bias.grad, **close)


def test_sync_batchnorm_keeps_the_parameters_and_their_names():
    from deepzoo.models.gan import GAN
    from deepzoo.train.distributed import BatchNormAcrossProcesses, sync_batchnorm
    model = GAN("dcgan", latent=8, width=8)
    before = {k: v for k, v in model.state_dict().items()}
    sync_batchnorm(model, torch.device("cpu"))
    assert sum(isinstance(m, BatchNormAcrossProcesses) for m in model.modules()) == 3
    assert not any(type(m) in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d) for m in model.modules())
    after = model.state_dict()           # the same tensors (the same memory), under the same names
    assert after.keys() == before.keys() and all(after[k].data_ptr() == before[k].data_ptr() for k in before)
    z = torch.randn(4, 8)
    model.eval()                                        # one process, evaluation: plain BatchNorm
    assert model.generator(z).shape == (4, 1, 28, 28)


def test_global_batch_must_divide_among_processes(tmp_path):
    proc = launch(ARGS + ["--set", "data.batch_size=127", "--out", str(tmp_path / "odd")], processes=2)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "must be divisible by the number of processes (2)" in err


def kill_tree(pid: int) -> None:
    """SIGKILL torchrun and its workers (torchrun starts each worker in a session of its own)."""
    import psutil
    parent = psutil.Process(pid)
    for p in [*parent.children(recursive=True), parent]:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def unbroken_run(tmp_path, args):
    """The run a killed one must end equal to (2 processes), and the seconds of one of its epochs."""
    ref = tmp_path / "ref"
    finish(launch(args + ["--out", str(ref)], processes=2))
    rows = [json.loads(l) for l in (ref / "metrics.jsonl").read_text().splitlines()]
    return ref, rows[1]["train_seconds"] - rows[0]["train_seconds"]


def wait_inside_epoch_2(run, proc, epoch_seconds):
    """Wait until ``run`` has its first checkpoint, then a quarter of an epoch; its latest.json."""
    latest = run / "checkpoints/latest.json"
    deadline = time.time() + 300
    while not latest.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.25 * epoch_seconds)
    return latest


def test_killed_torchrun_run_resumes_under_torchrun(tmp_path):
    args = ARGS + ["--epochs", "3", "--set", "data.batch_size=32", "--set", "train.checkpoint_seconds=0"]
    ref, epoch_seconds = unbroken_run(tmp_path, args)

    run = tmp_path / "killed"
    proc = launch(args + ["--out", str(run)], processes=2)
    latest = wait_inside_epoch_2(run, proc, epoch_seconds)
    kill_tree(proc.pid)                                # torchrun and both workers, at once
    proc.communicate()
    assert json.loads(latest.read_text())["last"] == "epoch-0001", "the kill must land inside epoch 2"

    out = finish(launch(["resume", str(run), "--quiet"], processes=2))
    assert "after epoch 1" in out
    # The same computation as the unbroken run (same processes, one thread each, same batches and random
    # numbers restored from the checkpoint; gloo sums two operands, which is commutative): bit for bit.
    wa, wb = weights(ref, 3), weights(run, 3)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wb[k], wa[k]), k
    assert [r["step"] for r in steps(run)] == list(range(1, len(steps(ref)) + 1))   # no step lost or repeated


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_loopback_equal_one_process(tmp_path):
    """The README's multi-node command on one machine: two torchrun launchers (--nnodes 2, one process
    each) meet by the c10d rendezvous on 127.0.0.1 and train as one process would, to the tolerance above."""
    args = ARGS + ["--epochs", "2", "--set", "train.precision=fp64"]
    one, two = tmp_path / "one", tmp_path / "two"
    finish(launch(args + ["--out", str(one)]))
    port = free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={rank}",
                               "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
                               "--rdzv_id=deepzoo-two-nodes", "-m", "deepzoo", *args, "--out", str(two)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for rank in (0, 1)]
    outs = [finish(node) for node in nodes]
    assert sum("2 processes, torch.distributed" in o for o in outs) == 1       # only global rank 0 reports
    assert sum(o.count("mlp-mnist: test_acc") for o in outs) == 1
    far = {k: v for k, v in divergence(one, two).items() if not v <= TOL}
    assert not far, f"two nodes differ from one process by more than {TOL}: {far}"



def test_torchrun_max_restarts_resumes_a_killed_worker_by_itself(tmp_path):
    """torchrun --max-restarts=2: one worker SIGKILLed inside epoch 2, torchrun restarts both, and the
    restarted workers find the run folder and continue from its last complete checkpoint by themselves
    (nobody types deepzoo resume), ending with the unbroken run's weights, bit for bit."""
    import psutil
    args = ARGS + ["--epochs", "3", "--set", "data.batch_size=32", "--set", "train.checkpoint_seconds=0"]
    ref, epoch_seconds = unbroken_run(tmp_path, args)

    run = tmp_path / "elastic"
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "--max-restarts=2", "--monitor-interval=0.5", "-m", "deepzoo", *args, "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    latest = wait_inside_epoch_2(run, proc, epoch_seconds)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if "deepzoo" in " ".join(p.cmdline())]
    assert len(workers) == 2
    workers[1].send_signal(signal.SIGKILL)             # one worker dies; torchrun stays
    assert json.loads(latest.read_text())["last"] == "epoch-0001", "the kill must land inside epoch 2"
    out = finish(proc, timeout=300)
    assert "torchrun restarted the workers (restart 1)" in out and f"resuming {run} after epoch 1" in out
    wa, wb = weights(ref, 3), weights(run, 3)
    for k in wa:
        assert torch.equal(wb[k], wa[k]), k
    assert [r["step"] for r in steps(run)] == list(range(1, len(steps(ref)) + 1))   # no step lost or repeated
