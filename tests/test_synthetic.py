"""The demo's synthetic data generator is deterministic and labelled as synthetic."""

import numpy as np

from shared import DEFAULT_LABELS
from shared.decode import decode
from trainer.data.synthetic import generate, render


def test_render_is_deterministic_and_seed_dependent() -> None:
    for label in DEFAULT_LABELS:
        a = render(label, 3, seed=7, size=48)
        assert a.shape == (48, 48, 3) and a.dtype == np.uint8
        assert np.array_equal(a, render(label, 3, seed=7, size=48))
        assert not np.array_equal(a, render(label, 3, seed=8, size=48))


def test_generate_writes_identical_files_twice(tmp_path) -> None:
    first = generate(tmp_path / "a", per_class=2, size=48, seed=1)
    second = generate(tmp_path / "b", per_class=2, size=48, seed=1)
    files = sorted(p.relative_to(first) for p in first.rglob("*.jpg"))
    assert len(files) == 2 * len(DEFAULT_LABELS)
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.jpg"))
    for rel in files:
        data = (first / rel).read_bytes()
        assert data == (second / rel).read_bytes()
        assert decode(data).shape == (48, 48, 3)
    assert "SYNTHETIC" in (first / "README.txt").read_text(encoding="utf-8")


def test_classes_differ_visibly() -> None:
    # Mean images of two classes must differ: a generator drawing the same thing for every label
    # would make the demo's accuracy meaningless.
    means = [
        np.mean([render(label, i, size=48).astype(float) for i in range(6)], axis=0)
        for label in DEFAULT_LABELS
    ]
    edges = [
        np.abs(np.diff(render(label, 0, size=96).astype(float), axis=1)).mean()
        for label in DEFAULT_LABELS
    ]
    assert len({round(e, 3) for e in edges}) == len(DEFAULT_LABELS)
    assert all(m.shape == (48, 48, 3) for m in means)
