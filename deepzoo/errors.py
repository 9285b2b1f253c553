"""User-facing errors.

Anything the user can fix (a missing file, a bad config key, an unknown recipe) is raised as a
:class:`DeepzooError`. The command line prints it as one line, ``deepzoo: error: <message>``, and exits
with status 2, never a traceback. Library users catch it like any exception.
"""


class DeepzooError(Exception):
    """An error caused by input the user controls; its message says what to do about it."""


class TrainingDiverged(DeepzooError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
