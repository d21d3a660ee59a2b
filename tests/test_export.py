"""trainer.export end to end on a fabricated run: real MobileNetV2, real images, real onnxruntime.

One session-scoped export (with INT8 and publishing into a temporary folder) feeds most checks;
failure paths either stop before the expensive steps or monkeypatch one stage of the pipeline.
The fabricated run has train, val and test images: val gates and calibrates, test is scored once.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import bundler.runtime as runtime_mod
import trainer.export as export_mod
import trainer.exporting.steps as steps_mod
from bundler.runtime import MAX_IR_VERSION, RuntimeSetupError, deploy_target
from shared import DEFAULT_SPEC, ModelContract
from shared.cli import run_cli
from shared.decode import decode
from shared.model_contract import INPUT_NAME, OUTPUT_NAME
from shared.paths import PUBLISHED_MODEL, REPO
from shared.preprocess import preprocess
from tests.bundle_support import pinned
from tests.runfactory import FakeRun, make_run
from trainer.data.manifest import FILENAME as MANIFEST_FILE
from trainer.export import ExportResult, export_run
from trainer.export import main as export_main
from trainer.exporting.graph import (
    ExportError,
    check_compatible,
    load_session,
    prune_opset_imports,
)
from trainer.exporting.parity import (
    MAX_PROB_DIFF,
    ParityError,
    PreparedImages,
    check_parity,
    compare,
    prepare_images,
    run_in_lambda_runtime,
)
from trainer.exporting.publish import PublishError, publish_model
from trainer.exporting.quantize import calibration_items, decide_int8
from trainer.exporting.steps import balanced
from trainer.learning.checkpoint import BEST, load_checkpoint, save_checkpoint

FAST = {"latency_runs": 3}


@pytest.fixture(scope="session")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> FakeRun:
    return make_run(tmp_path_factory.mktemp("fake"))


@pytest.fixture(scope="session")
def exported(fake_run: FakeRun, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    target = tmp_path_factory.mktemp("published") / "model" / "model.onnx"
    return export_run(fake_run.run_dir, publish=True, publish_to=target, log=lambda _: None, **FAST)


@pytest.fixture(scope="session")
def torch_model(fake_run: FakeRun) -> torch.nn.Module:
    return fake_run.checkpoint.model()


@pytest.fixture(scope="session")
def gate_images(fake_run: FakeRun) -> PreparedImages:
    return prepare_images(fake_run.manifest.split("val"), DEFAULT_SPEC)


@pytest.fixture
def cached_export(exported: ExportResult, monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the (slow) torch.onnx trace: hand the pipeline the graph the session export made."""

    def from_cache(model: torch.nn.Module, contract: ModelContract, *_: object) -> onnx.ModelProto:
        return onnx.load(str(exported.model_path))

    monkeypatch.setattr(steps_mod, "to_onnx_model", from_cache)


@pytest.fixture
def run_copy(fake_run: FakeRun, tmp_path: Path) -> Path:
    """A fresh run folder (checkpoint + manifest only) that a test may break or export into."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in (BEST, MANIFEST_FILE):
        shutil.copy(fake_run.run_dir / name, run_dir / name)
    return run_dir


@pytest.fixture
def publish_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where ``--publish`` writes during this test (never the real classify_api folder)."""
    target = tmp_path / "published" / "model.onnx"
    monkeypatch.setattr(export_mod, "PUBLISHED_MODEL", target)
    return target


def _contract(path: Path) -> ModelContract:
    proto = onnx.load(str(path))
    return ModelContract.from_metadata({p.key: p.value for p in proto.metadata_props})


def _test_tensor(fake_run: FakeRun, count: int) -> np.ndarray:
    paths = [p for p, _ in fake_run.manifest.split("test")][:count]
    return np.concatenate([preprocess(decode(p.read_bytes()), DEFAULT_SPEC) for p in paths])


def _final_gemm_weight(proto: onnx.ModelProto) -> onnx.TensorProto:
    gemm = [n for n in proto.graph.node if n.op_type == "Gemm"][-1]
    return next(t for t in proto.graph.initializer if t.name == gemm.input[1])


# --- the exported files ---------------------------------------------------------------------------


def test_fp32_model_is_one_self_contained_loadable_file(exported: ExportResult) -> None:
    proto = onnx.load(str(exported.model_path), load_external_data=False)
    onnx.checker.check_model(proto)
    check_compatible(proto)  # within bundler.runtime's IR and opset limits, default domain only
    assert proto.ir_version <= MAX_IR_VERSION
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in proto.graph.initializer)
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == INPUT_NAME
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 224, 224]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    assert proto.graph.node[-1].op_type == "Softmax"
    # Only the files trainer.fit and trainer.export write: no external data, no leftover temp.
    assert sorted(p.name for p in exported.run_dir.iterdir()) == sorted(
        [BEST, MANIFEST_FILE, "model.onnx", "model.int8.onnx", "model_card.md", "metrics.json",
         "report.md", "test"]
    )  # fmt: skip


def test_metadata_carries_the_contract(exported: ExportResult, fake_run: FakeRun) -> None:
    for path, precision in ((exported.model_path, "fp32"), (exported.int8_path, "int8")):
        contract = _contract(path)
        info = contract.info
        assert contract.labels == fake_run.manifest.labels
        assert contract.spec == DEFAULT_SPEC
        assert info["precision"] == precision
        assert info["run_id"] == "fake-run" and info["model_version"] == f"fake-run-{precision}"
        assert info["git_commit"] == "0" * 40
        assert info["split_manifest_sha256"] == fake_run.manifest.sha256()
        assert info["class_counts"] == fake_run.manifest.counts()
        assert info["served"] == exported.served == "int8"
        assert "int8 kept" in info["selection"]
        assert info["temperature"] == pytest.approx(exported.temperature, abs=1e-6)
        assert info["created"] == fake_run.checkpoint.info.created
        # The served bytes never depend on the test split: no test figure goes into the file.
        assert not [key for key in info if "test" in key]


@pytest.mark.parametrize("variant", ["model_path", "int8_path"])
def test_output_is_probabilities_with_dynamic_batch(
    exported: ExportResult, fake_run: FakeRun, variant: str
) -> None:
    session = load_session(getattr(exported, variant))
    x = _test_tensor(fake_run, 3)
    batch = session.run(None, {INPUT_NAME: x})[0]
    assert batch.shape == (3, 4)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    assert (batch >= 0).all() and (batch <= 1).all()
    singles = np.concatenate([session.run(None, {INPUT_NAME: x[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_same_answers_under_the_lambda_runtime(exported: ExportResult, fake_run: FakeRun) -> None:
    """Both files under the bundle's onnxruntime and numpy (the deploy Python, isolated) vs the
    trainer's onnxruntime."""
    x = _test_tensor(fake_run, 8)
    models = [exported.model_path, exported.int8_path]
    run = run_in_lambda_runtime(models, x)  # fails (never skips) if scripts/setup was not run
    assert Path(run.origin).resolve().is_relative_to(deploy_target().packages_dir.resolve())
    assert (run.onnxruntime, run.numpy) == (pinned("onnxruntime"), pinned("numpy"))
    for path, theirs in zip(models, run.outputs, strict=True):
        ours = load_session(path).run(None, {INPUT_NAME: x})[0]
        assert np.abs(ours - theirs).max() <= MAX_PROB_DIFF
        assert (ours.argmax(1) == theirs.argmax(1)).all()
    assert "same answers under the Lambda runtime's onnxruntime" in exported.runtime_check


def test_missing_runtime_is_a_clear_error(
    tmp_path: Path, exported: ExportResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_mod, "RUNTIMES", tmp_path)
    with pytest.raises(RuntimeSetupError, match="run scripts/setup-deploy"):
        run_in_lambda_runtime([exported.model_path], np.zeros((1, 3, 224, 224), np.float32))


# --- the parity gate ----------------------------------------------------------------------------


def test_parity_gate_passes_on_the_real_export(exported: ExportResult) -> None:
    parity = exported.parity
    assert parity.passed and parity.images == 20 and not parity.top1_mismatches  # 8 val + 12 train
    assert parity.max_prob_diff <= MAX_PROB_DIFF
    assert exported.fp32.val_balanced_accuracy >= 0.5  # the fabricated run's head learned


def test_parity_gate_fails_on_a_corrupted_model(
    exported: ExportResult, torch_model: torch.nn.Module, gate_images: PreparedImages
) -> None:
    proto = onnx.load(str(exported.model_path))
    weight = _final_gemm_weight(proto)
    values = onnx.numpy_helper.to_array(weight).copy()
    values += np.random.default_rng(0).normal(0, values.std() * 3, values.shape).astype(np.float32)
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    session = load_session(proto.SerializeToString())
    t = exported.temperature
    with pytest.raises(ParityError, match=r"parity gate failed: 8 val and training images") as e:
        check_parity(torch_model, session, gate_images, t)
    diff = float(re.search(r"max probability difference (\S+)", str(e.value)).group(1))
    assert diff > MAX_PROB_DIFF
    assert compare(torch_model, load_session(exported.model_path), gate_images, t).passed
    # The temperature is part of what is compared: without it the file does not match.
    assert not compare(torch_model, load_session(exported.model_path), gate_images, 1.0).passed


def test_parity_gate_refuses_no_images(
    exported: ExportResult, torch_model: torch.nn.Module
) -> None:
    empty = prepare_images([], DEFAULT_SPEC)
    with pytest.raises(ParityError, match="no val or training images"):
        check_parity(torch_model, load_session(exported.model_path), empty)


def test_prepared_images_are_exactly_shared_preprocess(
    fake_run: FakeRun, gate_images: PreparedImages
) -> None:
    paths = [p for p, _ in fake_run.manifest.split("val")]
    expected = np.concatenate([preprocess(decode(p.read_bytes()), DEFAULT_SPEC) for p in paths])
    assert np.array_equal(gate_images.tensor(0, 8), expected)
    assert np.array_equal(np.concatenate([x for _, x in gate_images.batches(3)]), expected)


def test_failed_gate_writes_and_publishes_nothing(
    run_copy: Path,
    exported: ExportResult,
    publish_target: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def corrupted(model: torch.nn.Module, contract: ModelContract, *_: object) -> onnx.ModelProto:
        proto = onnx.load(str(exported.model_path))
        weight = _final_gemm_weight(proto)
        flipped = -onnx.numpy_helper.to_array(weight)  # every decision changes
        weight.CopyFrom(onnx.numpy_helper.from_array(flipped, weight.name))
        return proto

    monkeypatch.setattr(steps_mod, "to_onnx_model", corrupted)
    assert main([str(run_copy), "--publish"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainer.export: error: parity gate failed") and "\n" not in err
    assert "top-1 mismatches" in err and "max probability difference" in err
    assert sorted(p.name for p in run_copy.iterdir()) == sorted([BEST, MANIFEST_FILE])
    assert not publish_target.parent.exists()


# --- INT8 ---------------------------------------------------------------------------------------


def test_int8_kept_smaller_and_published(exported: ExportResult) -> None:
    assert exported.served == "int8" and exported.int8 is not None
    assert exported.served_path == exported.int8_path == exported.run_dir / "model.int8.onnx"
    assert exported.int8.size_bytes < exported.fp32.size_bytes / 2
    assert exported.int8.size_bytes == exported.int8_path.stat().st_size
    assert exported.int8.val_balanced_accuracy >= exported.fp32.val_balanced_accuracy - 0.01
    assert exported.int8.latency_ms > 0 and exported.fp32.latency_ms > 0
    ops = {n.op_type for n in onnx.load(str(exported.int8_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert exported.published_path is not None
    assert exported.published_path.read_bytes() == exported.int8_path.read_bytes()
    assert [p.name for p in exported.published_path.parent.iterdir()] == ["model.onnx"]


def test_int8_weights_are_per_channel(exported: ExportResult) -> None:
    proto = onnx.load(str(exported.int8_path))
    initializers = {t.name: t for t in proto.graph.initializer}
    producer = {out: node for node in proto.graph.node for out in node.output}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert len(convs) == 52
    for conv in convs:
        dequantize = producer[conv.input[1]]
        assert dequantize.op_type == "DequantizeLinear"
        weight = initializers[dequantize.input[0]]
        scale = initializers[dequantize.input[1]]
        assert weight.data_type == onnx.TensorProto.INT8
        assert list(scale.dims) == [weight.dims[0]]  # one scale per output channel


def _probs(predicted: list[int], n_classes: int = 4) -> np.ndarray:
    out = np.full((len(predicted), n_classes), 0.1, np.float32)
    out[np.arange(len(predicted)), predicted] = 0.7
    return out


def test_int8_decision_needs_99_percent_agreement() -> None:
    fp32 = _probs([0, 1, 2, 3] * 25)  # 100 images; the first 8 are val, labelled as predicted
    targets = np.array([0, 1, 2, 3] * 2)
    same = decide_int8(fp32, fp32.copy(), targets, 8, balanced, 1.0)
    assert same.keep and same.agreement == 1.0 and same.drop == 0.0
    assert "int8 kept" in same.reason and "on 100 val + training images" in same.reason
    one_flip = _probs([0, 1, 2, 3] * 24 + [1, 1, 2, 3])  # a training image: val unchanged
    assert decide_int8(fp32, one_flip, targets, 8, balanced, 1.0).keep  # 99.0%
    two_flips = _probs([0, 1, 2, 3] * 24 + [1, 2, 2, 3])  # 98%
    decision = decide_int8(fp32, two_flips, targets, 8, balanced, 100.0)
    assert not decision.keep and decision.agreement == pytest.approx(0.98)
    assert "int8 rejected, fp32 served" in decision.reason


def test_int8_decision_refuses_a_val_balanced_accuracy_drop() -> None:
    fp32 = _probs([0, 1, 2, 3] * 25)
    int8 = _probs([1, 1, 2, 3] + [0, 1, 2, 3] * 24)  # 99% agreement, one val image now wrong
    targets = np.array([0, 1, 2, 3] * 2)
    strict = decide_int8(fp32, int8, targets, 8, balanced, 1.0)
    assert strict.agreement == pytest.approx(0.99) and strict.drop == pytest.approx(0.125)
    assert not strict.keep and "drop +12.50 points, limit 1.00" in strict.reason
    assert decide_int8(fp32, int8, targets, 8, balanced, 13.0).keep


def test_int8_rejected_when_accuracy_drops(
    run_copy: Path, tmp_path: Path, cached_export: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A (deliberately) bad int8 model is measured, rejected, and fp32 is served instead."""
    real_quantize = steps_mod.quantize_int8

    def shifted_quantize(*args: object, **kwargs: object) -> onnx.ModelProto:
        proto = real_quantize(*args, **kwargs)
        # Rotate the probability columns: every prediction becomes the next class.
        softmax = proto.graph.node[-1]
        assert softmax.op_type == "Softmax"
        softmax.output[0] = "unrotated"
        proto.graph.initializer.append(
            onnx.numpy_helper.from_array(np.array([1, 2, 3, 0], np.int64), "rotation")
        )
        proto.graph.node.append(
            onnx.helper.make_node("Gather", ["unrotated", "rotation"], [OUTPUT_NAME], axis=1)
        )
        return proto

    monkeypatch.setattr(steps_mod, "quantize_int8", shifted_quantize)
    (run_copy / "model.int8.onnx").write_bytes(b"stale int8 from an earlier export")
    target = tmp_path / "pub" / "model.onnx"
    result = export_run(run_copy, publish=True, publish_to=target, log=lambda _: None, **FAST)
    assert result.int8 is not None
    assert result.int8.val_balanced_accuracy < result.fp32.val_balanced_accuracy - 0.3
    assert result.served == "fp32" and result.int8_path is None
    assert "int8 rejected" in result.decision and "agreement with fp32 0.0%" in result.decision
    assert not (run_copy / "model.int8.onnx").exists()
    assert target.read_bytes() == (run_copy / "model.onnx").read_bytes()
    info = _contract(target).info
    assert info["served"] == "fp32"
    assert info["val_balanced_accuracy"]["int8"] == round(result.int8.val_balanced_accuracy, 4)
    card = (run_copy / "model_card.md").read_text()
    assert "int8 rejected" in card
    assert (
        f"| int8 | {result.int8.size_mb:.2f} MB | {result.int8.val_balanced_accuracy:.3f} |" in card
    )
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert metrics["served"] == "fp32" and metrics["int8"]["kept"] is False


def test_calibration_takes_every_class_in_turn() -> None:
    items = [(Path(f"{c}{i}"), c) for c in range(3) for i in range(5)]
    chosen = calibration_items(items, 7, 3)
    assert [label for _, label in chosen] == [0, 1, 2, 0, 1, 2, 0]
    assert len(calibration_items(items, 100, 3)) == 15


# --- model card and publish -------------------------------------------------------------------


def test_model_card_documents_the_model(exported: ExportResult, fake_run: FakeRun) -> None:
    card = exported.card_path.read_text()
    for label in fake_run.manifest.labels:
        assert f"| {label} | 3 | 2 | 2 |" in card  # train / val / test images per class
        assert f"| {label} | 2 | " in card  # its test images in the test table
    test = exported.test
    assert test is not None and test["n"] == 8
    for text in (
        "## How well it does (never measured on a photo that chose anything)",
        "Estimated on the test split, scored once by the served model.",
        f"{test['n']} test images. Accuracy of the answer served **",
        f"closed set: accuracy **{test['accuracy']['value']:.1%} [",
        "## How it was chosen (never on the estimate)",
        "INT8: int8 kept",
        "## Intended use and limits",
        "center crop 224",
        f"Softmax temperature {exported.temperature:.3f}",
        "Expected calibration error on test (15 bins)",
        "Parity with PyTorch: passed",
        "Lambda runtime: same answers",
    ):
        assert text in card, text
    report = (exported.run_dir / "report.md").read_text()
    assert "scored once" in report and "test/confusion_matrix.png" in report


def test_publish_refuses_a_model_without_contract(exported: ExportResult, tmp_path: Path) -> None:
    proto = onnx.load(str(exported.model_path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    target = tmp_path / "served" / "model.onnx"
    target.parent.mkdir()
    target.write_bytes(b"previous model")
    with pytest.raises(PublishError, match="refusing to publish"):
        publish_model(bare, target)
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]


def test_published_model_is_git_ignored() -> None:
    proc = subprocess.run(
        ["git", "check-ignore", "-q", str(PUBLISHED_MODEL)], cwd=REPO, check=False
    )
    assert proc.returncode == 0


# --- bad input: one clear line, exit 2 -------------------------------------------------------------


def _expect_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], pattern: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trainer.export: error: ") and "\n" not in err, err
    assert pattern in err, err


def test_run_without_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _expect_one_line(capsys, [str(tmp_path)], "no checkpoint in")
    _expect_one_line(capsys, [str(tmp_path / "nope")], "is not a run folder")


def test_torn_checkpoint(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (run_copy / BEST).read_bytes()
    (run_copy / BEST).write_bytes(data[: len(data) // 2])
    _expect_one_line(capsys, [str(run_copy)], "unreadable")


def test_missing_manifest(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_copy / MANIFEST_FILE).unlink()
    _expect_one_line(capsys, [str(run_copy)], f"no {MANIFEST_FILE}")


def test_labels_that_do_not_match_the_manifest(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = load_checkpoint(run_copy / BEST)
    checkpoint.labels = tuple(reversed(checkpoint.labels))
    save_checkpoint(run_copy / BEST, checkpoint)
    _expect_one_line(capsys, [str(run_copy)], "do not match split.json labels")


def test_onnx_that_fails_to_load(
    run_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unloadable(model: torch.nn.Module, contract: ModelContract, *_: object) -> onnx.ModelProto:
        node = onnx.helper.make_node("NoSuchOp", [INPUT_NAME], [OUTPUT_NAME])
        graph = onnx.helper.make_graph(
            [node],
            "broken",
            [onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, None)],
            [onnx.helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, None)],
        )
        return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])

    monkeypatch.setattr(steps_mod, "to_onnx_model", unloadable)
    _expect_one_line(capsys, [str(run_copy)], "onnxruntime cannot load the exported model")
    assert sorted(p.name for p in run_copy.iterdir()) == sorted([BEST, MANIFEST_FILE])


def test_load_session_on_a_garbage_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07not really protobuf")
    with pytest.raises(ExportError, match=r"onnxruntime cannot load .*model\.onnx") as info:
        load_session(bad)
    assert "\n" not in str(info.value)


def test_foreign_opset_imports_are_pruned(exported: ExportResult) -> None:
    proto = onnx.load(str(exported.int8_path))
    proto.opset_import.append(onnx.helper.make_opsetid("ai.onnx.ml", 5))  # older runtimes refuse
    with pytest.raises(ExportError, match=r"ai\.onnx\.ml"):
        check_compatible(proto)
    check_compatible(prune_opset_imports(proto))


def main(argv: list[str]) -> int:
    """``python -m trainer.export ARGV`` in-process: its exit status, its one line on stderr."""
    return run_cli(export_main, argv, prog="trainer.export")


def test_cli_bad_input_has_no_traceback_unless_debug(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "trainer.export", str(tmp_path)]
    quiet = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == [
        f"trainer.export: error: no checkpoint in {tmp_path}: best.pt is missing "
        "(did trainer.fit finish?)"
    ]
    with pytest.raises(ExportError, match="no checkpoint"):
        main([str(tmp_path), "--debug"])  # --debug lets the exception (and traceback) through


def test_cli_no_int8_publishes_fp32(
    run_copy: Path,
    cached_export: None,
    publish_target: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (run_copy / "model.int8.onnx").write_bytes(b"stale")
    assert main([str(run_copy), "--no-int8", "--publish"]) == 0
    out = capsys.readouterr().out
    assert "parity gate passed: 20 val and training images, top-1 mismatches 0" in out
    assert re.search(
        r"fp32: +\d+\.\d+ MB +balanced accuracy on the val images +\d\.\d{3} +single-image", out
    )
    assert "int8:" not in out and "published fp32 model" in out
    assert (
        "estimate (the test split, scored once by the served model; fp32, 8 images): answer served"
        in out
    )
    assert sorted(p.name for p in run_copy.iterdir()) == sorted(
        [BEST, MANIFEST_FILE, "model.onnx", "model_card.md", "metrics.json", "report.md", "test"]
    )
    assert publish_target.read_bytes() == (run_copy / "model.onnx").read_bytes()
    assert _contract(publish_target).info["selection"] == "int8 not built (--no-int8)"
