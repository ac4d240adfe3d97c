"""Dataset archives: the layouts people make are read; hostile ones are refused, each clearly."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from models.data import (
    AmbiguousLabels,
    ArchiveError,
    ArchiveLimits,
    InvalidLabel,
    read_class_archive,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100  # content is not decoded here


def zipped(members: dict[str, bytes], **options) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content, **options)
    return buffer.getvalue()


def tarred(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


LAYOUT = {"cats/1.png": PNG, "cats/2.png": PNG, "dogs/a.jpg": PNG}


@pytest.mark.parametrize("pack", [zipped, tarred, lambda m: tarred(m, "w")])
def test_class_folders_are_read_from_zip_and_tar(pack):
    classes = read_class_archive(pack(LAYOUT))
    assert list(classes) == ["cats", "dogs"]
    assert [name for name, _ in classes["cats"]] == ["cats/1.png", "cats/2.png"]
    assert classes["dogs"][0][1] == PNG


def test_one_top_folder_and_macos_litter_are_handled():
    members = {f"photos/{k}": v for k, v in LAYOUT.items()}
    members |= {"__MACOSX/photos/._1.png": b"x", "photos/cats/.DS_Store": b"x"}
    assert list(read_class_archive(zipped(members))) == ["cats", "dogs"]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../evil/1.png": PNG, **LAYOUT}, "outside the archive"),
        ({"/etc/cats/1.png": PNG}, "outside the archive"),
        ({"C:/cats/1.png": PNG}, "outside the archive"),
        ({"cats\\..\\..\\1.png": PNG}, "outside the archive"),
        ({"loose.png": PNG, **LAYOUT}, "not in a class folder"),
        ({"a/b/c/d.png": PNG, **LAYOUT}, "not in a class folder"),
        ({}, "holds no files"),
    ],
)
def test_bad_paths_are_refused(members, message):
    for pack in (zipped, tarred):
        with pytest.raises(ArchiveError, match=message):
            read_class_archive(pack(members))


def test_a_zip_bomb_is_refused_before_it_is_expanded():
    bomb = zipped({"cats/zeros.png": b"\x00" * 5_000_000, **LAYOUT})
    assert len(bomb) < 20_000
    with pytest.raises(ArchiveError, match="zip bomb"):
        read_class_archive(bomb)


def test_a_zip_whose_header_lies_about_its_size_is_refused():
    honest = zipped({"cats/1.png": b"A" * 1000})
    # shrink the declared uncompressed size in the central directory (4 bytes at offset 24)
    central = honest.rindex(b"PK\x01\x02")
    lying = bytearray(honest)
    lying[central + 24 : central + 28] = (10).to_bytes(4, "little")
    with pytest.raises(ArchiveError):
        read_class_archive(bytes(lying))


def test_size_and_count_limits():
    limits = ArchiveLimits(max_entries=3, max_member_bytes=50, max_total_bytes=250)
    with pytest.raises(ArchiveError, match="limit is 3"):
        read_class_archive(zipped({f"c/{i}.png": b"x" for i in range(4)}), limits)
    with pytest.raises(ArchiveError, match="more than 3 members"):
        read_class_archive(tarred({f"c/{i}.png": b"x" for i in range(4)}), limits)
    big = {"c/1.png": b"x" * 51}
    for pack in (zipped, tarred):
        with pytest.raises(ArchiveError, match="the limit is 50"):
            read_class_archive(pack(big), limits)
    many = {f"c/{i}.png": b"y" * 50 for i in range(3)}
    with pytest.raises(ArchiveError, match="more than 250 bytes"):
        read_class_archive(
            tarred({**many, "d/1.png": b"z" * 50, "d/2.png": b"z" * 50, "d/3.png": b"z"}),
            ArchiveLimits(max_entries=10, max_member_bytes=50, max_total_bytes=250),
        )


def test_links_devices_and_encryption_are_refused():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        link = tarfile.TarInfo("cats/passwd.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(ArchiveError, match="is a link"):
        read_class_archive(buffer.getvalue())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        fifo = tarfile.TarInfo("cats/pipe.png")
        fifo.type = tarfile.FIFOTYPE
        archive.addfile(fifo)
    with pytest.raises(ArchiveError, match="not a regular file"):
        read_class_archive(buffer.getvalue())
    info = zipfile.ZipInfo("cats/link.png")
    info.external_attr = 0o120777 << 16  # a symlink, as Info-ZIP stores it
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        read_class_archive(buffer.getvalue())
    encrypted = bytearray(zipped({"cats/1.png": PNG}, compress_type=zipfile.ZIP_STORED))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = encrypted.index(signature) + offset
        encrypted[at] |= 0x1
    with pytest.raises(ArchiveError, match="encrypted"):
        read_class_archive(bytes(encrypted))


@pytest.mark.parametrize("junk", [b"", b"not an archive at all", b"PK\x03\x04garbage", PNG])
def test_what_is_not_an_archive_is_a_clear_error(junk):
    with pytest.raises(ArchiveError) as refused:
        read_class_archive(junk)
    message = str(refused.value)
    assert "not a zip or tar archive" in message or "cannot be read as one" in message
    for internals in ("method", "ReadError", "header", "\n", "File is not"):
        assert internals not in message, message


def test_class_folder_names_follow_the_label_rule():
    """Folder names are labels: NFC and trimmed; an invisible character or two folders that
    name one class are refused, each naming the folder as written."""
    decomposed = "cafe\u0301"
    classes = read_class_archive(zipped({f"{decomposed}/1.png": PNG, "dogs /a.png": PNG}))
    assert list(classes) == ["café", "dogs"]  # stored composed and trimmed
    assert classes["café"] == [(f"{decomposed}/1.png", PNG)]  # members keep their paths
    with pytest.raises(InvalidLabel, match=r"'al\\u200bpha'.*U\+200B ZERO WIDTH SPACE"):
        read_class_archive(zipped({"al\u200bpha/1.png": PNG, "beta/1.png": PNG}))
    with pytest.raises(AmbiguousLabels, match="'dogs' and 'dogs '"):
        read_class_archive(tarred({"dogs/1.png": PNG, "dogs /2.png": PNG}))
