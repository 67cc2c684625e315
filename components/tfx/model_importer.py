"""ModelImporter: a model trained outside the pipeline (on a GPU machine with JAX, where there
is no TFX) enters it with its provenance, to be evaluated and pushed like a trained one.

The model (a folder with ``model.keras``, or a ``.keras`` file; local or gs://) is copied into
the Model artifact in the Trainer's layout (``<uri>/Format-Serving/model.keras``), so the
evaluator and the Pusher take it as they take the Trainer's, and the pipeline root keeps the
exact bytes it evaluated. Its provenance becomes custom properties of the artifact, visible in
MLMD and ``imagesr runs show``: the source path and the file's SHA-256, and what the model's
``card.json`` (or a ``provenance.json`` beside it) says: command, commit, device, steps,
seconds, trained. A model without a card is imported with the source and hash alone.
"""

import hashlib
import json
import os
from typing import Dict

from tfx import v1 as tfx
from tfx.types import standard_artifacts

from imagesr.core import fs
from imagesr.core.errors import UserError

OutputArtifact = tfx.dsl.components.OutputArtifact
Parameter = tfx.dsl.components.Parameter

PROVENANCE_KEYS = ("command", "commit", "device", "steps", "seconds", "trained", "data")


def read_provenance(source: str) -> Dict[str, str]:
    """What a model's card says of how it was made (strings), from ``card.json`` or
    ``provenance.json`` beside ``model.keras``; {} when there is none."""
    folder = source if not source.endswith(".keras") else os.path.dirname(source)
    for name in ("provenance.json", "card.json"):
        path = fs.join(folder, name)
        if folder and fs.isfile(path):
            try:
                card = json.loads(fs.read_text(path))
            except ValueError as e:
                raise UserError(f"{path}: not JSON ({e})") from None
            return {k: card[k] if isinstance(card[k], str) else json.dumps(card[k])
                    for k in PROVENANCE_KEYS if k in card}
    return {}


def import_model(source: str, serving_dir: str) -> Dict[str, str]:
    """Copy the model at ``source`` to ``serving_dir/model.keras``; return its provenance
    (the source, the file's SHA-256 and the card's fields). Loads it once to check it is an
    imagesr model."""
    from imagesr.training.serving import load_upscaler

    keras_file = source if source.endswith(".keras") else fs.join(source, "model.keras")
    if not fs.isfile(keras_file):
        raise UserError(f"--import-model {source}: no model.keras there (a model folder or a .keras file)")
    data = fs.read_bytes(keras_file)
    fs.write_bytes(fs.join(serving_dir, "model.keras"), data)
    up = load_upscaler(serving_dir)  # a clear error now rather than in the evaluator
    provenance = {"imported_from": source, "sha256": hashlib.sha256(data).hexdigest(), "kind": up.kind,
                  "parameters": str(up.parameters)}
    if up.scale is not None:
        provenance["scale"] = str(up.scale)
    provenance.update(read_provenance(source))
    return provenance


@tfx.dsl.components.component
def ModelImporter(model: OutputArtifact[standard_artifacts.Model], source: Parameter[str]) -> None:
    """A model trained elsewhere -> a Model artifact in the Trainer's layout, with provenance."""
    from tfx.utils import path_utils

    for key, value in import_model(source, path_utils.serving_model_dir(model.uri)).items():
        model.set_string_custom_property(key, value)
