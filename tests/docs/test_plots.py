"""serotiny.plots: the data drawn is the data given, and PNGs land whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from serotiny import plots


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()  # a truncated file fails here, not just at the header
        assert image.format == "PNG"
        return image.size


def test_importing_plots_does_not_import_matplotlib() -> None:
    code = "import sys, serotiny.plots; print('matplotlib' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"


def test_confusion_matrix_counts_every_pair(tmp_path: Path) -> None:
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 1, 2, 0, 2, 2]
    figure = plots.confusion_matrix_figure(y_true, y_pred, class_names=["cat", "dog", "owl"])
    axes = figure.axes[0]
    counts = np.asarray(axes.images[0].get_array())
    np.testing.assert_array_equal(counts, [[2, 1, 0], [0, 2, 0], [1, 0, 3]])
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["cat", "dog", "owl"]
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["cat", "dog", "owl"]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("predicted", "true")
    # Each cell is labelled with its count, row by row.
    assert [text.get_text() for text in axes.texts] == ["2", "1", "0", "0", "2", "0", "1", "0", "3"]
    assert axes.get_title() == "9 samples, accuracy 77.8%"

    path = plots.save_figure(figure, tmp_path / "confusion.png")
    assert path == tmp_path / "confusion.png"
    assert path.stat().st_size > 1000
    assert png_size(path) == (500, 450)  # the default 5 x 4.5 inches at 100 dpi


def test_confusion_matrix_of_text_labels_and_tensors() -> None:
    figure = plots.confusion_matrix_figure(["b", "a", "b", "c"], ["b", "b", "b", "a"])
    axes = figure.axes[0]
    np.testing.assert_array_equal(axes.images[0].get_array(), [[0, 1, 0], [0, 2, 0], [1, 0, 0]])
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["a", "b", "c"]

    from_tensors = plots.confusion_matrix_figure(
        torch.tensor([[1], [0], [1]]), torch.tensor([1, 1, 1]), class_names=["no", "yes"]
    )
    np.testing.assert_array_equal(from_tensors.axes[0].images[0].get_array(), [[0, 1], [0, 2]])


def test_confusion_matrix_keeps_absent_named_classes() -> None:
    counts, names = plots.confusion_counts([0, 0], [0, 0], class_names=["a", "b", "c"])
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(counts, [[2, 0, 0], [0, 0, 0], [0, 0, 0]])


def test_many_classes_are_drawn_without_cell_labels() -> None:
    labels = np.arange(30)
    figure = plots.confusion_matrix_figure(labels, labels)
    assert len(figure.axes[0].texts) == 0
    assert np.trace(figure.axes[0].images[0].get_array()) == 30


@pytest.mark.parametrize(
    ("y_true", "y_pred", "class_names", "message"),
    [
        ([0, 1], [0], None, "y_true has 2 values but y_pred has 1"),
        ([0, 3], [0, 1], ["a", "b"], "y_true must hold class indices 0..1"),
        ([0, 1], [0.5, 1.0], ["a", "b"], "y_pred must hold class indices 0..1"),
        ([[0, 1], [1, 0]], [0, 1], None, "y_true must be one value per sample"),
    ],
)
def test_confusion_matrix_refuses_bad_labels(
    y_true: list, y_pred: list, class_names: list[str] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        plots.confusion_matrix_figure(y_true, y_pred, class_names)


def test_scatter_draws_each_pair_and_the_identity_line(tmp_path: Path) -> None:
    y_true = np.array([0.0, 1.0, 2.0, 3.0])
    y_pred = np.array([0.5, 1.0, 1.5, 3.5])
    figure = plots.scatter_figure(y_true, y_pred, figsize=(4, 3))
    axes = figure.axes[0]
    np.testing.assert_allclose(axes.collections[0].get_offsets(), np.c_[y_true, y_pred])
    identity = axes.lines[0]
    np.testing.assert_allclose(identity.get_xdata(), identity.get_ydata())
    low, high = identity.get_xdata()
    assert low < 0.0 and high > 3.5  # spans every point
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("true", "predicted")
    assert axes.get_title().startswith("4 samples, MAE 0.375, R² 0.850")

    path = plots.save_figure(figure, tmp_path / "nested" / "folder" / "scatter.png", dpi=50)
    assert png_size(path) == (200, 150)


def test_scatter_flattens_multi_output_and_refuses_mismatches() -> None:
    figure = plots.scatter_figure([[1.0, 2.0], [3.0, 4.0]], torch.tensor([[1.0, 2.5], [3.0, 4.0]]))
    assert len(figure.axes[0].collections[0].get_offsets()) == 4
    with pytest.raises(ValueError, match="y_true has 3 values but y_pred has 2"):
        plots.scatter_figure([1.0, 2.0, 3.0], [1.0, 2.0])


def test_loss_curves_sort_steps_and_keep_the_latest_repeat(tmp_path: Path) -> None:
    history = {
        "train_loss": [(0, 1.0), (2, 0.5), (1, 0.8)],
        # A resumed run logs epoch 1 again: the later value is the one that counts.
        "val_loss": [(0, 1.1), (1, 0.95), (1, 0.9), (2, 0.7)],
        "val_accuracy": [(0, 0.4), (1, 0.6), (2, 0.8)],
    }
    figure = plots.loss_curves_figure(history, title="run 'first'")
    losses, others = figure.axes
    lines = {line.get_label(): line for line in losses.lines}
    assert set(lines) == {"train_loss", "val_loss"}
    np.testing.assert_array_equal(lines["train_loss"].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(lines["train_loss"].get_ydata(), [1.0, 0.8, 0.5])
    np.testing.assert_allclose(lines["val_loss"].get_ydata(), [1.1, 0.9, 0.7])
    assert [line.get_label() for line in others.lines] == ["val_accuracy"]
    assert figure.get_suptitle() == "run 'first'"

    path = plots.save_figure(figure, tmp_path / "curves.png")
    assert png_size(path) == (700, 400)


def test_loss_curves_of_nothing_say_so() -> None:
    figure = plots.loss_curves_figure({"val_loss": []})
    assert len(figure.axes) == 1
    assert [text.get_text() for text in figure.axes[0].texts] == ["no metrics recorded"]
    with pytest.raises(ValueError, match=r"must be \(step, value\)"):
        plots.loss_curves_figure({"val_loss": [(0, 1.0, 2.0)]})


def test_save_figure_replaces_a_file_only_with_a_whole_one(tmp_path: Path) -> None:
    from matplotlib.artist import Artist

    path = plots.save_figure(plots.loss_curves_figure({"loss": [(0, 1.0)]}), tmp_path / "a.png")
    before = path.read_bytes()

    class Unrenderable(Artist):
        def draw(self, renderer: object) -> None:
            raise RuntimeError("cannot draw this")

    broken = plots.scatter_figure([1.0], [1.0])
    broken.add_artist(Unrenderable())
    with pytest.raises(RuntimeError, match="cannot draw this"):
        plots.save_figure(broken, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # no partial file left


@pytest.mark.parametrize(
    ("name", "dpi", "message"),
    [("figure.jpg", 100, "writes PNG files"), ("figure.png", 0, "dpi must be a positive")],
)
def test_save_figure_refuses_bad_arguments(
    tmp_path: Path, name: str, dpi: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plots.save_figure(plots.scatter_figure([1.0], [1.0]), tmp_path / name, dpi=dpi)
    assert list(tmp_path.iterdir()) == []
