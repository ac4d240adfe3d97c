"""Counted nouns in sentences for people: "1 image", "2 images", never "image(s)"."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and the noun in its number: ``nouns`` (default: ``noun`` + "s") unless 1."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
