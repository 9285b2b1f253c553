"""deepzoo serve under load: 2,000 predict requests from 16 concurrent clients, on loopback, to an mlp-mnist and
a bilstm-sst2 run, beside the same model's bare forward time for one input, measured in the same run.

    python benchmarks/serve.py --runs /tmp/serve-tour --out benchmarks/results/serve.json
    python benchmarks/serve.py --runs /tmp/serve-tour --screenshots benchmarks/results   # + three pages, as PNG
    python benchmarks/serve.py                     # trains the quick presets it needs into a temporary folder

The server is `deepzoo serve RUNS --port 0`, a process of its own (it inherits OMP_NUM_THREADS); the clients
are httpx's async client in this process, on the same cores. Each request is one input: a test digit of the
MNIST sample shipped in the package, as base64 PNG, or one sentence. For each run it reports requests/s and
the p50 / p99 latency under load, the p50 of one client alone (requests one after the other), and in this
process: the forward pass alone on one prepared input, and ``Model.predict`` on one raw input (decoding and
preparing it too). The server's own cost is measured as CPU time, which the other processes on a shared
machine do not inflate: the server process's CPU time per request under load (from /proc) minus
``Model.predict``'s time is what HTTP, JSON, validation and the hop to a worker thread cost. (Latencies, on
a shared machine at nice 19, mostly measure the wait for a core.) Bounded: at most --requests requests a run
and --max-seconds of load in all; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCES = ["a gripping, funny and beautifully acted film", "a dull, lifeless mess that goes on far too long",
             "the performances are wonderful", "i wanted to walk out after twenty minutes",
             "one of the best films of the year", "the plot makes no sense at all", "warm, witty and wise",
             "a tedious exercise in style over substance", "it never loses its nerve", "flat and forgettable",
             "an ambitious , moving portrait of a family", "the jokes fall flat and the pacing drags",
             "smart , sharp and surprisingly touching", "nothing here we have not seen a hundred times",
             "a triumph of craft and heart", "predictable from start to finish"]
LOAD_RUNS = ("mlp-mnist", "bilstm-sst2")
PAGE_RUNS = ("cnn-mnist", "bilstm-waimai", "ddpm-mnist")


def digits(n: int = 100) -> list[str]:
    """The first n test digits of the MNIST sample shipped in the package, as base64 PNG."""
    from PIL import Image

    from deepzoo.data.mnist import load_mnist
    images = load_mnist(sample=True)["test"][0][:n]
    out = []
    for a in images:
        buffer = io.BytesIO()
        Image.fromarray(a).save(buffer, format="PNG")
        out.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return out


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def ms(seconds: float) -> float:
    return round(1000 * seconds, 3)


def bare_times(run_dir: Path, raw) -> dict:
    """In this process: the forward pass alone on one prepared input, and Model.predict on one raw input."""
    import torch

    import deepzoo
    from deepzoo.data.text import encode_texts
    from deepzoo.recipes.mnist import load_digit
    from deepzoo.serve.app import read_image
    model = deepzoo.load(run_dir)
    net = model.module.eval()
    if model.recipe == "mlp-mnist":
        raw = read_image(0, raw)                               # the PIL image the server would make
        args = (load_digit(raw),)
    else:
        ctx = model.context
        ids = encode_texts([raw], ctx["tokenizer"], ctx["vocab"], ctx["max_len"])[0]
        args = (torch.tensor([ids]), torch.tensor([len(ids)]))

    def median_time(call, reps: int = 300) -> float:
        for _ in range(20):
            call()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    with torch.no_grad():
        forward = median_time(lambda: net(*args))
    return {"forward_ms": ms(forward), "model_predict_ms": ms(median_time(lambda: model.predict(raw))),
            "torch_threads": torch.get_num_threads()}


async def load(url: str, run: str, inputs: list, requests: int, clients: int, deadline: float) -> dict:
    """`requests` predict requests, `clients` at a time, each one input; latency of each, and errors."""
    import httpx
    latencies, errors, next_i = [], [], 0
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients)) as c:
        async def client():
            nonlocal next_i
            while next_i < requests and time.monotonic() < deadline:
                i, next_i = next_i, next_i + 1
                start = time.perf_counter()
                try:
                    r = await c.post(f"/api/runs/{run}/predict", json={"inputs": [inputs[i % len(inputs)]]})
                    ok = r.status_code == 200 and len(r.json()) == 1
                except httpx.HTTPError as e:
                    ok, r = False, e
                latencies.append(time.perf_counter() - start)
                if not ok:
                    errors.append(str(getattr(r, "text", r))[:200])
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - start
    return {"requests": len(latencies), "errors": len(errors), "first_errors": errors[:3],
            "seconds": round(wall, 3), "requests_per_s": round(len(latencies) / wall, 1),
            "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99)),
            "max_ms": ms(max(latencies))}


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(folders: list[Path]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "deepzoo", "serve", *map(str, folders), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    line = proc.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not found:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, found.group()


def find_or_train(runs: str | None, names: tuple, tmp: str) -> dict[str, Path]:
    from deepzoo.train.run import train
    found = {}
    for name in names:
        folder = Path(runs) / name if runs else None
        if folder is None or not (folder / "summary.json").exists():
            print(f"training {name} (quick preset)", file=sys.stderr)
            summary = train(name, preset="quick", out=f"{tmp}/{name}", progress=False, log=lambda *_: None)
            folder = Path(summary["run_dir"])
        found[name] = folder
    return found


def screenshots(url: str, out: Path) -> list[str]:
    """Three pages used as a person would, in headless Chromium: serve-cnn-mnist.png (a '7' drawn on the canvas),
    serve-bilstm-waimai.png (a Chinese review), serve-ddpm-mnist.png (samples), and the index, serve-index.png."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1100,900", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    wait = WebDriverWait(driver, 120)
    written = []

    def open_page(path: str, title: str) -> None:
        driver.set_window_size(1100, 900)
        driver.get(url + path)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == title)

    def shoot(name: str) -> None:
        time.sleep(0.3)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1100, min(height + 150, 4000))     # the window is taller than the page it shows
        driver.save_screenshot(str(out / name))
        written.append(str(out / name))

    try:
        open_page("/runs/cnn-mnist", "cnn-mnist")                 # a '7': the bar, then the stem
        pad = driver.find_element(By.ID, "pad")
        stroke = ActionChains(driver).move_to_element_with_offset(pad, -80, -90).click_and_hold()
        for _ in range(8):
            stroke.move_by_offset(20, 0)
        for _ in range(10):
            stroke.move_by_offset(-7, 19)
        stroke.release().perform()
        wait.until(lambda d: d.find_element(By.ID, "class").text)
        shoot("serve-cnn-mnist.png")
        open_page("/runs/bilstm-waimai", "bilstm-waimai")
        driver.find_element(By.ID, "text").send_keys("太难吃了，送得又慢，再也不点了")
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: d.find_element(By.ID, "class").text)
        shoot("serve-bilstm-waimai.png")
        open_page("/runs/ddpm-mnist", "ddpm-mnist")
        driver.find_element(By.ID, "sample").click()
        wait.until(lambda d: d.execute_script("const i = document.querySelectorAll('#images img');"
                                              "return i.length > 1 && Array.from(i).every(x => x.naturalWidth > 0)"))
        shoot("serve-ddpm-mnist.png")
        driver.set_window_size(1100, 900)
        driver.get(url + "/")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) > 0)
        shoot("serve-index.png")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", metavar="DIR", help="a folder holding mlp-mnist/ and bilstm-sst2/ run folders (a quick "
                                                  "tour's); the missing ones are trained (quick preset)")
    ap.add_argument("--requests", type=int, default=2000, help="requests to each run (default 2,000)")
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    ap.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long (default 600)")
    ap.add_argument("--out", metavar="JSON", help="also write the result here (benchmarks/results/serve.json)")
    ap.add_argument("--screenshots", metavar="DIR", help="also drive three pages in headless Chromium and save them "
                                                         "here (needs cnn-mnist, bilstm-waimai, ddpm-mnist runs)")
    args = ap.parse_args(argv)
    import fastapi
    import uvicorn

    from deepzoo import figures
    machine, flags = figures.this_machine()
    result = {"benchmark": "serve", "machine": machine, "cpu_flags": flags,
              "avx2": "avx2" in flags, "avx512": "avx512f" in flags, "amx": "amx_tile" in flags,
              "cores": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "load_average_before": [round(x, 2) for x in os.getloadavg()],
              "server": f"deepzoo serve: FastAPI {fastapi.__version__} on uvicorn {uvicorn.__version__}",
              "client": "httpx.AsyncClient, in another process on the same cores",
              "requests_per_run": args.requests, "clients": args.clients, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folders = find_or_train(args.runs, LOAD_RUNS + (PAGE_RUNS if args.screenshots else ()), tmp)
        inputs = {"mlp-mnist": digits(), "bilstm-sst2": SENTENCES}
        proc, url = start_server(list(folders.values()))
        deadline = time.monotonic() + args.max_seconds
        try:
            for name in LOAD_RUNS:
                asyncio.run(load(url, name, inputs[name], 50, args.clients, deadline))             # warm up
                alone = asyncio.run(load(url, name, inputs[name], 200, 1, deadline))
                server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
                loaded = asyncio.run(load(url, name, inputs[name], args.requests, args.clients, deadline))
                server_cpu = (cpu_seconds(proc.pid) - server_cpu) / loaded["requests"] if server_cpu else None
                client_cpu = (time.process_time() - client_cpu) / loaded["requests"]
                bare = bare_times(folders[name], inputs[name][0])
                result["runs"][name] = {
                    **loaded, "one_client_p50_ms": alone["p50_ms"], **bare,
                    "server_cpu_ms_per_request": ms(server_cpu) if server_cpu else None,
                    "server_overhead_cpu_ms": (round(ms(server_cpu) - bare["model_predict_ms"], 3)
                                               if server_cpu else None),
                    "client_cpu_ms_per_request": ms(client_cpu)}
                print(json.dumps({name: result["runs"][name]}), file=sys.stderr, flush=True)
            if args.screenshots:
                Path(args.screenshots).mkdir(parents=True, exist_ok=True)
                result["screenshots"] = screenshots(url, Path(args.screenshots))
        finally:
            proc.terminate()
            proc.wait(30)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["zero_errors"] = all(r["errors"] == 0 and r["requests"] == args.requests for r in result["runs"].values())
    print(json.dumps(result, indent=1, ensure_ascii=False))
    if args.out:
        figures.write_results(args.out, result)
    return 0 if result["zero_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
