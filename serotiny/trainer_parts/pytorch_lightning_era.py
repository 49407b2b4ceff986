"""Project classes written against the standalone ``pytorch_lightning`` package.

The original serotiny's projects subclass ``pytorch_lightning.LightningModule``. Today's
Trainer (``lightning.pytorch``) refuses such a module or datamodule, but accepts a
``pytorch_lightning.Callback`` and calls its hooks; these helpers tell the builders which is
which, and what one line to show. Read from a class's MRO, so ``pytorch_lightning`` is never
imported here.
"""

from __future__ import annotations

import inspect

_PL_REFUSED = {"LightningModule": "module", "LightningDataModule": "datamodule"}


def pytorch_lightning_base(obj: object) -> str | None:
    """The ``pytorch_lightning`` class ``obj``'s class derives from (e.g.
    ``pytorch_lightning.LightningModule``), or None when it derives from none.

    Read from the class's MRO, so ``pytorch_lightning`` is never imported here.
    """
    for klass in type(obj).__mro__:
        if klass.__module__.split(".")[0] == "pytorch_lightning":
            return f"pytorch_lightning.{klass.__name__}"
    return None


def pytorch_lightning_message(obj: object, section: str) -> str | None:
    """One line telling how to port ``obj`` when the Trainer refuses it, else None.

    A ``lightning.pytorch`` Trainer (Lightning 2.6, checked by the tests) refuses a
    ``pytorch_lightning.LightningModule`` or ``LightningDataModule`` with a TypeError, but
    accepts a ``pytorch_lightning.Callback`` and calls its hooks: callbacks get None here
    (see :func:`is_pytorch_lightning_callback`).

    Example: ``raise ConfigTypeError(pytorch_lightning_message(model, "model") or ...)``.
    """
    base = pytorch_lightning_base(obj)
    if base is None or base.rsplit(".", 1)[1] not in _PL_REFUSED:
        return None
    klass = type(obj)
    try:
        where = f"in {inspect.getsourcefile(klass)}, "
    except TypeError:  # a class without a source file
        where = ""
    return (
        f"config '{section}' builds {klass.__module__}.{klass.__qualname__}, a {base}, which "
        "serotiny's lightning.pytorch Trainer refuses: "
        f"{where}import from lightning.pytorch instead (e.g. `import lightning.pytorch as pl`)"
    )


def is_pytorch_lightning_callback(obj: object) -> bool:
    """Whether ``obj`` is a ``pytorch_lightning.Callback``, which the Trainer accepts as is."""
    return any(
        klass.__module__.split(".")[0] == "pytorch_lightning" and klass.__name__ == "Callback"
        for klass in type(obj).__mro__
    )
