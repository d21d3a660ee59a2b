"""``python -m trainer.export RUN_DIR``: best checkpoint -> the ONNX model the API serves.

1. ``RUN_DIR/best.pt`` + ``RUN_DIR/split.json`` -> fp32 ONNX with the contract in its metadata.
2. Parity gate on the test split (``trainer.parity``): same top-1 on every image, probabilities
   within 1e-4 of PyTorch. A failure stops everything before any file is written.
3. INT8 (``trainer.quantize``): calibrated on training images, kept as ``model.int8.onnx`` only if
   its test accuracy is within ``--int8-max-drop`` points of fp32.
4. Both files are run under the Lambda runtime's own onnxruntime and numpy (``trainer.parity``).
5. ``model.onnx`` (+ ``model.int8.onnx``), ``model_card.md``; with ``--publish`` the chosen model
   goes to ``classify_api/chalicelib/model/model.onnx``.

Exit status: 0 done, 1 the exported model failed a check (parity, runtime), 2 bad input.
"""

import argparse
import datetime as dt
import hashlib
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from bundler.runtime import RuntimeSetupError
from shared import ModelContract
from shared.cli import UsageError, run_cli
from shared.model_contract import INPUT_NAME
from shared.paths import PUBLISHED_MODEL
from trainer.atomic import atomic_write_text
from trainer.checkpoint import (
    BEST,
    load_checkpoint,
    model_from_checkpoint,
    spec_from_checkpoint,
)
from trainer.manifest import FILENAME as MANIFEST_FILE
from trainer.manifest import Manifest
from trainer.model_card import CardFacts, ModelStats, render_model_card
from trainer.onnx_export import ExportError, load_session, save_onnx, to_onnx_model
from trainer.parity import (
    Evaluation,
    ParityReport,
    check_lambda_runtime,
    check_parity,
    prepare_images,
)
from trainer.parity import onnx_probabilities as evaluate
from trainer.publish import publish_model
from trainer.quantize import DEFAULT_MAX_DROP, decide_int8, quantize_int8

MODEL_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
CARD_FILE = "model_card.md"
DEFAULT_CALIBRATION = 160
RUNTIME_CHECK_IMAGES = 16


@dataclass(frozen=True)
class ExportResult:
    run_dir: Path
    model_path: Path  # fp32, always written
    int8_path: Path | None  # written only when int8 was kept
    chosen_path: Path  # what is (or would be) published
    chosen: str  # "fp32" or "int8"
    published_path: Path | None
    card_path: Path
    fp32: ModelStats
    int8: ModelStats | None  # measured even when rejected; None with int8=False
    decision: str
    parity: ParityReport
    runtime_check: str


@dataclass(frozen=True)
class _RunInputs:
    payload: dict[str, Any]
    manifest: Manifest
    labels: tuple[str, ...]


def _load_run(run_dir: Path) -> _RunInputs:
    """Checkpoint + split manifest of a run, checked against each other (one-line errors)."""
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir} is not a run folder (expected the output of trainer.fit)")
    if not (run_dir / BEST).is_file():
        raise ExportError(
            f"no checkpoint in {run_dir}: {BEST} is missing (did trainer.fit finish?)"
        )
    payload = load_checkpoint(run_dir / BEST)
    missing = sorted({"arch", "labels", "spec", "model_state"} - set(payload))
    if missing:
        raise ExportError(f"checkpoint {run_dir / BEST} lacks {', '.join(missing)}")
    try:
        manifest = Manifest.load(run_dir)
    except FileNotFoundError:
        raise ExportError(f"no {MANIFEST_FILE} in {run_dir}: cannot find the test split") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{run_dir / MANIFEST_FILE} is malformed: {exc}") from None
    labels = tuple(payload["labels"])
    if labels != manifest.labels:
        raise ExportError(
            f"checkpoint labels {list(labels)} do not match {MANIFEST_FILE} labels "
            f"{list(manifest.labels)}: the checkpoint belongs to another run"
        )
    recorded = payload.get("split_manifest_sha256")
    if recorded and recorded != manifest.sha256():
        raise ExportError(
            f"{MANIFEST_FILE} changed since training (sha256 {manifest.sha256()[:12]}, checkpoint "
            f"recorded {str(recorded)[:12]}): the test split would not be the one trained against"
        )
    return _RunInputs(payload, manifest, labels)


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


def _latency_ms(session: ort.InferenceSession, x: np.ndarray, runs: int) -> float:
    """Median wall time of one single-image ``run`` after warm-up."""
    feed = {INPUT_NAME: x[:1]}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def _stats(
    precision: str, data: bytes, evaluation: Evaluation, x: np.ndarray, runs: int
) -> ModelStats:
    latency = _latency_ms(load_session(data), x, runs)
    return ModelStats(precision, len(data), evaluation.accuracy, latency, evaluation.confusion())


def _info(run_dir: Path, inputs: _RunInputs, stats: ModelStats, **extra: Any) -> dict[str, Any]:
    """``skyclass.info`` for one file: provenance, data and its own test metrics."""
    payload = inputs.payload
    run_id = str(payload.get("run_id") or run_dir.name)
    confusion = stats.confusion.tolist()
    return {
        "model_version": f"{run_id}-{stats.precision}",
        "run_id": run_id,
        "precision": stats.precision,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "trained": payload.get("created"),
        "git_commit": payload.get("git_commit"),
        "arch": payload["arch"],
        "epoch": payload.get("epoch"),
        "split_manifest_sha256": inputs.manifest.sha256(),
        "class_counts": payload.get("class_counts")
        or dict(Counter(it.label for it in inputs.manifest.items if it.split == "train")),
        "test_metrics": {
            "accuracy": round(stats.accuracy, 4),
            "images": int(np.sum(confusion)),
            "confusion": confusion,
        },
        "training_metrics": payload.get("metrics"),
        "output": "probabilities (softmax applied inside the graph)",
        **extra,
    }


def _with_info(proto: onnx.ModelProto, inputs: _RunInputs, spec: Any, info: dict) -> bytes:
    onnx.helper.set_model_props(proto, ModelContract(inputs.labels, spec, info).to_metadata())
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


def _split_counts(manifest: Manifest) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for item in manifest.items:
        counts.setdefault(item.split, Counter())[item.label] += 1  # type: ignore[index]
    return {split: dict(c) for split, c in counts.items()}


def export_run(
    run_dir: Path,
    *,
    publish: bool = False,
    int8: bool = True,
    int8_max_drop: float = DEFAULT_MAX_DROP,
    calibration_images: int = DEFAULT_CALIBRATION,
    latency_runs: int = 50,
    publish_to: Path | None = None,
    log: Any = print,
) -> ExportResult:
    """Export, gate, quantize, document and (optionally) publish the best model of ``run_dir``.

    ``publish_to`` defaults to :data:`shared.paths.PUBLISHED_MODEL` (where the Chalice app loads
    its model). Raises :class:`ExportError` (bad input, unloadable model), :class:`ParityError` (gate failed)
    or :class:`trainer.checkpoint.CheckpointError`; nothing is written or published then.
    """
    run_dir = Path(run_dir)
    inputs = _load_run(run_dir)
    spec = spec_from_checkpoint(inputs.payload)
    try:
        model = model_from_checkpoint(inputs.payload)
    except (RuntimeError, KeyError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"checkpoint {run_dir / BEST} does not build a model: {first}") from None

    fp32_proto = to_onnx_model(model, ModelContract(inputs.labels, spec, {}))
    session = load_session(fp32_proto.SerializeToString())
    test = prepare_images(inputs.manifest.split("test"), spec, desc="test images")
    parity = check_parity(model, session, test)
    log(f"parity gate passed: {parity.summary()}")
    sample = test.tensor(0, RUNTIME_CHECK_IMAGES)

    fp32 = _stats("fp32", fp32_proto.SerializeToString(), parity.onnx, sample, latency_runs)
    int8_stats, int8_proto, keep = None, None, False
    decision = "int8 not built (--no-int8)"
    if int8:
        calibration = prepare_images(
            _calibration_items(
                inputs.manifest.split("train"), calibration_images, len(inputs.labels)
            ),
            spec,
            desc="calibration images",
        )
        int8_proto = quantize_int8(fp32_proto, calibration)
        int8_bytes = int8_proto.SerializeToString()
        int8_eval = evaluate(load_session(int8_bytes), test, desc="int8 test")
        int8_stats = _stats("int8", int8_bytes, int8_eval, sample, latency_runs)
        verdict = decide_int8(fp32.accuracy, int8_stats.accuracy, int8_max_drop)
        keep, decision = verdict.keep, verdict.reason
    chosen = "int8" if keep else "fp32"

    shared_info = {
        "served": chosen,
        "selection": decision,
        "accuracy_fp32": round(fp32.accuracy, 4),
        "accuracy_int8": round(int8_stats.accuracy, 4) if int8_stats else None,
    }
    # Sizes are those of the final files, metadata included.
    fp32_bytes = _with_info(fp32_proto, inputs, spec, _info(run_dir, inputs, fp32, **shared_info))
    fp32 = replace(fp32, size_bytes=len(fp32_bytes))
    files = {MODEL_FILE: fp32_bytes}
    if int8_proto is not None and int8_stats is not None:
        int8_info = _info(run_dir, inputs, int8_stats, quantization=_QUANT_NOTE, **shared_info)
        int8_bytes = _with_info(int8_proto, inputs, spec, int8_info)
        int8_stats = replace(int8_stats, size_bytes=len(int8_bytes))
        if keep:
            files[INT8_FILE] = int8_bytes
    runtime_check = _runtime_check(files, sample)
    log(f"Lambda runtime: {runtime_check}")

    # Every check passed: write the files (each atomically), then the card, then publish.
    for name, data in files.items():
        save_onnx(onnx.load_from_string(data), run_dir / name)
    if not keep:
        (run_dir / INT8_FILE).unlink(missing_ok=True)  # a stale int8 from an earlier export
    chosen_path = run_dir / (INT8_FILE if keep else MODEL_FILE)
    chosen_info = ModelContract.from_metadata(
        {p.key: p.value for p in onnx.load(str(chosen_path)).metadata_props}
    ).info
    card = CardFacts(
        labels=inputs.labels,
        spec=spec,
        info=chosen_info,
        split_counts=_split_counts(inputs.manifest),
        data_root=inputs.manifest.root,
        fp32=fp32,
        int8=int8_stats,
        chosen=chosen,
        decision=decision,
        parity=("passed: " + parity.summary()),
        runtime_check=runtime_check,
        options=inputs.payload.get("options") or {},
    )
    card_path = atomic_write_text(run_dir / CARD_FILE, render_model_card(card))
    published = publish_model(chosen_path, publish_to or PUBLISHED_MODEL) if publish else None

    for stats in (fp32, int8_stats):
        if stats:
            log(
                f"{stats.precision}: {stats.size_mb:6.2f} MB  test accuracy {stats.accuracy:6.2f}%  "
                f"single-image latency {stats.latency_ms:6.1f} ms"
            )
    log(decision)
    log(f"wrote {run_dir / MODEL_FILE}" + (f" and {run_dir / INT8_FILE}" if keep else ""))
    log(f"model card: {card_path}")
    if published:
        digest = hashlib.sha256(published.read_bytes()).hexdigest()[:12]
        log(f"published {chosen} model to {published} (sha256 {digest})")
    return ExportResult(
        run_dir=run_dir,
        model_path=run_dir / MODEL_FILE,
        int8_path=run_dir / INT8_FILE if keep else None,
        chosen_path=chosen_path,
        chosen=chosen,
        published_path=published,
        card_path=card_path,
        fp32=fp32,
        int8=int8_stats,
        decision=decision,
        parity=parity,
        runtime_check=runtime_check,
    )


_QUANT_NOTE = "static QDQ, per-channel int8 weights, uint8 activations, MinMax calibration"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.export",
        description="Export a trained run to ONNX (parity-gated), quantize to INT8, publish.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trainer.fit run folder")
    parser.add_argument(
        "--publish", action="store_true", help=f"copy the chosen model to {PUBLISHED_MODEL}"
    )
    parser.add_argument("--no-int8", dest="int8", action="store_false", help="skip INT8")
    parser.add_argument(
        "--int8-max-drop",
        type=float,
        default=DEFAULT_MAX_DROP,
        metavar="POINTS",
        help="largest test-accuracy loss (percentage points) for which int8 is served (default 1.0)",
    )
    parser.add_argument(
        "--calibration-images",
        type=int,
        default=DEFAULT_CALIBRATION,
        metavar="N",
        help=f"training images used to calibrate INT8 (default {DEFAULT_CALIBRATION})",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.int8_max_drop < 0 or args.calibration_images < 1:
        raise UsageError("--int8-max-drop must be >= 0 and --calibration-images >= 1")
    export_run(
        args.run_dir,
        publish=args.publish,
        int8=args.int8,
        int8_max_drop=args.int8_max_drop,
        calibration_images=args.calibration_images,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="trainer.export"))
