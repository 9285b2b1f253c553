"""The training engine (engine.py), run folders (run.py), checkpoints, schedules and torch.distributed.

``deepzoo.train`` is also the Python API's function (``deepzoo.train("cnn-mnist", epochs=3)``, deepzoo/api.py).
Once any module of this package is imported, Python binds the name ``train`` in the ``deepzoo`` package to
this package, hiding the function; so this package is made callable, and a call is the API's ``train``.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from deepzoo.api import train
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
