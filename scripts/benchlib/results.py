"""Rows, targets, the machine description, and the printed table / written JSON of a bench run."""

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """``ratio <= 0.15``, ``value >= 0.8`` ...: what a row must show to count as met."""

    on: str  # "ratio" (value / baseline) or "value"
    op: str  # "<=" or ">="
    bound: float
    note: str = ""  # the plain-words reading, e.g. ">= 4x faster"

    def met(self, value: float, ratio: float | None) -> bool | None:
        subject = ratio if self.on == "ratio" else value
        if subject is None:
            return None
        return subject <= self.bound if self.op == "<=" else subject >= self.bound

    def describe(self) -> str:
        text = f"{self.on} {self.op} {self.bound:g}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Row:
    """One measured figure, what it is compared with, and whether its target is met."""

    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: Target | None = None
    ratio: float | None = field(init=False)
    met: bool | None = field(init=False)

    def __post_init__(self) -> None:
        ratio = self.value / self.baseline if self.baseline else None
        object.__setattr__(self, "ratio", ratio)
        object.__setattr__(self, "met", self.target.met(self.value, ratio) if self.target else None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = self.target.describe() if self.target else None
        return data


def cpu_model() -> str:
    """The ``model name`` line of /proc/cpuinfo (what the issue asks the table to state)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
        # The load when the run started and ended: a busy machine makes every figure noisier.
        "loadavg_start": list(os.getloadavg()),
    }


def _fmt(number: float | None) -> str:
    if number is None:
        return "-"
    if number == 0 or abs(number) >= 100:
        return f"{number:.0f}"
    if abs(number) >= 10:
        return f"{number:.1f}"
    return f"{number:.3g}" if abs(number) < 0.1 else f"{number:.2f}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: ""}[met]


def format_table(rows: list[Row]) -> str:
    """A Markdown table (it reads fine in a terminal): one line per row, grouped by section."""
    lines = [
        "| section | measurement | value | baseline | ratio | target | |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for r in rows:
        baseline = f"{_fmt(r.baseline)} {r.unit} ({r.baseline_name})" if r.baseline_name else "-"
        lines.append(
            f"| {r.section} | {r.name} | {_fmt(r.value)} {r.unit} | {baseline} | {_fmt(r.ratio)} "
            f"| {r.target.describe() if r.target else '-'} | {_verdict(r.met)} |"
        )
    return "\n".join(lines)


def format_machine(info: dict[str, Any]) -> str:
    load = " / ".join(f"{x:.2f}" for x in info["loadavg_start"])
    end = info.get("loadavg_end")
    load += f" at the start, {' / '.join(f'{x:.2f}' for x in end)} at the end" if end else ""
    return (
        f"machine: {info['cpu_model']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"Python {info['python']}; load average (1/5/15 min) {load}"
    )


def write_json(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


@dataclass
class Section:
    """One section's rows, plus the raw measurements behind them (JSON only) and notes."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "details": self.details,
            "notes": self.notes,
        }
