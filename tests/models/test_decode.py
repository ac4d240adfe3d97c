"""Decoding unusual images gives the pixels a person would see, not Pillow's raw values."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.data import DataError, UnsupportedFormat, decode_image
from tests.hostile_images import (
    cmyk_jpeg,
    encode,
    exif_rotated_jpeg,
    good_png,
    png_16bit,
    polyglot_png,
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
