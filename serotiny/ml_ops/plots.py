"""Earlier import path of :mod:`serotiny.plots`, kept for existing notebooks."""

from serotiny.plots import (
    confusion_counts,
    confusion_matrix_figure,
    curve_points,
    loss_curves_figure,
    save_figure,
    scatter_figure,
)

__all__ = [
    "confusion_counts",
    "confusion_matrix_figure",
    "curve_points",
    "loss_curves_figure",
    "save_figure",
    "scatter_figure",
]
