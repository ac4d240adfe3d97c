"""The report's first lines: the sentence a non-expert reads and the adaptation to serve."""

import torch

from models.report import first_lines, headline_eps, recommend


def _flags(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.bool)


def _variant(clean: torch.Tensor, attacked: torch.Tensor, eps: float = 0.1) -> dict:
    return {("clean", 0.0): [clean], ("worst", eps): [attacked]}


def test_headline_eps_is_the_adaptations_own_when_measured():
    assert headline_eps([0.0, 0.05, 0.1, 0.2, 0.5], 0.05) == 0.05
    assert headline_eps([0.0, 0.05, 0.1, 0.2, 0.5], 0.08) == 0.1
    assert headline_eps([0.0, 0.2, 0.5], 0.1) == 0.2
    assert headline_eps([0.0, 0.5], 0.1) is None


def test_the_summary_sentence_gives_counts_eps_in_words_and_wilson_intervals():
    clean, attacked = torch.ones(15, dtype=torch.bool), torch.arange(15) < 7
    by_variant = {"robust": _variant(clean, attacked), "clean_only": _variant(clean, attacked)}
    summary, recommendation = first_lines(
        by_variant, images="On 15 of your images", eps=0.1, served="robust", untrusted=None
    )
    assert summary["text"] == (
        "On 15 of your images: 100% correct normally (95% interval 80-100%). If an attacker may "
        "change every pixel by up to 10% of the full brightness range (eps 0.1), about 47% "
        "stayed correct under every attack we ran (95% interval 25-70%); a stronger attack "
        "could only lower that."
    )
    skipped, _ = first_lines(
        by_variant, images="On 15", eps=0.1, served="robust", untrusted=None, attacks=(2, 6)
    )
    assert "(95% interval 25-70%; 2 of 6 attacks ran in the time allowed)" in skipped["text"]
    assert summary["under_attack"]["correct"] == 7 and summary["clean"]["high"] == 1.0
    assert recommendation["adaptation"] == "robust" and not recommendation["measured_difference"]
    assert "did not differ measurably" in recommendation["text"]
    assert "already serves the robust adaptation" in recommendation["text"]


def test_untrusted_figures_give_no_numbers_and_no_recommendation():
    by_variant = {"robust": _variant(_flags(1, 0), _flags(0, 0))}
    summary, recommendation = first_lines(
        by_variant, images="On 2 images", eps=0.1, served="robust", untrusted="checks failed"
    )
    assert summary["trustworthy"] is False and "%" not in summary["text"]
    assert "cannot be trusted" in summary["text"] and recommendation is None


def test_a_clear_gain_under_attack_recommends_the_robust_adaptation():
    ones = torch.ones(20, dtype=torch.bool)
    robust = {"clean": ones, "attacked": torch.arange(20) < 15}
    clean_only = {"clean": ones, "attacked": torch.arange(20) < 5}  # 10 images only robust keeps
    advice = recommend(robust, clean_only, 0.1, served="clean_only")
    assert advice["adaptation"] == "robust" and advice["measured_difference"]
    assert advice["paired"]["attacked"] == {"robust_only": 10, "clean_only_only": 0, "p": 2**-9}
    assert "Adapt again with adaptation=robust" in advice["text"]


def test_a_clear_clean_gain_with_a_tie_under_attack_recommends_clean_only():
    attacked = torch.arange(20) < 8
    robust = {"clean": torch.arange(20) < 12, "attacked": attacked}
    clean_only = {"clean": torch.ones(20, dtype=torch.bool), "attacked": attacked}
    advice = recommend(robust, clean_only, 0.1, served="robust")
    assert advice["adaptation"] == "clean_only" and advice["measured_difference"]
    assert "normally 60% vs 100%" in advice["text"]
    assert "Adapt again with adaptation=clean_only" in advice["text"]


def test_six_images_to_none_is_not_yet_a_measured_difference():
    ones = torch.ones(10, dtype=torch.bool)
    robust = {"clean": ones, "attacked": torch.arange(10) < 6}
    clean_only = {"clean": ones, "attacked": torch.zeros(10, dtype=torch.bool)}
    advice = recommend(robust, clean_only, 0.1, served="clean_only")
    assert advice["paired"]["attacked"]["p"] == 2 / 64  # < 5%, not < 2.5%: two tests are run
    assert not advice["measured_difference"]
    assert advice["text"].startswith("Either adaptation will do")
    assert "do not show to be worse" in advice["text"] and "Keep" not in advice["text"]


def test_the_advice_names_the_settings_the_report_measured():
    from models.core import AdaptConfig
    from models.report.robustness import _measured_settings

    attacked = torch.arange(20) < 8
    robust = {"clean": torch.arange(20) < 12, "attacked": attacked}
    clean_only = {"clean": torch.ones(20, dtype=torch.bool), "attacked": attacked}
    recipe = _measured_settings(AdaptConfig(augment=16, steps=40))
    assert recipe == ", augment=16 and steps=40" and _measured_settings(AdaptConfig()) == ""
    advice = recommend(robust, clean_only, 0.1, served="robust", settings=recipe)
    assert (
        "Adapt again with adaptation=clean_only, augment=16 and steps=40 to serve"
        in (advice["text"])
    )
