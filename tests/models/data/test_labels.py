"""The label rule: one spelling per label (NFC, trimmed); invisible characters refused with the
label and the character named; two spellings of one label refused, never merged."""

from __future__ import annotations

import pytest

from models.data import MAX_LABEL_CHARS, AmbiguousLabels, InvalidLabel, clean_label, clean_labels


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("café", "café"),
        ("cafe\u0301", "café"),  # decomposed: stored composed
        ("가", "가"),
        ("beta gamma", "beta gamma"),  # inner spaces stay
        ("  alpha\t\n", "alpha"),  # surrounding whitespace (str.strip) goes
        ("\u3000alpha\u00a0", "alpha"),  # ideographic and no-break spaces are whitespace too
        ("a\u00a0b", "a\u00a0b"),
        ("x" * MAX_LABEL_CHARS, "x" * MAX_LABEL_CHARS),
    ],
)
def test_what_a_person_meant_is_stored(sent, stored):
    assert clean_label(sent) == stored


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        ("al\u200bpha", r"'al\u200bpha' contains U+200B ZERO WIDTH SPACE"),
        ("\u202eevil\u202c", r"'\u202eevil\u202c' contains U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("a\x00b", r"'a\x00b' contains U+0000 (a control character)"),
        ("a\nb", r"'a\nb' contains U+000A (a control character)"),
        ("\x1b[31mred", r"'\x1b[31mred' contains U+001B (a control character)"),
        ("\ufeffbom", r"'\ufeffbom' contains U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("pua\ue000", r"contains U+E000 (a private-use character)"),
        ("new\u0378", r"contains U+0378 (an unassigned code point)"),
        ("line\u2028break", r"contains U+2028 LINE SEPARATOR"),
        ("   ", "is empty"),
        ("", "is empty"),
        ("x" * (MAX_LABEL_CHARS + 1), f"{MAX_LABEL_CHARS + 1} characters"),
    ],
)
def test_what_no_person_could_mean_is_refused_by_name(sent, named):
    with pytest.raises(InvalidLabel) as refused:
        clean_label(sent)
    assert named in str(refused.value)
    assert not any(c in str(refused.value) for c in "\x00\x1b\n\u200b\u202e")  # escaped


def test_two_spellings_of_one_label_are_refused_naming_both():
    with pytest.raises(AmbiguousLabels, match="'alpha' and ' alpha '"):
        clean_labels(["alpha", " alpha ", "beta"])
    with pytest.raises(AmbiguousLabels) as refused:
        clean_labels(["\u00e9", "e\u0301"])
    assert "'\u00e9' (U+00E9) and 'e\u0301' (U+0065 U+0301)" in str(refused.value)


def test_repeats_of_one_spelling_are_images_of_one_class():
    assert clean_labels(["alpha", "alpha", " beta", " beta"]) == ["alpha", "alpha", "beta", "beta"]
