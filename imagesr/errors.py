"""Bad input versus bugs.

:class:`UserError` is what a user can fix: a missing or corrupt file, a bad option, an output
in use. The command line prints it as one line and exits with status 2; the patch job
dead-letters a source that raises it. Anything else is a bug: a traceback and a non-zero
exit, never disguised as bad data.
"""

import signal
from contextlib import contextmanager


class UserError(ValueError):
    """Bad input or a bad option; the message names the file or the option and says why."""


def check_keys(given, cls, what: str) -> None:
    """Refuse keys that are not fields of the dataclass ``cls``: a misspelt setting must not
    be ignored silently."""
    unknown = set(given) - set(cls.__dataclass_fields__)
    if unknown:
        raise UserError(f"unknown {what} {sorted(unknown)} (known: {sorted(cls.__dataclass_fields__)})")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (partial outputs removed)."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
