"""Omniglot and folder readers, rotations, group splits, the episode sampler."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.data import (
    DataError,
    EpisodeSampler,
    load_image_folder,
    load_omniglot,
    split_by_group,
    with_rotations,
)


def _png(seed: int, size: int = 30, mode: str = "L") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size, size) if mode == "L" else (size, size, 3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buffer, "PNG")
    return buffer.getvalue()


def _omniglot_zip(path: Path, root: str, alphabets: dict[str, int], drawers: int = 4) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for alphabet, characters in alphabets.items():
            for c in range(1, characters + 1):
                for d in range(1, drawers + 1):
                    name = f"{root}/{alphabet}/character{c:02d}/{c:02d}_{d:02d}.png"
                    archive.writestr(name, _png(zlib.crc32(name.encode())))
    return path


@pytest.fixture
def two_zips(tmp_path: Path) -> Path:
    folder = tmp_path / "omniglot"
    folder.mkdir()
    _omniglot_zip(folder / "a.zip", "small1", {"Greek": 3, "Alpha": 2})
    _omniglot_zip(folder / "b.zip", "small2", {"Greek": 3, "Beta": 4})
    return folder


def test_duplicated_alphabets_are_read_once(two_zips):
    classes = load_omniglot(two_zips, image_size=12)
    assert sorted({c.group for c in classes}) == ["Alpha", "Beta", "Greek"]
    assert len(classes) == 3 + 2 + 4
    assert all(c.images.shape == (4, 1, 12, 12) and c.images.dtype == torch.uint8 for c in classes)
    assert len({c.name for c in classes}) == len(classes)


def test_extracted_folder_reads_like_the_zips(two_zips, tmp_path):
    extracted = tmp_path / "extracted"
    for archive in two_zips.glob("*.zip"):
        zipfile.ZipFile(archive).extractall(extracted)
    from_zips = load_omniglot(two_zips, image_size=12)
    from_folder = load_omniglot(extracted, image_size=12)
    assert [c.name for c in from_zips] == [c.name for c in from_folder]
    assert all(torch.equal(a.images, b.images) for a, b in zip(from_zips, from_folder, strict=True))


def test_real_omniglot_zips(omniglot_path):
    classes = load_omniglot(omniglot_path)
    assert len({c.group for c in classes}) == 8
    assert len(classes) == 242
    assert sum(len(c.images) for c in classes) == 4840
    images = torch.cat([c.images for c in classes]).float() / 255
    assert 0.02 < images.mean().item() < 0.3  # inverted: strokes (ink) are the minority


def test_missing_path_and_unreadable_image(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_omniglot(tmp_path / "nope")
    bad = tmp_path / "bad" / "Alpha" / "character01"
    bad.mkdir(parents=True)
    (bad / "01.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"cannot read image .*01\.png"):
        load_omniglot(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Omniglot images"):
        load_omniglot(tmp_path / "empty")


def test_rotations_add_three_rotated_classes(two_zips):
    classes = load_omniglot(two_zips, image_size=12)[:2]
    rotated = with_rotations(classes)
    assert len(rotated) == 8
    assert [c.name for c in rotated[:4]] == [
        classes[0].name,
        *(f"{classes[0].name}@rot{a}" for a in (90, 180, 270)),
    ]
    assert torch.equal(rotated[1].images, torch.rot90(classes[0].images, 1, dims=(2, 3)))
    assert torch.equal(rotated[2].images, classes[0].images.flip(2).flip(3))
    assert {c.group for c in rotated[:4]} == {classes[0].group}


def test_split_is_by_whole_groups_and_reproducible(two_zips):
    classes = load_omniglot(two_zips, image_size=12)
    split = split_by_group(classes, n_val=1, n_test=1, seed=3)
    assert split == split_by_group(classes, n_val=1, n_test=1, seed=3)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert sum(len(p) for p in parts) == 3 and set().union(*parts) == {"Alpha", "Beta", "Greek"}
    names = [{c.name for c in split.select(classes, p)} for p in ("train", "val", "test")]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert split.to_dict()["seed"] == 3
    with pytest.raises(DataError, match="cannot split 3 groups"):
        split_by_group(classes, n_val=1, n_test=2, seed=0)


def test_sampler_is_deterministic_and_well_formed(two_zips):
    classes = load_omniglot(two_zips, image_size=12)
    sampler = EpisodeSampler(classes, way=3, shot=1, query=2, seed=5)
    first, again = sampler.episode(4), sampler.episode(4)
    assert torch.equal(first.x_support, again.x_support)
    assert torch.equal(first.x_query, again.x_query)
    other = EpisodeSampler(classes, way=3, shot=1, query=2, seed=6).episode(4)
    assert not torch.equal(first.x_query, other.x_query)
    assert first.x_support.shape == (3, 1, 12, 12) and first.x_query.shape == (6, 1, 12, 12)
    assert first.y_support.tolist() == [0, 1, 2] and first.y_query.tolist() == [0, 0, 1, 1, 2, 2]
    assert first.x_query.min().item() >= 0.0 and first.x_query.max().item() <= 1.0
    # support and query never share an image
    for k in range(3):
        support = first.x_support[k]
        assert all(not torch.equal(support, q) for q in first.x_query[2 * k : 2 * k + 2])


def test_sampler_refuses_too_small_splits(two_zips):
    classes = load_omniglot(two_zips, image_size=12)
    with pytest.raises(DataError, match="has 9 classes; 20-way episodes need at least 20"):
        EpisodeSampler(classes, way=20, shot=1, query=1, seed=0)
    with pytest.raises(DataError, match="fewer than shot \\+ query = 5"):
        EpisodeSampler(classes, way=3, shot=1, query=4, seed=0)


def test_folder_reader_rgb_and_jpeg(tmp_path):
    for name, count in (("cat", 3), ("dog", 2)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(count):
            Image.open(io.BytesIO(_png(i, size=40, mode="RGB"))).save(folder / f"{i}.jpg")
    (tmp_path / "notes.txt").write_text("ignored: not a class folder")
    classes = load_image_folder(tmp_path, channels=3, image_size=16)
    assert [(c.name, tuple(c.images.shape)) for c in classes] == [
        ("cat", (3, 3, 16, 16)),
        ("dog", (2, 3, 16, 16)),
    ]
    gray = load_image_folder(tmp_path, channels=1, image_size=16)
    assert gray[0].images.shape == (3, 1, 16, 16)
