"""``python -m trainer.export RUN_DIR``: the run's checkpoint -> the ONNX model the API serves.

1. ``best.pt`` + ``split.json`` -> fp32 ONNX with the contract in its metadata and the softmax
   temperature folded into the graph (``trainer.exporting.steps``).
2. Parity gate on the val images and some training images: same top-1 on every image,
   probabilities within 1e-4 of PyTorch. A failure stops everything before any file is written.
3. INT8 (``trainer.exporting.quantize``): calibrated on training images, served only if it passes
   the gate on val and training images.
4. Every file runs under the Lambda runtime's own onnxruntime and numpy.
5. ``model.onnx`` (+ ``model.int8.onnx``). Then, once, the served file scores the test split
   through the API's own code path (``trainer.evaluation.test_split``): the headline of
   ``metrics.json``, ``model_card.md`` and ``report.md``. Nothing is chosen from it.
6. With ``--publish`` the served model goes to ``classify_api/chalicelib/model/model.onnx``; for a
   run exported already that is a checked copy of its served file, not a new export.

Exit status: 0 done, 1 the exported model failed a check (parity, runtime), 2 bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.cli import run_cli
from shared.paths import PUBLISHED_MODEL
from trainer.exporting.publish import (
    INT8_FILE,
    METRICS_JSON,
    MODEL_FILE,
    ModelStats,
    current_export,
    publish_model,
    published_line,
)

if TYPE_CHECKING:
    from shared.model_contract import Rejection
    from trainer.exporting.parity import ParityReport
    from trainer.exporting.quantize import Int8Decision
    from trainer.exporting.steps import Inputs
    from trainer.learning.checkpoint import Checkpoint

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
    test: dict[str, Any] | None  # the served model's test summary, if the run has a test split
    estimate: dict[str, Any] | None  # the run's estimate: test, or the recipe cross-validated


def export_run(
    run_dir: Path,
    *,
    checkpoint: Checkpoint | None = None,
    publish: bool = False,
    int8: bool | None = None,
    publish_to: Path | None = None,
    latency_runs: int = 50,
    max_misclassified: int | None = None,
    log: Log = print,
) -> ExportResult:
    """Export, gate, quantize, score the test split once, document and (optionally) publish.

    ``checkpoint`` is the run's ``best.pt`` when the caller holds it already (``trainer.fit``);
    ``int8`` overrides the run's own ``--int8``. Raises ``ExportError`` (bad input, unloadable
    model), ``ParityError`` (a gate failed) or ``CheckpointError``; nothing is written then.
    """
    # The torch, ONNX and report tooling load here rather than at import: publishing an exported
    # run (main's first branch) needs none of it, and takes a moment.
    from trainer.exporting import steps

    built = _build(steps.load(Path(run_dir), checkpoint), int8, latency_runs, log)
    served_path = steps.write(built.run_dir, built.files)
    card_path, test, estimate = _document(built, served_path, max_misclassified)
    published = publish_model(served_path, publish_to or PUBLISHED_MODEL) if publish else None
    result = ExportResult(
        run_dir=built.run_dir, model_path=built.run_dir / MODEL_FILE,
        int8_path=served_path if built.served == "int8" else None, served_path=served_path,
        served=built.served, published_path=published, card_path=card_path, fp32=built.fp32,
        int8=built.int8, decision=built.decision, temperature=built.temperature,
        parity=built.parity, runtime_check=built.runtime_check, test=test, estimate=estimate,
    )  # fmt: skip
    _log_result(result, built, log)
    return result


@dataclass(frozen=True)
class _Built:
    """Everything checked and in memory, nothing written yet."""

    run_dir: Path
    inputs: Inputs
    files: dict[str, bytes]  # file name -> bytes, the served file among them
    served: str
    fp32: ModelStats
    int8: ModelStats | None
    verdict: Int8Decision | None  # None without INT8
    decision: str
    temperature: float
    temperature_source: str
    rule: Rejection
    parity: ParityReport
    runtime_check: str


def _build(inputs: Inputs, int8: bool | None, latency_runs: int, log: Log) -> _Built:
    """The steps up to writing: temperature, rule, fp32 + parity, INT8, metadata, runtime."""
    from trainer.exporting import rejection, steps
    from trainer.exporting.parity import runtime_check

    ckpt, n_val, targets = inputs.checkpoint, len(inputs.val_targets), inputs.val_targets
    temperature, source = steps.temperature(ckpt)
    log(f"temperature {temperature:.3f}, {source}")
    rule = rejection.rule(ckpt, temperature)
    log(rejection.rule_line(rule))
    fp32_proto, parity, gate = steps.fp32_with_parity(inputs, temperature)
    log(f"parity gate passed: {parity.summary()}")
    sample = gate.tensor(0, 16)  # what the latency and the Lambda runtime check run on
    fp32 = ModelStats("fp32", 0, steps.balanced(parity.probabilities[:n_val], targets), 0.0)
    int8_proto, verdict, int8_stats = None, None, None
    if ckpt.config.int8 if int8 is None else int8:
        int8_proto, verdict, int8_probs = steps.int8(inputs, fp32_proto, parity, gate)
        int8_stats = ModelStats("int8", 0, steps.balanced(int8_probs[:n_val], targets), 0.0)
    served = "int8" if verdict and verdict.keep else "fp32"
    decision = verdict.reason if verdict else "int8 not built (--no-int8)"
    shared_info = {
        "served": served,
        "selection": decision,
        "temperature": round(temperature, 6),
        "val_balanced_accuracy": {s.precision: round(s.val_balanced_accuracy, 4)
                                  for s in (fp32, int8_stats) if s},
    }  # fmt: skip
    files: dict[str, bytes] = {}
    stats = []
    for name, proto, figures in (
        (MODEL_FILE, fp32_proto, fp32),
        (INT8_FILE, int8_proto, int8_stats),
    ):
        if proto is None or figures is None:
            continue
        info = steps.info(inputs, figures.precision, **shared_info)
        data = steps.with_metadata(proto, inputs, info, rule)
        if name == MODEL_FILE or served == "int8":
            files[name] = data
        latency = steps.latency_ms(data, sample, latency_runs)
        stats.append(dataclasses.replace(figures, size_bytes=len(data), latency_ms=latency))
    checked = runtime_check(files, sample)
    log(f"Lambda runtime: {checked}")
    return _Built(
        inputs.run_dir, inputs, files, served, stats[0], stats[1] if len(stats) > 1 else None,
        verdict, decision, temperature, source, rule, parity, checked,
    )  # fmt: skip


def _document(
    built: _Built, served_path: Path, max_misclassified: int | None
) -> tuple[Path, dict[str, Any] | None, dict[str, Any] | None]:
    """The one test score, then metrics.json, the model card and report.md."""
    from trainer.common.files import atomic_write_text, write_json
    from trainer.evaluation import run_report, run_summary
    from trainer.evaluation.model_card import CardFacts, render_model_card
    from trainer.evaluation.test_split import cross_validated, score_test_split
    from trainer.exporting.publish import source_record
    from trainer.learning.checkpoint import BEST

    run_dir, ckpt, verdict = built.run_dir, built.inputs.checkpoint, built.verdict
    manifest = built.inputs.manifest
    test = score_test_split(
        served_path, manifest, built.temperature, run_dir / run_report.TEST_DIR, max_misclassified
    )
    estimate = {"method": "test", **test} if test else None
    if estimate is None and ckpt.estimate is not None:
        figures = cross_validated(ckpt.estimate, ckpt.labels, run_dir)
        estimate = {"method": "cross-validation", **figures}
    metrics = {
        "served": built.served,
        "estimate": estimate,
        "test": test,
        "rejection": built.rule.to_dict(),
        "no_estimate_note": None if estimate else run_summary.NO_TEST,
        "val": {"best_epoch": ckpt.best_epoch, "weight_decay": ckpt.weight_decay, **ckpt.val_metrics},
        "temperature": built.temperature,
        "temperature_source": built.temperature_source,
        "int8": None if verdict is None else {
            "kept": verdict.keep, "agreement": verdict.agreement, "reason": verdict.reason,
            "agreement_images": verdict.images, "val_balanced_accuracy_drop": verdict.drop,
        },
        "files": {s.precision: dataclasses.asdict(s) for s in (built.fp32, built.int8) if s},
        "source": source_record(run_dir / BEST, served_path),
    }  # fmt: skip
    write_json(run_dir / METRICS_JSON, metrics)
    card = CardFacts(
        labels=ckpt.labels, spec=ckpt.spec, checkpoint=ckpt, manifest=manifest, fp32=built.fp32,
        int8=built.int8, served=built.served, decision=built.decision,
        parity="passed: " + built.parity.summary(), runtime_check=built.runtime_check,
        metrics=metrics,
    )  # fmt: skip
    card_path = atomic_write_text(run_dir / run_report.CARD_FILE, render_model_card(card))
    run_report.write_report(run_dir, ckpt, manifest, metrics)
    return card_path, test, estimate


def _log_result(result: ExportResult, built: _Built, log: Log) -> None:
    from trainer.evaluation import run_summary

    for stats in (result.fp32, result.int8):
        if stats:
            log(
                f"{stats.precision}: {stats.size_mb:6.2f} MB  balanced accuracy on the val images "
                f"{stats.val_balanced_accuracy:.3f}  single-image latency {stats.latency_ms:6.1f} ms"
            )
    note = run_summary.val_figure_note(built.inputs.checkpoint.config)
    log(f"{result.decision} (on the val images: {note})")
    written = [result.model_path, *([result.int8_path] if result.int8_path else [])]
    log("wrote " + " and ".join(str(p) for p in written))
    log(run_summary.estimate_line(result.estimate, result.served))
    log(f"model card: {result.card_path}")
    if result.published_path:
        log(published_line(result.served_path, result.published_path))
    else:
        log(f"served model: {result.served_path} ({result.served}); publish it to the API with: "
            f"python -m trainer.export {result.run_dir} --publish")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.export",
        description="Export a trained run to ONNX (parity-gated), quantize to INT8, score the "
        "test split once with the served model, publish.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trainer.fit run folder")
    parser.add_argument(
        "--publish", action="store_true",
        help=f"copy the served model to {PUBLISHED_MODEL} (a run exported already is not exported "
        "again)",
    )  # fmt: skip
    parser.add_argument(
        "--no-int8", dest="int8", action="store_false", default=None,
        help="fp32 only, whatever the run's --int8 setting",
    )  # fmt: skip
    parser.add_argument(
        "--max-misclassified", type=int, default=None, metavar="N",
        help="test images per misclassified grid (default: trainer.fit's)",
    )  # fmt: skip
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    served = current_export(args.run_dir) if args.publish and args.int8 is None else None
    if served is not None:  # exported already: publish is a checked copy of the served file
        print(published_line(served, publish_model(served, PUBLISHED_MODEL)))
        return 0
    export_run(
        args.run_dir, publish=args.publish, int8=args.int8, max_misclassified=args.max_misclassified
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="trainer.export"))
