"""Images in: untrusted bytes decoded, datasets and archives read, augmentation, seeded episodes."""

from models.data.archive import ArchiveError, ArchiveLimits, read_class_archive
from models.data.augment import MAX_ROTATION_DEG, MAX_SHIFT, affine_copies
from models.data.datasets import (
    ClassImages,
    GroupSplit,
    load_image_folder,
    load_omniglot,
    omniglot_drawings,
    split_by_group,
    with_rotations,
)
from models.data.decode import (
    DataError,
    InputSpec,
    UnsupportedFormat,
    decode_for,
    decode_image,
    image_size,
)
from models.data.episodes import EpisodeSampler, Task
from models.data.labels import (
    MAX_LABEL_CHARS,
    AmbiguousLabels,
    InvalidLabel,
    LabelError,
    clean_label,
    clean_labels,
)

__all__ = [
    "MAX_LABEL_CHARS",
    "MAX_ROTATION_DEG",
    "MAX_SHIFT",
    "AmbiguousLabels",
    "ArchiveError",
    "ArchiveLimits",
    "ClassImages",
    "DataError",
    "EpisodeSampler",
    "GroupSplit",
    "InputSpec",
    "InvalidLabel",
    "LabelError",
    "Task",
    "UnsupportedFormat",
    "affine_copies",
    "clean_label",
    "clean_labels",
    "decode_for",
    "decode_image",
    "image_size",
    "load_image_folder",
    "load_omniglot",
    "omniglot_drawings",
    "read_class_archive",
    "split_by_group",
    "with_rotations",
]
