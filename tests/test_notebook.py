"""notebooks/skyclass.ipynb: committed clean, and runs top to bottom offline in a fresh kernel.

The run uses this interpreter (the .venv's) through a kernel spec written for the test, so a
``python3`` kernel registered elsewhere on the machine cannot stand in for it. The notebook's
synthetic data, runs and published model go to a temporary folder; the committed file and the
model the API serves are checked to be untouched.
"""

import hashlib
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from shared import DEFAULT_LABELS
from shared.paths import PUBLISHED_MODEL, REPO
from shared.predictor import Predictor

NOTEBOOK = REPO / "notebooks" / "skyclass.ipynb"
KERNEL = "skyclass-test"


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and (c.outputs or c.execution_count is not None or "execution" in c.metadata)
    ]
    assert not dirty, f"cells {dirty} carry outputs: clear them before committing"
    # The deploy commands are shown, never run: they live in the last cell, as Markdown.
    assert nb.cells[-1].cell_type == "markdown" and "scripts/deploy" in nb.cells[-1].source


def _kernel_manager(folder: Path) -> KernelManager:
    spec = folder / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    return KernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)])
    )


def _execute(nb: nbformat.NotebookNode, kernels: Path) -> None:
    client = NotebookClient(
        nb,
        km=_kernel_manager(kernels),
        timeout=600,
        startup_timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails


@pytest.mark.parametrize(("ci", "real"), [("true", False), ("", True)])
def test_ci_publishes_to_a_scratch_copy_and_only_ci(
    ci: str, real: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an explicit SKYCLASS_NOTEBOOK_PUBLISH_TO, CI=true must never aim at the API's
    model; outside CI the default is the API's model (what a user publishing wants)."""
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("SKYCLASS_NOTEBOOK_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("SKYCLASS_NOTEBOOK_PUBLISH_TO", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    settings = next(i for i, c in enumerate(nb.cells) if "PUBLISH_TO = " in c.source)
    nb.cells = [*nb.cells[: settings + 1], nbformat.v4.new_code_cell("print(PUBLISH_TO)")]
    _execute(nb, tmp_path / "kernels")
    target = Path(nb.cells[-1].outputs[0].text.strip())
    if real:
        assert target == PUBLISHED_MODEL
    else:
        assert target.is_relative_to(tmp_path / "work") and target != PUBLISHED_MODEL


def test_notebook_runs_top_to_bottom_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed, served_before = _digest(NOTEBOOK), _digest(PUBLISHED_MODEL)
    work, publish_to = tmp_path / "work", tmp_path / "published" / "model.onnx"
    monkeypatch.setenv("SKYCLASS_NOTEBOOK_DIR", str(work))
    monkeypatch.setenv("SKYCLASS_NOTEBOOK_PUBLISH_TO", str(publish_to))
    monkeypatch.delenv("SKYCLASS_NOTEBOOK_DATA", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline figures, not a file
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    _execute(nb, tmp_path / "kernels")
    print(f"notebook executed in {time.perf_counter() - started:.0f}s")

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    # files per class, samples, split counts, augmented samples, curves, confusion, reliability,
    # and at least one misclassified grid
    assert len(figures) >= 8, len(figures)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "published fp32 model" in text or "published int8 model" in text
    assert "test images, served model" in text

    (run_dir,) = (work / "runs").iterdir()
    assert (run_dir / "test" / "confusion_matrix.png").is_file()
    assert (run_dir / "notebook-evaluation" / "evaluation.json").is_file()
    photo = next((work / "synthetic" / DEFAULT_LABELS[0]).glob("*.jpg"))
    answer = Predictor.from_path(publish_to).predict(photo.read_bytes())
    # A few epochs from random weights make a weak model: "unknown" is an honest answer too.
    assert answer["closest"] in DEFAULT_LABELS and answer["label"] in (*DEFAULT_LABELS, "unknown")
    assert _digest(NOTEBOOK) == committed
    assert _digest(PUBLISHED_MODEL) == served_before
