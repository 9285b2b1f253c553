"""deepzoo against its peers as whole processes: the command a user types, timed from start to exit.

Each job runs deepzoo's command and the peer's, unmodified, as separate processes, in alternating pairs
(deepzoo, peer, deepzoo, peer, ...) so that a drift in the machine's speed hits both sides; one unrecorded
warm-up run of each goes first (a peer's one-time dataset processing, numba's and Python's caches). The
figures are each side's median seconds, the ratio of the medians (deepzoo / peer: below 1 is faster), the
median of the per-pair ratios, and each side's final quality figure, so that speed is never bought with
quality.

jobs (``--only``):
  gpt  ``deepzoo train gpt-shakespeare`` against nanoGPT's README CPU command (``train.py
       config/train_shakespeare_char.py --device=cpu --compile=False ...``, 2,000 steps), on tiny
       Shakespeare; quality: validation loss (deepzoo: the whole validation text; nanoGPT: its own
       estimate, 20 random batches, as it prints it)
  gcn  ``deepzoo train gcn-cora`` against PyG's ``examples/gcn.py`` (200 epochs), on Cora; quality: test
       accuracy (deepzoo: its best-validation checkpoint; PyG: the test accuracy at the best validation
       accuracy, as the example prints it)

The peers are the unmodified copies in ../shared/peers (``--peers``); they run in a temporary copy, with
their data put where they look for it, so nothing downloads. Run on an otherwise idle machine; ``--pairs``
(3 by default) sets how many pairs. Under ``python -m deepzoo.cputarget avx2 -- ...`` both sides get the
AVX2 kernels (the JSON's ``ran_under`` says so).

    python benchmarks/peers.py --data-dir ../shared/data --peers ../shared/peers --record benchmarks/results/peers.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepzoo import figures

JOBS = ("gpt", "gcn")
NANOGPT_CPU = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
               "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
               "--n_embd=128", "--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0"]


def timed(cmd: list[str], cwd: Path, log) -> tuple[float, str]:
    """Run ``cmd`` to its end; (wall seconds, its stdout). A failure stops the benchmark with its stderr."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    log(f"  {seconds:7.1f} s  {' '.join(cmd)[:110]}")
    return seconds, proc.stdout


def deepzoo_side(recipe: str, data_dir: str, work: Path, metric: str):
    """(command maker, quality reader) for ``deepzoo train RECIPE`` into a fresh run folder each time."""
    counter = iter(range(10**6))

    def command():
        out = work / f"{recipe}-{next(counter)}"
        return [sys.executable, "-m", "deepzoo", "train", recipe, "--data-dir", data_dir, "--out", str(out),
                "--quiet"], out

    def quality(out: Path, stdout: str) -> float:
        return json.loads((out / "summary.json").read_text())["results"][metric]
    return command, quality


def prepare_nanogpt(peers: Path, data_dir: Path, work: Path) -> Path:
    """A writable copy of nanoGPT with tiny Shakespeare where prepare.py looks, prepared (no download)."""
    dest = work / "nanoGPT"
    shutil.copytree(peers / "nanoGPT", dest)
    shutil.copy(data_dir / "tinyshakespeare" / "input.txt", dest / "data" / "shakespeare_char" / "input.txt")
    subprocess.run([sys.executable, "prepare.py"], cwd=dest / "data" / "shakespeare_char", check=True,
                   capture_output=True)
    return dest


def prepare_pyg(peers: Path, data_dir: Path, work: Path) -> Path:
    """PyG's example in examples/, Cora's raw files in data/Planetoid/Cora/raw/ beside it (where it looks)."""
    root = work / "pyg"
    (root / "examples").mkdir(parents=True)
    shutil.copy(peers / "pyg-gcn" / "gcn.py", root / "examples" / "gcn.py")
    raw = root / "data" / "Planetoid" / "Cora" / "raw"
    raw.mkdir(parents=True)
    for f in (data_dir / "planetoid").glob("ind.cora.*"):
        shutil.copy(f, raw / f.name)
    return root / "examples"


def last_float(pattern: str, text: str) -> float:
    found = re.findall(pattern, text)
    if not found:
        raise SystemExit(f"the peer's output has no line matching {pattern!r}:\n{text[-1000:]}")
    return float(found[-1])


def race(name: str, ours, peer, pairs: int, log) -> dict:
    """Warm-up run of each side, then ``pairs`` alternating pairs."""
    (make_ours, read_ours), (peer_cmd, peer_cwd, read_peer) = ours, peer
    log(f"{name}: warm-up")
    cmd, out = make_ours()
    timed(cmd, Path.cwd(), log)
    timed(peer_cmd, peer_cwd, log)
    rows = []
    for i in range(pairs):
        log(f"{name}: pair {i + 1}/{pairs}")
        cmd, out = make_ours()
        s_ours, stdout = timed(cmd, Path.cwd(), log)
        q_ours = read_ours(out, stdout)
        s_peer, stdout = timed(peer_cmd, peer_cwd, log)
        rows.append({"deepzoo_seconds": round(s_ours, 2), "peer_seconds": round(s_peer, 2),
                     "ratio": round(s_ours / s_peer, 3), "deepzoo_quality": q_ours, "peer_quality": read_peer(stdout)})
    med = lambda key: statistics.median(r[key] for r in rows)   # noqa: E731
    return {"pairs": rows, "deepzoo_median_seconds": med("deepzoo_seconds"), "peer_median_seconds": med("peer_seconds"),
            "ratio_of_medians": round(med("deepzoo_seconds") / med("peer_seconds"), 3),
            "median_pair_ratio": med("ratio"), "deepzoo_quality_median": med("deepzoo_quality"),
            "peer_quality_median": med("peer_quality")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True, type=Path, help="the shared data (tinyshakespeare/, planetoid/)")
    ap.add_argument("--peers", required=True, type=Path, help="the folder of unmodified peer copies")
    ap.add_argument("--only", default="gpt,gcn", help="comma-separated jobs: gpt, gcn")
    ap.add_argument("--pairs", type=int, default=3)
    figures.add_record_argument(ap)
    args = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)   # noqa: E731
    data = str(args.data_dir.resolve())
    result = {"benchmark": "peers, whole processes", "command": "python " + " ".join(sys.argv),
              "ran_under": figures.machine_json(), "date": time.strftime("%Y-%m-%d %H:%M")}
    with tempfile.TemporaryDirectory(prefix="deepzoo-peers-") as tmp:
        work = Path(tmp)
        for job in args.only.split(","):
            if job == "gpt":
                where = prepare_nanogpt(args.peers.resolve(), args.data_dir.resolve(), work)
                peer = ([sys.executable, "train.py", *NANOGPT_CPU], where,
                        lambda out: last_float(r"val loss ([0-9.]+)", out))
                result["gpt"] = {"deepzoo": "deepzoo train gpt-shakespeare", "peer": "nanoGPT train.py " +
                                 " ".join(NANOGPT_CPU), "quality": "validation loss (lower is better)",
                                 "goal_ratio": 0.5,
                                 **race("gpt", deepzoo_side("gpt-shakespeare", data, work, "val_loss"), peer,
                                        args.pairs, log)}
            elif job == "gcn":
                where = prepare_pyg(args.peers.resolve(), args.data_dir.resolve(), work)
                peer = ([sys.executable, "gcn.py"], where, lambda out: last_float(r"Test: ([0-9.]+)", out))
                result["gcn"] = {"deepzoo": "deepzoo train gcn-cora", "peer": "PyG examples/gcn.py",
                                 "quality": "test accuracy (higher is better)", "goal_ratio": 0.3,
                                 **race("gcn", deepzoo_side("gcn-cora", data, work, "test_acc"), peer,
                                        args.pairs, log)}
            else:
                ap.error(f"--only: unknown job {job!r} (gpt, gcn)")
            r = result[job]
            r.update(command=result["command"], date=result["date"], ran_under=result["ran_under"])
            log(f"{job}: deepzoo {r['deepzoo_median_seconds']:.1f} s, peer {r['peer_median_seconds']:.1f} s, "
                f"ratio {r['ratio_of_medians']:.2f} (goal <= {r['goal_ratio']})")
    print(json.dumps(result, indent=1))
    if args.record:
        figures.write_results(args.record, {**kept_jobs(Path(args.record), result), **result})
    return 0


def kept_jobs(path: Path, result: dict) -> dict:
    """The jobs of an earlier results file that this command did not run (each says its own command, date
    and machine), so that ``--only gcn`` and ``--only gpt`` on two occasions record into one file."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    return {job: earlier[job] for job in JOBS if job in earlier and job not in result}


if __name__ == "__main__":
    sys.exit(main())
