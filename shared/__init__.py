"""The contract shared by the trainer and the classify API.

Both sides load images only through :func:`shared.decode.decode` and turn them into network
input only through :func:`shared.preprocess.preprocess`, parameterised by one
:class:`shared.spec.PreprocessSpec`, so training and serving see the same pixels; both run
exported models through :class:`shared.predictor.Predictor`. This package must stay importable
with nothing but numpy, Pillow and onnxruntime installed (it ships inside the Lambda bundle).

Only the standard-library modules are imported here: ``chalice package`` imports the app, and
with it this package, where numpy and Pillow are not installed. Import ``shared.decode``,
``shared.preprocess`` and ``shared.predictor`` where they are used.
"""

from shared.labels import DEFAULT_LABELS, LabelError, validate_labels
from shared.model_contract import ContractError, ModelContract
from shared.spec import DEFAULT_SPEC, PreprocessSpec, SpecError

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_SPEC",
    "ContractError",
    "LabelError",
    "ModelContract",
    "PreprocessSpec",
    "SpecError",
    "validate_labels",
]
