"""The models that ship with imagesr, chosen by name (``--model subpixel_x2``) or by scale.

Each lives in ``imagesr/assets/<name>/``: ``model.keras``, ``MODEL_CARD.md`` (how it was
trained and measured) and ``card.json`` (kind, scales, parameters and the measured figures,
read without loading Keras, so listing is instant).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from imagesr.core.errors import UserError
from imagesr.core.scale import Scale

log = logging.getLogger(__name__)

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
DEFAULT = "subpixel_x1.5"  # 1280x720 -> 1920x1080, the live path


@dataclass(frozen=True)
class ShippedModel:
    name: str
    path: str  # the model folder
    kind: str  # vdsr | subpixel
    scales: tuple  # the scales it was trained for (a subpixel model: exactly one)
    parameters: int
    figures: Dict = field(default_factory=dict)  # {"Set5": {"2": [psnr_y, ssim_y]}, ...}
    trained: str = ""

    @property
    def efficient(self) -> bool:
        return self.kind == "subpixel"


def list_models() -> List[ShippedModel]:
    """Every installed shipped model, by name."""
    out = []
    if not os.path.isdir(ASSETS):
        return out
    for name in sorted(os.listdir(ASSETS)):
        folder = os.path.join(ASSETS, name)
        card = os.path.join(folder, "card.json")
        if not (os.path.isfile(card) and os.path.isfile(os.path.join(folder, "model.keras"))):
            continue
        with open(card) as f:
            c = json.load(f)
        out.append(ShippedModel(name=name, path=folder, kind=c["kind"], scales=tuple(c["scales"]),
                                parameters=int(c["parameters"]), figures=c.get("figures", {}),
                                trained=c.get("trained", "")))
    return out


def get(name: str) -> Optional[ShippedModel]:
    return next((m for m in list_models() if m.name == name), None)


def for_scale(scale: float) -> Optional[ShippedModel]:
    """The shipped model trained for ``scale``: an efficient one first, else VDSR."""
    fits = [m for m in list_models() if Scale(scale) in {Scale(s) for s in m.scales}]
    fits.sort(key=lambda m: (not m.efficient, m.name))
    return fits[0] if fits else None


def is_bare_name(model: str) -> bool:
    """A name with no folder in it (``vdsr``), as opposed to a path (``./vdsr``, ``runs/vdsr``)."""
    return "/" not in model and os.sep not in model and model not in (".", "..")


def resolve(model: Optional[str]) -> str:
    """What ``--model`` names -> a loadable path (or ``"bicubic"``).

    None is the default shipped model. A bare name is the shipped model (or ``bicubic``) of
    that name first: a folder or file of that name in the current directory does not replace
    it (one line on stderr says which was taken; ``./NAME`` is the way to name that one).
    Anything else is a path."""
    if model is None:
        shipped = get(DEFAULT)
        if shipped is None:
            raise UserError(f"the default model {DEFAULT} is not installed: pass --model PATH or --model bicubic")
        return shipped.path
    shipped = get(model) if is_bare_name(model) else None
    if model == "bicubic" or shipped is not None:
        if os.path.exists(model):
            log.warning("--model %s: took the %s; %s here is not used (write ./%s for it)", model,
                        "bicubic baseline" if shipped is None else f"shipped model {model}",
                        os.path.join(".", model), model)
        return model if shipped is None else shipped.path
    if os.path.exists(model):
        return model
    names = ", ".join(m.name for m in list_models()) or "none installed"
    raise UserError(f"--model {model}: no such model folder or file, and no shipped model of that name "
                     f"(shipped: {names}; or bicubic)")


def table(models: List[ShippedModel]) -> str:
    """The models as a text table: name, kind, scales, parameters, Set5/Set14 Y-PSNR per scale."""
    rows = [("name", "kind", "scales", "parameters", "Set5 Y-PSNR", "Set14 Y-PSNR", "trained")]
    for m in models:
        figs = []
        for bench in ("Set5", "Set14"):
            per = m.figures.get(bench, {})
            figs.append(" / ".join(f"x{s}: {v[0]:.2f}" for s, v in per.items()) or "-")
        rows.append((m.name, m.kind, " ".join(f"x{s:g}" for s in m.scales), f"{m.parameters:,}", *figs, m.trained))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
