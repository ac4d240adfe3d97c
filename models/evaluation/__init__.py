"""Episode evaluation under attack, its sanity checks and journal, Omniglot one-shot runs;
support-set poisoning through the unrolled adaptation."""

from models.evaluation.cells import Cell, EpisodeTally
from models.evaluation.episodic import (
    DEFAULT_ATTACKS,
    DEFAULT_BLACKBOX,
    EpisodeEvaluation,
    adapted_episode,
    attack_episode,
    episode_seed,
    evaluate_episodes,
)
from models.evaluation.journal import (
    EpisodeJournal,
    JournalMismatch,
    merge_journals,
    params_fingerprint,
    read_journal,
)
from models.evaluation.oneshot import evaluate_one_shot_runs, load_one_shot_runs
from models.evaluation.poison_checks import PoisonEvaluation, poisoning_checks
from models.evaluation.poison_episodes import PoisonAttack, PoisonPlan, evaluate_poisoning
from models.evaluation.poisoning import (
    POISON_MODES,
    PoisonResult,
    adaptation_objective,
    poison_mask,
    poison_support,
    random_poison,
)
from models.evaluation.sanity import SANITY_EPS, TOLERANCE, Check, sanity_checks, untrusted_reason
from models.evaluation.unrolled import deployed_logits, unrolled_adapt

__all__ = [
    "DEFAULT_ATTACKS",
    "DEFAULT_BLACKBOX",
    "POISON_MODES",
    "SANITY_EPS",
    "TOLERANCE",
    "Cell",
    "Check",
    "EpisodeEvaluation",
    "EpisodeJournal",
    "EpisodeTally",
    "JournalMismatch",
    "PoisonAttack",
    "PoisonEvaluation",
    "PoisonPlan",
    "PoisonResult",
    "adaptation_objective",
    "adapted_episode",
    "attack_episode",
    "deployed_logits",
    "episode_seed",
    "evaluate_episodes",
    "evaluate_one_shot_runs",
    "evaluate_poisoning",
    "load_one_shot_runs",
    "merge_journals",
    "params_fingerprint",
    "poison_mask",
    "poison_support",
    "poisoning_checks",
    "random_poison",
    "read_journal",
    "sanity_checks",
    "unrolled_adapt",
    "untrusted_reason",
]
