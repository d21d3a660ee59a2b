"""GET /health's document: the served model, its rejection rule, the limits and the runtime."""

import math
import platform
from collections.abc import Mapping
from typing import Any

from chalicelib import limits
from chalicelib.media_types import SUPPORTED


def health_document(predictor: Any) -> dict[str, Any]:
    """What /health answers for a loaded ``predictor`` (numpy, onnxruntime and Pillow are
    already imported by then: only their versions are read here)."""
    import numpy
    import onnxruntime

    from shared.decode import ALLOWED_FORMATS, MAX_PIXELS

    info = predictor.contract.info
    return {
        "status": "ok",
        "model": {**predictor.model_info, "run_id": info.get("run_id")},
        "labels": list(predictor.labels),
        **_rejection(predictor.contract.rejection),
        "preprocess": predictor.spec.to_dict(),
        "load_ms": round(predictor.load_ms, 1),
        "limits": {
            "max_body_bytes": limits.MAX_BODY_BYTES,
            "max_files": limits.MAX_FILES,
            "max_pixels": MAX_PIXELS,
        },
        "accepts": list(SUPPORTED),
        "formats": list(ALLOWED_FORMATS),
        "runtime": {
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "numpy": numpy.__version__,
        },
    }


def _rejection(rule: Any) -> dict[str, Any]:
    """/health's account of how the model answers "none of these": the rule and a sentence."""
    if rule is None:
        return {
            "rejection": None,
            "rejection_note": "this model was exported without a rejection rule: every answer "
            'is one of its classes ("known" is always true); re-export it with a current trainer '
            'to get "unknown" for images that are none of them',
        }
    score = (
        "top class probability"
        if rule.score == "max_probability"
        else "known_score (the model's own output)"
    )
    return {
        # Figures the trainer could not compute may be NaN in the metadata: null here (JSON).
        "rejection": _json_safe(rule.to_dict()),
        "rejection_note": f"an image whose {score} is below {rule.threshold:.6g} is none of the "
        f'classes: it is answered "known": false and "label": "unknown", with its "closest" '
        f"class and the probabilities still given (reject=false keeps the closest class as the "
        f"label); the threshold lets {rule.accept_rate * 100:.4g}% of the in-class validation "
        f"images through (method: {rule.method})",
    }


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value
