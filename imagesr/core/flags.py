"""Argument types shared by the command line (``imagesr.cli``) and the flags the patch job
declares (``imagesr.core.patches.add_job_arguments``): each checks a value and says in one line
what it expected."""

import argparse
import dataclasses
import math
import types


def _positive(text: str, convert, what: str):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be {'at least 1' if convert is int else 'a positive number'}: {text}")
    return value


def positive_int(text: str) -> int:
    return _positive(text, int, "a whole number")


def positive_float(text: str) -> float:
    return _positive(text, float, "a number")


def field_defaults(cls) -> types.SimpleNamespace:
    """A dataclass's field defaults as attributes, read from the class without building one
    (building TrainConfig would load Keras): the flags' defaults are the dataclasses' own."""
    return types.SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(cls)
                                    if f.default is not dataclasses.MISSING})
