"""``python -m trainer.evaluate MODEL_OR_RUN DATA_DIR``: score a served model on a labelled folder.

``DATA_DIR`` holds one sub-folder per class (nested folders fine, hidden files ignored, files
directly in ``DATA_DIR`` ignored), named exactly as the model's labels: a new batch of photos after
deployment, or a held-out split. Every file goes through :class:`shared.predictor.Predictor`, so
through the API's own decode, preprocessing and onnxruntime path, and every figure is what clients
would have got. A folder for a label the model does not know is an error, and so is an empty class
folder; a model label without a folder is reported as *absent* (its recall unknown, not zero).

``MODEL_OR_RUN`` is a ``.onnx`` file or a run folder. For a run folder the served model is scored:
``model.int8.onnx`` when it exists, else ``model.onnx`` (``trainer.export`` deletes the INT8 file
whenever it rejects INT8, so the INT8 file exists exactly when it is the one served).

The report folder (``--out``; default ``<DATA_DIR name>-eval-<UTC timestamp>`` in the run folder,
or beside the model file) holds ``evaluation.md``, ``evaluation.json``, ``confusion_matrix.png``,
``reliability.png`` and one ``misclassified_<class>.png`` grid per class
(``trainer.evaluation.evaluation_report``); the export scores its test split with the same code.

Exit status: 0 done, 2 bad input (one line on stderr; ``--debug`` for the traceback).
"""

import argparse
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from shared.cli import UsageError, run_cli
from shared.paths import APP_DIR
from trainer.common.files import sha256_file
from trainer.data.folders import collect_items, collect_negatives, negative_kind
from trainer.evaluation.evaluation_report import (
    DEFAULT_MAX_MISCLASSIFIED,
    REPORT_MD,
    Figures,
    write_evaluation,
)
from trainer.evaluation.metrics import Estimate
from trainer.evaluation.scoring import (
    Evaluation,
    evaluate_items,
    load_predictor,
    resolve_model,
    score_files,
)


def default_out_dir(model_path: Path, run_dir: Path | None, data_dir: Path) -> Path:
    """``<DATA_DIR name>-eval-<UTC time>`` in the run folder, else beside the model file; but
    never inside the API's app folder, which is packaged into the Lambda zip as it is."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    parent = run_dir or model_path.parent
    resolved = parent.resolve()
    if resolved == APP_DIR.resolve() or APP_DIR.resolve() in resolved.parents:
        parent = Path.cwd()
    return parent / f"{data_dir.resolve().name}-eval-{stamp}"


def _check_scored(evaluation: Evaluation, items: Sequence[tuple[Path, int]]) -> None:
    """Every class folder must have at least one image that decodes."""
    folders = {evaluation.labels[t] for _, t in items}
    unreadable = sorted(folders - {evaluation.labels[t] for t in evaluation.targets.tolist()})
    if unreadable:
        raise UsageError(
            f"class folder(s) {unreadable} have no readable images (no file decodes as JPEG, "
            "PNG, WebP, GIF, BMP or TIFF); fix or remove them"
        )


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.evaluate",
        description="Score a served ONNX model on a labelled folder (one sub-folder per class) "
        "through the API's own code path, and write a report.",
    )
    parser.add_argument("model", type=Path, metavar="MODEL_OR_RUN", help="a .onnx or a run folder")
    parser.add_argument("data", type=Path, metavar="DATA_DIR", help="one sub-folder per class")
    parser.add_argument("--out", type=Path, help="report folder (default: in the run folder)")
    parser.add_argument(
        "--max-misclassified",
        type=_non_negative,
        default=DEFAULT_MAX_MISCLASSIFIED,
        metavar="N",
        help=f"images per misclassified grid, 0 for none (default {DEFAULT_MAX_MISCLASSIFIED})",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="tracebacks instead of one line")
    parser.add_argument(
        "--negatives",
        type=Path,
        metavar="DIR",
        help="photos of none of the classes (sub-folders are kinds): adds AUROC, the share "
        "answered unknown (per kind) and a score histogram",
    )
    return parser


def main(argv: Sequence[str], log: Callable[[str], None] = print) -> int:
    args = _parser().parse_args(list(argv))
    model_path, run_dir = resolve_model(args.model)
    predictor = load_predictor(model_path)
    items = collect_items(args.data, predictor.labels)
    evaluation = evaluate_items(
        predictor, items, progress=not args.no_progress, root=args.data.resolve()
    )
    _check_scored(evaluation, items)
    evaluation = replace(
        evaluation,
        model={"path": str(model_path), "sha256": sha256_file(model_path), **evaluation.model},
    )
    out_dir = args.out or default_out_dir(model_path, run_dir, args.data)
    negatives, kinds = None, []
    if args.negatives is not None:
        files = collect_negatives(args.negatives)
        negatives = score_files(predictor, files, progress=not args.no_progress, desc="negatives")
        kinds = [negative_kind(files[i].relative_to(args.negatives)) for i in negatives.kept]
    figures = write_evaluation(
        out_dir,
        evaluation,
        predictor.labels,
        title=f"Evaluation of {model_path.name} on {args.data.resolve().name}",
        max_misclassified=args.max_misclassified,
        negatives=negatives,
        negative_kinds=kinds,
        rejection=predictor.contract.rejection,
    )
    for line in _summary_lines(figures):
        log(line)
    if evaluation.skipped:
        log(f"skipped {len(evaluation.skipped)} file(s) that do not decode (listed in the report)")
    log(f"report: {out_dir / REPORT_MD}")
    return 0


def _summary_lines(figures: Figures) -> list[str]:
    summary, served = figures.summary, figures.served
    closed = [
        f"{name} {_interval(estimate)}"
        for name, estimate in (
            ("accuracy", summary.accuracy),
            ("balanced accuracy", summary.balanced_accuracy),
            ("macro-F1", summary.macro_f1),
        )
        if estimate is not None
    ]
    lines = [
        f'{summary.n} images: answer served ("unknown" included) accuracy '
        f'{_interval(served.accuracy)}, {served.unknown.value:.1%} answered "unknown"; closed '
        "set " + ", ".join(closed)
    ]
    for row in summary.per_class:
        if not row.absent:
            precision = f"{row.precision.value:.3f}" if row.precision else "-"
            lines.append(
                f"  {row.label}: precision {precision}, recall {_interval(row.recall)} "
                f"({row.correct}/{row.support})"
            )
    if summary.absent:
        lines.append(f"absent (no images): {', '.join(summary.absent)}")
    if figures.open_set:
        sep = figures.open_set["separation"]
        kinds = ", ".join(
            f"{k} {v['rejected']:.0%}" for k, v in figures.open_set["by_kind"].items()
        )
        lines.append(
            f"negatives: {sep['negatives_rejected']:.1%} of {sep['negatives']} answered "
            f'"unknown" ({kinds}); AUROC {sep["auroc"]:.3f}'
        )
    return lines


def _interval(estimate: Estimate | None) -> str:
    if estimate is None:
        return "-"
    return f"{estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]"


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="trainer.evaluate"))
