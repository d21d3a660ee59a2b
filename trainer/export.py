"""``python -m trainer.export RUN_DIR``: best checkpoint -> the ONNX model the API serves.

1. ``RUN_DIR/best.pt`` + ``split.json`` -> fp32 ONNX with the contract in its metadata and the
   softmax temperature fitted on val folded into the graph.
2. Parity gate on the val images (and some training images): same top-1 on every image,
   probabilities within 1e-4 of PyTorch. A failure stops everything before any file is written.
3. INT8 (``trainer.quantize``): calibrated on training images, served only if it passes the gate
   on val and training images (top-1 agreement >= 99%, val balanced accuracy within
   ``--int8-max-drop`` points).
4. Both files run under the Lambda runtime's own onnxruntime and numpy (``trainer.parity``).
5. ``model.onnx`` (+ ``model.int8.onnx``). Then, once, the served file scores the test split
   through the API's own code path (``trainer.evaluate``): that is the headline of
   ``metrics.json``, ``model_card.md`` and ``report.md``. Nothing is chosen from it.
6. With ``--publish`` the served model goes to ``classify_api/chalicelib/model/model.onnx``.

Exit status: 0 done, 1 the exported model failed a check (parity, runtime), 2 bad input.
"""

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from bundler.runtime import RuntimeSetupError
from shared import ModelContract
from shared.cli import run_cli
from shared.model_contract import INPUT_NAME, KNOWN_SCORE_OUTPUT, Rejection
from shared.paths import PUBLISHED_MODEL
from shared.predictor import Predictor
from trainer import reports
from trainer.atomic import atomic_write_text
from trainer.calibrate import fit_temperature, uncalibrated
from trainer.checkpoint import BEST, Checkpoint, load_checkpoint
from trainer.evaluate import (
    DEFAULT_MAX_MISCLASSIFIED,
    INT8_FILE,
    MODEL_FILE,
    evaluate_items,
    score_files,
    write_evaluation,
)
from trainer.manifest import FILENAME as MANIFEST_FILE
from trainer.manifest import Manifest
from trainer.metrics import expected_calibration_error
from trainer.model_card import CardFacts, ModelStats, render_model_card
from trainer.onnx_export import ExportError, load_session, save_onnx, to_onnx_model
from trainer.openset import acceptance_threshold, known_scores, separation
from trainer.parity import (
    ParityReport,
    check_lambda_runtime,
    check_parity,
    onnx_probabilities,
    prepare_images,
)
from trainer.publish import publish_model
from trainer.quantize import Int8Decision, decide_int8, quantize_int8
from trainer.training import balance_mode, val_scores

CARD_FILE = "model_card.md"
METRICS_FILE = "metrics.json"
TEST_DIR = "test"
GATE_TRAIN_IMAGES = 64  # training images added to val for the parity gate and INT8 agreement
RUNTIME_CHECK_IMAGES = 16
Log = Callable[[str], None]


@dataclass(frozen=True)
class ExportResult:
    run_dir: Path
    model_path: Path  # fp32, always written
    int8_path: Path | None  # written only when int8 was kept
    served_path: Path  # what is (or would be) published
    served: str  # "fp32" or "int8"
    published_path: Path | None
    card_path: Path
    fp32: ModelStats
    int8: ModelStats | None  # measured even when rejected; None without int8
    decision: str
    temperature: float
    parity: ParityReport
    runtime_check: str
    test: dict[str, Any] | None  # the served model's test summary (trainer.metrics), if any


def _load_run(run_dir: Path) -> tuple[Checkpoint, Manifest]:
    """Checkpoint + split manifest of a run, checked against each other (one-line errors)."""
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir} is not a run folder (expected the output of trainer.fit)")
    if not (run_dir / BEST).is_file():
        raise ExportError(
            f"no checkpoint in {run_dir}: {BEST} is missing (did trainer.fit finish?)"
        )
    ckpt = load_checkpoint(run_dir / BEST)
    try:
        manifest = Manifest.load(run_dir)
    except FileNotFoundError:
        raise ExportError(f"no {MANIFEST_FILE} in {run_dir}: cannot find the splits") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{run_dir / MANIFEST_FILE} is malformed: {exc}") from None
    if ckpt.labels != manifest.labels:
        raise ExportError(
            f"checkpoint labels {list(ckpt.labels)} do not match {MANIFEST_FILE} labels "
            f"{list(manifest.labels)}: the checkpoint belongs to another run"
        )
    if ckpt.split_sha256 != manifest.sha256():
        raise ExportError(
            f"{MANIFEST_FILE} changed since training (sha256 {manifest.sha256()[:12]}, checkpoint "
            f"recorded {ckpt.split_sha256[:12]}): the splits are not the ones trained with"
        )
    if ckpt.val_logits is None or ckpt.val_targets is None:
        raise ExportError(f"{run_dir / BEST} has no val logits: re-train it with this trainer")
    return ckpt, manifest


def _calibration_items(
    items: Sequence[tuple[Path, int]], count: int, n_classes: int
) -> list[tuple[Path, int]]:
    """Up to ``count`` training images taking classes in turn, so none is left out."""
    per_class: list[list[tuple[Path, int]]] = [[] for _ in range(n_classes)]
    for item in items:
        per_class[item[1]].append(item)
    chosen: list[tuple[Path, int]] = []
    for depth in range(max((len(c) for c in per_class), default=0)):
        chosen += [c[depth] for c in per_class if depth < len(c)]
    return chosen[:count]


def _latency_ms(data: bytes, x: np.ndarray, runs: int) -> float:
    """Median wall time of one single-image ``run`` after warm-up."""
    session = load_session(data)
    feed = {INPUT_NAME: x[:1]}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def _info(ckpt: Checkpoint, manifest: Manifest, precision: str, **extra: Any) -> dict[str, Any]:
    """``skyclass.info`` for one file: provenance, data, val figures. No test figure ever goes
    into the file: the served bytes must not depend on the test split."""
    return {
        "model_version": f"{ckpt.info.run_id}-{precision}",
        "run_id": ckpt.info.run_id,
        "precision": precision,
        "created": ckpt.info.created,
        "git_commit": ckpt.info.git_commit,
        "arch": ckpt.config.arch,
        "head": ckpt.config.head,
        "weights": ckpt.info.weights_used,
        "epoch": ckpt.best_epoch,
        "weight_decay": ckpt.weight_decay,
        "split_manifest_sha256": manifest.sha256(),
        "class_counts": manifest.counts(),
        "output": "probabilities (temperature-scaled softmax inside the graph)",
        **extra,
    }


def _rejection(ckpt: Checkpoint, temperature: float) -> Rejection:
    """The "none of these" rule, set on val: see trainer.openset."""
    config, background = ckpt.config, ckpt.background
    val = known_scores(ckpt.val_logits, temperature, background)
    threshold = acceptance_threshold(val, config.accept_rate)
    negatives = (
        ckpt.val_negative_logits if ckpt.val_negative_logits is not None else np.zeros((0, 1))
    )
    neg = known_scores(negatives, temperature, background) if len(negatives) else np.zeros(0)
    return Rejection(
        method="background_class" if background else "max_probability",
        score=KNOWN_SCORE_OUTPUT if background else "max_probability",
        threshold=threshold,
        accept_rate=config.accept_rate,
        details={
            "val": separation(val, neg, threshold).to_dict(),
            "set_on": reports.scored_on(config),
        },
    )


def _rejection_line(rejection: Rejection) -> str:
    val, where = rejection.details["val"], rejection.details["set_on"]
    negatives = (
        f", {val['negatives_rejected']:.1%} of {val['negatives']} negatives rejected"
        f" (AUROC {val['auroc']:.3f})"
        if val["negatives"]
        else " (no negatives: --negatives DIR teaches the model what to reject)"
    )
    return (
        f"'unknown' below {rejection.score} {rejection.threshold:.4f} ({rejection.method}): "
        f"{val['in_class_accepted']:.1%} of {val['in_class']} in-class images pass ({where})"
        f"{negatives}"
    )


def _with_info(
    proto: onnx.ModelProto, ckpt: Checkpoint, info: dict[str, Any], rejection: Rejection
) -> bytes:
    contract = ModelContract(ckpt.labels, ckpt.spec, info, rejection)
    onnx.helper.set_model_props(proto, contract.to_metadata())
    return proto.SerializeToString()


def _runtime_check(files: dict[str, bytes], x: np.ndarray) -> str:
    """Run the exact bytes about to be written under the Lambda runtime; a mismatch is fatal."""
    with tempfile.TemporaryDirectory(prefix="skyclass-export-") as tmp:
        paths = []
        for name, data in files.items():
            paths.append(Path(tmp) / name)
            paths[-1].write_bytes(data)
        try:
            return check_lambda_runtime(paths, x)
        except RuntimeSetupError as exc:
            return f"not checked ({exc})"


def _balanced(probabilities: np.ndarray, targets: np.ndarray) -> float:
    n = probabilities.shape[1] if probabilities.ndim == 2 else 0
    return val_scores(np.log(np.clip(probabilities, 1e-12, None)), targets, n)["balanced_accuracy"]


def export_run(
    run_dir: Path,
    *,
    publish: bool = False,
    int8: bool | None = None,
    publish_to: Path | None = None,
    latency_runs: int = 50,
    max_misclassified: int = DEFAULT_MAX_MISCLASSIFIED,
    log: Log = print,
) -> ExportResult:
    """Export, gate, quantize, score the test split once, document and (optionally) publish.

    ``int8`` overrides the run's own ``--int8`` setting. Raises :class:`ExportError` (bad input,
    unloadable model), :class:`trainer.parity.ParityError` (a gate failed) or
    :class:`trainer.checkpoint.CheckpointError`; nothing is written or published then.
    """
    run_dir = Path(run_dir)
    ckpt, manifest = _load_run(run_dir)
    config, labels = ckpt.config, ckpt.labels
    int8 = config.int8 if int8 is None else int8
    try:
        model = ckpt.model()
    except (RuntimeError, KeyError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"checkpoint {run_dir / BEST} does not build a model: {first}") from None

    val_items = manifest.split("val")
    val_targets = np.array([y for _, y in val_items], dtype=np.int64)
    background = ckpt.background
    if not config.calibrate:
        temperature, source = 1.0, "not fitted (--no-calibrate)"
    elif ckpt.temperature is not None:  # chosen in training, on out-of-fold logits
        temperature, source = ckpt.temperature, f"fitted on {reports.scored_on(config)}"
    else:
        temperature = fit_temperature(ckpt.val_logits[:, : len(labels)], ckpt.val_targets)
        source = "fitted on the val images"
    log(f"temperature {temperature:.3f}, {source}")
    rejection = _rejection(ckpt, temperature)
    log(_rejection_line(rejection))
    gate_items = val_items + manifest.split("train")[:GATE_TRAIN_IMAGES]
    gate = prepare_images(gate_items, ckpt.spec, desc="val + training images")
    fp32_proto = to_onnx_model(model, ModelContract(labels, ckpt.spec, {}), temperature, background)
    session = load_session(fp32_proto.SerializeToString())
    parity = check_parity(model, session, gate, temperature, background)
    log(f"parity gate passed: {parity.summary()}")
    sample = gate.tensor(0, RUNTIME_CHECK_IMAGES)
    fp32_probs = parity.probabilities
    fp32 = ModelStats("fp32", 0, _balanced(fp32_probs[: len(val_items)], val_targets), 0.0)

    int8_stats, int8_proto, verdict = None, None, None
    if int8:
        calibration = prepare_images(
            _calibration_items(manifest.split("train"), config.calibration_images, len(labels)),
            ckpt.spec,
            desc="calibration images",
        )
        int8_proto = quantize_int8(fp32_proto, calibration)
        int8_session = load_session(int8_proto.SerializeToString())
        int8_probs = onnx_probabilities(int8_session, gate, desc="int8")
        verdict = decide_int8(
            fp32_probs, int8_probs, val_targets, len(val_items), _balanced, config.int8_max_drop
        )
        int8_stats = ModelStats(
            "int8", 0, _balanced(int8_probs[: len(val_items)], val_targets), 0.0
        )
    keep = bool(verdict and verdict.keep)
    served = "int8" if keep else "fp32"
    decision = verdict.reason if verdict else "int8 not built (--no-int8)"

    shared_info = {
        "served": served,
        "selection": decision,
        "temperature": round(temperature, 6),
        "val_balanced_accuracy": {"fp32": round(fp32.val_balanced_accuracy, 4)}
        | ({"int8": round(int8_stats.val_balanced_accuracy, 4)} if int8_stats else {}),
    }
    files = {
        MODEL_FILE: _with_info(
            fp32_proto, ckpt, _info(ckpt, manifest, "fp32", **shared_info), rejection
        )
    }
    if int8_proto is not None:
        int8_bytes = _with_info(
            int8_proto, ckpt, _info(ckpt, manifest, "int8", **shared_info), rejection
        )
        if keep:
            files[INT8_FILE] = int8_bytes
        int8_stats = replace(
            int8_stats,
            size_bytes=len(int8_bytes),
            latency_ms=_latency_ms(int8_bytes, sample, latency_runs),
        )
    fp32 = replace(
        fp32, size_bytes=len(files[MODEL_FILE]),
        latency_ms=_latency_ms(files[MODEL_FILE], sample, latency_runs),
    )  # fmt: skip
    runtime_check = _runtime_check(files, sample)
    log(f"Lambda runtime: {runtime_check}")

    # Every check passed: write the files (each atomically), score the test split once, document.
    for name, data in files.items():
        save_onnx(onnx.load_from_string(data), run_dir / name)
    if not keep:
        (run_dir / INT8_FILE).unlink(missing_ok=True)  # a stale int8 from an earlier export
    served_path = run_dir / (INT8_FILE if keep else MODEL_FILE)
    test = _score_test(served_path, manifest, labels, temperature, run_dir, max_misclassified)
    metrics = _metrics(ckpt, fp32, int8_stats, verdict, served, temperature, test, rejection)
    metrics["temperature_source"] = source
    metrics["source"] = {
        "checkpoint_sha256": _sha256(run_dir / BEST),
        "served_file": served_path.name,
        "served_sha256": _sha256(served_path),
    }
    reports.write_json(run_dir / METRICS_FILE, metrics)
    card = CardFacts(
        labels=labels, spec=ckpt.spec, checkpoint=ckpt, manifest=manifest, fp32=fp32,
        int8=int8_stats, served=served, decision=decision, parity="passed: " + parity.summary(),
        runtime_check=runtime_check, metrics=metrics,
    )  # fmt: skip
    card_path = atomic_write_text(run_dir / CARD_FILE, render_model_card(card))
    reports.write_report(
        run_dir, ckpt, manifest, balance_mode(config, manifest.counts()["train"]), metrics
    )
    published = publish_model(served_path, publish_to or PUBLISHED_MODEL) if publish else None

    for stats in (fp32, int8_stats):
        if stats:
            log(
                f"{stats.precision}: {stats.size_mb:6.2f} MB  balanced accuracy on the val images "
                f"{stats.val_balanced_accuracy:.3f}  single-image latency {stats.latency_ms:6.1f} ms"
            )
    log(f"{decision} (on the val images: {reports.val_figure_note(config)})")
    log(f"wrote {run_dir / MODEL_FILE}" + (f" and {run_dir / INT8_FILE}" if keep else ""))
    log(reports.test_line(test, served))
    log(f"model card: {card_path}")
    if published:
        log(_published_line(published, served))
    else:
        log(f"served model: {served_path} ({served}); publish it to the API with: "
            f"python -m trainer.export {run_dir} --publish")  # fmt: skip
    return ExportResult(
        run_dir=run_dir,
        model_path=run_dir / MODEL_FILE,
        int8_path=run_dir / INT8_FILE if keep else None,
        served_path=served_path,
        served=served,
        published_path=published,
        card_path=card_path,
        fp32=fp32,
        int8=int8_stats,
        decision=decision,
        temperature=temperature,
        parity=parity,
        runtime_check=runtime_check,
        test=test,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _published_line(published: Path, served: str) -> str:
    return (
        f"published {served} model to {published} (sha256 {_sha256(published)[:12]}); serve it "
        "with: cd classify_api && ../.venv/bin/chalice local"
    )


def exported_model(run_dir: Path) -> Path | None:
    """The served file of a run whose export is current (made from its present ``best.pt``,
    unchanged since), else ``None``."""
    try:
        source = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))["source"]
        served = run_dir / source["served_file"]
        current = _sha256(run_dir / BEST) == source["checkpoint_sha256"]
        return served if current and _sha256(served) == source["served_sha256"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def publish_run(run_dir: Path, target: Path | None = None, log: Log = print) -> Path | None:
    """Publish an already exported run's served file (checked as it is copied) without
    exporting again; ``None`` when the run has no current export."""
    served = exported_model(Path(run_dir))
    if served is None:
        return None
    published = publish_model(served, target or PUBLISHED_MODEL)
    log(_published_line(published, "int8" if served.name == INT8_FILE else "fp32"))
    return published


def _score_test(
    served_path: Path,
    manifest: Manifest,
    labels: Sequence[str],
    temperature: float,
    run_dir: Path,
    max_misclassified: int,
) -> dict[str, Any] | None:
    """The served model on the test split, through the API's path: the run's unbiased figure."""
    items = manifest.split("test")
    if not items:
        return None
    evaluation = evaluate_items(Predictor.from_path(served_path), items)
    summary = write_evaluation(
        run_dir / TEST_DIR,
        evaluation,
        labels,
        title=f"test split, served model ({served_path.name})",
        max_misclassified=max_misclassified,
    )
    targets = np.asarray(evaluation.targets)
    before = uncalibrated(evaluation.probabilities, temperature)
    predictor = Predictor.from_path(served_path)
    negatives = score_files(predictor, manifest.negative_split("test"), desc="test negatives")
    rejection = predictor.contract.rejection
    assert rejection is not None  # the export always writes one
    known = np.asarray(evaluation.known)
    correct = (evaluation.predictions == targets) & known
    return {
        **summary.to_dict(),
        "ece_before_temperature": expected_calibration_error(before, targets),
        "ece": expected_calibration_error(evaluation.probabilities, targets),
        # Rejected photos of the classes count as errors here: what a client sees.
        "accuracy_with_rejection": float(correct.mean()) if len(correct) else 0.0,
        "open_set": separation(
            evaluation.known_scores, negatives.known_scores, rejection.threshold
        ).to_dict(),
    }


def _metrics(
    ckpt: Checkpoint,
    fp32: ModelStats,
    int8: ModelStats | None,
    verdict: Int8Decision | None,
    served: str,
    temperature: float,
    test: dict[str, Any] | None,
    rejection: Rejection,
) -> dict[str, Any]:
    """metrics.json: the served model's test figures first, then how it was chosen (on val)."""
    return {
        "served": served,
        "test": test,
        "rejection": rejection.to_dict(),
        "no_test_note": None if test else reports.NO_TEST,
        "val": {
            "best_epoch": ckpt.best_epoch,
            "weight_decay": ckpt.weight_decay,
            **ckpt.val_metrics,
        },
        "temperature": temperature,
        "int8": None
        if verdict is None or int8 is None
        else {
            "kept": verdict.keep,
            "agreement": verdict.agreement,
            "agreement_images": verdict.images,
            "val_balanced_accuracy_drop": verdict.drop,
            "reason": verdict.reason,
        },
        "files": {s.precision: dataclasses.asdict(s) for s in (fp32, int8) if s is not None},
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.export",
        description="Export a trained run to ONNX (parity-gated), quantize to INT8, score the "
        "test split once with the served model, publish.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trainer.fit run folder")
    parser.add_argument(
        "--publish", action="store_true", help=f"copy the served model to {PUBLISHED_MODEL}"
    )
    parser.add_argument(
        "--no-int8", dest="int8", action="store_false", default=None,
        help="fp32 only, whatever the run's --int8 setting",
    )  # fmt: skip
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    # Publishing a run exported already is a checked copy of its served file, not a new export.
    if args.publish and args.int8 is None and publish_run(args.run_dir) is not None:
        return 0
    export_run(args.run_dir, publish=args.publish, int8=args.int8)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="trainer.export"))
