"""deepzoo: the classic deep-learning families, implemented cleanly on PyTorch."""

__version__ = "0.1.0"
