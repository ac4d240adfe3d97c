"""Re-creating journaled evaluation episodes (``fewshot evaluate --journal``) for the benchmark
scripts that measure something else on exactly those episodes (flag_gap.py, attack_layout.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli import runs  # noqa: E402
from models.checkpoint import load_checkpoint  # noqa: E402
from models.config import AdaptConfig  # noqa: E402
from models.episodes import EpisodeSampler  # noqa: E402
from models.evaluation import adapted_episode  # noqa: E402
from models.journal import read_journal  # noqa: E402
from models.meta import Task  # noqa: E402
from models.networks import FewShotNet, backbone_params  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "models/pretrained/adml-omniglot"


@dataclass
class Replay:
    """A journal's protocol, its finished episodes, and what re-creates them."""

    header: dict[str, Any]
    episodes: dict[int, dict[str, Any]]
    model: FewShotNet
    sampler: EpisodeSampler

    def adapted(self, indices: list[int]) -> Iterator[tuple[int, Task, FewShotNet]]:
        """Each episode of ``indices`` and its adapted model, as the evaluation made them."""
        backbone = backbone_params(self.model)
        adapt_config = AdaptConfig(**self.header["adapt"])
        for index in indices:
            task, adapted = adapted_episode(
                self.model.config,
                backbone,
                self.sampler,
                index,
                adapt_config,
                self.header["head_init"],
                self.header["seed"],
            )
            yield index, task, adapted


def replay(journal: Path, checkpoint: Path = DEFAULT_CHECKPOINT) -> Replay:
    """The journal's episodes on the test split of ``checkpoint``'s own data."""
    header, episodes = read_journal(journal)
    loaded = load_checkpoint(checkpoint)
    model, _ = runs.model_from_checkpoint(loaded)
    card_data = loaded.card["data"]
    classes = runs.load_classes(card_data["kind"], Path(card_data["path"]), model.config)
    held_out = runs.split_from_card(loaded.card).select(classes, "test")
    shape = header["episodes"]
    sampler = EpisodeSampler(
        held_out,
        way=shape["way"],
        shot=shape["shot"],
        query=shape["query"],
        seed=shape["seed"],
        split_name="test",
    )
    return Replay(header, episodes, model, sampler)
