"""A corpus of hostile and unusual image files, built in code (nothing binary is committed)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def stroke(size: int = 40) -> np.ndarray:
    """A dark asymmetric stroke (an 'L') on white: orientation is visible."""
    pixels = np.full((size, size), 255, np.uint8)
    pixels[5:35, 8:14] = 0
    pixels[29:35, 8:30] = 0
    return pixels


def png_16bit() -> bytes:
    wide = stroke().astype(np.uint16) * 257
    return encode(Image.fromarray(wide), "PNG")  # mode I;16


def transparent_png() -> bytes:
    """Black ink on a fully transparent background (as drawing apps export)."""
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 3] = np.where(stroke() == 0, 255, 0)
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def exif_rotated_jpeg() -> bytes:
    """Stored rotated by 90 degrees, with EXIF orientation 6 saying how to turn it upright."""
    stored = Image.fromarray(stroke(), "L").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", exif=exif, quality=100)


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(stroke(), "L").convert("CMYK"), "JPEG", quality=95)


def animated_gif() -> bytes:
    frames = [Image.fromarray(np.roll(stroke(), shift, axis=1), "L") for shift in (0, 5, 10)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def polyglot_png() -> bytes:
    """A valid PNG followed by a ZIP archive and an HTML page."""
    return (
        encode(Image.fromarray(stroke(), "L"), "PNG")
        + b"PK\x03\x04"
        + b"\x00" * 26
        + b"<html><script>alert(1)</script></html>"
    )


def huge_dimensions() -> bytes:
    """20000 x 20000 pixels in a few KB: a decompression bomb."""
    return encode(Image.new("1", (20000, 20000)), "PNG")


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def good_png() -> bytes:
    return encode(Image.fromarray(stroke(), "L"), "PNG")


def good_jpeg() -> bytes:
    return encode(Image.fromarray(stroke(), "L"), "JPEG", quality=95)


# name -> (bytes, (status, code) of the API, or None when the file is accepted)
CORPUS = {
    "zero_bytes": (lambda: b"", (422, "invalid_image")),
    "truncated_png": (lambda: truncated(good_png()), (422, "invalid_image")),
    "truncated_jpeg": (lambda: truncated(good_jpeg()), (422, "invalid_image")),
    "huge_dimensions_tiny_file": (huge_dimensions, (422, "invalid_image")),
    "animated_gif": (animated_gif, (422, "invalid_image")),
    "html_named_png": (lambda: b"<html><body>not an image</body></html>", (422, "invalid_image")),
    "pdf_named_png": (lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF", (422, "invalid_image")),
    "ico_not_allowed": (
        lambda: encode(Image.fromarray(stroke(), "L"), "ICO"),
        (415, "unsupported_image_format"),
    ),
    "cmyk_jpeg": (cmyk_jpeg, None),
    "png_16bit": (png_16bit, None),
    "transparent_png": (transparent_png, None),
    "exif_rotated_jpeg": (exif_rotated_jpeg, None),
    "polyglot_png_zip_html": (polyglot_png, None),
}


def mpo_jpeg() -> bytes:
    """A camera JPEG with an embedded second image (MPO), as phones write: the stroke is the
    first frame, a black 'thumbnail' the second."""
    photo = Image.fromarray(stroke(), "L").convert("RGB")
    second = Image.new("RGB", (20, 20), (0, 0, 0))
    return encode(photo, "MPO", save_all=True, append_images=[second], quality=95)


CORPUS["mpo_camera_jpeg"] = (mpo_jpeg, None)

FUZZ_SEEDS = ("PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP")


def fuzzed_files(seed: int, count: int) -> list[bytes]:
    """``count`` real files of every format, each with 1-8 random byte edits (overwrite, delete,
    insert), reproducible from ``seed``."""
    picture = Image.fromarray(stroke(), "L").convert("RGB")
    originals = [encode(picture, fmt) for fmt in FUZZ_SEEDS] + [exif_rotated_jpeg()]
    rng = np.random.default_rng(seed)
    files = []
    for _ in range(count):
        data = bytearray(originals[rng.integers(len(originals))])
        for _ in range(rng.integers(1, 9)):
            at, kind = int(rng.integers(len(data))), rng.random()
            if kind < 0.6:
                data[at] = int(rng.integers(256))
            elif kind < 0.8:
                del data[at : at + int(rng.integers(1, 9))]
            else:
                data[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), np.uint8).tobytes()
        files.append(bytes(data))
    return files


def raises_beyond_documented_errors(data: bytes) -> bool:
    """Whether plain Pillow (open, EXIF transpose, convert) raises on ``data`` something beyond
    the errors it documents (OSError, ValueError, SyntaxError, DecompressionBombError): opening,
    counting frames, EXIF transpose, convert."""
    from PIL import ImageOps

    documented = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
    try:
        with Image.open(io.BytesIO(data)) as image:
            getattr(image, "n_frames", 1)
            ImageOps.exif_transpose(image).convert("L")
    except documented:
        return False
    except Exception:  # exactly the case this function reports
        return True
    return False


def slow_png(side: int = 4096) -> bytes:
    """A 16-bit ``side`` x ``side`` PNG of sparse lines: ~35 KB that take ~1 s to decode."""
    wide = np.zeros((side, side), np.uint16)
    wide[::7, :] = 30000
    return encode(Image.fromarray(wide), "PNG")
