"""Decoding unusual images gives the pixels a person would see, not Pillow's raw values."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from PIL import Image

from models.data import DataError, UnsupportedFormat, decode_image
from tests.hostile_images import (
    cmyk_jpeg,
    encode,
    exif_rotated_jpeg,
    fuzzed_files,
    good_png,
    mpo_jpeg,
    png_16bit,
    polyglot_png,
    raises_beyond_documented_errors,
    stroke,
    transparent_png,
)


def decoded(data: bytes, **options) -> np.ndarray:
    return decode_image(data, channels=1, size=40, source="t", **options)[0].astype(int)


def test_16_bit_and_transparent_and_polyglot_match_the_plain_png():
    plain = decoded(good_png())
    assert np.abs(decoded(png_16bit()) - plain).max() <= 1  # not clipped to white
    assert np.abs(decoded(transparent_png()) - plain).max() <= 1  # background is white
    assert np.array_equal(decoded(polyglot_png()), plain)


def test_exif_orientation_and_cmyk_are_applied():
    plain = decoded(good_png())
    assert np.abs(decoded(exif_rotated_jpeg()) - plain).mean() < 8  # upright again
    rotated = decode_image(
        encode(Image.fromarray(stroke(), "L").transpose(Image.Transpose.ROTATE_90), "PNG"),
        channels=1,
        size=40,
        source="t",
    )[0].astype(int)
    assert np.abs(rotated - plain).mean() > 40  # the check can tell orientations apart
    assert np.abs(decoded(cmyk_jpeg()) - plain).mean() < 8


def test_formats_outside_the_allowed_list_are_refused():
    with pytest.raises(UnsupportedFormat, match="PNG"):
        decoded(encode(Image.fromarray(stroke(), "L"), "BMP"), formats={"PNG"})
    assert decoded(good_png(), formats={"PNG"}).shape == (40, 40)
    assert issubclass(UnsupportedFormat, DataError)


def test_an_mpo_camera_jpeg_is_read_as_its_first_frame():
    assert Image.open(io.BytesIO(mpo_jpeg())).format == "MPO"  # the case is what it claims
    plain = decoded(good_png())
    assert np.abs(decoded(mpo_jpeg(), formats={"JPEG"}) - plain).mean() < 8


def test_fuzzed_files_raise_only_data_errors():
    """20,000 mutated real files (seed 0): every failure of every decoder is a DataError."""
    files = fuzzed_files(seed=0, count=20_000)
    unusual = [data for data in files if raises_beyond_documented_errors(data)]
    assert unusual  # the fuzzing reaches errors beyond Pillow's documented ones
    for data in files:
        with contextlib.suppress(DataError):
            decoded(data, max_pixels=4096 * 4096)


def test_pillows_bomb_warning_as_an_error_is_the_service_limit_too():
    """Between Pillow's warning (89 Mpx) and its error (179 Mpx) an image opens with a warning;
    where warnings are errors, the refusal still states the service's limit."""
    data = encode(Image.new("1", (10000, 10000)), "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(DataError) as refused:
            decode_image(data, channels=1, size=28, source="#1 (w.png)", max_pixels=4096**2)
    assert str(refused.value) == (
        f"image #1 (w.png) has more than {Image.MAX_IMAGE_PIXELS} pixels, "
        f"more than the {4096**2} allowed"
    )
