"""serotiny: ML-ops for PyTorch Lightning projects.

Kept import-light on purpose: ``serotiny --help`` must not pay for torch or mlflow.
"""

from __future__ import annotations

__version__ = "0.1.0"
