"""deepzoo: the classic deep-learning families, implemented cleanly on PyTorch.

    import deepzoo
    model = deepzoo.train("cnn-mnist", epochs=3)        # or deepzoo.load("runs/cnn-mnist-...")
    model.predict("digit.png")

See deepzoo/api.py; the command line is ``deepzoo --help``.
"""

__version__ = "0.1.0"
__all__ = ["Model", "load", "train", "list_recipes", "DeepzooError"]


def __getattr__(name: str):
    # torch loads only when the Python API is first used, so `deepzoo --help` stays fast
    if name in ("Model", "load", "train", "list_recipes"):
        from deepzoo import api
        return getattr(api, name)
    if name == "DeepzooError":
        from deepzoo.errors import DeepzooError
        return DeepzooError
    raise AttributeError(f"module 'deepzoo' has no attribute {name!r}")
