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
from shared.model_contract import KEY_INFO, KEY_LABELS, KEY_PREPROCESS, KEY_REJECTION, Rejection
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


# --- the rejection rule --------------------------------------------------------------------------

RULE = Rejection(
    "background_class", "known_score", -0.25, 0.95, {"auroc": 0.98, "kinds": {"kite": 3}}
)


def test_the_rejection_rule_round_trips_through_metadata():
    contract = ModelContract(DEFAULT_LABELS, DEFAULT_SPEC, {"model_version": "v2"}, RULE)
    metadata = contract.to_metadata()
    assert json.loads(metadata[KEY_REJECTION]) == RULE.to_dict()
    assert ModelContract.from_metadata(metadata) == contract
    assert ModelContract.from_metadata(metadata).rejection == RULE
    # An older export has no key: no rule, every image is one of the classes.
    older = ModelContract(DEFAULT_LABELS, DEFAULT_SPEC).to_metadata()
    assert KEY_REJECTION not in older and ModelContract.from_metadata(older).rejection is None


def test_the_rejection_rule_round_trips_through_an_onnx_file(known_score_model):
    """What the API reads: onnxruntime's view of the file's metadata."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(known_score_model), providers=["CPUExecutionProvider"])
    contract = ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    assert contract.rejection == Rejection(
        "background_class", "known_score", 0.0, 0.95, {"auroc": 0.99}
    )
    assert [o.name for o in session.get_outputs()] == ["probabilities", "known_score"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("threshold"), "lacks 'threshold'"),
        (lambda r: r.pop("method"), "lacks 'method'"),
        (lambda r: r.update(score="entropy"), "score must be one of"),
        (lambda r: r.update(score=None), "string method and score"),
        (lambda r: r.update(method=""), "string method and score"),
        (lambda r: r.update(threshold="0.5"), "threshold must be a number"),
        (lambda r: r.update(threshold=True), "threshold must be a number"),
        (lambda r: r.update(threshold=None), "threshold must be a number"),
        (lambda r: r.update(threshold=float("nan")), "finite"),
        (lambda r: r.update(threshold=float("inf")), "finite"),
        (lambda r: r.update(accept_rate=0), r"accept rate must be in \(0, 1\]"),
        (lambda r: r.update(accept_rate=1.5), r"accept rate must be in \(0, 1\]"),
        (lambda r: r.update(accept_rate=float("nan")), r"accept rate must be in \(0, 1\]"),
        (lambda r: r.update(accept_rate=[0.9]), "accept_rate must be a number"),
        (lambda r: r.update(details=[["a", 1]]), "details must be a JSON object"),
        (lambda r: r.update(details="x"), "details must be a JSON object"),
    ],
)
def test_malformed_rejection_rules_are_refused(change, message):
    metadata = ModelContract(DEFAULT_LABELS, DEFAULT_SPEC, rejection=RULE).to_metadata()
    rule = json.loads(metadata[KEY_REJECTION])
    change(rule)
    metadata[KEY_REJECTION] = json.dumps(rule)  # NaN and Infinity as Python's json writes them
    with pytest.raises(ContractError, match=message):
        ModelContract.from_metadata(metadata)


@pytest.mark.parametrize(("text", "message"), [("{", "not JSON"), ("[1]", "JSON object")])
def test_rejection_metadata_that_is_not_an_object_is_refused(text, message):
    metadata = ModelContract(DEFAULT_LABELS, DEFAULT_SPEC).to_metadata()
    metadata[KEY_REJECTION] = text
    with pytest.raises(ContractError, match=message):
        ModelContract.from_metadata(metadata)


def test_a_rule_without_details_reads_as_empty_details():
    metadata = ModelContract(DEFAULT_LABELS, DEFAULT_SPEC, rejection=RULE).to_metadata()
    for details in (None, "absent"):
        rule = json.loads(metadata[KEY_REJECTION])
        if details == "absent":
            del rule["details"]
        else:
            rule["details"] = details
        metadata[KEY_REJECTION] = json.dumps(rule)
        assert ModelContract.from_metadata(metadata).rejection.details == {}


def test_unknown_is_a_reserved_label():
    for labels in (["cats", "unknown"], ["cats", " Unknown "]):
        with pytest.raises(LabelError, match="reserved"):
            validate_labels(labels)


def test_predictor_refuses_a_known_score_rule_without_that_output(
    exported_model, tmp_path, known_score_model, black_png
):
    from shared.predictor import Predictor
    from tests.model_support import with_rejection

    path = with_rejection(exported_model, tmp_path / "model.onnx", RULE, "no-score")
    with pytest.raises(ContractError, match="reads an output 'known_score' it does not have"):
        Predictor.from_path(path)
    # The same rule on a graph that has the output loads and answers with it.
    answer = Predictor.from_path(known_score_model).predict(black_png)
    assert answer["known_score"] == pytest.approx(-2.0, abs=0.1) and answer["known"] is False
    assert answer["known_score"] != answer["confidence"]
