"""Support-set poisoning: the unrolled adaptation is the service's, its gradient is the
derivative of what the service computes, and the attack reaches the adapted model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.attacks import correct
from models.core import AdaptConfig, FewShotNet, backbone_params, deployable
from models.evaluation import (
    adaptation_objective,
    deployed_logits,
    poison_mask,
    poison_support,
    random_poison,
    unrolled_adapt,
)
from models.meta import adapt, adapt_and_deploy
from tests.conftest import TINY, synthetic_task


def _backbone(seed: int = 0, dtype=torch.float32):
    torch.manual_seed(seed)
    return {k: v.detach().to(dtype) for k, v in backbone_params(FewShotNet(TINY, 3)).items()}


@pytest.mark.parametrize(
    "config",
    [
        AdaptConfig(steps=3, eps=0.1),
        AdaptConfig(steps=3, eps=0.1, adversarial=False),
        AdaptConfig(steps=2, eps=0.1, augment=2),
        AdaptConfig(steps=2, eps=0.1, random_start=True, augment=1),
    ],
)
def test_the_unrolled_adaptation_gives_the_services_weights(config):
    task = synthetic_task(3, 2, 2)
    backbone = _backbone()
    torch.manual_seed(7)
    service = adapt(TINY, backbone, task.x_support, task.y_support, n_way=3, adapt_config=config)
    torch.manual_seed(7)  # the same global draws (affine copies, random starts)
    x = task.x_support.clone().requires_grad_(True)
    unrolled = unrolled_adapt(TINY, backbone, x, task.y_support, n_way=3, adapt_config=config)
    assert unrolled["head.weight"].requires_grad  # it holds the graph back to the support set
    for name, value in service.items():
        torch.testing.assert_close(unrolled[name], value, atol=1e-5, rtol=1e-5, msg=name)


def test_deployed_logits_are_the_deployed_networks():
    task = synthetic_task(3, 2, 4)
    params = adapt(
        TINY, _backbone(), task.x_support, task.y_support, n_way=3, adapt_config=AdaptConfig(2)
    )
    expected = deployable(TINY, params, task.x_support)(task.x_query)
    found = deployed_logits(TINY, params, task.x_support, task.x_query)
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-4)


def _service_loss(backbone, x_support, y_support, task, config) -> float:
    """The attacker's loss as the service computes it: adapt, deploy, classify."""
    torch.manual_seed(0)
    params = adapt(TINY, backbone, x_support, y_support, n_way=3, adapt_config=config)
    logits = deployable(TINY, params, x_support)(task.x_query)
    return F.cross_entropy(logits, task.y_query).item()


def test_the_poisoning_gradient_is_the_derivative_of_the_services_adaptation():
    """Central differences of adapt + deploy (the service's code, float64) against the
    gradient the attack follows: a graph cut anywhere in the unrolled adaptation fails it."""
    task = synthetic_task(3, 1, 3, seed=3, dtype=torch.float64)
    backbone = _backbone(1, torch.float64)
    config = AdaptConfig(steps=3, lr=0.2, eps=0.05)
    objective = adaptation_objective(
        TINY,
        backbone,
        task.y_support,
        task.x_query,
        task.y_query,
        n_way=3,
        adapt_config=config,
        head_init="proto",
    )
    x = task.x_support.clone().requires_grad_(True)
    loss, _ = objective(x, True)
    (grad,) = torch.autograd.grad(loss, x)
    assert loss.item() == pytest.approx(
        _service_loss(backbone, task.x_support, task.y_support, task, config), abs=1e-9
    )
    generator = torch.Generator().manual_seed(0)
    h = 1e-6
    for _ in range(3):
        direction = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        up = _service_loss(backbone, task.x_support + h * direction, task.y_support, task, config)
        down = _service_loss(backbone, task.x_support - h * direction, task.y_support, task, config)
        numeric = (up - down) / (2 * h)
        assert (grad * direction).sum().item() == pytest.approx(numeric, rel=1e-4, abs=1e-7)


def _case():
    """A 3-way 1-shot synthetic task on which poisoning demonstrably works (the clean-only
    fine-tune: its loss is smooth in the support images, so ascending its gradient is what
    harms it, descending it does not; the FGSM copies' signs make the adversarial one jagged)."""
    task = synthetic_task(3, 1, 8, seed=5)
    return task, _backbone(2), AdaptConfig(steps=5, lr=0.2, eps=0.05, adversarial=False)


def test_poisoning_lowers_the_accuracy_of_the_service_adapted_model():
    task, backbone, config = _case()
    x_attacker, y_attacker = task.x_query[0::2], task.y_query[0::2]
    x_victim, y_victim = task.x_query[1::2], task.y_query[1::2]
    objective = adaptation_objective(
        TINY,
        backbone,
        task.y_support,
        x_attacker,
        y_attacker,
        n_way=3,
        adapt_config=config,
        head_init="proto",
    )
    mask = poison_mask(task.y_support, "all")
    result = poison_support(objective, task.x_support, mask, eps=0.1, steps=10)
    clean_accuracy = result.history[0][0]
    assert clean_accuracy >= 0.75
    assert result.attacker_accuracy <= clean_accuracy - 0.5  # on the attacker's own images

    def victim(x_support):  # the service's own adaptation and deployment, not the unrolled one
        torch.manual_seed(0)
        model = adapt_and_deploy(
            TINY, backbone, x_support, task.y_support, n_way=3, adapt_config=config
        )
        return correct(model, x_victim, y_victim).double().mean().item()

    assert victim(result.x) <= victim(task.x_support) - 0.4  # and on the victim's (others)
    noisy = random_poison(task.x_support, mask, eps=0.1, generator=torch.Generator())
    assert victim(noisy) > victim(result.x)  # noise of the same budget does less


def test_the_poison_stays_in_its_budget_on_its_images_only():
    task, backbone, config = _case()
    objective = adaptation_objective(
        TINY,
        backbone,
        task.y_support,
        task.x_query,
        task.y_query,
        n_way=3,
        adapt_config=config,
        head_init="proto",
    )
    mask = poison_mask(task.y_support, "single")
    result = poison_support(objective, task.x_support, mask, eps=0.1, steps=3, random_start=True)
    change = (result.x - task.x_support).abs()
    assert change[0].max() <= 0.1 + 1e-6 and change[0].max() > 0.05
    assert torch.equal(result.x[1:], task.x_support[1:])
    assert result.x.min() >= 0 and result.x.max() <= 1 and not result.x.requires_grad
    assert len(result.history) == 4 and result.history[result.best][0] == min(
        a for a, _ in result.history
    )
    noisy = random_poison(task.x_support, mask, eps=0.1, generator=torch.Generator())
    assert torch.equal(noisy[1:], task.x_support[1:])
    assert (noisy[0] - task.x_support[0]).abs().max() == pytest.approx(0.1, abs=1e-6)


def test_a_zero_budget_returns_the_support_set_without_attacking():
    task = synthetic_task(3, 2, 1)

    def never(x, create_graph):
        raise AssertionError("eps 0 must not run the attack")

    mask = poison_mask(task.y_support, "all")
    result = poison_support(never, task.x_support, mask, eps=0.0, steps=5)
    assert torch.equal(result.x, task.x_support) and result.attacker_accuracy is None


def test_poison_masks():
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    assert poison_mask(y, "all").tolist() == [True] * 6
    assert poison_mask(y, "one-per-class").tolist() == [True, False, True, False, True, False]
    assert poison_mask(y, "single").tolist() == [True] + [False] * 5
    with pytest.raises(ValueError, match="poison mode"):
        poison_mask(y, "half")
