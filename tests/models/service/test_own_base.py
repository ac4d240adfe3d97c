"""Meta-training a base model on a user's own RGB classes: split, resumable run, package."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from models.core import ConfigError, backbone_params
from models.data import decode_image
from models.service import (
    BaseTrainJob,
    LabelledImages,
    TrainRun,
    decode_base_model,
    decode_classes,
    encode_base_model,
    split_classes,
)
from tests.synthetic import encode, noise_texture, shape_dataset

SIZE = 16


def shapes(classes: int = 24, per_class: int = 6) -> LabelledImages:
    dataset = shape_dataset(classes, per_class, seed=0, size=SIZE)
    named = {name: [(name, data) for data in files] for name, files in dataset.items()}
    return decode_classes(named, channels=3, size=SIZE)


def job(images: LabelledImages, **changes) -> BaseTrainJob:
    settings = BaseTrainJob(
        name="shapes",
        channels=3,
        image_size=SIZE,
        eps=0.03,
        iterations=2,
        split=split_classes(images.classes),
        width=8,
        validate_every=1,
        eval_episodes=2,
        attacks=("fgsm", "pgd-3"),
    )
    return dataclasses.replace(settings, **changes)


def test_classes_split_by_name_into_disjoint_parts():
    names = [f"c{i:02d}" for i in range(24)]
    split = split_classes(names)
    assert [len(split[p]) for p in ("train", "val", "test")] == [14, 5, 5]
    assert sorted(split["train"] + split["val"] + split["test"]) == names
    assert split_classes(list(reversed(names))) == split  # order of upload does not matter
    with pytest.raises(ConfigError, match="at least 20"):
        split_classes(names[:19])


def test_a_run_resumed_from_its_snapshot_ends_where_an_unbroken_run_ends():
    images = shapes()
    unbroken = TrainRun(job(images), images, torch.device("cpu"))
    unbroken.train(lambda _: None, lambda _: None)
    snapshots: list[bytes] = []
    first = TrainRun(job(images, iterations=1), images, torch.device("cpu"))
    first.train(lambda _: None, snapshots.append)
    resumed = TrainRun(job(images), images, torch.device("cpu"))
    resumed.restore(snapshots[-1])
    assert resumed.state.iteration == 1
    steps: list[int] = []
    resumed.train(steps.append, lambda _: None)
    assert steps == [2]
    for name, value in backbone_params(unbroken.model).items():
        torch.testing.assert_close(backbone_params(resumed.model)[name], value)


def test_the_packaged_base_model_reads_back_and_knows_its_domain():
    images = shapes()
    run = TrainRun(job(images), images, torch.device("cpu"))
    run.train(lambda _: None, lambda _: None)
    episodes: list[int] = []
    tensors, card = run.package(lambda done, _: episodes.append(done))
    assert episodes == [1, 2]
    assert card["iterations"] == 2 and card["metrics"]["test_episodes"] == 2
    assert 0 <= card["metrics"]["test_worst@0.03"] <= card["metrics"]["test_clean"] <= 1
    base = decode_base_model("shapes", encode_base_model(tensors, card))
    assert (base.spec.channels, base.spec.size, base.spec.invert) == (3, SIZE, False)
    assert base.domain_summary()["detector"] is True
    held_out = images.images[
        images.labels == images.classes.index(card["data"]["split"]["test"][0])
    ]
    verdicts = base.check_domain(held_out)
    assert len(verdicts) == len(held_out) and sum(not v.in_domain for v in verdicts) <= 1
    rng = np.random.default_rng(0)
    noise = [
        decode_image(encode(noise_texture(rng)), channels=3, size=SIZE, source="n")
        for _ in range(10)
    ]
    refused = [not v.in_domain for v in base.check_domain(torch.from_numpy(np.stack(noise)))]
    assert sum(refused) >= 4  # a 2-step, 8-channel model: a weak detector, but a detector
