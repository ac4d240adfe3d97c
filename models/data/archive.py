"""A dataset archive (zip or tar) with one folder per class, read without trusting it.

Refused, each with a clear :class:`ArchiveError` and before anything is stored: not a zip or
tar, more entries than allowed, a member larger than allowed or all members together, a zip
member compressed more than ``max_ratio`` times (a zip bomb), absolute paths or ``..``
(path traversal), links, devices and other non-files, encrypted members, files outside a class
folder or nested deeper. Nothing is ever written to disk; decoding the images is the caller's.
Accepted layouts: ``class/image`` or ``top/class/image`` (one top folder, as zipping a folder
makes). macOS litter (``__MACOSX/``, ``._*``, ``.DS_Store``) is skipped.
"""

from __future__ import annotations

import io
import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from models.data.decode import DataError
from models.data.labels import clean_labels

JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


class ArchiveError(DataError):
    """The archive is unreadable, hostile or not laid out as one folder per class."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 20_000  # members of any kind, folders included
    max_member_bytes: int = 10_000_000  # one image, uncompressed
    max_total_bytes: int = 500_000_000  # all members together, uncompressed
    max_ratio: int = 200  # uncompressed / compressed size of one zip member


def _checked_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    drive = bool(path.parts) and ":" in path.parts[0]  # C:/... written on Windows
    if path.is_absolute() or ".." in path.parts or drive:
        raise ArchiveError(f"member {name!r} points outside the archive (absolute path or '..')")
    return path


def _is_junk(path: PurePosixPath) -> bool:
    return (
        "__MACOSX" in path.parts
        or path.name in JUNK_NAMES
        or path.name.startswith("._")
        or any(part.startswith(".") for part in path.parts)
    )


def _zip_members(data: bytes, limits: ArchiveLimits) -> Iterator[tuple[PurePosixPath, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise ArchiveError(
            "the file starts as a zip archive but cannot be read as one (damaged or truncated)"
        ) from error
    if len(infos) > limits.max_entries:
        raise ArchiveError(f"{len(infos)} members; the limit is {limits.max_entries}")
    declared = 0
    for info in infos:
        path = _checked_path(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"member {info.filename!r} is a symbolic link")
        if info.is_dir() or _is_junk(path):
            continue
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {info.filename!r} is encrypted")
        if info.file_size > limits.max_member_bytes:
            raise ArchiveError(
                f"member {info.filename!r} is {info.file_size} bytes uncompressed; "
                f"the limit is {limits.max_member_bytes}"
            )
        if info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ArchiveError(
                f"member {info.filename!r} expands {info.file_size // max(info.compress_size, 1)}"
                f" times (more than {limits.max_ratio}): refused as a zip bomb"
            )
        declared += info.file_size
        if declared > limits.max_total_bytes:
            raise ArchiveError(
                f"members hold more than {limits.max_total_bytes} bytes uncompressed"
            )
        try:
            with archive.open(info) as member:
                content = member.read(limits.max_member_bytes + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as error:
            raise ArchiveError(f"member {info.filename!r} cannot be read: {error}") from error
        if len(content) > info.file_size or len(content) > limits.max_member_bytes:
            raise ArchiveError(f"member {info.filename!r} is larger than its header says")
        yield path, content


def _tar_members(data: bytes, limits: ArchiveLimits) -> Iterator[tuple[PurePosixPath, bytes]]:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (in memory)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ArchiveError(
            "the file is not a zip or tar archive (tar may be gzip, bzip2 or xz compressed)"
        ) from error
    total, count = 0, 0
    try:
        for member in archive:
            count += 1
            if count > limits.max_entries:
                raise ArchiveError(f"more than {limits.max_entries} members")
            path = _checked_path(member.name)
            if member.issym() or member.islnk():
                raise ArchiveError(f"member {member.name!r} is a link")
            if member.isdir() or _is_junk(path):
                continue
            if not member.isfile():
                raise ArchiveError(f"member {member.name!r} is not a regular file")
            if member.size > limits.max_member_bytes:
                raise ArchiveError(
                    f"member {member.name!r} is {member.size} bytes; "
                    f"the limit is {limits.max_member_bytes}"
                )
            total += member.size
            if total > limits.max_total_bytes:
                raise ArchiveError(f"members hold more than {limits.max_total_bytes} bytes")
            handle = archive.extractfile(member)
            if handle is None:
                raise ArchiveError(f"member {member.name!r} cannot be read")
            yield path, handle.read(limits.max_member_bytes + 1)
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as error:
        raise ArchiveError("the tar archive is damaged or truncated") from error


def read_class_archive(
    data: bytes, limits: ArchiveLimits = ArchiveLimits()
) -> dict[str, list[tuple[str, bytes]]]:
    """Class name -> [(member path, bytes)], classes sorted, files sorted within a class. The
    class names are the folder names under the label rule (models.data.labels): a folder name
    with an invisible character, or two folders that name one class, are refused."""
    is_zip = data[:4] in (b"PK\x03\x04", b"PK\x05\x06")
    members = list(_zip_members(data, limits) if is_zip else _tar_members(data, limits))
    if not members:
        raise ArchiveError("the archive holds no files: put one folder of images per class in it")
    tops = {path.parts[0] for path, _ in members}
    strip = 1 if len(tops) == 1 and all(len(p.parts) == 3 for p, _ in members) else 0
    classes: dict[str, list[tuple[str, bytes]]] = {}
    for path, content in members:
        parts = path.parts[strip:]
        if len(parts) != 2:
            raise ArchiveError(
                f"member {str(path)!r} is not in a class folder: lay the archive out as "
                "CLASS/IMAGE (or TOP/CLASS/IMAGE), one folder per class"
            )
        classes.setdefault(parts[0], []).append((str(path), content))
    named = zip(clean_labels(classes, what="class folder"), classes, strict=True)
    return {name: sorted(classes[folder]) for name, folder in sorted(named)}
