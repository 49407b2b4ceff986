"""Reference LightningModules and networks for serotiny projects.

Everything here is built from config by Hydra, e.g. ``_target_: serotiny.models.TabularVAE``.
The names are resolved lazily (PEP 562): ``import serotiny.models`` costs nothing, and torch
and lightning are imported only when a class is first touched, so commands that never train
(``serotiny --help``, config checks) stay fast.

Checkpoints written by these modules hold only tensors and primitives, so they load with
``torch.load(path, weights_only=True)``. Objects given to the constructors (networks, losses,
optimizer partials) are *not* stored in the checkpoint's hyperparameters: rebuild the module
from its config, then ``load_state_dict(checkpoint["state_dict"])``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serotiny.models._checks import ModelConfigError
    from serotiny.models.basic import BasicModel
    from serotiny.models.networks import MLP, SmallCNN
    from serotiny.models.vae import TabularVAE

# Public name -> module that defines it; the single place to register a new model.
_EXPORTS: dict[str, str] = {
    "BasicModel": "serotiny.models.basic",
    "MLP": "serotiny.models.networks",
    "SmallCNN": "serotiny.models.networks",
    "TabularVAE": "serotiny.models.vae",
    "ModelConfigError": "serotiny.models._checks",
}

__all__ = ["MLP", "BasicModel", "ModelConfigError", "SmallCNN", "TabularVAE"]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    # Cache so later lookups skip this hook entirely.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
