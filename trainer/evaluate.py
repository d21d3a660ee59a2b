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
``reliability.png`` and one ``misclassified_<class>.png`` grid per class. The trainer calls
:func:`evaluate_items` and :func:`write_evaluation` directly to score its test split once.

Exit status: 0 done, 2 bad input (one line on stderr; ``--debug`` for the traceback).
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from shared.cli import UsageError, run_cli
from shared.decode import DecodeError, decode
from shared.model_contract import Rejection
from shared.paths import APP_DIR
from shared.predictor import Predictor
from trainer.atomic import atomic_write_text
from trainer.metrics import (
    ECE_BINS,
    MACRO_F1_INTERVAL,
    Estimate,
    ReliabilityBin,
    Summary,
    expected_calibration_error,
    reliability,
    summarize,
)
from trainer.openset import separation
from trainer.plots import confusion_png, image_grid_png, reliability_png, score_histogram_png
from trainer.progress import hidden

MODEL_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
REPORT_MD = "evaluation.md"
REPORT_JSON = "evaluation.json"
CONFUSION_PNG = "confusion_matrix.png"
HISTOGRAM_PNG = "score_histogram.png"
RELIABILITY_PNG = "reliability.png"
DEFAULT_MAX_MISCLASSIFIED = 24
SMALL_CLASS = 10  # fewer test images than this: the report warns that the interval is wide
_THUMB = 192  # pixels, longer side of a misclassified-grid thumbnail


@dataclass(frozen=True)
class Scores:
    """What the served model said about some files, in input order.

    ``probabilities`` are the API's (rounded) probabilities in label order and ``predictions``
    the API's own ``label`` (its argmax on unrounded values, so rounding ties cannot differ).
    Files that do not decode are in ``skipped`` with the reason, not in the arrays.
    """

    paths: tuple[Path, ...]
    probabilities: np.ndarray  # (N, C) float64
    predictions: np.ndarray  # (N,) int64: the closest class, whether or not it is known
    skipped: tuple[tuple[Path, str], ...]
    kept: tuple[int, ...]  # input index of each scored row
    known: np.ndarray  # (N,) bool: the model's own "one of the classes" verdict
    known_scores: np.ndarray  # (N,) float64, NaN for a model without a rejection rule


@dataclass(frozen=True)
class Evaluation:
    """A labelled set scored by one model; row ``i`` of every array is ``paths[i]``."""

    labels: tuple[str, ...]
    paths: tuple[Path, ...]
    targets: np.ndarray  # (N,) int64 index into labels
    probabilities: np.ndarray  # (N, C) float64
    predictions: np.ndarray  # (N,) int64: the closest class
    skipped: tuple[tuple[Path, str], ...] = ()
    model: Mapping[str, Any] = field(default_factory=dict)  # what was scored (for the report)
    known: np.ndarray | None = None  # (N,) bool: answered as one of the classes
    known_scores: np.ndarray | None = None  # (N,) the rejection score (NaN without a rule)
    root: Path | None = None  # paths are shown relative to it
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return int(self.targets.size)

    @property
    def confidences(self) -> np.ndarray:
        """The probability of the predicted label, per image (the API's ``confidence``)."""
        return self.probabilities[np.arange(self.n), self.predictions]

    def display_path(self, path: Path) -> str:
        if self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return str(path)


def _score_one(predictor: Predictor, path: Path) -> tuple[np.ndarray, int, bool, float] | str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    try:
        result = predictor.predict(data)
    except DecodeError as exc:
        return exc.message
    row = np.array([result["probabilities"][label] for label in predictor.labels], np.float64)
    score = result["known_score"]
    closest = predictor.labels.index(result["closest"])
    return row, closest, bool(result["known"]), float("nan") if score is None else float(score)


def score_files(
    predictor: Predictor,
    paths: Sequence[Path],
    *,
    progress: bool = True,
    desc: str = "evaluate",
    workers: int | None = None,
) -> Scores:
    """Run every file through ``predictor.predict`` (threads: decode and onnxruntime release the
    GIL, and one session serves concurrent runs). Labelled or not: the open-set negatives will
    come through here too."""
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        results = list(
            tqdm(
                pool.map(lambda p: _score_one(predictor, p), paths),
                total=len(paths),
                desc=desc,
                unit="img",
                disable=hidden(progress),
                leave=False,
            )
        )
    rows, predictions, kept, skipped, known, known_scores = [], [], [], [], [], []
    for i, (path, result) in enumerate(zip(paths, results, strict=True)):
        if isinstance(result, str):
            skipped.append((path, result))
        else:
            rows.append(result[0])
            predictions.append(result[1])
            known.append(result[2])
            known_scores.append(result[3])
            kept.append(i)
    c = len(predictor.labels)
    return Scores(
        paths=tuple(paths[i] for i in kept),
        probabilities=np.array(rows, np.float64).reshape(len(rows), c),
        predictions=np.array(predictions, np.int64),
        skipped=tuple(skipped),
        kept=tuple(kept),
        known=np.array(known, bool),
        known_scores=np.array(known_scores, np.float64),
    )


def evaluate_items(
    predictor: Predictor,
    items: Sequence[tuple[Path, int]],
    *,
    progress: bool = True,
    root: Path | None = None,
) -> Evaluation:
    """Score ``(path, label index)`` items (indices into ``predictor.labels``) through the API's
    code path. Undecodable files land in ``Evaluation.skipped``."""
    labels = predictor.labels
    for path, target in items:
        if not 0 <= target < len(labels):
            raise ValueError(f"label index {target} of {path} is outside the model's {labels}")
    started = time.perf_counter()
    scores = score_files(predictor, [Path(p) for p, _ in items], progress=progress)
    info = predictor.contract.info
    return Evaluation(
        labels=labels,
        paths=scores.paths,
        targets=np.array([items[i][1] for i in scores.kept], np.int64),
        probabilities=scores.probabilities,
        predictions=scores.predictions,
        skipped=scores.skipped,
        known=scores.known,
        known_scores=scores.known_scores,
        model={
            key: info[key]
            for key in ("model_version", "run_id", "created", "served", "quantization")
            if key in info
        },
        root=root,
        seconds=time.perf_counter() - started,
    )


# --- the report -----------------------------------------------------------------------------------


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "class"


def misclassified_files(labels: Sequence[str]) -> dict[str, str]:
    """``{label: file name}`` of the misclassified grids (unique even if two slugs collide)."""
    names: dict[str, str] = {}
    for i, label in enumerate(labels):
        name = f"misclassified_{_slug(label)}.png"
        if name in names.values():
            name = f"misclassified_{_slug(label)}_{i}.png"
        names[label] = name
    return names


def _thumbnail(path: Path) -> np.ndarray:
    image = Image.fromarray(decode(path.read_bytes(), min_short_side=_THUMB))
    image.thumbnail((_THUMB, _THUMB))
    return np.asarray(image)


def _write_misclassified(
    out_dir: Path, evaluation: Evaluation, summary: Summary, limit: int
) -> dict[str, str]:
    """One grid per class present: its wrongly predicted images, most confident first (the
    mistakes the model is surest of are the ones a reviewer should see)."""
    written = {}
    files = misclassified_files(evaluation.labels)
    confidences = evaluation.confidences
    for c, row in enumerate(summary.per_class):
        if row.absent:
            continue
        wrong = np.flatnonzero((evaluation.targets == c) & (evaluation.predictions != c))
        wrong = wrong[np.argsort(-confidences[wrong], kind="stable")][:limit]
        captions = [
            f"{evaluation.paths[i].name[:24]}\n-> {evaluation.labels[evaluation.predictions[i]]}"
            f" {confidences[i]:.2f}"
            for i in wrong
        ]
        shown = (
            f" (the {len(wrong)} most confident)" if len(wrong) < row.support - row.correct else ""
        )
        image_grid_png(
            out_dir / files[row.label],
            [_thumbnail(evaluation.paths[i]) for i in wrong],
            captions,
            f"{row.label}: {row.support - row.correct} of {row.support} misclassified{shown}",
            colors=["crimson"] * len(wrong),
        )
        written[row.label] = files[row.label]
    return written


def _fmt(estimate: Estimate | None) -> tuple[str, str]:
    if estimate is None:
        return "-", "-"
    return f"{estimate.value:.3f}", f"{estimate.low:.3f} - {estimate.high:.3f}"


def _markdown(
    evaluation: Evaluation,
    summary: Summary,
    title: str,
    ece: float,
    grids: Mapping[str, str],
    open_set: Mapping[str, Any] | None = None,
) -> str:
    lines = [f"# {title}", ""]
    model = ", ".join(f"{k} {v}" for k, v in evaluation.model.items() if k != "path")
    if "path" in evaluation.model:
        lines.append(f"- model: `{evaluation.model['path']}`" + (f" ({model})" if model else ""))
    elif model:
        lines.append(f"- model: {model}")
    if evaluation.root is not None:
        lines.append(f"- data: `{evaluation.root}`")
    lines += [
        f"- images scored: {summary.n}"
        + (
            f"; {len(evaluation.skipped)} skipped (not decodable, listed below)"
            if evaluation.skipped
            else ""
        ),
        "- scored through `shared.predictor.Predictor`: the API's decode, preprocessing and "
        "onnxruntime session",
        "",
        "## Metrics (fractions; 95% intervals)",
        "",
        "| metric | value | 95% interval |",
        "| --- | --- | --- |",
    ]
    for name, estimate in (
        ("accuracy", summary.accuracy),
        ("balanced accuracy (mean per-class recall)", summary.balanced_accuracy),
        ("macro-F1", summary.macro_f1),
    ):
        value, interval = _fmt(estimate)
        lines.append(f"| {name} | {value} | {interval} |")
    lines += [
        f"| expected calibration error ({ECE_BINS} bins, top-1) | {ece:.3f} | - |",
        "",
        "## Per class",
        "",
        "| class | images | recall | 95% interval | precision | 95% interval | F1 | predicted |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary.per_class:
        recall, recall_ci = _fmt(row.recall) if not row.absent else ("absent", "-")
        precision, precision_ci = _fmt(row.precision)
        f1 = f"{row.f1:.3f}" if row.f1 is not None else "-"
        lines.append(
            f"| {row.label} | {row.support} | {recall} | {recall_ci} | {precision} | "
            f"{precision_ci} | {f1} | {row.predicted} |"
        )
    lines += [
        "",
        "## Confusion matrix (rows: true class, columns: predicted)",
        "",
        "| true \\ predicted | " + " | ".join(summary.labels) + " |",
        "| --- |" + " --- |" * len(summary.labels),
    ]
    for label, counts in zip(summary.labels, summary.confusion.tolist(), strict=True):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in counts) + " |")
    lines += [
        "",
        f"![confusion matrix]({CONFUSION_PNG})",
        "",
        "## Calibration",
        "",
        f"Expected calibration error {ece:.3f}: the mean gap between top-1 confidence and "
        f"accuracy over {ECE_BINS} equal-width confidence bins, weighted by images per bin "
        "(0 is perfectly calibrated).",
        "",
        f"![reliability diagram]({RELIABILITY_PNG})",
        "",
    ]
    if grids:
        lines += ["## Misclassified images", ""]
        lines += [f"- {label}: [{name}]({name})" for label, name in grids.items()]
        lines.append("")
    lines += ["## Notes", ""]
    if summary.absent:
        lines.append(
            f"- **Absent classes** (no image here): {', '.join(summary.absent)}. Their recall is "
            "unknown, not zero; they are left out of balanced accuracy and macro-F1. Images "
            "wrongly predicted as them still count against accuracy."
        )
    small = [f"{r.label} ({r.support})" for r in summary.per_class if 0 < r.support < SMALL_CLASS]
    if small:
        lines.append(
            f"- Fewer than {SMALL_CLASS} images: {', '.join(small)}; read their recall through "
            "its interval, a single image moves it a lot."
        )
    lines += [
        "- Intervals: Wilson score for accuracy, recall and precision; balanced accuracy's is the "
        f"mean of the per-class Wilson bounds (conservative); macro-F1's is the {MACRO_F1_INTERVAL}, "
        "which stays honest both for tiny classes and when a class's predictions are all alike.",
    ]
    if evaluation.skipped:
        lines += ["", "## Skipped files", ""]
        lines += [
            f"- `{evaluation.display_path(path)}`: {reason}"
            for path, reason in evaluation.skipped[:50]
        ]
        if len(evaluation.skipped) > 50:
            lines.append(f"- ... and {len(evaluation.skipped) - 50} more (evaluation.json)")
    if open_set:
        lines += ["", *_open_set_markdown(open_set)]
    return "\n".join(lines) + "\n"


def _open_set_markdown(open_set: Mapping[str, Any]) -> list[str]:
    sep = open_set["separation"]
    lines = [
        "## None of these (negatives)",
        "",
        f"Rule: `{open_set['method']}`, `{open_set['score']}` below {sep['threshold']:.4f} is "
        f"answered `unknown`. {sep['negatives']} negatives (photos of none of the classes).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| AUROC, in-class vs negatives | {sep['auroc']:.3f} |"
        if sep["auroc"] is not None
        else "| AUROC | - |",
        f"| negatives answered unknown | {sep['negatives_rejected']:.1%} |",
        f"| false-positive rate (negatives let through) at the threshold | "
        f"{1 - sep['negatives_rejected']:.1%} |",
        f"| in-class images accepted | {sep['in_class_accepted']:.1%} |",
        "",
        f"![score histogram]({HISTOGRAM_PNG})",
        "",
    ]
    kinds = open_set.get("by_kind") or {}
    if kinds:
        lines += ["| kind | negatives | answered unknown |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['n']} | {v['rejected']:.1%} |" for k, v in sorted(kinds.items())]
        lines.append("")
    return lines


def write_evaluation(
    out_dir: Path,
    evaluation: Evaluation,
    labels: Sequence[str],
    *,
    title: str,
    max_misclassified: int = DEFAULT_MAX_MISCLASSIFIED,
    negatives: Scores | None = None,
    negative_kinds: Sequence[str] = (),
    rejection: Rejection | None = None,
) -> Summary:
    """Write the report files into ``out_dir`` (each atomically); return the metrics.

    With ``negatives`` (photos of none of the classes, scored by the same model) the report adds
    how well the model's rejection rule separates them from the labelled images: AUROC, the
    share answered unknown (per kind too), and a histogram of the scores.
    """
    labels = tuple(labels)
    if labels != evaluation.labels:
        raise ValueError(f"labels {labels} are not the evaluation's {evaluation.labels}")
    if evaluation.n == 0:
        raise ValueError("nothing was scored: no image decoded")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(evaluation.targets, evaluation.predictions, labels)
    bins: list[ReliabilityBin] = reliability(evaluation.probabilities, evaluation.targets)
    ece = expected_calibration_error(evaluation.probabilities, evaluation.targets)

    confusion_png(out_dir / CONFUSION_PNG, summary.confusion, labels, f"{title}: confusion")
    reliability_png(out_dir / RELIABILITY_PNG, bins, ece_before=ece, title=title)
    grids = (
        _write_misclassified(out_dir, evaluation, summary, max_misclassified)
        if max_misclassified > 0
        else {}
    )
    open_set = (
        _open_set(out_dir, evaluation, negatives, negative_kinds, rejection, title)
        if negatives is not None
        else None
    )
    confidences = evaluation.confidences
    report = {
        "open_set": open_set,
        "title": title,
        "model": dict(evaluation.model),
        "data": str(evaluation.root) if evaluation.root is not None else None,
        "seconds": round(evaluation.seconds, 3),
        "metrics": summary.to_dict(),
        "calibration": {
            "ece": ece,
            "bins": ECE_BINS,
            "reliability": [b.to_dict() for b in bins],
        },
        "files": {
            "confusion_matrix": CONFUSION_PNG,
            "reliability": RELIABILITY_PNG,
            "misclassified": grids,
        },
        "items": [
            {
                "path": evaluation.display_path(path),
                "label": labels[int(evaluation.targets[i])],
                "predicted": labels[int(evaluation.predictions[i])],
                "confidence": float(confidences[i]),
            }
            for i, path in enumerate(evaluation.paths)
        ],
        "skipped": [
            {"path": evaluation.display_path(path), "reason": reason}
            for path, reason in evaluation.skipped
        ],
    }
    atomic_write_text(out_dir / REPORT_JSON, json.dumps(report, indent=2) + "\n")
    markdown = _markdown(evaluation, summary, title, ece, grids, open_set)
    atomic_write_text(out_dir / REPORT_MD, markdown)
    return summary


def _open_set(
    out_dir: Path,
    evaluation: Evaluation,
    negatives: Scores,
    kinds: Sequence[str],
    rejection: Rejection | None,
    title: str,
) -> dict[str, Any]:
    """AUROC and rejection rates of labelled images vs negatives, and the score histogram."""
    if rejection is None:  # an older export: the best score it has is its top probability
        ours, theirs = evaluation.confidences, negatives.probabilities.max(axis=1)
        method, score, threshold = "max_probability (no rule in the model)", "max_probability", None
    else:
        ours, theirs = evaluation.known_scores, negatives.known_scores
        method, score, threshold = rejection.method, rejection.score, rejection.threshold
    cut = threshold if threshold is not None else float("-inf")
    sep = separation(np.asarray(ours), np.asarray(theirs), cut).to_dict()
    sep["threshold"] = threshold if threshold is not None else float("nan")
    by_kind: dict[str, dict[str, float]] = {}
    if kinds:
        for kind in sorted(set(kinds)):
            mask = np.array([k == kind for k in kinds])
            by_kind[kind] = {"n": int(mask.sum()), "rejected": float(np.mean(theirs[mask] < cut))}
    score_histogram_png(
        out_dir / HISTOGRAM_PNG,
        {"in-class images": ours, "negatives": theirs},
        threshold=threshold,
        title=f"{title}: {score}",
        xlabel=score,
    )
    return {"method": method, "score": score, "separation": sep, "by_kind": by_kind}


# --- command line ---------------------------------------------------------------------------------


def resolve_model(target: Path) -> tuple[Path, Path | None]:
    """``(model file, run folder or None)`` for a model file or a run folder."""
    if target.is_dir():
        for name in (INT8_FILE, MODEL_FILE):
            if (target / name).is_file():
                return target / name, target
        raise UsageError(
            f"{target} has no {MODEL_FILE}: pass an exported model or a run folder "
            "(python -m trainer.export RUN writes it)"
        )
    if not target.is_file():
        raise UsageError(f"{target} does not exist; pass a .onnx model or a run folder")
    return target, None


def load_predictor(path: Path) -> Predictor:
    """:meth:`Predictor.from_path` with every way a file can fail to be a skyclass model turned
    into one :class:`UsageError` line."""
    try:
        return Predictor.from_path(path)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several pybind types for bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise UsageError(f"{path} is not a usable skyclass model: {first}") from None


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _files_under(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def collect_items(data_dir: Path, labels: Sequence[str]) -> list[tuple[Path, int]]:
    """``(file, label index)`` for every file under the class folders of ``data_dir``."""
    if not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        raise UsageError(
            f"data folder {data_dir} {what}; pass a folder with one sub-folder per class"
        )
    folders = [p for p in _visible(data_dir) if p.is_dir()]
    if not folders:
        raise UsageError(
            f"{data_dir} has no class folders; it needs one sub-folder per class named as the "
            f"model's labels {list(labels)}"
        )
    unknown = [p.name for p in folders if p.name not in labels]
    if unknown:
        hint = (
            f"; for a split dataset pass one split, e.g. {data_dir / unknown[0]}"
            if set(unknown) & {"train", "val", "test"}
            else ""
        )
        raise UsageError(
            f"folder(s) {unknown} in {data_dir} are not labels of the model "
            f"{list(labels)}; rename or remove them{hint}"
        )
    items: list[tuple[Path, int]] = []
    for folder in folders:
        files = _files_under(folder)
        if not files:
            raise UsageError(
                f"class folder {folder} is empty; add images or remove it (a label with no "
                "folder is reported as absent)"
            )
        items += [(path, labels.index(folder.name)) for path in files]
    return items


def collect_negatives(folder: Path) -> list[Path]:
    """Every file under a negatives folder (photos of none of the classes)."""
    if not folder.is_dir():
        raise UsageError(f"--negatives {folder}: no such folder (photos of none of the classes)")
    files = _files_under(folder)
    if not files:
        raise UsageError(f"--negatives {folder} holds no files")
    return files


def default_out_dir(model_path: Path, run_dir: Path | None, data_dir: Path) -> Path:
    """``<DATA_DIR name>-eval-<UTC time>`` in the run folder, else beside the model file; but
    never inside the API's app folder, which is packaged into the Lambda zip as it is."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    parent = run_dir or model_path.parent
    resolved = parent.resolve()
    if resolved == APP_DIR.resolve() or APP_DIR.resolve() in resolved.parents:
        parent = Path.cwd()
    return parent / f"{data_dir.resolve().name}-eval-{stamp}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def main(argv: Sequence[str], log: Callable[[str], None] = print) -> int:
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
        "answered unknown and a score histogram",
    )
    args = parser.parse_args(list(argv))

    model_path, run_dir = resolve_model(args.model)
    predictor = load_predictor(model_path)
    items = collect_items(args.data, predictor.labels)
    evaluation = evaluate_items(
        predictor, items, progress=not args.no_progress, root=args.data.resolve()
    )
    _check_scored(evaluation, items)
    evaluation = replace(
        evaluation,
        model={"path": str(model_path), "sha256": _sha256(model_path), **evaluation.model},
    )
    out_dir = args.out or default_out_dir(model_path, run_dir, args.data)
    negatives, kinds = None, []
    if args.negatives is not None:
        files = collect_negatives(args.negatives)
        negatives = score_files(predictor, files, progress=not args.no_progress, desc="negatives")
        # A kind is the first sub-folder under the negatives folder (files are listed under it).
        every = [f.relative_to(args.negatives).parts for f in files]
        kinds = [every[i][0] if len(every[i]) > 1 else "other" for i in negatives.kept]
    summary = write_evaluation(
        out_dir,
        evaluation,
        predictor.labels,
        title=f"Evaluation of {model_path.name} on {args.data.resolve().name}",
        max_misclassified=args.max_misclassified,
        negatives=negatives,
        negative_kinds=kinds,
        rejection=predictor.contract.rejection,
    )
    figures = [
        f"{name} {estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]"
        for name, estimate in (
            ("accuracy", summary.accuracy),
            ("balanced accuracy", summary.balanced_accuracy),
            ("macro-F1", summary.macro_f1),
        )
        if estimate is not None
    ]
    log(f"{summary.n} images: " + ", ".join(figures))
    if summary.absent:
        log(f"absent (no images): {', '.join(summary.absent)}")
    if evaluation.skipped:
        log(f"skipped {len(evaluation.skipped)} file(s) that do not decode (listed in the report)")
    log(f"report: {out_dir / REPORT_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="trainer.evaluate"))
