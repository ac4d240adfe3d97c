"""Re-creating journaled evaluation episodes (``fewshot evaluate --journal``) for the benchmark
scripts that measure something else on exactly those episodes (flag_gap.py, attack_layout.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli import runs
from models.core import (
    AdaptConfig,
    FewShotNet,
    backbone_params,
    load_checkpoint,
    model_from_checkpoint,
)
from models.data import (
    EpisodeSampler,
    Task,
)
from models.evaluation import (
    adapted_episode,
    params_fingerprint,
    read_journal,
)

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
    """The journal's episodes, on the split of ``checkpoint``'s own data that they came from;
    exits with an error when the checkpoint or the data are not the journal's."""
    header, episodes = read_journal(journal)
    loaded = load_checkpoint(checkpoint)
    model, _ = model_from_checkpoint(loaded)
    if (
        params_fingerprint(backbone_params(model)) != header["backbone"]
        or asdict(model.config) != header["config"]
    ):
        sys.exit(f"error: {checkpoint} is not the model that wrote {journal}")
    card_data = loaded.card["data"]
    classes = runs.load_classes(card_data["kind"], Path(card_data["path"]), model.config)
    shape = header["episodes"]
    for split in ("test", "val"):
        sampler = EpisodeSampler(
            runs.split_from_card(loaded.card).select(classes, split),
            way=shape["way"],
            shot=shape["shot"],
            query=shape["query"],
            seed=shape["seed"],
            split_name=split,
        )
        if sampler.describe() == shape:
            return Replay(header, episodes, model, sampler)
    sys.exit(f"error: neither split of {checkpoint}'s data holds the episodes of {journal}")
