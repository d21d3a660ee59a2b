"""What an exported model carries about itself, in ONNX ``metadata_props``.

The exporter writes these keys and the API reads them: labels, preprocessing and the rule that
answers "none of these" come from the model, never from a second copy. Values are strings (ONNX
metadata is string -> string); structured values are JSON.
"""

import json
import math
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
KEY_REJECTION = "skyclass.rejection"  # JSON object: see Rejection; absent in older exports
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
KNOWN_SCORE_OUTPUT = (
    "known_score"  # optional second output: how much an image is one of the classes
)
SCORES = ("max_probability", KNOWN_SCORE_OUTPUT)


class ContractError(ValueError):
    """A model whose metadata does not describe how to use it."""


@dataclass(frozen=True)
class Rejection:
    """How the model answers "none of these": an image whose score is below ``threshold`` is not
    one of the classes. The score is the top class probability (``max_probability``) or the
    graph's own ``known_score`` output; the trainer set ``threshold`` on val so that
    ``accept_rate`` of the in-class val images pass."""

    method: str  # how the score was learnt, for people (e.g. "max_probability", "background_class")
    score: str  # one of SCORES
    threshold: float
    accept_rate: float
    details: Mapping[str, Any] = field(
        default_factory=dict
    )  # figures behind the choice, for /health

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ContractError(f"rejection score must be one of {SCORES}, got {self.score!r}")
        # NaN or infinity would reject (or keep) every image silently, and is not JSON for /health.
        if not isinstance(self.threshold, float) or not math.isfinite(self.threshold):
            raise ContractError(
                f"rejection threshold must be a finite float, got {self.threshold!r}"
            )
        if not (0.0 < self.accept_rate <= 1.0):
            raise ContractError(
                f"rejection accept rate must be in (0, 1], got {self.accept_rate!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "score": self.score,
            "threshold": self.threshold,
            "accept_rate": self.accept_rate,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Rejection":
        try:
            method, score = data["method"], data["score"]
            threshold, accept_rate = data["threshold"], data["accept_rate"]
        except KeyError as exc:
            raise ContractError(
                f"model metadata 'skyclass.rejection' lacks {exc.args[0]!r}"
            ) from None
        details = data.get("details")
        details = {} if details is None else details
        if not isinstance(method, str) or not method or not isinstance(score, str):
            raise ContractError("model metadata 'skyclass.rejection' needs string method and score")
        # JSON numbers only: "0.5" or true would be a writer's bug, not a threshold.
        for name, number in (("threshold", threshold), ("accept_rate", accept_rate)):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ContractError(
                    f"model metadata 'skyclass.rejection' {name} must be a number, got {number!r}"
                )
        if not isinstance(details, Mapping):
            raise ContractError("model metadata 'skyclass.rejection' details must be a JSON object")
        return cls(
            method=method,
            score=score,
            threshold=float(threshold),
            accept_rate=float(accept_rate),
            details=dict(details),
        )


@dataclass(frozen=True)
class ModelContract:
    labels: tuple[str, ...]
    spec: PreprocessSpec
    info: Mapping[str, Any] = field(default_factory=dict)
    rejection: Rejection | None = None  # None: an export without the rule (every image is known)

    def to_metadata(self) -> dict[str, str]:
        props = {
            KEY_CONTRACT: CONTRACT_VERSION,
            KEY_LABELS: json.dumps(list(self.labels)),
            KEY_PREPROCESS: self.spec.to_json(),
            KEY_OUTPUT: OUTPUT_NAME,
            KEY_INFO: json.dumps(dict(self.info), sort_keys=True, default=str),
        }
        if self.rejection is not None:
            props[KEY_REJECTION] = json.dumps(self.rejection.to_dict(), sort_keys=True)
        return props

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
        rejection = None
        if KEY_REJECTION in props:
            try:
                data = json.loads(props[KEY_REJECTION])
            except json.JSONDecodeError as exc:
                raise ContractError(
                    f"model metadata 'skyclass.rejection' is not JSON: {exc}"
                ) from None
            if not isinstance(data, dict):
                raise ContractError("model metadata 'skyclass.rejection' must be a JSON object")
            rejection = Rejection.from_dict(data)
        return cls(labels=labels, spec=spec, info=info, rejection=rejection)
