"""``model_card.md``: what the exported model is, how well it does, and what it must not be used for."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared import PreprocessSpec
from trainer.data.manifest import Manifest
from trainer.evaluation import run_summary as summary
from trainer.evaluation.run_report import TEST_DIR
from trainer.exporting.publish import INT8_FILE, MODEL_FILE, ModelStats
from trainer.learning.checkpoint import Checkpoint


@dataclass(frozen=True)
class CardFacts:
    labels: Sequence[str]
    spec: PreprocessSpec
    checkpoint: Checkpoint
    manifest: Manifest
    fp32: ModelStats
    int8: ModelStats | None
    served: str
    decision: str
    parity: str
    runtime_check: str
    metrics: Mapping[str, Any]  # metrics.json


def render_model_card(facts: CardFacts) -> str:
    ckpt, m = facts.checkpoint, facts.metrics
    estimate = summary.estimate_of(m)
    lines = [
        f"# Model card: {ckpt.info.run_id}",
        "",
        f"Classifies photos into {len(facts.labels)} classes: {', '.join(facts.labels)}. "
        f"Served file: `{INT8_FILE if facts.served == 'int8' else MODEL_FILE}` "
        f"({facts.served}).",
        "",
        "## How well it does (never measured on a photo that chose anything)",
        "",
        *(summary.estimate_section(estimate, facts.labels) if estimate else [summary.NO_TEST, ""]),
        "## None of these (open set)",
        "",
        *summary.open_set_section(m),
        *_calibration(m),
        *_chosen(facts),
        *_data_and_model(facts),
    ]
    return "\n".join(lines)


def _calibration(m: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Calibration",
        "",
        f"Softmax temperature {m['temperature']:.3f}, {m['temperature_source']}, folded into the "
        "graph (probabilities only; no decision changes).",
    ]
    test = m.get("test")
    if test:
        lines.append(
            f"Expected calibration error on test (15 bins): {test['ece_before_temperature']:.3f} "
            f"before, **{test['ece']:.3f}** after; reliability diagram: "
            f"`{TEST_DIR}/reliability.png`."
        )
    return lines


def _chosen(facts: CardFacts) -> list[str]:
    lines = [
        "",
        "## How it was chosen (never on the estimate)",
        "",
        summary.chosen_text(facts.checkpoint),
        "",
        "| file | size | balanced accuracy on the val images | single-image latency (this machine) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for stats in (facts.fp32, facts.int8):
        if stats:
            lines.append(
                f"| {stats.precision} | {stats.size_mb:.2f} MB | {stats.val_balanced_accuracy:.3f}"
                f" | {stats.latency_ms:.1f} ms |"
            )
    note = summary.val_figure_note(facts.checkpoint.config)
    return [*lines, "", f"INT8: {facts.decision}. Figures on the val images: {note}.", ""]


def _data_and_model(facts: CardFacts) -> list[str]:
    ckpt, c, spec = facts.checkpoint, facts.checkpoint.config, facts.spec
    return [
        "## Training data",
        "",
        f"`{facts.manifest.root}` ({summary.layout(facts.manifest)}).",
        "",
        *summary.counts_table(facts.manifest.counts()),
        "",
        *(f"- {note}" for note in facts.manifest.notes),
        "",
        "## Model and input",
        "",
        f"- {c.arch} ({ckpt.info.weights_used} weights), {c.head} head; "
        f"{'frozen backbone' if c.frozen else 'fine-tuned backbone'}; {c.regime_name}"
        + ("; image and mirror image averaged" if c.mirror else ""),
        f"- Input: decode (EXIF orientation applied, RGB), resize shorter side to {spec.resize} "
        f"(bilinear), center crop {spec.crop}, normalise with mean {spec.mean} and std "
        f"{spec.std}; float32 `[N, 3, {spec.crop}, {spec.crop}]` named `input`.",
        "- Outputs: `probabilities`, float32 `[N, classes]`, temperature-scaled softmax inside the "
        'graph, columns in label order; `known_score` `[N]`, the "none of these" score '
        "(unknown below the rule's threshold).",
        f"- Git commit `{ckpt.info.git_commit}`, run created {ckpt.info.created}.",
        "",
        "## Checks",
        "",
        f"- Parity with PyTorch: {facts.parity}",
        f"- Lambda runtime: {facts.runtime_check}",
        "",
        "## Intended use and limits",
        "",
        "- Triage of photos that show one of the classes above. A photo of something else is "
        "answered `unknown` when its score falls below the threshold (see *None of these*). "
        "Kinds of things the negatives never showed and that look like the classes (an empty "
        "sky, a light aircraft) may still get the closest class.",
        "- Figures come from the data above; photos unlike it (other cameras, distances, "
        "weather) may do worse. Classes with few photos have wide intervals: read them.",
        "- Not for safety-critical decisions (airspace security, collision avoidance) without a "
        "human in the loop.",
        "",
    ]
