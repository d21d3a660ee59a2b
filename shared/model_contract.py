"""What an exported model carries about itself, in ONNX ``metadata_props``.

The exporter writes these keys and the API reads them: labels and preprocessing come from the
model, never from a second copy. Values are strings (ONNX metadata is string -> string); structured
values are JSON.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.labels import LabelError, validate_labels
from shared.spec import PreprocessSpec, SpecError

CONTRACT_VERSION = "1"
KEY_CONTRACT = "skyclass.contract_version"
KEY_LABELS = "skyclass.labels"
KEY_PREPROCESS = "skyclass.preprocess"
KEY_OUTPUT = "skyclass.output"  # what the single output holds: "probabilities" (softmax applied)
KEY_INFO = "skyclass.info"  # JSON object: model_version, run_id, created, git_commit, metrics, ...
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


class ContractError(ValueError):
    """A model whose metadata does not describe how to use it."""


@dataclass(frozen=True)
class ModelContract:
    labels: tuple[str, ...]
    spec: PreprocessSpec
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        return {
            KEY_CONTRACT: CONTRACT_VERSION,
            KEY_LABELS: json.dumps(list(self.labels)),
            KEY_PREPROCESS: self.spec.to_json(),
            KEY_OUTPUT: OUTPUT_NAME,
            KEY_INFO: json.dumps(dict(self.info), sort_keys=True, default=str),
        }

    @classmethod
    def from_metadata(cls, props: Mapping[str, str]) -> "ModelContract":
        version = props.get(KEY_CONTRACT)
        if version != CONTRACT_VERSION:
            raise ContractError(
                f"model metadata has contract version {version!r}, expected {CONTRACT_VERSION!r}: "
                "was it exported by trainer.export?"
            )
        try:
            labels = validate_labels(json.loads(props[KEY_LABELS]))
            spec = PreprocessSpec.from_json(props[KEY_PREPROCESS])
            info = json.loads(props.get(KEY_INFO, "{}"))
        except KeyError as exc:
            raise ContractError(f"model metadata lacks {exc.args[0]!r}") from None
        except (json.JSONDecodeError, LabelError, SpecError, TypeError) as exc:
            raise ContractError(f"model metadata is malformed: {exc}") from None
        if not isinstance(info, dict):
            raise ContractError("model metadata 'skyclass.info' must be a JSON object")
        return cls(labels=labels, spec=spec, info=info)
