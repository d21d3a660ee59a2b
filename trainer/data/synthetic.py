"""A deterministic, clearly synthetic sky dataset of the four default classes, for the offline demo.

Every image is drawn from a seed derived from ``(seed, class, index)``, so the same arguments always
give the same pixels (and, with the pinned Pillow, the same JPEG bytes) on any machine. The shapes
are cartoons chosen to be told apart by shape and detail rather than by colour or size alone:

* Flying Birds: a body with two wings caught at a random flap phase, a head and a fanned tail.
* Large QuadCopters: long thin arms, big translucent rotor disks, landing gear and a gimbal camera.
* Small QuadCopters: a chunky body, short arms and ringed rotor guards, no gear, drawn smaller.
* Winged Drones: a long straight wing, a fuselage, a tailplane and a pusher propeller.

Sky colour, clouds, pose, scale, blur, noise and JPEG quality vary per image.
"""

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from shared.labels import DEFAULT_LABELS
from trainer.common.files import atomic_write_bytes, atomic_write_text
from trainer.common.progress import hidden

GENERATOR_VERSION = "2"
SUPERSAMPLE = 2  # drawn at 2x then downsampled: antialiased edges without a vector library
README = """SYNTHETIC DATA - NOT PHOTOGRAPHS.

These images were rendered by trainer/synthetic.py (generator version {version}, seed {seed},
{per_class} images per class, {size}x{size} pixels) for skyclass's offline demo
(`scripts/demo`, which runs `python -m trainer.demo`). They are cartoons of birds, multirotors
and fixed-wing drones on generated skies. A model trained on them demonstrates the pipeline; it
is not useful on real photos.
Delete this folder at any time; the demo re-renders it.
"""

Color = tuple[int, int, int]
Point = tuple[float, float]


def _sky(rng: np.random.Generator, size: int) -> Image.Image:
    """Vertical gradient sky (clear, hazy, overcast or dusk) with a few soft clouds."""
    palettes = [
        ((40, 110, 200), (150, 200, 245)),
        ((90, 150, 210), (200, 220, 235)),
        ((140, 145, 155), (205, 205, 210)),
        ((70, 90, 160), (240, 170, 120)),
    ]
    top, bottom = palettes[rng.integers(len(palettes))]
    jitter = rng.integers(-20, 21, 3)
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    top_c = np.clip(np.array(top) + jitter, 0, 255)
    bottom_c = np.clip(np.array(bottom) + jitter, 0, 255)
    grad = (1 - t) * top_c + t * bottom_c
    sky = np.broadcast_to(grad, (size, size, 3)).astype(np.uint8)
    img = Image.fromarray(np.ascontiguousarray(sky), "RGB")
    clouds = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(clouds)
    for _ in range(int(rng.integers(0, 5))):
        cx, cy = rng.uniform(-0.1, 1.1, 2) * size
        w, h = rng.uniform(0.15, 0.5) * size, rng.uniform(0.05, 0.15) * size
        for _ in range(int(rng.integers(2, 5))):
            dx, dy = rng.normal(0, 0.3, 2) * (w, h)
            draw.ellipse(
                (cx + dx - w / 2, cy + dy - h / 2, cx + dx + w / 2, cy + dy + h / 2),
                fill=int(rng.integers(90, 200)),
            )
    clouds = clouds.filter(ImageFilter.GaussianBlur(size / 25))
    white = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(225, 256, 3)))
    return Image.composite(white, img, clouds)


class _Canvas:
    """Draws in object coordinates (unit ~ object size, x right, y down) with rotation and offset."""

    def __init__(self, draw: ImageDraw.ImageDraw, cx: float, cy: float, scale: float, angle: float):
        self.draw, self.cx, self.cy, self.scale = draw, cx, cy, scale
        self.cos, self.sin = math.cos(angle), math.sin(angle)

    def pt(self, x: float, y: float) -> Point:
        return (
            self.cx + self.scale * (x * self.cos - y * self.sin),
            self.cy + self.scale * (x * self.sin + y * self.cos),
        )

    def polygon(self, points: list[Point], fill: Color) -> None:
        self.draw.polygon([self.pt(x, y) for x, y in points], fill=fill)

    def line(self, a: Point, b: Point, width: float, fill: Color) -> None:
        self.draw.line(
            [self.pt(*a), self.pt(*b)], fill=fill, width=max(1, round(width * self.scale))
        )

    def disk(self, x: float, y: float, r: float, fill: Color | None, outline: Color | None = None,
             width: float = 0.0) -> None:  # fmt: skip
        px, py = self.pt(x, y)
        rr = r * self.scale
        self.draw.ellipse(
            (px - rr, py - rr, px + rr, py + rr),
            fill=fill,
            outline=outline,
            width=max(1, round(width * self.scale)) if outline else 0,
        )

    def ellipse(self, x: float, y: float, rx: float, ry: float, fill: Color) -> None:
        # An ellipse under rotation, as a polygon (ImageDraw's ellipse is axis-aligned).
        pts = [
            (x + rx * math.cos(a), y + ry * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 24)
        ]
        self.polygon(pts, fill)


def _shade(rng: np.random.Generator, choices: list[Color], spread: int = 25) -> Color:
    base = np.array(choices[rng.integers(len(choices))])
    return tuple(int(v) for v in np.clip(base + rng.integers(-spread, spread + 1, 3), 0, 255))  # type: ignore[return-value]


def _bird(c: _Canvas, rng: np.random.Generator) -> None:
    color = _shade(rng, [(30, 30, 30), (90, 70, 50), (120, 120, 125), (235, 235, 235)])
    flap = rng.uniform(-1.0, 1.0)  # -1 wings down, +1 wings up
    span, chord = rng.uniform(0.9, 1.1), rng.uniform(0.16, 0.24)
    for side in (-1, 1):
        tip_y = -0.45 * flap
        elbow = (side * span * 0.5, tip_y * 0.5 - 0.05)
        tip = (side * span, tip_y)
        c.polygon(
            [(side * 0.08, -0.06), elbow, tip, (elbow[0] + side * 0.05, elbow[1] + chord),
             (side * 0.08, 0.1)],
            color,
        )  # fmt: skip
    c.ellipse(0, 0, 0.1, 0.24, color)
    c.disk(0, -0.28, 0.085, color)
    beak = _shade(rng, [(220, 160, 40), (60, 60, 60)], 10)
    c.polygon([(-0.03, -0.34), (0.03, -0.34), (0, -0.44)], beak)
    c.polygon([(-0.05, 0.2), (0.05, 0.2), (0.14, 0.42), (-0.14, 0.42)], color)


def _large_quad(c: _Canvas, rng: np.random.Generator) -> None:
    frame = _shade(rng, [(40, 40, 45), (200, 200, 205), (60, 60, 70)])
    accent = _shade(rng, [(200, 40, 40), (240, 140, 30), (40, 90, 200)], 20)
    rotors = 4 if rng.random() < 0.7 else 6
    arm = rng.uniform(0.8, 0.95)
    for k in range(rotors):
        a = 2 * math.pi * (k + 0.5) / rotors
        end = (arm * math.cos(a), arm * math.sin(a))
        c.line((0, 0), end, 0.05, frame)
        c.disk(*end, 0.07, accent)
        c.disk(*end, 0.34, None, outline=(70, 70, 75), width=0.015)
        blade = rng.uniform(0, math.pi)
        for s in (-1, 1):
            c.line(end, (end[0] + s * 0.32 * math.cos(blade), end[1] + s * 0.32 * math.sin(blade)),
                   0.03, (25, 25, 25))  # fmt: skip
    # Landing gear: two skids with legs, seen from below at an angle.
    for s in (-1, 1):
        c.line((s * 0.22, -0.35), (s * 0.22, 0.35), 0.035, frame)
        c.line((s * 0.1, -0.15), (s * 0.22, -0.2), 0.025, frame)
        c.line((s * 0.1, 0.15), (s * 0.22, 0.2), 0.025, frame)
    c.ellipse(0, 0, 0.2, 0.28, frame)
    c.polygon([(-0.12, -0.1), (0.12, -0.1), (0.12, 0.1), (-0.12, 0.1)], accent)
    c.disk(0, 0.08, 0.09, (20, 20, 20))  # gimbal camera
    c.disk(0, 0.08, 0.035, (90, 120, 160))


def _small_quad(c: _Canvas, rng: np.random.Generator) -> None:
    body = _shade(rng, [(245, 245, 245), (220, 40, 40), (30, 30, 30), (250, 200, 30)])
    guard = _shade(rng, [(200, 200, 200), (40, 40, 40)], 15)
    for k in range(4):
        a = math.pi / 2 * k + math.pi / 4
        end = (0.55 * math.cos(a), 0.55 * math.sin(a))
        c.line((0, 0), end, 0.16, body)
        c.disk(*end, 0.36, None, outline=guard, width=0.07)
        c.disk(*end, 0.1, (60, 60, 60))
    c.polygon([(-0.3, -0.3), (0.3, -0.3), (0.3, 0.3), (-0.3, 0.3)], body)
    c.disk(0, -0.15, 0.06, (20, 20, 20))


def _fixed_wing(c: _Canvas, rng: np.random.Generator) -> None:
    color = _shade(rng, [(235, 235, 235), (110, 115, 120), (60, 70, 60), (30, 30, 35)])
    span, chord = rng.uniform(0.95, 1.1), rng.uniform(0.12, 0.18)
    sweep = rng.uniform(0.0, 0.12)
    c.polygon(
        [(-span, -0.05 + sweep), (0, -0.1), (span, -0.05 + sweep), (span, -0.05 + sweep + chord),
         (0, -0.1 + chord + 0.02), (-span, -0.05 + sweep + chord)],
        color,
    )  # fmt: skip
    c.ellipse(0, 0.05, 0.07, 0.6, color)
    tail = rng.uniform(0.3, 0.4)
    c.polygon([(-tail, 0.5), (tail, 0.5), (tail, 0.6), (-tail, 0.6)], color)
    c.line((0, 0.62), (0, 0.75), 0.03, (40, 40, 40))
    c.line((-0.13, 0.72), (0.13, 0.72), 0.03, (40, 40, 40))  # pusher propeller
    if rng.random() < 0.5:
        c.disk(0, -0.3, 0.05, (30, 30, 30))  # nose camera


_DRAWERS: dict[str, tuple[Callable[[_Canvas, np.random.Generator], None], tuple[float, float]]] = {
    # label -> (drawer, object radius as a fraction of the image side)
    "Flying Birds": (_bird, (0.2, 0.38)),
    "Large QuadCopters": (_large_quad, (0.28, 0.4)),
    "Small QuadCopters": (_small_quad, (0.16, 0.28)),
    "Winged Drones": (_fixed_wing, (0.28, 0.42)),
}


def render(label: str, index: int, *, seed: int = 0, size: int = 128) -> np.ndarray:
    """One synthetic ``(size, size, 3)`` uint8 image of ``label``; same arguments, same pixels."""
    class_index = DEFAULT_LABELS.index(label)
    rng = np.random.default_rng([seed, class_index, index])
    big = size * SUPERSAMPLE
    img = _sky(rng, big)
    drawer, (lo, hi) = _DRAWERS[label]
    draw = ImageDraw.Draw(img)
    count = int(rng.choice([1, 1, 1, 2, 3])) if label == "Flying Birds" else 1
    radius = rng.uniform(lo, hi) * big / (1.0 + 0.35 * (count - 1))
    for _ in range(count):
        cx, cy = rng.uniform(0.3, 0.7, 2) * big
        angle = rng.uniform(-math.pi, math.pi) if label != "Flying Birds" else rng.normal(0, 0.5)
        drawer(_Canvas(draw, cx, cy, radius, angle), rng)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    blur = rng.uniform(0.0, 1.2)
    if blur > 0.3:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(img, dtype=np.float64) + rng.normal(0, rng.uniform(0, 8), (size, size, 3))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def generate(root: str | Path, *, per_class: int = 150, seed: int = 0, size: int = 128) -> Path:
    """Write ``root/<label>/<label-slug>_<i>.jpg`` for the four default labels, plus README.txt.

    Skips the work when ``root`` already holds this exact dataset (a stamp records the arguments).
    """
    root = Path(root)
    stamp = f"{GENERATOR_VERSION}:{per_class}:{seed}:{size}"
    stamp_path = root / ".generated"
    if stamp_path.is_file() and stamp_path.read_text(encoding="utf-8") == stamp:
        return root
    jobs = [(c, label, i) for c, label in enumerate(DEFAULT_LABELS) for i in range(per_class)]
    for class_index, label, i in tqdm(
        jobs, desc="render", unit="img", leave=False, disable=hidden()
    ):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        slug = label.lower().replace(" ", "_")
        rgb = render(label, i, seed=seed, size=size)
        quality = int(np.random.default_rng([seed, class_index, i, 1]).integers(70, 96))
        atomic_write_bytes(folder / f"{slug}_{i:04d}.jpg", encode_jpeg(rgb, quality))
    text = README.format(version=GENERATOR_VERSION, seed=seed, per_class=per_class, size=size)
    atomic_write_text(root / "README.txt", text)
    atomic_write_text(stamp_path, stamp)
    return root
