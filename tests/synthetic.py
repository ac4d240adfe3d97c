"""Generated images, encoded as a user would upload them (PNG or JPEG bytes).

For the out-of-domain detector's benchmark and tests, and for RGB datasets that exercise
meta-training on a user's own domain. Everything is drawn with Pillow from a seeded
``numpy.random.Generator``; nothing is downloaded. Fonts are Pillow's built-in one.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
Rng = np.random.Generator


def encode(image: Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _colour(rng: Rng, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))  # type: ignore[return-value]


def draw_shape(
    draw: ImageDraw.ImageDraw, kind: str, centre: tuple[float, float], radius: float, fill
) -> None:
    x, y, r = *centre, radius
    if kind == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif kind == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
    elif kind == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    elif kind == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=fill)
    elif kind == "cross":
        draw.rectangle((x - r, y - r / 3, x + r, y + r / 3), fill=fill)
        draw.rectangle((x - r / 3, y - r, x + r / 3, y + r), fill=fill)
    elif kind == "ring":
        draw.ellipse((x - r, y - r, x + r, y + r), outline=fill, width=max(2, int(r / 3)))
    else:
        raise ValueError(f"unknown shape {kind!r}")


def colour_shape(rng: Rng, kind: str | None = None, *, size: int = 64) -> Image.Image:
    """A coloured shape at a random place, size and colour on a coloured background."""
    kind = kind or SHAPES[int(rng.integers(len(SHAPES)))]
    image = Image.new("RGB", (size, size), _colour(rng))
    radius = size * rng.uniform(0.15, 0.35)
    centre = tuple(rng.uniform(radius, size - radius, 2))
    draw_shape(ImageDraw.Draw(image), kind, centre, radius, _colour(rng))  # type: ignore[arg-type]
    return image


def noise_texture(rng: Rng, *, size: int = 64) -> Image.Image:
    """Uniform noise, colour or grey, at a random grain."""
    grain = int(rng.integers(1, 9))
    channels = 3 if rng.random() < 0.5 else 1
    small = rng.integers(0, 256, (size // grain + 1, size // grain + 1, channels), dtype=np.uint8)
    image = Image.fromarray(small.squeeze(-1) if channels == 1 else small)
    return image.resize((size, size), Image.Resampling.NEAREST)


def gradient(rng: Rng, *, size: int = 64) -> Image.Image:
    """A linear or radial gradient between two random colours."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy + 1) / 2
    else:
        cx, cy = rng.uniform(0, 1, 2)
        t = np.clip(np.hypot(xx - cx, yy - cy) / 1.2, 0, 1)
    start, end = np.array(_colour(rng)), np.array(_colour(rng))
    pixels = start + (end - start) * t[..., None]
    return Image.fromarray(pixels.astype(np.uint8))


WORDS = ("invoice", "total", "robust", "the quick", "brown fox", "page 12", "Omniglot", "42.50")


def scanned_text(rng: Rng, *, size: int = 96) -> Image.Image:
    """A few printed words on off-white paper, slightly blurred, with scanner noise."""
    paper = int(rng.integers(215, 250))
    image = Image.new("L", (size, size), paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=int(rng.integers(12, 22)))
    for line in range(int(rng.integers(2, 5))):
        text = " ".join(rng.choice(WORDS, 2))
        draw.text(
            (rng.uniform(0, 10), 8 + line * 22), text, fill=int(rng.integers(0, 80)), font=font
        )
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 6, (size, size))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def font_digit(rng: Rng, *, size: int = 64) -> Image.Image:
    """One digit in Pillow's font, dark on white, at a random size and place: grayscale content
    close to handwriting but not drawn by hand."""
    image = Image.new("L", (size, size), 255)
    font = ImageFont.load_default(size=int(rng.integers(size // 2, size - 8)))
    digit = str(int(rng.integers(10)))
    left, top, right, bottom = ImageDraw.Draw(image).textbbox((0, 0), digit, font=font)
    x = rng.uniform(0, max(1, size - (right - left))) - left
    y = rng.uniform(0, max(1, size - (bottom - top))) - top
    ImageDraw.Draw(image).text((x, y), digit, fill=0, font=font)
    return image


def blobs(rng: Rng, *, size: int = 64) -> Image.Image:
    """Smoothed colour noise: soft photo-like regions without any stroke."""
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(1, 4)))


OUT_OF_DOMAIN: dict[str, Callable[[Rng], Image.Image]] = {
    "colour shapes": colour_shape,
    "noise textures": noise_texture,
    "gradients": gradient,
    "scanned text": scanned_text,
    "font digits": font_digit,
    "blurred colour blobs": blobs,
}


def shape_dataset(
    classes: int, per_class: int, *, seed: int = 0, size: int = 32
) -> dict[str, list[bytes]]:
    """An RGB few-shot dataset: each class is a (shape, colour family) pair; the images jitter
    position, size, colour and a light background. Class name -> PNG bytes."""
    rng = np.random.default_rng(seed)
    dataset = {}
    for index in range(classes):
        kind = SHAPES[index % len(SHAPES)]
        base = np.array(_colour(rng, 30, 226))
        images = []
        for _ in range(per_class):
            image = Image.new("RGB", (size, size), _colour(rng, 190, 256))
            radius = size * rng.uniform(0.2, 0.4)
            centre = tuple(rng.uniform(radius, size - radius, 2))
            fill = tuple(int(v) for v in np.clip(base + rng.integers(-30, 31, 3), 0, 255))
            draw_shape(ImageDraw.Draw(image), kind, centre, radius, fill)  # type: ignore[arg-type]
            images.append(encode(image))
        dataset[f"{kind}-{index:02d}"] = images
    return dataset
