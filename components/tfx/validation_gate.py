"""A gate after ExampleValidator: stop the pipeline before training when the records break the
schema. ExampleValidator only *reports* anomalies; this component reads them and fails the
run with a readable list (feature, split, what is wrong), so no model is trained on records
that do not follow ``schemas/schema.pbtxt``.
"""


from typing import Dict, List

from tfx import v1 as tfx
from tfx.types import artifact_utils, standard_artifacts

from imagesr.core import fs

InputArtifact = tfx.dsl.components.InputArtifact


class SchemaAnomalies(RuntimeError):
    """Records that do not follow the schema; the message lists every anomaly."""


def read_anomalies(anomalies_artifact) -> Dict[str, List[str]]:
    """{split: ["feature 'x': short description: long description", ...]} from ExampleAnomalies."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found: Dict[str, List[str]] = {}
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = fs.join(artifact_utils.get_split_uri([anomalies_artifact], split), "SchemaDiff.pb")
        if not fs.isfile(path):  # fail closed: no report is not a clean report
            raise SchemaAnomalies(f"[{split}] no anomalies report at {path}: the records were not validated")
        anomalies = anomalies_pb2.Anomalies.FromString(fs.read_bytes(path))
        msgs = [f"feature {name!r}: {info.short_description}: {info.description}"
                for name, info in sorted(anomalies.anomaly_info.items())]
        if anomalies.HasField("dataset_anomaly_info"):
            d = anomalies.dataset_anomaly_info
            msgs.append(f"dataset: {d.short_description}: {d.description}")
        if msgs:
            found[split] = msgs
    return found


@tfx.dsl.components.component
def ValidationGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]) -> None:
    """Fail (and so stop the pipeline before the Trainer) if ExampleValidator found anomalies."""
    found = read_anomalies(anomalies)
    if found:
        lines = [f"  [{split}] {m}" for split, msgs in found.items() for m in msgs]
        raise SchemaAnomalies(
            "the patch records do not follow schemas/schema.pbtxt; training stopped.\n" + "\n".join(lines)
            + f"\n(anomalies artifact: {anomalies.uri})"
        )
