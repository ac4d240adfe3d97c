"""Episode evaluation under attack, its sanity checks and journal, Omniglot one-shot runs."""

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
from models.evaluation.sanity import SANITY_EPS, TOLERANCE, Check, sanity_checks, untrusted_reason

__all__ = [
    "DEFAULT_ATTACKS",
    "DEFAULT_BLACKBOX",
    "SANITY_EPS",
    "TOLERANCE",
    "Cell",
    "Check",
    "EpisodeEvaluation",
    "EpisodeJournal",
    "EpisodeTally",
    "JournalMismatch",
    "adapted_episode",
    "attack_episode",
    "episode_seed",
    "evaluate_episodes",
    "evaluate_one_shot_runs",
    "load_one_shot_runs",
    "merge_journals",
    "params_fingerprint",
    "read_journal",
    "sanity_checks",
    "untrusted_reason",
]
