"""What every comparison model shares: its paper row and how a factory applies overrides.

Each family file defines a ``@dataclass`` config and a model class taking it; every size is a
tiny factory registered with :func:`lkca.models.registry.register_model`::

    @register_model("swin_t_cifar", aliases=("swin_t",), paper=paper_row("Swin-T", 1.01e6, ...))
    def swin_t_cifar(**overrides) -> SwinTransformer:
        return build(SwinTransformer, SwinConfig(embed_dim=36), overrides)

Every config has ``img_size``, ``num_classes`` and ``drop_path_rate`` (the training engine
passes all three) and ``in_chans``. The model pieces several families build the same way are in
:mod:`lkca.models.baselines.common`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from torch import nn

M = TypeVar("M", bound=nn.Module)


def paper_row(row: str, params: float, macs: float, table: str, img_size: int = 32,
              num_classes: int = 10) -> dict[str, Any]:
    """The paper's figures for a registered baseline (``register_model(paper=...)``).

    ``row`` is the row name as printed in the paper's table (``"Swin-T"``), ``table`` where it
    appears (``"Table 4"``, ``"Table 5"`` or both), ``params`` / ``macs`` its "# Params" and
    "Flops" (multiply-accumulates), measured at ``img_size`` with ``num_classes`` outputs.
    """
    return dict(row=row, params=params, macs=macs, table=table, img_size=img_size,
                num_classes=num_classes)


def build(model_cls: type[M], config: Any, overrides: dict[str, Any]) -> M:
    """``model_cls(config)`` with ``overrides`` replacing config fields; unknown keys raise."""
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(
            f"unknown model option(s) {sorted(unknown)} for {model_cls.__name__}; valid: "
            f"{', '.join(sorted(fields))}"
        )
    return model_cls(dataclasses.replace(config, **overrides))

