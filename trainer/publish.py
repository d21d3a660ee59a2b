"""Put the chosen model where the Chalice app loads it (git-ignored), atomically.

Only ``model.onnx`` is written there: the labels, preprocessing and provenance travel inside it.
The file is checked before it replaces the served one: it must load in onnxruntime and carry a
readable contract, so a bad export can never take the place of a good model.
"""

from pathlib import Path

import onnx

from shared.model_contract import ContractError, ModelContract
from shared.paths import PUBLISHED_MODEL
from trainer.atomic import atomic_write_bytes
from trainer.onnx_export import ExportError, load_session


def publish_model(source: Path, target: Path = PUBLISHED_MODEL) -> Path:
    """Copy ``source`` to ``target`` (atomically, creating its folder) after checking it."""
    data = Path(source).read_bytes()
    load_session(data)
    try:
        proto = onnx.load_from_string(data)
        ModelContract.from_metadata({p.key: p.value for p in proto.metadata_props})
    except ContractError as exc:
        raise ExportError(f"refusing to publish {source}: {exc}") from None
    return atomic_write_bytes(target, data)
