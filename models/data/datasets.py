"""Image datasets for meta-training: Omniglot (official zips or folders) and folder-per-class.

A dataset is a list of :class:`ClassImages`, each a class name, its *group* (Omniglot: the
alphabet; folder datasets: the class itself) and its images as uint8 ``[n, C, S, S]``. Splits are
made by whole groups, so no class and no alphabet is shared between train, validation and test.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from torch import Tensor

from models.data.decode import DataError, InputSpec, decode_for, decode_image

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ClassImages:
    name: str  # unique, e.g. "Greek/character01" or "Greek/character01@rot90"
    group: str  # the unit of splitting: Omniglot alphabet, or the class itself
    images: Tensor  # uint8 [n, C, S, S]


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
