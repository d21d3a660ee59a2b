"""numpy preprocessing vs torchvision's eval transform on the same decoded images."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision import transforms

from shared import DEFAULT_SPEC, PreprocessSpec
from shared.decode import decode
from shared.preprocess import (
    crop_offsets,
    normalize,
    preprocess,
    resize_and_crop,
    resized_size,
)
from tests.imagegen import encode, synthetic_rgb
from trainer.data.images import torchvision_eval

# (width, height, content): portrait, landscape, square, extreme aspect ratios, odd sizes,
# smaller than the crop, exactly the resize size, flat and noisy content, up to a 12 MP photo.
CASES = [
    (50, 40, "noise"),
    (40, 50, "mixed"),
    (4032, 3024, "mixed"),
    (3024, 4032, "noise"),
    (300, 300, "mixed"),
    (300, 300, "flat"),
    (256, 256, "noise"),
    (257, 256, "mixed"),
    (256, 257, "gradient"),
    (224, 224, "noise"),
    (223, 225, "mixed"),
    (255, 511, "noise"),
    (640, 480, "mixed"),
    (480, 640, "gradient"),
    (1000, 100, "noise"),
    (100, 1000, "mixed"),
    (2000, 57, "gradient"),
    (57, 2000, "noise"),
    (1, 300, "noise"),
    (300, 1, "mixed"),
    (12, 12, "noise"),
    (1920, 1080, "mixed"),
    (1080, 1920, "flat"),
    (1333, 777, "noise"),
    (777, 1333, "gradient"),
    (513, 1025, "mixed"),
    (999, 1001, "noise"),
    (2560, 1440, "gradient"),
    (800, 600, "flat"),
    (3001, 2999, "mixed"),
    (101, 4000, "noise"),
    (4000, 101, "mixed"),
]


TORCH_EVAL = torchvision_eval(DEFAULT_SPEC)
TORCH_RESIZE_CROP = transforms.Compose(TORCH_EVAL.transforms[:2])


def _reference(rgb: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    return torchvision_eval(spec)(Image.fromarray(rgb)).unsqueeze(0).numpy()


def _compare(rgb: np.ndarray) -> tuple[int, float]:
    ours = resize_and_crop(rgb)
    theirs = np.asarray(TORCH_RESIZE_CROP(Image.fromarray(rgb)))
    assert ours.shape == theirs.shape == (224, 224, 3)
    diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
    return int(diff.max()), float((diff > 0).mean())


@pytest.mark.parametrize(("width", "height", "content"), CASES, ids=lambda v: str(v))
def test_resized_uint8_image_is_identical_to_torchvision(width, height, content):
    rgb = synthetic_rgb(width, height, seed=width * 7919 + height, content=content)
    max_diff, fraction = _compare(rgb)
    # Exactness matters: a level of difference on a few pixels can flip a borderline answer.
    assert max_diff <= 1 and fraction <= 0.001
    assert max_diff == 0, f"{width}x{height}: max diff {max_diff}, {fraction:.4%} of pixels"


def test_parity_covers_at_least_thirty_images_across_the_size_range():
    sizes = {(w, h) for w, h, _ in CASES}
    assert len(CASES) >= 30
    assert (50, 40) in sizes and (4032, 3024) in sizes
    assert {c for _, _, c in CASES} == {"noise", "flat", "gradient", "mixed"}


@pytest.mark.parametrize(("width", "height"), [(300, 300), (4032, 3024), (33, 700), (801, 599)])
def test_full_tensor_matches_torchvision_eval_transform(width, height):
    rgb = synthetic_rgb(width, height, seed=3)
    ours = preprocess(rgb)
    theirs = TORCH_EVAL(Image.fromarray(rgb)).unsqueeze(0).numpy()
    assert ours.dtype == np.float32 and ours.shape == (1, 3, 224, 224)
    np.testing.assert_array_equal(ours, theirs)


def test_normalisation_matches_torchvision_for_every_pixel_value():
    """All 256 values in every channel, from float64 planes (the resize's output) and from uint8
    ones (the trainer's prepared images): bit for bit ToTensor + Normalize."""
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = np.stack([values, values.T, values[::-1]], axis=-1)
    theirs = TORCH_EVAL.transforms[-1](TORCH_EVAL.transforms[-2](Image.fromarray(rgb))).numpy()
    planes = np.ascontiguousarray(rgb.transpose(2, 0, 1))
    for planar in (planes, planes.astype(np.float64)):
        ours = normalize(planar)[0]
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_parity_holds_on_decoded_photos(fmt):
    # JPEG goes through draft decoding (1/8 scale here); parity is on the decoded pixels.
    data = encode(synthetic_rgb(4032, 3024, seed=5), fmt)
    rgb = decode(data)
    assert _compare(rgb) == (0, 0.0)


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 700), height=st.integers(1, 700), seed=st.integers(0, 2**16))
def test_parity_on_random_sizes(width, height, seed):
    rgb = synthetic_rgb(width, height, seed=seed, content="noise")
    assert _compare(rgb) == (0, 0.0)


@given(width=st.integers(1, 10_000), height=st.integers(1, 10_000))
def test_geometry_follows_torchvision(width, height):
    out_w, out_h = resized_size(width, height, 256)
    expected_h, expected_w = transforms.functional._compute_resized_output_size(
        (height, width), [256]
    )
    assert (out_w, out_h) == (expected_w, expected_h)


@pytest.mark.parametrize(("width", "height"), [(256, 256), (257, 256), (256, 259), (341, 256)])
def test_crop_offsets_follow_torchvision(width, height):
    # Odd margins are where rounding matters: torchvision uses round(), halves to even.
    index = np.arange(width * height, dtype=np.int64).reshape(height, width)
    cropped = transforms.functional.center_crop(torch.from_numpy(index), [224, 224]).numpy()
    left, top = crop_offsets(width, height, 224)
    np.testing.assert_array_equal(cropped, index[top : top + 224, left : left + 224])


def test_other_spec_sizes_match_torchvision():
    spec = PreprocessSpec(resize=160, crop=128, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    rgb = synthetic_rgb(517, 389, seed=9)
    np.testing.assert_array_equal(preprocess(rgb, spec), _reference(rgb, spec))


def test_very_wide_filters_take_the_float64_path_and_stay_exact():
    # A ~37x downscale needs ~77 taps: beyond the float32 split's exact range.
    from shared.preprocess import _SPLIT_MAX_TAPS, _coefficients

    spec = PreprocessSpec(resize=16, crop=16)
    rgb = synthetic_rgb(700, 600, seed=11, content="noise")
    assert int(_coefficients(700, 18)[1].max()) > _SPLIT_MAX_TAPS
    np.testing.assert_array_equal(preprocess(rgb, spec), _reference(rgb, spec))


def test_rejects_arrays_that_are_not_uint8_rgb():
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((10, 10), dtype=np.uint8))


def test_torch_is_only_the_reference_here():
    # The contract package itself must not need torch (it ships in the Lambda bundle).
    import shared.preprocess

    assert "torch" not in shared.preprocess.__dict__
    assert torch.__version__  # the reference implementation is available to the suite
