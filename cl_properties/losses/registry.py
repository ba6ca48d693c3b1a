"""Every loss by one name, with the paper's preset arguments (paper-notes section 1).

    loss = build_loss("swd_normal", seed=0)                 # lambda 5, no normalization
    loss = build_loss("nt_xent", temperature=0.2, seed=0)   # a preset argument replaced

A name maps to a serializable loss class, called as `loss(z1, z2, step=None) -> LossTerms`,
and the arguments that make it the paper's member of the family. The training config
(`LossConfig`: a name and the arguments that differ from the preset), the command-line
flags (`--loss`) and the benchmarks all read this table: adding a loss is one class, one
`register_loss` line and one test.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

from cl_properties.losses.keras_loss import ContrastiveLoss


@dataclasses.dataclass(frozen=True)
class RegisteredLoss:
    """A loss class and its preset constructor arguments."""

    loss_class: type
    preset: Mapping[str, Any]
    summary: str


LOSSES: dict[str, RegisteredLoss] = {}


def register_loss(name: str, loss_class: type, summary: str, **preset: Any) -> None:
    """Adds `name` -> `loss_class(**preset)` to `LOSSES`; ValueError for a name taken."""
    if name in LOSSES:
        raise ValueError(f"a loss named {name!r} is registered already")
    LOSSES[name] = RegisteredLoss(loss_class, types.MappingProxyType(dict(preset)), summary)


def _entry(name: str) -> RegisteredLoss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; registered: {', '.join(LOSSES)}")
    return LOSSES[name]


def loss_arguments(name: str, **arguments: Any) -> dict[str, Any]:
    """The constructor arguments of loss `name`: its preset, replaced by `arguments`."""
    return {**_entry(name).preset, **arguments}


def loss_uses(name: str, argument: str) -> bool:
    """Whether loss `name` has the parameter `argument` (e.g. "temperature"): one its preset
    sets. The SWD losses have no temperature, NT-Xent no lambda and only IFM an epsilon."""
    return argument in _entry(name).preset


def build_loss(name: str, **arguments: Any):
    """The loss `name` with its preset arguments, replaced by `arguments` (e.g. seed,
    temperature, scale). ValueError for an unknown name or an invalid argument."""
    return _entry(name).loss_class(**loss_arguments(name, **arguments))


register_loss(
    "nt_xent",
    ContrastiveLoss,
    "SimCLR's NT-Xent (tau 0.1; 0.2 is CIFAR-10's)",
    method="nt_xent",
    temperature=0.1,
    candidates="all",
)
register_loss(
    "decoupled",
    ContrastiveLoss,
    "alignment + lambda * LogSumExp (decoupled NT-Xent)",
    method="decoupled",
    temperature=1.0,
    lambda_weight=0.1,
)
for _prior in ("hypersphere", "hypercube", "normal"):
    register_loss(
        f"swd_{_prior}",
        ContrastiveLoss,
        f"alignment + lambda * sliced Wasserstein to the {_prior} prior",
        method="swd",
        prior=_prior,
        lambda_weight=5.0,
    )
# A feature-suppression remedy candidate, not a member of the paper's family: eps 0.1 and
# alpha 1 are the IFM reference code's defaults (Robinson et al. 2021), tau NT-Xent's 0.1.
register_loss(
    "ifm",
    ContrastiveLoss,
    "implicit feature modification: NT-Xent averaged with its eps-perturbed version (tau 0.1, "
    "eps 0.1, alpha 1)",
    method="ifm",
    temperature=0.1,
    epsilon=0.1,
    alpha=1.0,
    candidates="all",
)
