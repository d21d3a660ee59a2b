"""``model_card.md``: what the exported model is, how well it does, and what it must not be used for."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared import PreprocessSpec
from trainer.metrics import per_class


@dataclass(frozen=True)
class ModelStats:
    """Measured facts about one exported file (fp32 or int8)."""

    precision: str  # "fp32" or "int8"
    size_bytes: int
    accuracy: float  # test top-1, percent
    latency_ms: float  # median single-image onnxruntime latency on this machine
    confusion: np.ndarray = field(repr=False)  # rows = true label, columns = prediction

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


@dataclass(frozen=True)
class CardFacts:
    labels: Sequence[str]
    spec: PreprocessSpec
    info: Mapping[str, Any]  # the chosen model's skyclass.info
    split_counts: Mapping[str, Mapping[str, int]]  # split -> label -> images
    data_root: str
    fp32: ModelStats
    int8: ModelStats | None
    chosen: str
    decision: str
    parity: str
    runtime_check: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _per_class(labels: Sequence[str], confusion: np.ndarray) -> list[list[object]]:
    table = per_class(confusion, labels)
    return [
        [
            label,
            int(row["support"]),
            f"{100 * row['precision']:.1f}%",
            f"{100 * row['recall']:.1f}%",
            f"{row['f1']:.3f}",
        ]
        for label, row in table.items()
    ]


def render_model_card(facts: CardFacts) -> str:
    labels = list(facts.labels)
    chosen = facts.int8 if facts.chosen == "int8" and facts.int8 else facts.fp32
    info = facts.info
    out = [
        f"# skyclass model card: {info.get('model_version', '?')}",
        "",
        "Tells **" + "**, **".join(labels) + "** apart in a photo. One ONNX file "
        "(`model.onnx`, fp32; `model.int8.onnx` when kept) carries its labels, preprocessing and "
        "these facts in its metadata (`skyclass.*`).",
        "",
        "## Served model",
        "",
        f"- served: **{facts.chosen}**; {facts.decision}",
        f"- run `{info.get('run_id', '?')}`, created {info.get('created', '?')}, "
        f"git commit `{info.get('git_commit', '?')}`, architecture `{info.get('arch', '?')}`",
        f"- best epoch {info.get('epoch', '?')}; split manifest sha256 "
        f"`{info.get('split_manifest_sha256', '?')}`",
        "- input `input`: float32 `[N, 3, "
        f"{facts.spec.crop}, {facts.spec.crop}]` (dynamic batch); output `probabilities`: "
        f"`[N, {len(labels)}]`, softmax already applied, columns in the label order below",
        "",
        "## Data",
        "",
        f"Images from `{facts.data_root}`, split recorded in `split.json`.",
        "",
    ]
    splits = sorted(facts.split_counts)
    out += _table(
        ["class", *splits],
        [[label, *(facts.split_counts[s].get(label, 0) for s in splits)] for label in labels],
    )
    out += ["", "## Metrics (test split)", ""]
    variants = [facts.fp32, *([facts.int8] if facts.int8 else [])]
    out += _table(
        ["model", "test accuracy", "file size", "single-image latency (median)"],
        [
            [v.precision, f"{v.accuracy:.2f}%", f"{v.size_mb:.2f} MB", f"{v.latency_ms:.1f} ms"]
            for v in variants
        ],
    )
    out += ["", f"Per class ({chosen.precision}):", ""]
    out += _table(
        ["class", "test images", "precision", "recall", "F1"], _per_class(labels, chosen.confusion)
    )
    out += ["", f"Confusion matrix ({chosen.precision}; rows: true class, columns: predicted):", ""]
    out += _table(
        ["true \\ predicted", *labels],
        [[label, *map(int, chosen.confusion[i])] for i, label in enumerate(labels)],
    )
    out += [
        "",
        "## Checks",
        "",
        f"- parity gate (PyTorch vs ONNX fp32 on the test split): {facts.parity}",
        f"- Lambda runtime: {facts.runtime_check}",
        "",
        "## Preprocessing",
        "",
        "`shared.decode` (EXIF orientation, RGB) then `shared.preprocess`: resize the shorter side "
        f"to {facts.spec.resize} ({facts.spec.interpolation}, antialiased like Pillow), center-crop "
        f"{facts.spec.crop}, scale to 0..1, normalise with mean {list(facts.spec.mean)} and std "
        f"{list(facts.spec.std)}. The exact spec is in the model's `skyclass.preprocess` metadata.",
        "",
        "## Intended use and limits",
        "",
        "- Intended: sorting single photos of one flying object against a sky into the "
        f"{len(labels)} classes above, e.g. to triage camera footage; a human checks what matters.",
        '- Every image gets one of these classes: there is no "none of these" answer, so '
        "a car, a kite or an empty sky still comes back as the most similar class. Use the "
        "probability as a confidence signal, not as a calibrated likelihood.",
        "- Accuracy is measured on a held-out split of the same collection; photos from other "
        "cameras, distances, weather or night conditions may do worse.",
        "- Small or distant objects are hard after the resize to "
        f"{facts.spec.resize}px; several objects in one image are not supported.",
        "- Not for safety-critical decisions (airspace enforcement, countermeasures) on its own.",
    ]
    if facts.options:
        out += ["", "## Training options", "", "```"]
        out += [f"{key}: {value}" for key, value in sorted(facts.options.items())]
        out += ["```"]
    return "\n".join(out) + "\n"
