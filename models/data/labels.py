"""The one rule for labels (class names), wherever they enter: support, validation and
evaluation labels, and the class folders of a base-model archive.

A label is what a person meant, so it is stored in one spelling:

- Unicode NFC normalisation ("é" composed or decomposed is one label);
- surrounding whitespace removed with :meth:`str.strip` (Unicode whitespace: spaces of every
  width, tabs, line breaks);
- refused (:class:`InvalidLabel`) when empty after that, longer than :data:`MAX_LABEL_CHARS`,
  or holding a character of the categories in :data:`REFUSED_CATEGORIES`: control (NUL, ESC,
  newline inside), format (zero-width spaces, bidi overrides, BOM), surrogates, private use,
  unassigned, and line or paragraph separators. Accents, other scripts and inner spaces stay.

Two labels of one request that are equal under the rule but were sent differently (``alpha``
and `` alpha ``) are refused (:class:`AmbiguousLabels`): the rule never merges silently.
Pure Python: the API and the model code both use it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from models.data.decode import DataError

MAX_LABEL_CHARS = 100
REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


class LabelError(DataError):
    """A label, or a set of labels, that cannot be stored as sent."""


class InvalidLabel(LabelError):
    """A label a person could not have meant: empty, too long, or with an invisible character."""


class AmbiguousLabels(LabelError):
    """Two labels sent differently that are the same label to a person."""


def shown(text: str) -> str:
    """``text`` quoted for a message or a terminal, every character that does not print
    escaped as Python writes it (``'al\\u200bpha'``, ``'\\x1b[31m'``)."""
    return repr(text)


def code_points(text: str) -> str:
    return " ".join(f"U+{ord(char):04X}" for char in text)


def character_name(char: str) -> str:
    """``U+200B ZERO WIDTH SPACE``; ``U+001B`` for a character without a name."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}" if name else f"U+{ord(char):04X}"


def clean_label(sent: str, what: str = "label") -> str:
    """The stored spelling of ``sent``: NFC, stripped; :class:`InvalidLabel` naming the label
    (``what``: "label", "class folder") and, for a refused character, that character."""
    label = unicodedata.normalize("NFC", sent).strip()
    if not label:
        raise InvalidLabel(f"{what} {shown(sent)} is empty once surrounding spaces are removed")
    if len(label) > MAX_LABEL_CHARS:
        raise InvalidLabel(
            f"{what} {shown(label[:20])}... has {len(label)} characters; at most {MAX_LABEL_CHARS}"
        )
    for char in label:
        kind = REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            raise InvalidLabel(
                f"{what} {shown(sent)} contains {character_name(char)} ({kind}): "
                "labels are visible text; remove it"
            )
    return label


def _pair(first: str, second: str) -> str:
    """Two spellings named so that a reader sees how they differ."""
    if not all(unicodedata.is_normalized("NFC", text) for text in (first, second)):
        return f"{shown(first)} ({code_points(first)}) and {shown(second)} ({code_points(second)})"
    return f"{shown(first)} and {shown(second)}"


def clean_labels(sent: Iterable[str], what: str = "label") -> list[str]:
    """Each label's stored spelling, in order; :class:`InvalidLabel` for the first refused one,
    :class:`AmbiguousLabels` when two different spellings become the same label. Repeats of
    one spelling (several images of a class) are fine."""
    cleaned, spelling = [], {}
    for label in sent:
        stored = clean_label(label, what)
        first = spelling.setdefault(stored, label)
        if first != label:
            raise AmbiguousLabels(
                f"{what}s {_pair(first, label)} are the same {what} once surrounding spaces are "
                f"removed and Unicode is normalised (NFC): send one spelling for {shown(stored)},"
                " or distinct names for distinct classes"
            )
        cleaned.append(stored)
    return cleaned
