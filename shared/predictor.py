"""The served model: image bytes in, one JSON-ready result out.

:class:`Predictor` wraps one onnxruntime session and the :class:`shared.ModelContract` read from
the model's own metadata, so labels and preprocessing can never drift from what was trained. The
API serves through it; the trainer's demo, export and evaluation call it directly, so every figure
they report comes from the code path clients get.
"""

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shared.decode import decode
from shared.labels import UNKNOWN
from shared.model_contract import (
    INPUT_NAME,
    KNOWN_SCORE_OUTPUT,
    OUTPUT_NAME,
    ContractError,
    ModelContract,
)
from shared.preprocess import preprocess
from shared.spec import PreprocessSpec

_DECIMALS = 6  # probabilities: float32 carries ~7 significant digits


class Predictor:
    """One loaded model. Create it once per process: building the session costs ~0.1-1 s."""

    def __init__(self, session: Any, contract: ModelContract, load_ms: float = 0.0) -> None:
        self._session = session
        self.contract = contract
        self.load_ms = load_ms
        _check_signature(session, contract)
        rejection = contract.rejection
        self._outputs = [OUTPUT_NAME]
        if rejection is not None and rejection.score == KNOWN_SCORE_OUTPUT:
            self._outputs.append(KNOWN_SCORE_OUTPUT)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> "Predictor":
        """Load an exported model. Raises ``FileNotFoundError``, ``ContractError`` or
        onnxruntime's own errors for a file that is not a usable skyclass model."""
        started = time.perf_counter()
        if not Path(path).is_file():
            raise FileNotFoundError(f"no model file at {os.fspath(path)}")
        # Imported here, not at module level: `chalice package`/`deploy` import app.py and must
        # not need onnxruntime, and a cold start should not pay for it before the first request.
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Lambda shows 2+ cores at every memory size but grants CPU time in proportion to memory
        # (one vCPU's worth at 1769 MB), so os.cpu_count() overstates it: 2 threads on one vCPU of
        # quota measured 2x slower than 1 (bench.py, model-only rows). Raise it for >= 3538 MB.
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle workers would otherwise busy-wait after each run, eating the CPU share that decode
        # and preprocessing need next (Lambda's vCPU is a quota): 2-3x slower phases measured.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            os.fspath(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        contract = ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
        predictor = cls(session, contract)
        # The first run allocates onnxruntime's buffers and picks kernels (~2-5x a normal run);
        # paying for it here keeps it out of the first client's timing and lets /health warm up.
        session.run(
            predictor._outputs,
            {INPUT_NAME: np.zeros((1, *contract.spec.input_shape), np.float32)},
        )
        predictor.load_ms = (time.perf_counter() - started) * 1000
        return predictor

    @property
    def labels(self) -> tuple[str, ...]:
        return self.contract.labels

    @property
    def spec(self) -> PreprocessSpec:
        return self.contract.spec

    @property
    def model_info(self) -> dict[str, Any]:
        info: Mapping[str, Any] = self.contract.info
        return {"version": info.get("model_version"), "created": info.get("created")}

    def predict(
        self, image_bytes: bytes, top: int | None = None, reject: bool = True
    ) -> dict[str, Any]:
        """Classify one encoded image; ``top`` limits the ranked list (default: every label).

        ``known`` says whether the image is one of the classes, by the model's own rule; when it
        is not, ``label`` is ``"unknown"`` (``reject=False`` keeps the closest class as the label
        for clients that want the closed-set answer).

        Raises ``shared.decode.DecodeError`` (or its ``ImageTooLargeError`` and
        ``UnsupportedFormatError``) for bytes that are not a supported image, ``ValueError`` for
        ``top < 1``.
        """
        if top is not None and top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        t0 = time.perf_counter()
        rgb = decode(image_bytes, min_short_side=self.spec.resize)
        t1 = time.perf_counter()
        batch = preprocess(rgb, self.spec)
        t2 = time.perf_counter()
        outputs = self._session.run(self._outputs, {INPUT_NAME: batch})
        t3 = time.perf_counter()
        # The exported graph ends in softmax already (skyclass.output = "probabilities").
        probs = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
        if probs.shape[0] != len(self.labels) or not np.all(np.isfinite(probs)):
            raise RuntimeError("the model returned an output that does not match its labels")
        score = float(np.asarray(outputs[1]).reshape(-1)[0]) if len(outputs) > 1 else None
        if score is not None and not np.isfinite(score):
            raise RuntimeError("the model returned a known_score that is not a finite number")
        timing = {"decode": _ms(t0, t1), "preprocess": _ms(t1, t2), "inference": _ms(t2, t3)}
        return self._result(probs, score, top, reject, timing)

    def known_score(self, probs: np.ndarray, graph_score: float | None) -> float | None:
        """The rejection score of one image (None for a model without a rejection rule)."""
        rejection = self.contract.rejection
        if rejection is None:
            return None
        return graph_score if rejection.score == KNOWN_SCORE_OUTPUT else float(np.max(probs))

    def _result(
        self,
        probs: np.ndarray,
        graph_score: float | None,
        top: int | None,
        reject: bool,
        timing_ms: dict[str, float],
    ) -> dict[str, Any]:
        """The one place an answer is built (the API, single or batch, and every trainer figure
        use it): a field added here reaches every client."""
        # Stable sort: equal probabilities keep the model's label order.
        order = np.argsort(-probs, kind="stable")
        ranked = [
            {"label": self.labels[i], "probability": round(float(probs[i]), _DECIMALS)}
            for i in order[: len(order) if top is None else top]
        ]
        closest = self.labels[order[0]]
        score = self.known_score(probs, graph_score)
        rejection = self.contract.rejection
        known = score is None or rejection is None or score >= rejection.threshold
        return {
            "label": closest if known or not reject else UNKNOWN,
            "known": known,
            "closest": closest,
            "known_score": None if score is None else round(score, _DECIMALS),
            "confidence": round(float(probs[order[0]]), _DECIMALS),
            "probabilities": {
                label: round(float(p), _DECIMALS)
                for label, p in zip(self.labels, probs, strict=True)
            },
            "top": ranked,
            "model": self.model_info,
            "timing_ms": timing_ms,
        }


def _threads() -> int:
    """onnxruntime intra-op threads: ``SKYCLASS_ORT_THREADS`` (default 1)."""
    raw = os.environ.get("SKYCLASS_ORT_THREADS", "1")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)


def _check_signature(session: Any, contract: ModelContract) -> None:
    """Refuse a model whose input/output names or class count disagree with its metadata."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    rejection = contract.rejection
    if (
        rejection is not None
        and rejection.score == KNOWN_SCORE_OUTPUT
        and (KNOWN_SCORE_OUTPUT not in outputs)
    ):
        raise ContractError(
            f"the model's rejection rule reads an output {KNOWN_SCORE_OUTPUT!r} it does not have"
        )
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise ContractError(
            f"the model needs an input {INPUT_NAME!r} and an output {OUTPUT_NAME!r}, "
            f"it has inputs {sorted(inputs)} and outputs {sorted(outputs)}"
        )
    classes = outputs[OUTPUT_NAME].shape[-1] if outputs[OUTPUT_NAME].shape else None
    if isinstance(classes, int) and classes != len(contract.labels):
        raise ContractError(
            f"the model outputs {classes} classes but its metadata lists {len(contract.labels)}"
        )
