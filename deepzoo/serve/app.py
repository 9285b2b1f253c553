"""deepzoo serve: trained runs as one local web application, with a JSON API.

    deepzoo serve runs/cnn-mnist-20261203-101500 runs/tour-20261203/    # run folders, or folders of runs
    # then open http://127.0.0.1:8000/

Each run folder is loaded once, at start (:func:`deepzoo.load`), and served by FastAPI on uvicorn:

- ``GET  /api/runs``: every run: recipe, family, kind of page, the figure reached beside its reference;
- ``POST /api/runs/{name}/predict``: ``{"inputs": [...], "options": {...}}``, answered by one JSON object per
  input, the shapes of ``deepzoo predict --json`` and of ``Model.predict``;
- ``GET  /docs`` and ``/openapi.json``: the API described (the page is served here: no CDN);
- ``GET  /`` and ``/runs/{name}``: the index of the runs, and one page per run made for its kind
  (``deepzoo/serve/static/KIND.html``: plain HTML, CSS and a little JavaScript, no build step).

Inputs are those of ``Model.predict``, except that no input is ever a file path. An image is the base64 text
of a PNG, JPEG, GIF, BMP or WebP file (or a ``data:`` URL); a generative run's input is only a label: the
server writes the pictures into a temporary folder of its own and answers with them inline (``images``, as
``data:`` URLs) beside the names ``deepzoo predict`` would have written (``wrote``). So are the GCN's t-SNE
map (input ``map``) and, for the RL runs, one greedy episode drawn frame by frame by gymnasium's
``rgb_array`` rendering (input ``episode``). A GCN node's answer also lists its neighbours.

Safe by default: it listens on 127.0.0.1 and answers only requests addressed to a loopback name (so a web
page cannot reach it by DNS rebinding); it reads only the run folders it was started with (and its own
static files, read once at start); a request body is at most ``MAX_BODY`` bytes, a request at most
``MAX_INPUTS`` inputs, an image at most ``MAX_PIXELS`` pixels (from its header, before it is decoded;
Pillow's own decompression-bomb guard stays on). Bad input is a 4xx answer ``{"error": "..."}``: 422 when
the request breaks the schema, 400 when the model refuses it (``DeepzooError``), 404 for an unknown run, 413
for a body too large (411 for one of unknown length). Anything else is a 500 with the same JSON shape and
the traceback in the server's log.

Concurrent: model calls run in a thread pool, never on the event loop. The image and text classifiers
(``CONCURRENT``) answer any number of requests at once: their predict is one forward pass under
``torch.no_grad()`` on tensors made for the request. Every other model holds a lock of its own (the
samplers, generators, word vectors, GCN and RL agents were not audited for thread safety); pyplot (the GCN's
map) and pygame (the RL frames) are not thread-safe, so drawing with them also holds one lock, ``DRAWING``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import ipaddress
import os
import socket
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

import deepzoo
from deepzoo.errors import DeepzooError
from deepzoo.figures import format_value

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")   # pygame greets on import otherwise,
for _driver in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER"):     # and its SDL looks for a display and a sound server
    os.environ.setdefault(_driver, "dummy")

MAX_BODY = 8 * 1024 * 1024          # bytes in a request body (a photo of a few MB, in base64)
MAX_INPUTS = 64                     # inputs in one request
MAX_PIXELS = 4096 * 4096            # pixels in an uploaded image (Pillow's own limit is about 89 million)
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
MAX_LENGTH = 5_000                  # characters a language model writes in one answer
MAX_BEAM = 20
MAX_EPISODES = 1_000                # RL episodes played for one answer
MAX_FRAMES = 500                    # frames of one drawn episode (CartPole-v1's time limit)

# the page (and the way inputs are read) of each recipe, by the module of its predict function
KINDS = {"mnist": "image", "cifar": "image", "autograd": "image", "text": "text", "charlm": "lm", "lm": "lm",
         "translation": "translate", "generative": "sample", "word2vec": "words", "graph": "graph", "rl": "rl",
         "tabular": "table", "pretrain": "fill"}
PAGES = {"image", "text", "lm", "translate", "sample", "words", "graph", "rl"}   # KIND.html; others: json.html
CONCURRENT = {"image", "text", "fill"}   # predict is a pure forward pass: no lock
DRAWING = threading.Lock()          # pyplot and pygame: one drawing at a time in the whole process
EXAMPLES = {"en": ["a gripping, funny and beautifully acted film", "a dull, lifeless mess that goes on too long"],
            "zh": ["房间很干净，服务也很热情", "味道不错，送餐也快",
                   "太难吃了，送得又慢，再也不点了"],
            "charlm": ["ROMEO:"], "lm": ["the company said"],
            "translate": ["Ein Hund rennt durch den Schnee.", "Zwei Männer spielen Fußball im Park."]}


# --- the API's request ----------------------------------------------------------------------------

class Options(BaseModel):
    """``deepzoo predict``'s flags; a run accepts those listed in its ``options`` (GET /api/runs)."""
    model_config = ConfigDict(extra="forbid")
    length: int | None = Field(None, ge=0, le=MAX_LENGTH, description="characters to generate (gpt-shakespeare)")
    temperature: float | None = Field(None, ge=0, le=100, allow_inf_nan=False,
                                      description="sampling temperature: 0 is greedy; otherwise at least 0.01")
    top_k: int | None = Field(None, ge=0, le=1_000_000, description="sample among the k most likely (0: all)")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed of sampling, or of the episode")
    beam: int | None = Field(None, ge=1, le=MAX_BEAM, description="beam width of a translation (1: greedy)")

    @field_validator("temperature")
    @classmethod
    def _not_tiny(cls, t: float | None) -> float | None:
        if t is not None and 0 < t < 0.01:
            raise ValueError("the temperature is 0 (greedy) or at least 0.01")
        return t


class PredictRequest(BaseModel):
    """The inputs of ``deepzoo predict``, as JSON; the answer is a list, one JSON object per input."""
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"inputs": ["a gripping, funny and beautifully acted film"]},
        {"inputs": ["ROMEO:"], "options": {"length": 200, "temperature": 0.8, "top_k": 10}},
        {"inputs": ["data:image/png;base64,iVBORw0KGgo..."]}]})
    inputs: list[str | dict[str, float] | list[float]] = Field(
        min_length=1, max_length=MAX_INPUTS,
        description="images: base64 PNG/JPEG (or data: URLs); sentences, prompts, words or a:b::c:?; node ids or "
                    "'map'; a number of RL episodes, 'policy' or 'episode'; a generative run: any label (one "
                    "sample grid each); tabular runs: {column: value} or a list of numbers")
    options: Options = Field(default_factory=Options)


# --- reading inputs ---------------------------------------------------------------------------------

def text_input(i: int, x, what: str, empty_ok: bool = False) -> str:
    if not isinstance(x, str):
        raise DeepzooError(f"input {i}: give {what} as text, got {type(x).__name__}")
    if not (x.strip() or empty_ok):
        raise DeepzooError(f"input {i} is empty: give {what}")
    return x


def read_image(i: int, x) -> Image.Image:
    """An uploaded image (base64, or a data: URL), its size checked from its header before it is decoded;
    transparent pixels laid on white, as a drawing on paper."""
    text = text_input(i, x, "an image (base64 of a PNG or JPEG file, or a data: URL)")
    payload = text.partition(",")[2] if text.startswith("data:") else text
    try:
        raw = base64.b64decode(payload, validate=True)
    except ValueError:
        raise DeepzooError(f"input {i} is not base64: give an image as base64 of a PNG or JPEG file, or a "
                           f"data: URL") from None
    try:
        image = Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS)
        pixels = image.width * image.height
    except Exception as e:      # whatever a broken file makes Pillow raise, DecompressionBombError included
        raise DeepzooError(f"input {i}: cannot read the image ({type(e).__name__}: {e})") from None
    if pixels > MAX_PIXELS:
        raise DeepzooError(f"input {i}: the image has {image.width}x{image.height} pixels; at most "
                           f"{MAX_PIXELS:,} are read")
    try:
        image.load()
    except Exception as e:
        raise DeepzooError(f"input {i}: cannot read the image ({type(e).__name__}: {e})") from None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return image.convert("RGB")


def png_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def frame_url(frame: np.ndarray) -> str:
    image = Image.fromarray(frame)
    if image.width > 400:                       # CartPole's 600x400 frames, at half size
        image = image.reduce(2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return png_url(buffer.getvalue())


def pictures(label: str, stem: str, draw) -> dict:
    """``draw(path)`` (a predict that writes PNG files) into a temporary folder of the server's own, at
    ``stem``.png; the answer names the files it wrote and carries them inline."""
    with tempfile.TemporaryDirectory(prefix="deepzoo-serve-") as folder:
        result = draw(str(Path(folder) / f"{stem}.png"))
        files = [Path(p) for p in result["wrote"]]
        return {**result, "input": label, "wrote": [p.name for p in files],
                "images": [png_url(p.read_bytes()) for p in files]}


# --- one run ----------------------------------------------------------------------------------------

class Run:
    """A run folder, loaded once: its model, what its page shows, and the lock its calls hold."""

    def __init__(self, name: str, folder: Path) -> None:
        from deepzoo import recipes
        self.name, self.folder = name, folder
        self.model = deepzoo.load(folder)
        self.recipe = recipes.get(self.model.recipe)
        self.kind = KINDS.get(getattr(self.recipe.predict, "__module__", "").rsplit(".", 1)[-1], "other")
        self.lock = contextlib.nullcontext() if self.kind in CONCURRENT else threading.Lock()
        plot = next((p for p in (folder / "returns.png", folder / "curves.png") if p.is_file()), None)
        self.plot = plot.read_bytes() if plot else None
        self.tsne: dict | None = None                     # the GCN's map, drawn at the first request
        self.info = self.describe()

    def describe(self) -> dict:
        s, ref = self.model.summary or {}, self.recipe.reference
        reference = s.get("reference") or {"value": ref.value, "source": ref.source, "url": ref.url}
        metric = s.get("metric", ref.metric)
        return {"name": self.name, "recipe": self.recipe.name, "family": self.recipe.family, "kind": self.kind,
                "dataset": self.recipe.dataset, "description": self.recipe.description, "preset": s.get("preset"),
                "options": list(self.recipe.predict_options), "input": self.recipe.predict_help,
                "metric": metric, "value": s.get("value"), "figure": format_value(metric, s.get("value")),
                "reference": {**reference, "figure": format_value(metric, reference.get("value"))
                              if reference.get("value") is not None else None},
                "meets_reference": s.get("meets_reference"), "page": f"/runs/{quote(self.name)}",
                "plot": f"/api/runs/{quote(self.name)}/plot.png" if self.plot else None,
                "examples": self.examples()}

    def examples(self) -> list:
        cfg, context = self.model.config, self.model.context
        if self.kind == "text":
            return EXAMPLES["zh" if cfg["data"]["tokenizer"] == "zh" else "en"]
        if self.kind == "lm":
            return EXAMPLES["charlm" if self.recipe.predict_options else "lm"]
        if self.kind == "translate":
            return EXAMPLES["translate"]
        if self.kind == "fill":
            from deepzoo.recipes.pretrain import EXAMPLES as MASKED
            return MASKED[context["language"]]
        if self.kind == "words":
            words = self.model.module.index_to_key
            analogy = ["man:king::woman:?"] if {"man", "king", "woman"} <= set(words) else []
            return [words[i] for i in (100, 300, 1000) if i < len(words)] + analogy
        if self.kind == "graph":
            graph = context["graph"]
            return [graph.node_ids[int(i)] for i in graph.splits["test"][:6]]
        if self.kind == "table":
            return [{column: 0.0 for column in context["features"]}]
        return []

    def answer(self, inputs: list, options: dict) -> list[dict]:
        """The model's answers, one per input (in a worker thread: this blocks)."""
        with self.lock:
            return getattr(self, "answer_" + self.kind, self.answer_text)(inputs, options)

    def answer_text(self, inputs, options):       # text, lm, translate, words: strings, never opened
        what = {"lm": "a prompt", "words": "a word or an analogy a:b::c:?",
                "fill": "a text with [MASK]"}.get(self.kind, "a sentence")
        return self.model.predict([text_input(i, x, what, empty_ok=self.kind == "lm")
                                   for i, x in enumerate(inputs)], **options)

    def answer_image(self, inputs, options):
        return self.model.predict([read_image(i, x) for i, x in enumerate(inputs)], **options)

    def answer_table(self, inputs, options):
        for i, x in enumerate(inputs):
            if isinstance(x, str):
                raise DeepzooError(f"input {i}: give a row as {{column: value}} or a list of numbers "
                                   f"(a CSV file is not read here)")
        return self.model.predict(inputs, **options)

    def answer_sample(self, inputs, options):
        labels = [text_input(i, x, "a label for the samples", empty_ok=True) for i, x in enumerate(inputs)]
        return [pictures(label, "sample", lambda path: self.model.predict(path, **options)) for label in labels]

    def answer_graph(self, inputs, options):
        graph = self.model.context["graph"]
        index = {n: i for i, n in enumerate(graph.node_ids)}
        for i, x in enumerate(inputs):
            if text_input(i, x, "a node id, or 'map'") not in index and x != "map":
                raise DeepzooError(f"input {i}: no node {x!r} in the graph; give a node id, or 'map' for the "
                                   f"t-SNE map of the nodes")
        nodes = [x for x in inputs if x != "map"]
        answers = iter(self.model.predict(nodes, **options) if nodes else [])
        out = []
        for x in inputs:
            if x == "map":
                if self.tsne is None:
                    with DRAWING:
                        self.tsne = pictures("map", "map", lambda path: self.model.predict(path))
                out.append(self.tsne)
                continue
            answer = next(answers)
            near = graph.edge_index[1][graph.edge_index[0] == index[x]].tolist()
            answer["neighbours"] = [{"node": graph.node_ids[j], "label": graph.classes[int(graph.labels[j])]
                                     if graph.labels[j] >= 0 else None} for j in near[:100]]
            answer["degree"] = len(near)
            out.append(answer)
        return out

    def answer_rl(self, inputs, options):
        for i, x in enumerate(inputs):
            x = text_input(i, x, "a number of episodes, 'policy' or 'episode'").strip()
            if x.isdigit() and int(x) > MAX_EPISODES:
                raise DeepzooError(f"input {i}: at most {MAX_EPISODES:,} episodes are played for one answer")
        return [self.episode(options.get("seed", 0)) if x.strip() == "episode" else self.model.predict(x, **options)
                for x in inputs]

    def episode(self, seed: int) -> dict:
        """One greedy episode, each frame drawn by gymnasium's rgb_array rendering."""
        from deepzoo.recipes.rl import env_kwargs
        from deepzoo.rl.dqn import greedy_policy
        from deepzoo.rl.envs import make
        cfg, q = self.model.config, self.model.module
        if isinstance(q, np.ndarray):                       # a Q-table
            def act(obs): return int(q[int(obs)].argmax())
        else:                                               # a Q-network
            policy = greedy_policy(q)
            def act(obs): return int(policy(np.asarray(obs, dtype=np.float32)[None])[0])
        with DRAWING:
            env = make(cfg["env"]["id"], {**env_kwargs(cfg), "render_mode": "rgb_array"})
            try:
                obs, _ = env.reset(seed=seed)
                frames, actions, rewards, done = [env.render()], [], [], False
                while not done and len(actions) < MAX_FRAMES:
                    actions.append(act(obs))
                    obs, reward, terminated, truncated, _ = env.step(actions[-1])
                    rewards.append(float(reward))
                    frames.append(env.render())
                    done = terminated or truncated
            finally:
                env.close()
        return {"input": "episode", "env": cfg["env"]["id"], "seed": seed, "return": round(sum(rewards), 4),
                "length": len(actions), "ended": done, "actions": actions, "rewards": rewards,
                "frames": [frame_url(f) for f in frames]}


def load_runs(paths: list, log=print) -> dict[str, Run]:
    """Each path is a run folder, or a folder of runs (a tour): every run under it that loads is served, and
    one that does not is named in a warning. A run folder named by itself must load."""
    from deepzoo.runs import find_runs
    runs: dict[str, Run] = {}
    for path in map(Path, paths):
        found = find_runs(path)
        if not found:
            raise DeepzooError(f"{path}: no run folder there (a run folder holds config.json)")
        for folder in found:
            name, k = folder.name, 2
            while name in runs:
                name, k = f"{folder.name}-{k}", k + 1
            try:
                runs[name] = Run(name, folder)
            except Exception as e:          # a run of a tour that failed, or stopped before its first checkpoint
                if folder == path:
                    raise
                log(f"deepzoo serve: skipping {folder}: {e if isinstance(e, DeepzooError) else repr(e)}")
    return runs


# --- the application --------------------------------------------------------------------------------

def static_files() -> dict[str, tuple[bytes, str]]:
    """The pages, style sheet and script, read once (a request names a key here, never a file)."""
    types = {".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript"}
    folder = resources.files("deepzoo.serve") / "static"
    return {f.name: (f.read_bytes(), types[Path(f.name).suffix]) for f in folder.iterdir()
            if Path(f.name).suffix in types}


# the pages load nothing from elsewhere: what they show comes from this server or is inline (data: images)
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self' 'unsafe-inline'; connect-src 'self'")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Guard:
    """Before the app reads anything: refuse a request addressed to a host name other than ``hosts`` (a web
    page reaching a loopback server by DNS rebinding; None: any), and a body over ``limit`` bytes (413) or of
    unknown length (411). The HTTP server then reads no more than the length it was told."""

    def __init__(self, app, hosts: set | None, limit: int) -> None:
        self.app, self.hosts, self.limit = app, hosts, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1").rsplit(":", 1)[0]
            length = headers.get(b"content-length", b"")
            refusal = None
            if self.hosts is not None and host not in self.hosts:
                refusal = 400, f"this server answers requests to {' or '.join(sorted(self.hosts))} only"
            elif scope["method"] in ("POST", "PUT", "PATCH") and not length.isdigit():
                refusal = 411, "give the body's Content-Length"
            elif length.isdigit() and int(length) > self.limit:
                refusal = 413, f"the request body is over {self.limit:,} bytes"
            if refusal:
                return await error(*refusal)(scope, receive, send)
        await self.app(scope, receive, send)


def create_app(paths: list, host: str = "127.0.0.1", log=print) -> FastAPI:
    runs = load_runs(paths, log=log)
    if not runs:
        raise DeepzooError("no run to serve: every run folder failed to load")
    files = static_files()
    app = FastAPI(title="deepzoo serve", version=deepzoo.__version__, docs_url=None, redoc_url=None,
                  description="Trained deepzoo runs: predict with the shapes of `deepzoo predict --json`.")
    app.state.runs = runs

    def find(name: str) -> Run:
        if name not in runs:
            raise HTTPException(404, f"no run named {name!r}; this server has {', '.join(runs)}")
        return runs[name]

    # the routes below only read what was loaded at start: they run on the event loop; predict runs in a thread
    def page(name: str) -> Response:
        body, media_type = files[name]
        return Response(body, media_type=media_type, headers={"Content-Security-Policy": CSP})

    @app.get("/", include_in_schema=False)
    async def index():
        return page("index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return page("docs.html")

    @app.get("/runs/{name}", include_in_schema=False)
    async def run_page(name: str):
        kind = find(name).kind
        return page(f"{kind}.html" if kind in PAGES else "json.html")

    @app.get("/static/{file}", include_in_schema=False)
    async def static(file: str):
        if file not in files:
            raise HTTPException(404, f"no file {file!r}")
        return page(file)

    @app.get("/api/runs", summary="Every run: recipe, family, kind, figure reached beside its reference")
    async def list_runs() -> list[dict]:
        return [r.info for r in runs.values()]

    @app.get("/api/runs/{name}", summary="One run")
    async def one_run(name: str) -> dict:
        return find(name).info

    @app.get("/api/runs/{name}/plot.png", summary="The run's training curves (or returns) as a PNG",
             response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def plot(name: str):
        run = find(name)
        if run.plot is None:
            raise HTTPException(404, f"{name} has no plot")
        return Response(run.plot, media_type="image/png")

    @app.post("/api/runs/{name}/predict", summary="The run's answers: one JSON object per input",
              response_description="a list: the objects `deepzoo predict --json` prints, one per input",
              responses={400: {"description": "the model refused an input"}, 404: {"description": "no such run"},
                         413: {"description": "the body is too large"}, 422: {"description": "not the schema"}})
    async def predict(name: str, request: PredictRequest) -> JSONResponse:
        run = find(name)
        options = request.options.model_dump(exclude_none=True)
        return JSONResponse(await run_in_threadpool(run.answer, request.inputs, options))

    @app.exception_handler(DeepzooError)
    async def refused(request: Request, e: DeepzooError):
        return error(400, str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        problems = [f"the body is not JSON ({d['ctx']['error']} at character {d['loc'][-1]})"
                    if d["type"] == "json_invalid" else f"{'.'.join(map(str, d['loc'][1:])) or 'body'}: {d['msg']}"
                    for d in e.errors()]
        return error(422, "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def failed(request: Request, e: Exception):     # a bug: the log has the traceback, the client a line
        return error(500, f"internal error ({type(e).__name__}); the server's log has the details")

    loopback = is_loopback(host) and ":" not in host          # (an IPv6 host is not checked)
    app.add_middleware(Guard, hosts={"127.0.0.1", "localhost"} if loopback else None, limit=MAX_BODY)
    return app


# --- serving ----------------------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); a port in use is one clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto named, so that asyncio sets TCP_NODELAY on each connection (else a reply written in two parts
    # waits 40 ms for the client's delayed acknowledgement)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise DeepzooError(f"cannot listen on {host}:{port} ({e.strerror}); choose another with --port") from None
    sock.listen(2048)
    return sock


def server(app: FastAPI):
    import uvicorn
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))


def run(paths: list, host: str = "127.0.0.1", port: int = 8000, log=functools.partial(print, flush=True)) -> None:
    """``deepzoo serve``: listen (a port in use fails before anything loads), load the runs, serve until Ctrl-C."""
    sock = bind(host, port)
    try:
        app = create_app(paths, host=host, log=log)
    except BaseException:
        sock.close()
        raise
    shown, n = f"[{host}]" if ":" in host else host, len(app.state.runs)
    log(f"deepzoo serve: {n} run{'s' * (n != 1)} on http://{shown}:{sock.getsockname()[1]}/ "
        f"(API: /docs; Ctrl-C stops)")
    if not is_loopback(host):
        log(f"deepzoo serve: warning: listening on {host}, not loopback: anyone who can reach this machine can "
            f"use the models")
    try:
        server(app).run(sockets=[sock])
    except KeyboardInterrupt:       # uvicorn stops on Ctrl-C, then raises it again
        pass
    log("deepzoo serve: stopped")


class Background:
    """The app served on a free loopback port by a thread of this process (for tests): ``with
    Background(app) as url: ...``."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = server(app)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
