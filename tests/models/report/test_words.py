"""The report's sentences count in words: "1 restart", "your 1 validation image", never "(s)"."""

from __future__ import annotations

import torch

from models.attacks import parse_attacks
from models.report import plural
from models.report.robustness import _images_phrase, threat_model


def test_plural():
    assert [plural(n, "image") for n in (0, 1, 2)] == ["0 images", "1 image", "2 images"]
    assert (
        plural(1, "class", "classes") == "1 class" and plural(3, "class", "classes") == "3 classes"
    )


def test_report_sentences_count_in_words():
    described = threat_model((0.1,), parse_attacks("pgd-20,pgd-100x5"))["attacks"]
    assert described["pgd-20"].endswith("from a random start, 1 restart")
    assert described["pgd-100x5"].endswith("5 restarts")
    one = (None, None, None, torch.tensor([0]))  # a split holding one held-out image
    assert _images_phrase([one], from_validation=True) == "On your 1 validation image"
    assert not any("(s)" in text for text in described.values())
