"""The SR scale: one exact type for every stage (patch job, training, models, serving, evaluation).

A scale is a ratio > 1 of small integers: x2, x3, x4, x1.5 = 3/2, x4/3. As a
:class:`fractions.Fraction` it compares and hashes exactly (``Scale(1.5) == 1.5``,
``Scale("3/2") == Scale(1.5)``), so lookups by scale never need a float tolerance, and it
carries what the stages derive from it:

* ``modulus`` (the numerator): an HR side must be a multiple of it for the LR side to be whole
  (x1.5: 3; HR 48 -> LR 32);
* ``unshuffle`` / ``shuffle`` (denominator / numerator): a sub-pixel network's pixel-unshuffle
  and pixel-shuffle factors (x1.5: 2 and 3);
* ``lr_side`` / ``hr_side``: exact side lengths either way.

Floats read from records (float32) or JSON are snapped to the nearest ratio with a
denominator of at most 16; anything further away is refused. ``to_json`` gives the plain
number back (2, 1.5) for configs and manifests.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Union

from imagesr.core.errors import UserError

MAX_DENOMINATOR = 16
MAX_MODULUS = 100  # HR sides must be multiples of the numerator: keep it small


class ScaleError(UserError):
    """A number that is not an SR scale (not > 1, or not a ratio of small integers)."""


class Scale(Fraction):
    """An SR scale, exact (see the module's docstring)."""

    def __new__(cls, value: Union["Scale", int, float, str, Fraction]):
        if isinstance(value, Scale):
            return value
        try:
            exact = Fraction(value) if isinstance(value, (int, Fraction)) else Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError, TypeError):
            raise ScaleError(f"not a number: {value!r}") from None
        if not math.isfinite(float(exact)):
            raise ScaleError(f"not a finite number: {value!r}")
        snapped = exact.limit_denominator(MAX_DENOMINATOR)
        if abs(float(snapped) - float(exact)) > 1e-6:
            raise ScaleError(f"scale {value} is not a ratio of small integers (e.g. 2, 1.5, 4/3)")
        if snapped <= 1:
            raise ScaleError(f"a super-resolution scale must be > 1, got {value}")
        if snapped.numerator > MAX_MODULUS:
            raise ScaleError(f"scale {value} needs HR sides that are multiples of {snapped.numerator}; "
                             f"use a ratio with a numerator of at most {MAX_MODULUS}")
        return super().__new__(cls, snapped.numerator, snapped.denominator)

    @property
    def modulus(self) -> int:
        """HR sides must be multiples of this for the LR side to be whole."""
        return self.numerator

    @property
    def unshuffle(self) -> int:
        return self.denominator

    @property
    def shuffle(self) -> int:
        return self.numerator

    def lr_side(self, hr_side: int) -> int:
        """The LR side of an HR side that is a multiple of ``modulus``."""
        if hr_side % self.modulus:
            raise ScaleError(f"{hr_side} is not a multiple of {self.modulus} (scale {self})")
        return hr_side * self.denominator // self.numerator

    def hr_side(self, lr_side: int) -> int:
        """MATLAB's output side for an LR side: ``ceil(scale * side)``, exactly."""
        return -(-lr_side * self.numerator // self.denominator)

    def to_json(self) -> Union[int, float]:
        return int(self) if self.denominator == 1 else float(self)

    def __str__(self) -> str:
        return f"{float(self):g}" if float(self) == self else f"{self.numerator}/{self.denominator}"

    def __repr__(self) -> str:
        return f"Scale({self})"

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec else str(self)

    @classmethod
    def from_float(cls, f):  # Fraction's comparisons build their other operand with this: not a Scale
        return Fraction.from_float(f)

    @classmethod
    def from_decimal(cls, d):
        return Fraction.from_decimal(d)

    def __reduce__(self):  # picklable (Beam ships configs to workers)
        return (Scale, (f"{self.numerator}/{self.denominator}",))


def scales(values) -> tuple:
    """Several scales, in order, duplicates removed."""
    out = []
    for v in values:
        s = Scale(v)
        if s not in out:
            out.append(s)
    return tuple(out)


def scale_argument(text: str) -> Scale:
    """argparse ``type=`` for a scale (the CLI's and the patch job's flags)."""
    import argparse

    try:
        return Scale(text)
    except ScaleError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
