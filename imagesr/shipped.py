"""The models that ship with imagesr, chosen by name (``--model subpixel_x2``) or by scale.

Each lives in ``imagesr/assets/<name>/``: ``model.keras``, ``MODEL_CARD.md`` (how it was
trained and measured) and ``card.json`` (kind, scales, parameters and the measured figures,
read without loading Keras, so listing is instant).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from imagesr.errors import UserError
from imagesr.scale import Scale

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
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


def resolve(model: Optional[str]) -> str:
    """What ``--model`` names -> a loadable path (or ``"bicubic"``): None is the default model,
    an existing file or folder is itself, else the name of a shipped model."""
    if model is None:
        model = DEFAULT
    if model == "bicubic" or os.path.exists(model):
        return model
    shipped = get(model)
    if shipped is not None:
        return shipped.path
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
