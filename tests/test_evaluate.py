"""trainer.evaluate: a tiny labelled folder scored with a real exported model, through the API path."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from shared import DEFAULT_LABELS
from shared.cli import run_cli
from shared.predictor import Predictor
from tests.imagegen import encode, synthetic_rgb
from trainer.evaluate import main
from trainer.evaluation.evaluation_report import (
    CONFUSION_PNG,
    RELIABILITY_PNG,
    REPORT_JSON,
    REPORT_MD,
    write_evaluation,
)
from trainer.evaluation.metrics import summarize
from trainer.evaluation.misclassified import misclassified_files
from trainer.evaluation.scoring import evaluate_items
from trainer.exporting.publish import INT8_FILE, MODEL_FILE

PRESENT = DEFAULT_LABELS[:3]  # the fourth label has no folder: absent
ABSENT = DEFAULT_LABELS[3]
STYLES = ("noise", "gradient", "mixed")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval") / "newbatch"
    for c, label in enumerate(PRESENT):
        folder = root / label
        (folder / "nested").mkdir(parents=True)
        for i in range(3):
            rgb = synthetic_rgb(300 + 20 * i, 260, seed=10 * c + i, content=STYLES[c])
            fmt, ext = ("PNG", "png") if i == 2 else ("JPEG", "jpg")
            where = folder / "nested" if i == 1 else folder
            (where / f"{i}.{ext}").write_bytes(encode(rgb, fmt))
        (folder / ".hidden.jpg").write_bytes(b"ignored: hidden")
    (root / PRESENT[0] / "notes.txt").write_text("not an image")  # skipped, not fatal
    return root


@pytest.fixture(scope="module")
def predictor(exported_model: Path) -> Predictor:
    return Predictor.from_path(exported_model)


def _direct(predictor: Predictor, data_dir: Path) -> dict[str, tuple[str, str]]:
    """The reference: a plain Predictor loop over every image, ``{relative path: (true, predicted)}``."""
    out = {}
    for label in PRESENT:
        for path in sorted((data_dir / label).rglob("*")):
            if path.is_file() and path.suffix in (".jpg", ".png") and not path.name.startswith("."):
                out[path.relative_to(data_dir).as_posix()] = (
                    label,
                    predictor.predict(path.read_bytes())["label"],
                )
    return out


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_cli(main, argv, prog="trainer.evaluate")
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_cli_writes_every_report_file_and_agrees_with_the_predictor(
    exported_model: Path,
    data_dir: Path,
    predictor: Predictor,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "report"
    code, stdout, err = _run(
        [str(exported_model), str(data_dir), "--out", str(out), "--no-progress"], capsys
    )
    assert code == 0, err
    grids = misclassified_files(DEFAULT_LABELS)
    for name in (REPORT_MD, REPORT_JSON, CONFUSION_PNG, RELIABILITY_PNG):
        assert (out / name).stat().st_size > 0, name
    for label in PRESENT:
        assert (out / grids[label]).read_bytes().startswith(PNG)
    assert not (out / grids[ABSENT]).exists()
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files

    report = json.loads((out / REPORT_JSON).read_text())
    direct = _direct(predictor, data_dir)
    items = {item["path"]: (item["label"], item["predicted"]) for item in report["items"]}
    assert items == direct
    assert [s["path"] for s in report["skipped"]] == [f"{PRESENT[0]}/notes.txt"]
    labels = list(DEFAULT_LABELS)
    truth = [labels.index(t) for t, _ in direct.values()]
    predicted = [labels.index(p) for _, p in direct.values()]
    expected = summarize(truth, predicted, DEFAULT_LABELS).to_dict()
    metrics = report["metrics"]
    assert metrics["n"] == 9 and metrics["absent"] == [ABSENT]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "confusion_matrix", "per_class"):
        assert metrics[key] == expected[key], key
    assert 0.0 <= report["calibration"]["ece"] <= 1.0
    assert report["model"]["path"] == str(exported_model)

    markdown = (out / REPORT_MD).read_text()
    assert f"**Absent classes** (no image here): {ABSENT}" in markdown
    assert f"| {ABSENT} | 0 | absent |" in markdown
    assert f"{metrics['accuracy']['value']:.3f}" in markdown
    assert "9 images: answer served" in stdout and f"absent (no images): {ABSENT}" in stdout
    # A model without a rejection rule answers the closest class: served and closed set agree.
    served = report["served_answer"]
    assert served["accuracy"] == metrics["accuracy"] and served["unknown"]["value"] == 0.0
    assert [row[:-1] for row in served["confusion_matrix"]] == metrics["confusion_matrix"][:4]


def test_a_rejected_photo_of_a_class_is_an_error_of_the_answer_served(
    rejecting_model: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model's rule answers every image "unknown": the closed-set figures are what they
    are, the answer served is right for none, and the matrix has an "unknown" column."""
    out = tmp_path / "report"
    code, stdout, err = _run(
        [str(rejecting_model), str(data_dir), "--out", str(out), "--no-progress"], capsys
    )
    assert code == 0, err
    report = json.loads((out / REPORT_JSON).read_text())
    served = report["served_answer"]
    assert served["accuracy"]["value"] == 0.0 and served["unknown"]["value"] == 1.0
    assert served["columns"][-1] == "unknown"
    support = [row["support"] for row in report["metrics"]["per_class"]]
    assert [row[-1] for row in served["confusion_matrix"]] == support
    assert {item["answered"] for item in report["items"]} == {"unknown"}
    markdown = (out / REPORT_MD).read_text()
    assert "| true \\ answered | " + " | ".join(DEFAULT_LABELS) + " | unknown |" in markdown
    assert '100.0% answered "unknown"' in stdout


def test_python_api_scores_items_in_label_order(
    predictor: Predictor, data_dir: Path, tmp_path: Path
) -> None:
    items = [(data_dir / PRESENT[1] / "0.jpg", 1), (data_dir / PRESENT[2] / "2.png", 2)]
    evaluation = evaluate_items(predictor, items, progress=False)
    assert evaluation.probabilities.shape == (2, len(DEFAULT_LABELS))
    assert np.allclose(evaluation.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert evaluation.targets.tolist() == [1, 2]
    for (path, _), row, predicted in zip(
        items, evaluation.probabilities, evaluation.predictions, strict=True
    ):
        answer = predictor.predict(path.read_bytes())
        assert row.tolist() == [answer["probabilities"][label] for label in DEFAULT_LABELS]
        assert DEFAULT_LABELS[predicted] == answer["label"]
    figures = write_evaluation(
        tmp_path, evaluation, DEFAULT_LABELS, title="test split", max_misclassified=0
    )
    assert figures.summary.absent == (DEFAULT_LABELS[0], DEFAULT_LABELS[3])
    assert not list(tmp_path.glob("misclassified_*.png"))
    assert (tmp_path / REPORT_MD).read_text().startswith("# test split\n")
    with pytest.raises(ValueError, match="outside"):
        evaluate_items(predictor, [(items[0][0], 4)], progress=False)


def test_run_folder_scores_the_served_model_and_reports_inside_it(
    exported_model: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(exported_model, run / MODEL_FILE)
    code, _, err = _run(
        [str(run), str(data_dir), "--no-progress", "--max-misclassified", "0"], capsys
    )
    assert code == 0, err
    (report,) = run.glob("newbatch-eval-*")
    assert json.loads((report / REPORT_JSON).read_text())["model"]["path"] == str(run / MODEL_FILE)
    shutil.copy(exported_model, run / INT8_FILE)  # the int8 file exists only when it is served
    out = tmp_path / "int8"
    code, _, err = _run(
        [str(run), str(data_dir), "--out", str(out), "--max-misclassified", "0", "--no-progress"],
        capsys,
    )
    assert code == 0, err
    assert json.loads((out / REPORT_JSON).read_text())["model"]["path"] == str(run / INT8_FILE)


# --- bad input: one line, exit 2 -------------------------------------------------------------------


def _not_skyclass(path: Path) -> Path:
    """A valid ONNX model without skyclass metadata."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["input"], ["probabilities"])],
        "plain",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [1, 4])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _expect_usage_error(argv: list[str], pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run([*argv, "--no-progress"], capsys)
    assert code == 2, err
    assert err.startswith("trainer.evaluate: error: ") and "\n" not in err, err
    assert pattern in err, err


def test_models_that_are_not_skyclass_models(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = _not_skyclass(tmp_path / "plain.onnx")
    _expect_usage_error([str(plain), str(data_dir)], "is not a usable skyclass model", capsys)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not really protobuf")
    _expect_usage_error([str(garbage), str(data_dir)], "is not a usable skyclass model", capsys)
    _expect_usage_error([str(tmp_path / "none.onnx"), str(data_dir)], "does not exist", capsys)
    _expect_usage_error([str(tmp_path), str(data_dir)], f"has no {MODEL_FILE}", capsys)


def test_bad_data_folders(
    exported_model: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(exported_model)
    _expect_usage_error([model, str(tmp_path / "missing")], "does not exist", capsys)

    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.jpg").write_bytes(encode(synthetic_rgb(64, 64)))
    _expect_usage_error([model, str(flat)], "has no class folders", capsys)

    unknown = tmp_path / "unknown"
    shutil.copytree(data_dir, unknown)
    (unknown / "Helicopters").mkdir()
    (unknown / "Helicopters" / "h.jpg").write_bytes(encode(synthetic_rgb(64, 64)))
    _expect_usage_error([model, str(unknown)], "['Helicopters'] in", capsys)

    presplit = tmp_path / "presplit"
    shutil.copytree(data_dir, presplit / "test")
    _expect_usage_error([model, str(presplit)], f"pass one split, e.g. {presplit / 'test'}", capsys)

    empty = tmp_path / "empty"
    shutil.copytree(data_dir, empty)
    (empty / ABSENT).mkdir()
    _expect_usage_error([model, str(empty)], f"class folder {empty / ABSENT} is empty", capsys)

    unreadable = tmp_path / "unreadable"
    shutil.copytree(data_dir, unreadable)
    (unreadable / ABSENT).mkdir()
    (unreadable / ABSENT / "x.jpg").write_bytes(b"not a jpeg")
    _expect_usage_error([model, str(unreadable)], f"['{ABSENT}'] have no readable images", capsys)


def test_negatives_add_the_open_set_figures(
    known_score_model: Path,
    white_png: bytes,
    black_png: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """White images are one of the classes for this model, black ones are not: the report must
    see every negative rejected, every labelled image accepted, and AUROC 1."""
    data, negatives = tmp_path / "data", tmp_path / "negatives"
    for label in DEFAULT_LABELS[:2]:
        (data / label).mkdir(parents=True)
        for i in range(3):
            (data / label / f"{i}.png").write_bytes(white_png)
    for kind in ("sky", "docs"):
        (negatives / kind).mkdir(parents=True)
        for i in range(2):
            (negatives / kind / f"{i}.png").write_bytes(black_png)
    (negatives / "loose.png").write_bytes(black_png)  # no sub-folder: kind "other"
    out = tmp_path / "report"
    argv = [str(known_score_model), str(data), "--negatives", str(negatives), "--out", str(out)]
    code, _, err = _run([*argv, "--no-progress"], capsys)
    assert code == 0, err
    open_set = json.loads((out / REPORT_JSON).read_text())["open_set"]
    sep = open_set["separation"]
    assert open_set["method"] == "background_class" and open_set["score"] == "known_score"
    assert sep["negatives"] == 5 and sep["negatives_rejected"] == 1.0
    assert sep["in_class"] == 6 and sep["in_class_accepted"] == 1.0 and sep["auroc"] == 1.0
    assert open_set["by_kind"] == {
        "docs": {"n": 2, "rejected": 1.0},
        "other": {"n": 1, "rejected": 1.0},
        "sky": {"n": 2, "rejected": 1.0},
    }
    assert (out / "score_histogram.png").read_bytes().startswith(PNG)
    markdown = (out / REPORT_MD).read_text()
    assert "## None of these (negatives)" in markdown
    assert "| negatives answered unknown | 100.0% |" in markdown
    code, _, err = _run([*argv[:2], "--negatives", str(tmp_path / "nope")], capsys)
    assert code == 2 and "no such folder" in err
