"""Pictures of a run: a confusion matrix, predicted against true values, loss curves.

Each function returns a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas. No
pyplot state is touched, so the functions are safe in scripts, worker threads and notebooks
alike (a notebook shows a returned figure as usual), and a figure is freed with its last
reference instead of piling up in pyplot's figure registry. matplotlib is imported on first
use, so importing this module costs nothing.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Past this many classes, per-cell count labels are unreadable and slow to draw, so
#: :func:`confusion_matrix_figure` leaves them out.
MAX_ANNOTATED_CLASSES = 20


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure of ``figsize`` inches on its own Agg canvas (no pyplot involved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _as_numpy(values: Any) -> np.ndarray:
    """A sequence, array or (CPU or GPU) tensor as a numpy array."""
    return np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)


def _one_dimensional(name: str, values: Any) -> np.ndarray:
    array = _as_numpy(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be one value per sample, got shape {array.shape}")
    return array


def confusion_counts(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Counts of (true class, predicted class) pairs and the name of each class.

    With ``class_names``, labels are class indices ``0 .. len(class_names) - 1``; without,
    the classes are the sorted distinct values found in ``y_true`` and ``y_pred``.
    Returns ``(counts, names)``: ``counts[i, j]`` is how many samples of true class ``i``
    were predicted as class ``j``.
    """
    true = _one_dimensional("y_true", y_true)
    predicted = _one_dimensional("y_pred", y_pred)
    if len(true) != len(predicted):
        raise ValueError(f"y_true has {len(true)} values but y_pred has {len(predicted)}")
    if class_names is not None:
        names = [str(name) for name in class_names]
        for label, values in (("y_true", true), ("y_pred", predicted)):
            if values.size and (
                not np.issubdtype(values.dtype, np.integer)
                or values.min() < 0
                or values.max() >= len(names)
            ):
                raise ValueError(
                    f"{label} must hold class indices 0..{len(names) - 1} when class_names "
                    f"names {len(names)} classes"
                )
        true_index, predicted_index = true.astype(np.int64), predicted.astype(np.int64)
    else:
        classes, inverse = np.unique(np.concatenate([true, predicted]), return_inverse=True)
        names = [str(value) for value in classes]
        true_index, predicted_index = inverse[: len(true)], inverse[len(true) :]
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(counts, (true_index, predicted_index), 1)
    return counts, names


def _annotate_counts(axes: Axes, counts: np.ndarray) -> None:
    """Write each cell's count on it, white on the darker cells."""
    threshold = counts.max() / 2 if counts.size else 0
    for (row, column), count in np.ndenumerate(counts):
        color = "white" if count > threshold else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=color)


def confusion_matrix_figure(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    class_names: Sequence[str] | None = None,
    *,
    figsize: tuple[float, float] = (5.0, 4.5),
    title: str | None = None,
) -> Figure:
    """A confusion matrix: true classes down the rows, predicted classes across the columns.

    Args:
        y_true: the true class of each sample (a sequence, numpy array or tensor).
        y_pred: the predicted class of each sample.
        class_names: names of the class indices ``0 .. K-1``; the labels must then be those
            indices. Without it, the classes are the sorted distinct labels found.
        figsize: the figure's size in inches (pixels = inches x the dpi it is saved with).
        title: the title; by default the sample count and accuracy.

    Returns:
        The figure. Its axes hold one image whose array is the counts
        (``figure.axes[0].images[0].get_array()``); each cell is labelled with its count
        when there are at most :data:`MAX_ANNOTATED_CLASSES` classes.
    """
    counts, names = confusion_counts(y_true, y_pred, class_names)
    figure = new_figure(figsize)
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues", interpolation="nearest", vmin=0)
    figure.colorbar(image, ax=axes, label="samples")
    positions = np.arange(len(names))
    rotate = len(names) > 5 or max((len(name) for name in names), default=0) > 8
    axes.set_xticks(
        positions, names, rotation=45 if rotate else 0, ha="right" if rotate else "center"
    )
    axes.set_yticks(positions, names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(names) <= MAX_ANNOTATED_CLASSES:
        _annotate_counts(axes, counts)
    total = int(counts.sum())
    if title is None:
        accuracy = np.trace(counts) / total if total else float("nan")
        title = f"{total} samples, accuracy {accuracy:.1%}"
    axes.set_title(title)
    return figure


def scatter_figure(
    y_true: Sequence[float] | np.ndarray,
    y_pred: Sequence[float] | np.ndarray,
    *,
    figsize: tuple[float, float] = (5.0, 5.0),
    title: str | None = None,
) -> Figure:
    """Predicted against true values (regression), with the identity line ``y = x``.

    Args:
        y_true: true values (a sequence, numpy array or tensor); any shape, flattened (e.g.
            ``(N, K)`` outputs give N*K points).
        y_pred: predicted values, the same number as ``y_true``.
        figsize: the figure's size in inches.
        title: the title; by default the sample count, MAE and R².

    Returns:
        The figure. ``figure.axes[0].collections[0].get_offsets()`` holds the points
        (true, predicted); ``figure.axes[0].lines[0]`` is the identity line.
    """
    true = _as_numpy(y_true).astype(np.float64).reshape(-1)
    predicted = _as_numpy(y_pred).astype(np.float64).reshape(-1)
    if true.shape != predicted.shape:
        raise ValueError(f"y_true has {true.size} values but y_pred has {predicted.size}")
    figure = new_figure(figsize)
    axes = figure.add_subplot()
    finite = np.isfinite(true) & np.isfinite(predicted)
    if finite.any():
        low = float(min(true[finite].min(), predicted[finite].min()))
        high = float(max(true[finite].max(), predicted[finite].max()))
    else:
        low, high = 0.0, 1.0
    margin = (high - low) * 0.05 or 0.5
    limits = (low - margin, high + margin)
    axes.plot(limits, limits, color="0.5", linestyle="--", linewidth=1, label="y = x")
    axes.scatter(true, predicted, s=12, alpha=0.6, edgecolors="none")
    axes.set_xlim(limits)
    axes.set_ylim(limits)
    axes.set_aspect("equal")
    axes.set_xlabel("true")
    axes.set_ylabel("predicted")
    axes.legend(loc="upper left")
    if title is None:
        title = _regression_summary(true[finite], predicted[finite])
    axes.set_title(title)
    return figure


def _regression_summary(true: np.ndarray, predicted: np.ndarray) -> str:
    if not true.size:
        return "no finite values"
    mae = float(np.abs(true - predicted).mean())
    spread = float(((true - true.mean()) ** 2).sum())
    r2 = 1 - float(((true - predicted) ** 2).sum()) / spread if spread else float("nan")
    return f"{true.size} samples, MAE {mae:.3g}, R² {r2:.3f}"


def curve_points(points: Sequence[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """A metric's ``(step, value)`` points as (steps, values), sorted by step.

    A resumed run logs the epochs after its last checkpoint again; when a step appears more
    than once, its later entry wins.
    """
    by_step: dict[int, float] = {}
    for point in points:
        if len(point) != 2:
            raise ValueError(f"a metric point must be (step, value), got {point!r}")
        step, value = point
        by_step[int(step)] = float(value)
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.array([by_step[step] for step in steps], dtype=np.float64)


def loss_curves_figure(
    history: Mapping[str, Sequence[tuple[int, float]]],
    *,
    figsize: tuple[float, float] = (7.0, 4.0),
    title: str | None = None,
) -> Figure:
    """Metric curves over training steps: one line per metric.

    Metrics whose name contains ``loss`` share the first panel; any others (accuracy, R², ...)
    get a second panel, so that differently scaled values do not flatten each other.

    Args:
        history: metric name -> ``(step, value)`` points, e.g. from MLflow:
            ``{name: [(m.step, m.value) for m in client.get_metric_history(run_id, name)]}``.
        figsize: the figure's size in inches.
        title: a title over the whole figure.

    Returns:
        The figure; ``axes.lines`` of each panel hold the curves, labelled by metric name
        (:func:`curve_points` gives the points drawn). With no points at all, one empty
        panel says so.
    """
    curves = {name: curve_points(points) for name, points in sorted(history.items())}
    curves = {name: curve for name, curve in curves.items() if len(curve[0])}
    losses = [name for name in curves if "loss" in name]
    others = [name for name in curves if "loss" not in name]
    panels = [group for group in (losses, others) if group] or [[]]
    figure = new_figure(figsize)
    for index, names in enumerate(panels):
        axes: Axes = figure.add_subplot(1, len(panels), index + 1)
        for name in names:
            steps, values = curves[name]
            axes.plot(steps, values, marker="o" if len(steps) < 30 else None, label=name)
        axes.set_xlabel("step")
        if names:
            axes.set_ylabel("loss" if names is losses else "value")
            axes.legend()
            axes.grid(True, alpha=0.3)
        else:
            axes.text(0.5, 0.5, "no metrics recorded", ha="center", va="center")
    if title is not None:
        figure.suptitle(title)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write ``figure`` as a PNG at ``path`` atomically; return the path.

    The image is ``figsize x dpi`` pixels. It is written to a temporary file in the same
    folder and moved into place, so a reader (or an MLflow upload) never sees a half-written
    file, and an existing file is only ever replaced by a complete one. Parent folders are
    created.
    """
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"save_figure writes PNG files; name one ending in .png, not {target}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi <= 0:
        raise ValueError(f"dpi must be a positive integer, got {dpi!r}")
    width, height = figure.get_size_inches()
    if not (math.isfinite(width) and math.isfinite(height)):
        raise ValueError(f"figure size {width} x {height} inches is not finite")
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique name beside the target: os.replace is atomic only within one file system.
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        with temporary.open("xb") as stream:
            figure.savefig(stream, format="png", dpi=dpi)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
