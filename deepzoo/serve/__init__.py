"""``deepzoo serve``: trained runs as one local web application and JSON API (deepzoo/serve/app.py).

It needs the ``serve`` extra (FastAPI, uvicorn, and pygame for the RL frames): ``pip install -e ".[serve]"``.
"""

from __future__ import annotations

from deepzoo.errors import DeepzooError


def serve(paths: list, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load each run folder (or each run under a folder) once and serve them until Ctrl-C."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise DeepzooError(f"deepzoo serve needs FastAPI and uvicorn ({e.name} is missing): "
                           f"pip install -e \".[serve]\"") from None
    from deepzoo.serve.app import run
    run(paths, host=host, port=port)
