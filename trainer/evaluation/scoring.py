"""Scoring a served model: every file through :class:`shared.predictor.Predictor`, so through the
API's own decode, preprocessing and onnxruntime path, and every figure is what clients got.

Labelled files (:func:`evaluate_items`) and unlabelled ones (:func:`score_files`, negatives)
alike; files that do not decode are kept aside with the reason, never scored as anything.
"""

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from shared.cli import UsageError
from shared.decode import DecodeError
from shared.predictor import Predictor
from trainer.common.progress import hidden
from trainer.exporting.publish import MODEL_FILE, served_file


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


def resolve_model(target: Path) -> tuple[Path, Path | None]:
    """``(model file, run folder or None)`` for a model file or a run folder."""
    if target.is_dir():
        served = served_file(target)
        if served is not None:
            return served, target
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
