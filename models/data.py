"""Image datasets for meta-training: Omniglot (official zips or folders) and folder-per-class.

A dataset is a list of :class:`ClassImages`, each a class name, its *group* (Omniglot: the
alphabet; folder datasets: the class itself) and its images as uint8 ``[n, C, S, S]``. Splits are
made by whole groups, so no class and no alphabet is shared between train, validation and test.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class DataError(ValueError):
    """The data path, an image in it, or a split cannot serve the request."""


class UnsupportedFormat(DataError):
    """Image bytes in a format the caller does not accept."""


@dataclass(frozen=True)
class ClassImages:
    name: str  # unique, e.g. "Greek/character01" or "Greek/character01@rot90"
    group: str  # the unit of splitting: Omniglot alphabet, or the class itself
    images: Tensor  # uint8 [n, C, S, S]


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


@contextmanager
def _decoding(source: str) -> Iterator[None]:
    """Every failure of every decoder inside becomes a DataError naming ``source``."""
    try:
        yield
    except DataError:
        raise
    except UnidentifiedImageError as error:
        raise DataError(
            f"cannot read image {source}: it is not an image in a format that can be read"
        ) from error
    except Image.DecompressionBombError as error:
        raise DataError(f"image {source} is too large to decode: {error}") from error
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
    with _decoding(source), Image.open(io.BytesIO(data)) as image:
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
    with _decoding(source), Image.open(io.BytesIO(data)) as image:
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


def _omniglot_files(path: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    """Yield (``alphabet/character/file.png``, bytes) from zips or an extracted tree."""
    zips = [path] if path.is_file() else sorted(path.glob("*.zip"))
    if zips:
        for zip_path in zips:
            try:
                with zipfile.ZipFile(zip_path) as archive:
                    for name in sorted(archive.namelist()):
                        if name.lower().endswith(".png"):
                            yield PurePosixPath(*PurePosixPath(name).parts[-3:]), archive.read(name)
            except zipfile.BadZipFile as error:
                raise DataError(f"not a readable zip file: {zip_path}: {error}") from error
        return
    for file in sorted(path.rglob("*.png")):
        yield PurePosixPath(*file.relative_to(path).parts[-3:]), file.read_bytes()


def omniglot_drawings(
    path: Path | str, alphabets: Iterable[str] | None = None
) -> dict[str, dict[str, bytes]]:
    """``alphabet/character`` -> {file name: PNG bytes}, undecoded, from zips or a folder.

    Alphabets that appear twice (Greek and Latin are in both "small" background zips) are
    de-duplicated by ``alphabet/character/file`` path. ``alphabets`` keeps only those.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data path does not exist: {path}")
    wanted = None if alphabets is None else set(alphabets)
    drawings: dict[str, dict[str, bytes]] = {}
    duplicates = 0
    for relative, data in _omniglot_files(path):
        if len(relative.parts) != 3 or (wanted is not None and relative.parts[0] not in wanted):
            continue
        alphabet, character, filename = relative.parts
        files = drawings.setdefault(f"{alphabet}/{character}", {})
        if filename in files:
            duplicates += 1
            continue
        files[filename] = data
    if not drawings:
        raise DataError(f"no Omniglot images (alphabet/character/*.png) found under {path}")
    logger.info("omniglot: %d classes, %d duplicate files skipped", len(drawings), duplicates)
    return dict(sorted(drawings.items()))


def load_omniglot(path: Path | str, *, image_size: int = 28) -> list[ClassImages]:
    """Omniglot from its official zips (a zip, or a folder of them) or an extracted folder,
    decoded and de-duplicated (see :func:`omniglot_drawings`). Strokes become 1 and paper 0
    (inverted), so that the [0, 1] pixels mean ink."""
    spec = InputSpec(channels=1, size=image_size, invert=True)
    classes = []
    for name, files in omniglot_drawings(path).items():
        pixels = [decode_for(spec, files[f], source=f"{path}:{name}/{f}") for f in sorted(files)]
        classes.append(ClassImages(name, name.split("/")[0], torch.from_numpy(np.stack(pixels))))
    return classes


def load_image_folder(
    path: Path | str, *, channels: int = 3, image_size: int = 28
) -> list[ClassImages]:
    """A folder per class (``root/class/*.png|jpg|...``), e.g. your own RGB images."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"data folder does not exist: {path}")
    classes = []
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        files = sorted(f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        pixels = [
            decode_image(f.read_bytes(), channels=channels, size=image_size, source=str(f))
            for f in files
        ]
        images = torch.from_numpy(np.stack(pixels))
        classes.append(ClassImages(name=class_dir.name, group=class_dir.name, images=images))
    if not classes:
        raise DataError(f"no class folders with images found under {path}")
    return classes


def with_rotations(classes: Iterable[ClassImages]) -> list[ClassImages]:
    """Each class plus its 90/180/270-degree rotations as new classes of the same group."""
    rotated = []
    for cls in classes:
        rotated.append(cls)
        for quarter in (1, 2, 3):
            rotated.append(
                ClassImages(
                    name=f"{cls.name}@rot{90 * quarter}",
                    group=cls.group,
                    images=torch.rot90(cls.images, quarter, dims=(2, 3)).contiguous(),
                )
            )
    return rotated


@dataclass(frozen=True)
class GroupSplit:
    """Which groups (alphabets) serve training, validation and test; recorded in cards."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    seed: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def select(self, classes: Iterable[ClassImages], part: str) -> list[ClassImages]:
        groups = set(getattr(self, part))
        return [cls for cls in classes if cls.group in groups]


def split_by_group(
    classes: Iterable[ClassImages], *, n_val: int, n_test: int, seed: int
) -> GroupSplit:
    """Shuffle the sorted group names with ``seed``: first ``n_test`` test, next ``n_val`` val."""
    groups = sorted({cls.group for cls in classes})
    if n_val < 0 or n_test < 1 or n_val + n_test >= len(groups):
        raise DataError(
            f"cannot split {len(groups)} groups into {n_test} test, {n_val} validation "
            "and at least one training group"
        )
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return GroupSplit(tuple(sorted(train)), tuple(sorted(val)), tuple(sorted(test)), seed)
