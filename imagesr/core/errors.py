"""Bad input versus bugs.

:class:`UserError` is what a user can fix: a missing or corrupt file, a bad option, an output
in use. The command line prints it as one line and exits with status 2; the patch job
dead-letters a source that raises it. Anything else is a bug: a traceback and a non-zero
exit, never disguised as bad data.
"""

import dataclasses
import errno
import math
import os
import signal
import typing
from contextlib import contextmanager


class UserError(ValueError):
    """Bad input or a bad option; the message names the file or the option and says why."""


def check_keys(given, cls, what: str) -> None:
    """Refuse keys that are not fields of the dataclass ``cls``: a misspelt setting must not
    be ignored silently."""
    unknown = set(given) - set(cls.__dataclass_fields__)
    if unknown:
        raise UserError(f"unknown {what} {sorted(unknown)} (known: {sorted(cls.__dataclass_fields__)})")


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        kinds = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in args else "")
    if origin in (list, tuple, typing.Sequence, typing.List, typing.Tuple) or tp in (list, tuple):
        inner = [a for a in args if a is not Ellipsis]
        return f"a list of {_PLURAL.get(inner[0], _describe(inner[0]))}" if inner else "a list"
    if origin in (dict, typing.Dict) or tp is dict:
        return "a mapping"
    return {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string"}.get(tp, str(tp))


_PLURAL = {bool: "true or false values", int: "whole numbers", float: "finite numbers", str: "strings"}


def _conforms(value, tp):
    """(ok, value): whether ``value`` is of ``tp`` as JSON or YAML gives it (an integral float
    is a whole number and becomes one; a float must be finite); the value as it should be kept."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        if value is None:
            return type(None) in args, None
        for a in args:
            if a is not type(None):
                ok, v = _conforms(value, a)
                if ok:
                    return True, v
        return False, value
    if origin in (list, tuple, typing.Sequence, typing.List, typing.Tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        inner = [a for a in args if a is not Ellipsis]
        if not inner:
            return True, value
        out = []
        for item in value:
            ok, v = _conforms(item, inner[0])
            if not ok:
                return False, value
            out.append(v)
        return True, type(value)(out)
    if origin in (dict, typing.Dict) or tp is dict:
        return isinstance(value, dict), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return True, int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, value
    if tp is str:
        return isinstance(value, str), value
    return True, value  # any other annotation: the class checks it itself


def check_types(obj, what: str) -> None:
    """Every field of the dataclass instance ``obj`` against its annotation, as a config file
    gives it (numbers finite, whole numbers whole, lists of their items' type), so that a
    setting of the wrong type (``margin_db: "abc"``, ``learning_rate: .nan``) is refused when
    the config is read, not when the stage that uses it runs. Integral floats become ints."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        ok, kept = _conforms(value, hints.get(f.name, typing.Any))
        if not ok:
            raise UserError(f"{what} {f.name}: expected {_describe(hints[f.name])}, got {value!r}")
        if kept is not value:
            object.__setattr__(obj, f.name, kept)


FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def disk_full(error: BaseException):
    """"no space left on device" (or the quota's) when ``error`` is a full disk, else None: an
    OSError with that errno, or a runner's error that carries one as text (Beam relays a
    worker's exception as a message)."""
    if isinstance(error, OSError) and error.errno in FULL:
        return FULL[error.errno]
    text = str(error)
    return next((why for code, why in FULL.items() if os.strerror(code) in text), None)


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
