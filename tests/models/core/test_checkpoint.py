"""Safetensors + JSON card checkpoints: round trip, atomic files, refused mismatches."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from models.core import (
    BackboneConfig,
    CheckpointError,
    FewShotNet,
    MetaConfig,
    backbone_params,
    load_checkpoint,
    load_optimizer_state,
    model_from_checkpoint,
    paths_of,
    save_checkpoint,
)


@pytest.fixture
def saved(tmp_path):
    tensors = {"features.0.weight": torch.randn(4, 1, 3, 3), "features.0.bias": torch.randn(4)}
    card = {"kind": "test", "metrics": {"val_clean": 0.5}}
    save_checkpoint(tmp_path / "ckpt", tensors, card, {"state.0.step": torch.tensor(3.0)})
    return tmp_path / "ckpt", tensors


def test_round_trip(saved):
    path, tensors = saved
    for form in (path, path.with_suffix(".safetensors"), path.with_suffix(".json")):
        checkpoint = load_checkpoint(form)
        assert checkpoint.card["metrics"] == {"val_clean": 0.5}
        assert all(torch.equal(checkpoint.tensors[k], v) for k, v in tensors.items())
    assert load_optimizer_state(load_checkpoint(path))["state.0.step"].item() == 3.0
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in path.parent.iterdir())
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "ckpt.json",
        "ckpt.optim.safetensors",
        "ckpt.safetensors",
    ]


def test_weights_that_do_not_match_the_card_are_refused(saved, tmp_path):
    path, tensors = saved
    other = tmp_path / "other"
    save_checkpoint(other, {k: v + 1 for k, v in tensors.items()}, {"kind": "test"})
    weights, _ = paths_of(path)
    weights.write_bytes(paths_of(other)[0].read_bytes())
    with pytest.raises(CheckpointError, match="SHA-256 differs"):
        load_checkpoint(path)


def test_card_that_lies_about_tensors_is_refused(saved):
    path, _ = saved
    card_path = paths_of(path)[1]
    card = json.loads(card_path.read_text())
    card["weights"]["tensors"]["features.0.bias"]["shape"] = [5]
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="differ from its card"):
        load_checkpoint(path)


def test_missing_and_broken_files(saved, tmp_path):
    path, _ = saved
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "absent")
    paths_of(path)[1].write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    paths_of(path)[1].write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="is not a"):
        load_checkpoint(path)


def test_stems_with_dots_keep_their_name(tmp_path):
    tensors = {"w": torch.ones(2)}
    save_checkpoint(tmp_path / "eps0.05", tensors, {}, {"state.0.step": torch.tensor(1.0)})
    save_checkpoint(tmp_path / "eps0.2", tensors, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "eps0.05.json",
        "eps0.05.optim.safetensors",
        "eps0.05.safetensors",
        "eps0.2.json",
        "eps0.2.safetensors",
    ]
    assert paths_of(tmp_path / "eps0.05.optim.safetensors")[1].name == "eps0.05.json"
    assert load_optimizer_state(load_checkpoint(tmp_path / "eps0.05"))["state.0.step"] == 1


def test_a_checkpoint_gives_the_network_its_card_describes(tmp_path):
    backbone, meta = BackboneConfig(width=8, image_size=28), MetaConfig(way=3)
    weights = backbone_params(FewShotNet(backbone, n_way=5))
    card = {"backbone": asdict(backbone), "meta": asdict(meta)}
    save_checkpoint(tmp_path / "run", weights, card)
    model, loaded_meta = model_from_checkpoint(load_checkpoint(tmp_path / "run"))
    assert loaded_meta == meta and model.head.out_features == 3 and not model.frozen_norm
    for name, value in backbone_params(model).items():
        assert torch.equal(value, weights[name])
    wider = {**card, "backbone": asdict(BackboneConfig(width=16, image_size=28))}
    save_checkpoint(tmp_path / "wider", weights, wider)
    with pytest.raises(CheckpointError, match="do not fit the card's backbone config"):
        model_from_checkpoint(load_checkpoint(tmp_path / "wider"))
    save_checkpoint(tmp_path / "bare", weights, {"meta": asdict(meta)})
    with pytest.raises(CheckpointError, match="lacks a valid backbone/meta config"):
        model_from_checkpoint(load_checkpoint(tmp_path / "bare"))
