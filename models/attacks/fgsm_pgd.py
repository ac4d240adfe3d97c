"""White-box L-inf attacks: FGSM (with and without a random start) and PGD (with restarts).

Each takes a module that maps images to logits and, optionally, explicit weights ``params`` that
the module runs with through ``torch.func.functional_call`` (so the meta-learner can attack
adapted weights). Gradients are taken w.r.t. the input only: weights never receive ``.grad``,
explicit ``params`` are detached, and the returned images carry no graph. The module runs in
eval mode during the attack and gets its previous mode back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.core import Params, logits_of

# An L-inf budget in pixel units: one for every image, or one per image (``[B]``), so one call
# can attack copies of a batch at several budgets (the service's reports do).
Budget = float | Tensor


def radius(eps: Budget, x: Tensor) -> Tensor:
    """``eps`` per image as ``[B, 1, 1, 1]`` (broadcasting over ``x``'s other dimensions)."""
    shape = (len(x),) + (1,) * (x.dim() - 1)
    if isinstance(eps, Tensor):
        if eps.shape != (len(x),):
            raise ValueError(f"per-image eps must have shape ({len(x)},), got {tuple(eps.shape)}")
        return eps.to(device=x.device, dtype=x.dtype).view(shape)
    return torch.full(shape, float(eps), dtype=x.dtype, device=x.device)


def rows_of(eps: Budget, rows: Tensor) -> Budget:
    """The budgets of the images ``rows`` (a shared budget stays as it is)."""
    return eps[rows.to(eps.device)] if isinstance(eps, Tensor) else eps


def attacks_anything(eps: Budget) -> bool:
    """Whether some image has a budget above 0 (an attack at eps 0 returns the images)."""
    return bool((eps > 0).any()) if isinstance(eps, Tensor) else eps > 0


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the block with ``model`` in eval mode, restoring each submodule's mode afterwards."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def _input_gradient(model: nn.Module, params: Params | None, x: Tensor, y: Tensor) -> Tensor:
    return _gradient_and_fooled(model, params, x, y)[0]


def _gradient_and_fooled(
    model: nn.Module, params: Params | None, x: Tensor, y: Tensor
) -> tuple[Tensor, Tensor]:
    x = x.detach().requires_grad_(True)
    logits = logits_of(model, params, x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), x)
    return grad, logits.detach().argmax(1) != y


def _detached(params: Params | None) -> Params | None:
    return None if params is None else {k: v.detach() for k, v in params.items()}


def fgsm(
    model: nn.Module, x: Tensor, y: Tensor, *, eps: Budget, params: Params | None = None
) -> Tensor:
    """Fast Gradient Sign Method (Goodfellow et al. 2015, arXiv 1412.6572), L-inf norm.

    ``x_adv = clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1)``.

    Args:
        model: maps ``[B, C, H, W]`` images to ``[B, N]`` logits.
        x: images ``[B, C, H, W]``, pixels in [0, 1].
        y: labels ``[B]`` (int64, in ``0..N-1``).
        eps: L-inf budget in pixel units, shared or per image ``[B]`` (0 returns a copy of
            ``x``).
        params: explicit weights to run ``model`` with; None uses the module's own.

    Returns:
        Adversarial images, same shape and dtype as ``x``, in [0, 1], ``|x_adv - x| <= eps``.
    """
    if not attacks_anything(eps):
        return x.detach().clone()
    with eval_mode(model):
        grad = _input_gradient(model, _detached(params), x, y)
    return (x.detach() + radius(eps, x) * grad.sign()).clamp(0.0, 1.0)


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: Budget,
    steps: int = 20,
    step_size: Budget | None = None,
    random_start: bool = True,
    params: Params | None = None,
    generator: torch.Generator | None = None,
    keep_fooled: bool = False,
) -> Tensor:
    """Projected Gradient Descent (Madry et al. 2018, arXiv 1706.06083), L-inf norm.

    From a uniform random start in the eps-ball, ``steps`` signed-gradient ascent steps of
    ``step_size`` (default ``2.5 * eps / steps``), each projected back onto the eps-ball around
    ``x`` and onto [0, 1]. Returns the last iterate; with ``keep_fooled`` (evaluation), an
    example's first misclassified iterate instead, and fooled examples take no further steps.

    Args:
        model: maps ``[B, C, H, W]`` images to ``[B, N]`` logits.
        x: images ``[B, C, H, W]``, pixels in [0, 1].
        y: labels ``[B]`` (int64).
        eps: L-inf budget in pixel units, shared or per image ``[B]`` (0 returns a copy of
            ``x``).
        steps: number of ascent steps (>= 1).
        step_size: per-step size, shared or per image; default ``2.5 * eps / steps``.
        random_start: start from a uniform point of the eps-ball instead of ``x``.
        params: explicit weights to run ``model`` with; None uses the module's own.
        generator: random source of the start, for reproducible evaluations.

    Returns:
        Adversarial images, same shape and dtype as ``x``, in [0, 1], ``|x_adv - x| <= eps``.
    """
    if steps < 1:
        raise ValueError("pgd needs steps >= 1")
    x = x.detach()
    if not attacks_anything(eps):
        return x.clone()
    eps = radius(eps, x)
    step = 2.5 * eps / steps if step_size is None else radius(step_size, x)
    params = _detached(params)
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu")
        x_adv = (x_adv + (2 * noise.to(x.device) - 1) * eps).clamp(0.0, 1.0)
    result = x_adv.clone()
    live = torch.arange(len(x), device=x.device)
    with eval_mode(model):
        for _ in range(steps):
            grad, fooled = _gradient_and_fooled(model, params, x_adv, y[live])
            if keep_fooled:
                result[live[fooled]] = x_adv[fooled]
                x_adv, grad, live = x_adv[~fooled], grad[~fooled], live[~fooled]
            x_adv = x_adv + step[live] * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x[live] - eps[live]), x[live] + eps[live])
            x_adv = x_adv.clamp(0.0, 1.0)
        result[live] = x_adv
    return result.detach()


def fgsm_rs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: Budget,
    step_size: Budget | None = None,
    params: Params | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """FGSM with a random start (Wong, Rice & Kolter 2020, arXiv 2001.03994), L-inf norm.

    From a uniform point of the eps-ball, one signed-gradient step of ``step_size`` (default
    ``1.25 * eps``, the paper's choice), projected back onto the eps-ball and [0, 1]. The random
    start is what keeps single-step adversarial training from catastrophic overfitting.

    Args: as :func:`pgd` (shapes ``[B, C, H, W]`` in [0, 1], labels ``[B]``).

    Returns:
        Adversarial images, same shape and dtype as ``x``, in [0, 1], ``|x_adv - x| <= eps``.
    """
    return pgd(
        model,
        x,
        y,
        eps=eps,
        steps=1,
        step_size=1.25 * eps if step_size is None else step_size,
        random_start=True,
        params=params,
        generator=generator,
    )


def pgd_restarts(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: Budget,
    steps: int = 100,
    restarts: int = 5,
    params: Params | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """:func:`pgd` from ``restarts`` random starts; each restart attacks only the examples no
    earlier restart misclassified. Shapes, ranges and return value as :func:`pgd` (the image
    that fooled the model where one was found, else the last restart's iterate)."""
    if restarts < 1:
        raise ValueError("pgd_restarts needs restarts >= 1")
    attempts = (
        lambda todo: pgd(
            model,
            x[todo],
            y[todo],
            eps=rows_of(eps, todo),
            steps=steps,
            params=params,
            generator=generator,
            keep_fooled=True,
        )
        for _ in range(restarts)
    )
    return until_fooled(model, params, x, y, attempts, eps=eps)


def until_fooled(
    model: nn.Module,
    params: Params | None,
    x: Tensor,
    y: Tensor,
    attempts: Iterable[Callable[[Tensor], Tensor]],
    *,
    eps: Budget,
) -> Tensor:
    """Run each attempt in turn on the examples no earlier attempt misclassified (restarts,
    targets). An attempt maps the indices still standing to their adversarial images; an
    example keeps the image that fooled the model, else the last attempt's."""
    x = x.detach()
    x_adv = x.clone()
    fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for attempt in attempts:
        todo = (~fooled).nonzero().flatten()
        if not attacks_anything(eps) or len(todo) == 0:
            break
        x_adv[todo] = attempt(todo)
        with torch.no_grad(), eval_mode(model):
            logits = logits_of(model, _detached(params), x_adv[todo])
        fooled[todo] = logits.argmax(1) != y[todo]
    return x_adv
