"""The contract shared by the trainer and the classify API.

Both sides load images only through :func:`shared.decode.decode` and turn them into network
input only through :func:`shared.preprocess.preprocess`, parameterised by one
:class:`shared.spec.PreprocessSpec`, so training and serving see the same pixels. This package
must stay importable with nothing but numpy and Pillow installed (it ships inside the Lambda bundle).
"""

from shared.decode import DecodeError, ImageTooLargeError, decode
from shared.labels import DEFAULT_LABELS, LabelError, validate_labels
from shared.model_contract import ContractError, ModelContract
from shared.preprocess import preprocess
from shared.spec import DEFAULT_SPEC, PreprocessSpec

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_SPEC",
    "ContractError",
    "DecodeError",
    "ImageTooLargeError",
    "LabelError",
    "ModelContract",
    "PreprocessSpec",
    "decode",
    "preprocess",
    "validate_labels",
]
