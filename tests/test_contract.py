"""The preprocessing spec, labels and model metadata round-trip and refuse bad input."""

import json

import pytest

from shared import (
    DEFAULT_LABELS,
    DEFAULT_SPEC,
    ContractError,
    LabelError,
    ModelContract,
    PreprocessSpec,
    validate_labels,
)
from shared.model_contract import KEY_INFO, KEY_LABELS, KEY_PREPROCESS
from shared.spec import SpecError


def test_spec_round_trips_through_json():
    spec = PreprocessSpec(resize=232, crop=224, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4))
    assert PreprocessSpec.from_json(spec.to_json()) == spec
    assert PreprocessSpec.from_json(DEFAULT_SPEC.to_json()) == DEFAULT_SPEC
    assert DEFAULT_SPEC.input_shape == (3, 224, 224)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"resize": 256, "crop": 300}',
        '{"interpolation": "bicubic"}',
        '{"std": [0, 1, 1]}',
        '{"mean": [0.5]}',
        '{"resize": "big"}',
        '{"unknown": 1}',
    ],
)
def test_malformed_specs_are_refused(text):
    with pytest.raises(SpecError):
        PreprocessSpec.from_json(text)


def test_labels_are_validated():
    assert validate_labels(["b", "a"]) == ("b", "a")
    assert len(DEFAULT_LABELS) == 4
    for bad in ([], ["one"], ["a", "a"], ["a", ""], ["a", 3]):
        with pytest.raises(LabelError):
            validate_labels(bad)


def test_contract_round_trips_through_metadata():
    contract = ModelContract(DEFAULT_LABELS, DEFAULT_SPEC, {"model_version": "v1", "acc": 0.9})
    metadata = contract.to_metadata()
    assert all(isinstance(v, str) for v in metadata.values())
    assert ModelContract.from_metadata(metadata) == contract


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop(KEY_LABELS), "lacks"),
        (lambda m: m.update({KEY_LABELS: '["only one"]'}), "at least two"),
        (lambda m: m.update({KEY_PREPROCESS: "{"}), "malformed"),
        (lambda m: m.update({KEY_INFO: "[]"}), "JSON object"),
        (lambda m: m.clear(), "contract version"),
    ],
)
def test_bad_metadata_is_refused_with_a_reason(change, message):
    metadata = ModelContract(DEFAULT_LABELS, DEFAULT_SPEC).to_metadata()
    change(metadata)
    with pytest.raises(ContractError, match=message):
        ModelContract.from_metadata(metadata)


def test_exported_model_carries_the_contract(exported_model):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
    contract = ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    assert contract.labels == DEFAULT_LABELS and contract.spec == DEFAULT_SPEC
    assert json.loads(json.dumps(dict(contract.info)))["model_version"] == "test-0"
