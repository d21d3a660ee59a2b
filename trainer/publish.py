"""Put the chosen model where the Chalice app loads it (git-ignored), atomically.

Only ``model.onnx`` is written there: the labels, preprocessing and provenance travel inside it.
The file is checked before it replaces the served one: it must load in onnxruntime and carry a
readable contract, so a bad export can never take the place of a good model. Only onnxruntime
and the contract are needed, so publishing an exported run takes a moment, not an export.
"""

from pathlib import Path

from shared.cli import UsageError
from shared.model_contract import ContractError, ModelContract
from shared.paths import PUBLISHED_MODEL
from trainer.atomic import atomic_write_bytes


class PublishError(UsageError):
    """The file is not a model the API can serve."""


def publish_model(source: Path, target: Path = PUBLISHED_MODEL) -> Path:
    """Copy ``source`` to ``target`` (atomically, creating its folder) after checking it."""
    import onnxruntime as ort

    data = Path(source).read_bytes()
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several pybind types for bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise PublishError(
            f"refusing to publish {source}: onnxruntime cannot load it: {first}"
        ) from None
    try:
        ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    except ContractError as exc:
        raise PublishError(f"refusing to publish {source}: {exc}") from None
    return atomic_write_bytes(target, data)
