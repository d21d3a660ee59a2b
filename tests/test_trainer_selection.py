"""What the trainer chooses, it chooses on val: the test split can change nothing but its own
score. And imbalance is handled by default: a rare class is still predicted.

Real tiny runs of the default regime (the solved head on cached views of a frozen backbone) on a
random mobilenet_v3_small saved as a weights file, at 64 px (nothing is downloaded; its features
are random but, standardised, tell these cartoons apart), on one thread so that two runs with the
same seed are bit-identical.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from shared.cli import run_cli
from shared.model_contract import ModelContract
from shared.predictor import Predictor
from tests.imagegen import write_dataset
from tests.trainer_support import fit, tiny_args
from trainer.evaluate import main as evaluate_main
from trainer.learning.checkpoint import BEST, load_checkpoint

LABELS = ("Flying Birds", "Winged Drones")


@pytest.fixture(scope="module")
def tiny(random_weights: Path) -> list[str]:
    return tiny_args(random_weights)


def _fit(*args: str | Path) -> None:
    assert fit(*args) == 0


def _negatives(folder: Path, count: int) -> Path:
    """Photos of none of the classes: quadcopter cartoons, of two kinds."""
    quads = ["Small QuadCopters", "Large QuadCopters"]
    return write_dataset(folder, quads, count, kind="cartoons", folders=["small", "large"])


def _chosen(run_dir: Path) -> dict:
    """Everything the run chose, and the exported graphs, for comparison."""
    best = load_checkpoint(run_dir / BEST)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    graphs = {}
    for name in ("model.onnx", "model.int8.onnx"):
        if (run_dir / name).is_file():
            proto = onnx.load(str(run_dir / name))
            info = ModelContract.from_metadata({p.key: p.value for p in proto.metadata_props}).info
            graphs[name] = (proto.graph.SerializeToString(), info["temperature"], info["selection"])
    return {
        "epoch": best.best_epoch,
        "weight_decay": best.weight_decay,
        "val_logits": best.val_logits.tobytes(),
        "temperature": metrics["temperature"],
        "rejection": metrics["rejection"],
        "served": metrics["served"],
        "int8": metrics["int8"],
        "graphs": graphs,
    }


def test_shuffling_the_test_labels_changes_nothing_that_was_chosen(tiny, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for split, indices in (
        ("train", range(0, 10)),
        ("val", range(10, 14)),
        ("test", range(14, 18)),
    ):
        write_dataset(data / split, LABELS, indices, kind="cartoons")
    shuffled = tmp_path / "shuffled"
    shutil.copytree(data, shuffled)
    # Swap half of each class's test images into the other class folder: wrong test labels.
    a, b = (shuffled / "test" / label for label in LABELS)
    for name in ("014.png", "015.png"):
        (a / name).rename(a / f"tmp-{name}")
        (b / name).rename(a / name)
        (a / f"tmp-{name}").rename(b / name)

    negatives = _negatives(tmp_path / "negatives", 6)
    runs = []
    for root in (data, shuffled):
        run_dir = tmp_path / f"run-{root.name}"
        args = ["--seed", "3", "--negatives", str(negatives), *tiny]
        _fit(str(root), "--run-dir", str(run_dir), *args)
        runs.append(run_dir)
    first, second = (_chosen(r) for r in runs)
    # Epoch, decay, val logits, temperature, the "unknown" threshold, INT8, the graphs.
    assert first == second
    assert first["rejection"]["method"] == "background_class+nearest_photo"
    # Test itself did change: the same pictures were scored under other labels.
    scored = [json.loads((r / "test" / "evaluation.json").read_text())["items"] for r in runs]
    truths = [
        sorted(
            (hashlib.sha256(Path(i["path"]).read_bytes()).hexdigest(), i["label"]) for i in items
        )
        for items in scored
    ]
    assert truths[0] != truths[1]
    assert sorted(h for h, _ in truths[0]) == sorted(h for h, _ in truths[1])


def test_a_rare_class_is_still_predicted_with_default_balancing(tiny, tmp_path: Path) -> None:
    data, holdout = tmp_path / "data", tmp_path / "holdout"
    write_dataset(data, LABELS[:1], 60, kind="cartoons")
    write_dataset(data, LABELS[1:], 6, kind="cartoons")  # 10:1
    write_dataset(holdout, LABELS, range(100, 110), kind="cartoons")
    run_dir = tmp_path / "run"
    _fit(data, "--run-dir", run_dir, "--no-int8", *tiny)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["balance"] == "auto"  # the default: the solved head's logit adjustment
    report = (run_dir / "report.md").read_text()
    assert "balance auto: logit adjustment" in report
    # 6 photos of the rarest class: no test split; the recipe cross-validated is the estimate,
    # with its confusion matrix of answers beside the report.
    estimate = json.loads((run_dir / "metrics.json").read_text())["estimate"]
    assert estimate["method"] == "cross-validation" and estimate["n"] == 66
    assert (run_dir / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "![confusion](confusion_matrix.png)" in report
    assert "nearest training photo of the predicted class" in report
    out = tmp_path / "eval"
    argv = [str(run_dir), str(holdout), "--out", str(out), "--no-progress"]
    assert run_cli(evaluate_main, argv, prog="trainer.evaluate") == 0
    metrics = json.loads((out / "evaluation.json").read_text())["metrics"]
    rare = next(c for c in metrics["per_class"] if c["label"] == "Winged Drones")
    assert rare["correct"] > 0, rare
    assert np.isfinite(metrics["balanced_accuracy"]["value"])


def test_negatives_teach_the_model_to_answer_unknown(tiny, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", LABELS, 20, styles=("noise", "mixed"))
    negatives = _negatives(tmp_path / "negatives", 20)
    run_dir = tmp_path / "run"
    _fit(data, "--run-dir", run_dir, "--negatives", negatives, "--no-int8", "--test-fraction", "0.2",
         *tiny)  # fmt: skip
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rule, test = metrics["rejection"], metrics["test"]
    assert rule["method"] == "background_class+nearest_photo" and rule["score"] == "known_score"
    # The threshold is the val rule: at least the accept rate of in-class val images pass.
    assert rule["details"]["val"]["in_class_accepted"] >= rule["accept_rate"]
    held_out = test["open_set"]
    assert held_out["negatives"] == 8 and held_out["negatives_rejected"] >= 0.75
    assert held_out["in_class_accepted"] >= 0.75 and held_out["auroc"] >= 0.9
    assert test["accuracy"]["value"] >= 0.75  # the classes are still told apart
    card = (run_dir / "model_card.md").read_text()
    assert "## None of these (open set)" in card and "background_class" in card
    # A negative answered through the served model's own path says "unknown".
    predictor = Predictor.from_path(run_dir / "model.onnx")
    answers = [
        predictor.predict(p.read_bytes()) for p in sorted((negatives / "small").glob("*.png"))
    ]
    assert sum(a["label"] == "unknown" and not a["known"] for a in answers) >= 14
    assert all(a["closest"] in LABELS for a in answers)
