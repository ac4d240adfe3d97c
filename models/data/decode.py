"""Untrusted image bytes -> model inputs: checked headers, decoded pixels a person would see.

Every failure of every decoder on untrusted bytes is a :class:`DataError` naming the file.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class DataError(ValueError):
    """The data path, an image in it, or a split cannot serve the request."""


class UnsupportedFormat(DataError):
    """Image bytes in a format the caller does not accept."""


@dataclass(frozen=True)
class InputSpec:
    """How raw images become model inputs: channels, square size, and ink inversion."""

    channels: int  # 1 (grayscale) or 3 (RGB)
    size: int  # side of the square the image is resized to
    invert: bool  # True for Omniglot-style data: dark strokes on light paper become 1

    @classmethod
    def from_card(cls, card: dict) -> InputSpec:
        backbone, data = card["backbone"], card.get("data", {})
        invert = data.get("invert", data.get("kind") == "omniglot")
        return cls(backbone["in_channels"], backbone["image_size"], bool(invert))


WIDE_MODES = ("I", "I;16", "I;16B", "I;16L")  # 16/32-bit integer pixels, e.g. 16-bit PNGs
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _flatten(image: Image.Image) -> Image.Image:
    """8-bit pixels: transparency composited on white (a transparent background is paper, not
    ink), 16-bit values scaled to 8 bits (a plain convert would clip them to white)."""
    if image.mode in WIDE_MODES:
        wide = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(wide / 257.0, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ALPHA_MODES:
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, image.convert("RGBA"))
    return image


def _check_header(
    image: Image.Image, source: str, max_pixels: int | None, formats: Collection[str] | None
) -> None:
    # a camera JPEG with an embedded second image (MPO: a large thumbnail, a gain map) is a JPEG
    # whose first frame is the photo; that frame is the one decoded
    is_mpo = image.format == "MPO"
    image_format = "JPEG" if is_mpo else image.format
    if formats is not None and image_format not in formats:
        raise UnsupportedFormat(
            f"image {source} is {image_format}; accepted formats: {', '.join(sorted(formats))}"
        )
    if max_pixels is not None and image.width * image.height > max_pixels:
        raise DataError(
            f"image {source} has {image.width}x{image.height} pixels, more than the "
            f"{max_pixels} allowed"
        )
    if not is_mpo and getattr(image, "n_frames", 1) > 1:
        raise DataError(f"image {source} is animated ({image.n_frames} frames); send one frame")


def _too_many_pixels(source: str, max_pixels: int | None, error: Exception) -> DataError:
    """Pillow's own refusal (its error past twice ``Image.MAX_IMAGE_PIXELS``, raised before the
    header checks run; its warning past once, where warnings are errors) told as the service's
    limit, as :func:`_check_header` tells a smaller large image."""
    factor = 2 if isinstance(error, Image.DecompressionBombError) else 1
    bound = factor * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None
    pixels = f"more than {bound} pixels" if bound else "too many pixels"
    allowed = f"the {max_pixels} allowed" if max_pixels is not None else "can be decoded safely"
    return DataError(f"image {source} has {pixels}, more than {allowed}")


@contextmanager
def _decoding(source: str, max_pixels: int | None) -> Iterator[None]:
    """Every failure of every decoder inside becomes a DataError naming ``source``."""
    try:
        yield
    except DataError:
        raise
    except UnidentifiedImageError as error:
        raise DataError(
            f"cannot read image {source}: it is not an image in a format that can be read"
        ) from error
    # the warning is an exception only where warnings are errors; the header check refuses
    # such an image (past max_pixels) otherwise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(source, max_pixels, error) from error
    except Exception as error:  # untrusted bytes: any failure of any decoder is the file's fault
        raise DataError(
            f"cannot read image {source}: the file is damaged or malformed "
            f"({type(error).__name__}: {error})"
        ) from error


def image_size(
    data: bytes,
    *,
    source: str,
    max_pixels: int | None = None,
    formats: Collection[str] | None = None,
) -> tuple[int, int]:
    """(width, height) read from the header alone, after the header checks of
    :func:`decode_image`: cheap enough to budget a whole request before decoding any of it."""
    with _decoding(source, max_pixels), Image.open(io.BytesIO(data)) as image:
        _check_header(image, source, max_pixels, formats)
        return image.size


def decode_image(
    data: bytes,
    *,
    channels: int,
    size: int,
    source: str,
    max_pixels: int | None = None,
    formats: Collection[str] | None = None,
) -> np.ndarray:
    """Decode image bytes to uint8 ``[C, size, size]``: EXIF orientation applied, transparency
    on white, 16-bit scaled to 8-bit, centre square crop, then resize.

    The header is checked before any pixel is decoded: format in ``formats`` (Pillow's names,
    e.g. PNG, JPEG; an MPO camera JPEG counts as JPEG and its first frame is read), width x
    height within ``max_pixels``, one frame only. Every decoder failure is a :class:`DataError`.
    """
    with _decoding(source, max_pixels), Image.open(io.BytesIO(data)) as image:
        _check_header(image, source, max_pixels, formats)
        image = _flatten(ImageOps.exif_transpose(image))
        image = image.convert("L" if channels == 1 else "RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((size, size), Image.Resampling.LANCZOS)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def decode_for(
    spec: InputSpec,
    data: bytes,
    *,
    source: str,
    max_pixels: int | None = None,
    formats: Collection[str] | None = None,
) -> np.ndarray:
    """Decode as :func:`decode_image` for a model's input spec, inverted when it asks."""
    pixels = decode_image(
        data,
        channels=spec.channels,
        size=spec.size,
        source=source,
        max_pixels=max_pixels,
        formats=formats,
    )
    return 255 - pixels if spec.invert else pixels
