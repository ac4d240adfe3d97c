"""ADML and MAML meta-steps on one code path.

ADML (Yin et al. 2018, arXiv 1806.03316), per task with support S and query Q:

1. ``S_adv = FGSM(theta, S)``; ``theta_c = adapt(theta, S)``; ``theta_a = adapt(theta, S_adv)``
2. ``Q_adv = FGSM(theta_c, Q)`` (attack against the clean-adapted weights)
3. task loss ``L(theta_c, Q_adv) + L(theta_a, Q)`` (the cross update)

MAML (Finn et al. 2017) is the same code with the attacks off: ``L(theta_c, Q)``. With
``eps = 0`` ADML's loss is exactly twice MAML's. Adversarial querying ("aq", Goldblum et al.
2020) adapts on clean support only and scores ``L(theta_c, Q_adv)``.

Options (``MetaConfig``): the attack that makes the adversarial copies (ADML's FGSM, FGSM with a
random start, or a few PGD steps), a linear eps ramp, and a TRADES term (Zhang et al. 2019)
that replaces ``L(theta_c, Q_adv)`` by ``L(theta_c, Q) + beta * KL(f_c(Q) || f_c(Q_adv))``.
Adversarial images are data: no gradient flows through their construction.
Tasks are looped over, never vmapped: ``vmap`` with BatchNorm gives
a wrong second-order gradient (functorch issue 534).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from models.attacks import fgsm, fgsm_rs, pgd
from models.core import FewShotNet, MetaConfig, Params, backbone_params, init_head, logits_of
from models.data import Task


@dataclass(frozen=True)
class TaskResult:
    loss: Tensor  # the task's meta-loss, with graph back to the meta-parameters
    clean_accuracy: float  # theta_c on clean queries
    adversarial_accuracy: float | None  # theta_c on FGSM queries (ADML only)


def inner_adapt(
    model: FewShotNet,
    params: Params,
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: float,
    create_graph: bool,
) -> Params:
    """``steps`` SGD steps on ``CE(f(x; params), y)``, functionally.

    ``create_graph=True`` keeps the graph of the inner gradients (second-order meta-gradient);
    ``False`` treats them as constants (first order), so ``d params' / d params = I``.
    """
    for _ in range(steps):
        # First order: differentiate at detached copies, so the graph back to the
        # meta-parameters survives and the inner gradients enter as constants.
        at = params if create_graph else {k: v.detach().requires_grad_() for k, v in params.items()}
        loss = F.cross_entropy(logits_of(model, at, x), y)
        grads = torch.autograd.grad(loss, list(at.values()), create_graph=create_graph)
        params = {name: p - lr * g for (name, p), g in zip(params.items(), grads, strict=True)}
    return params


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return (logits.argmax(1) == y).double().mean().item()


def training_attack(
    model: FewShotNet, params: Params, x: Tensor, y: Tensor, config: MetaConfig, eps: float
) -> Tensor:
    """The adversarial copies of meta-training: ``config.attack`` at ``eps`` against ``params``."""
    if config.attack == "fgsm-rs":
        return fgsm_rs(model, x, y, eps=eps, params=params)
    if config.attack == "pgd":
        return pgd(model, x, y, eps=eps, steps=config.attack_steps, params=params)
    return fgsm(model, x, y, eps=eps, params=params)


def _robust_term(logits_clean: Tensor, logits_adv: Tensor, y: Tensor, trades: float) -> Tensor:
    if trades == 0:
        return F.cross_entropy(logits_adv, y)
    divergence = F.kl_div(
        F.log_softmax(logits_adv, 1),
        F.log_softmax(logits_clean, 1),
        log_target=True,
        reduction="batchmean",
    )
    return F.cross_entropy(logits_clean, y) + trades * divergence


def task_loss(
    model: FewShotNet, theta: Params, task: Task, config: MetaConfig, *, eps: float | None = None
) -> TaskResult:
    """Meta-loss of one task (``config.algo``), differentiable in ``theta``; ``eps`` overrides
    ``config.eps`` (the ramp)."""
    eps = config.eps if eps is None else eps
    head = init_head(model, theta, task.x_support, task.y_support, config.way, config.head_init)
    theta_task = {**theta, **head}
    adapt_kwargs = {
        "steps": config.inner_steps,
        "lr": config.inner_lr,
        "create_graph": not config.first_order,
    }
    theta_c = inner_adapt(model, theta_task, task.x_support, task.y_support, **adapt_kwargs)
    logits_c = logits_of(model, theta_c, task.x_query)
    clean_accuracy = _accuracy(logits_c, task.y_query)
    if config.algo == "maml":
        return TaskResult(F.cross_entropy(logits_c, task.y_query), clean_accuracy, None)

    x_query_adv = training_attack(model, theta_c, task.x_query, task.y_query, config, eps)
    logits_c_adv = logits_of(model, theta_c, x_query_adv)
    loss = _robust_term(logits_c, logits_c_adv, task.y_query, config.trades)
    if config.algo == "adml":
        x_support_adv = training_attack(
            model, theta_task, task.x_support, task.y_support, config, eps
        )
        theta_a = inner_adapt(model, theta_task, x_support_adv, task.y_support, **adapt_kwargs)
        loss = loss + F.cross_entropy(logits_of(model, theta_a, task.x_query), task.y_query)
    return TaskResult(loss, clean_accuracy, _accuracy(logits_c_adv, task.y_query))


@dataclass(frozen=True)
class StepMetrics:
    loss: float
    clean_accuracy: float
    adversarial_accuracy: float | None


def accumulate_meta_gradient(
    model: FewShotNet,
    tasks: list[Task],
    config: MetaConfig,
    *,
    scale: float | None = None,
    eps: float | None = None,
) -> StepMetrics:
    """Add ``scale * sum_t d task_loss_t / d theta`` into the backbone's ``.grad``.

    ``scale`` defaults to ``1 / len(tasks)`` (the meta-batch mean). Each task's graph is freed
    right after its backward pass, so memory holds one task at a time.
    """
    theta = backbone_params(model)
    weight = 1.0 / len(tasks) if scale is None else scale
    losses, clean, adversarial = [], [], []
    for task in tasks:
        result = task_loss(model, theta, task, config, eps=eps)
        (result.loss * weight).backward()
        losses.append(result.loss.item())
        clean.append(result.clean_accuracy)
        if result.adversarial_accuracy is not None:
            adversarial.append(result.adversarial_accuracy)
    return StepMetrics(
        loss=sum(losses) / len(losses),
        clean_accuracy=sum(clean) / len(clean),
        adversarial_accuracy=sum(adversarial) / len(adversarial) if adversarial else None,
    )
