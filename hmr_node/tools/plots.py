"""Benchmark and training figures as PNG files (matplotlib, Agg, no display needed).

Each function draws one figure, writes it to ``path`` (parent directories created; written
to a temporary file and renamed, so a half-written PNG is never left behind), and returns
the path. Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas rather
than through ``pyplot``, so they touch no global matplotlib state and work without a display.
Image size is exactly ``size_px`` (width, height) pixels.
"""
from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hmr_node.tools.report import atomic_open

DPI = 100


def _figure(size_px: tuple[int, int]) -> Figure:
    if (len(size_px) != 2 or any(not isinstance(v, (int, np.integer)) or v < 50
                                 for v in size_px)):
        raise ValueError(f"size_px must be (width, height) in pixels, each >= 50, got {size_px!r}")
    figure = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike) -> pathlib.Path:
    """Write ``figure`` as PNG to ``path`` atomically; returns the path."""
    target = pathlib.Path(path)
    with atomic_open(target, "wb") as handle:
        figure.savefig(handle, format="png", dpi=DPI)
    return target


def _as_array(name: str, value, shape_text: str, ndim: int, last: int | None = None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numbers of shape {shape_text}, got {value!r}") from error
    if array.ndim != ndim or array.shape[0] == 0 or (last is not None and array.shape[-1] != last):
        raise ValueError(f"{name} must have shape {shape_text}, got {array.shape}")
    return array


def _check_mapping(name: str, value) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of name -> array, got {type(value).__name__}")


def plot_trajectory_topview(path: str | os.PathLike, gt_xy: Mapping[str, np.ndarray],
                            est_xy: Mapping[str, np.ndarray], title: str, *,
                            size_px: tuple[int, int] = (800, 800),
                            axis_labels: tuple[str, str] = ("x [m]", "y [m]")) -> pathlib.Path:
    """Top view of ground-truth and estimated trajectories, one colour per track.

    Args:
        path: PNG file to write.
        gt_xy: track name -> (T, 2) ground-truth ground-plane positions (x, y), metres.
        est_xy: track name -> (T', 2) estimated positions, metres; a key of ``gt_xy`` shares
            its colour. Either dict may be empty, not both.
        title: figure title.
        size_px: (width, height) of the image in pixels.
        axis_labels: labels of the horizontal and vertical axes.

    Ground truth is drawn solid, estimates dashed; circles mark starts and crosses ends.
    Axes have equal scale.
    """
    _check_mapping("gt_xy", gt_xy)
    _check_mapping("est_xy", est_xy)
    if not gt_xy and not est_xy:
        raise ValueError("gt_xy and est_xy are both empty: nothing to plot")
    tracks = list(dict.fromkeys([*gt_xy, *est_xy]))
    colours = {track: f"C{i % 10}" for i, track in enumerate(tracks)}

    figure = _figure(size_px)
    axes = figure.add_subplot()
    for arg, series, label, style in (("gt_xy", gt_xy, "ground truth", "-"),
                                      ("est_xy", est_xy, "estimate", "--")):
        for track, xy in series.items():
            points = _as_array(f"{arg}[{track!r}]", xy, "(T, 2)", ndim=2, last=2)
            colour = colours[track]
            axes.plot(points[:, 0], points[:, 1], style, color=colour, linewidth=1.6,
                      label=f"{track} {label}")
            axes.plot(points[0, 0], points[0, 1], "o", color=colour, markersize=6)
            axes.plot(points[-1, 0], points[-1, 1], "x", color=colour, markersize=8)
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_xlabel(axis_labels[0])
    axes.set_ylabel(axis_labels[1])
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def plot_per_joint_errors(path: str | os.PathLike, errors_mm: Mapping[str, np.ndarray],
                          joint_names: Sequence[str], title: str, *,
                          size_px: tuple[int, int] = (1400, 600)) -> pathlib.Path:
    """Grouped bar chart of per-joint errors, one bar colour per method.

    Args:
        path: PNG file to write.
        errors_mm: method name -> (J,) mean error of each joint, mm (non-empty dict).
        joint_names: J joint names, in the order of the error arrays (e.g.
            ``SMPL_JOINT_NAMES``).
        title: figure title.
        size_px: (width, height) of the image in pixels.

    The legend gives each method's mean over joints.
    """
    _check_mapping("errors_mm", errors_mm)
    if not errors_mm:
        raise ValueError("errors_mm is empty: nothing to plot")
    names = [str(name) for name in joint_names]
    count = len(names)
    if count == 0:
        raise ValueError("joint_names is empty")
    errors = {method: _as_array(f"errors_mm[{method!r}]", values, f"({count},)", ndim=1)
              for method, values in errors_mm.items()}
    for method, values in errors.items():
        if values.shape != (count,):
            raise ValueError(f"errors_mm[{method!r}] must have shape ({count},) to match "
                             f"joint_names, got {values.shape}")

    figure = _figure(size_px)
    axes = figure.add_subplot()
    positions = np.arange(count)
    width = 0.8 / len(errors)
    for i, (method, values) in enumerate(errors.items()):
        offset = (i - (len(errors) - 1) / 2.0) * width
        axes.bar(positions + offset, values, width=width, color=f"C{i % 10}",
                 label=f"{method} (mean {np.nanmean(values):.1f} mm)")
    axes.set_xticks(positions, names, rotation=60, ha="right", rotation_mode="anchor")
    axes.set_xlim(-0.6, count - 0.4)
    axes.set_ylabel("error [mm]")
    axes.set_title(title)
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    return _save(figure, path)


def plot_training_curve(path: str | os.PathLike, steps: Sequence[float],
                        values: Mapping[str, Sequence[float]], title: str,
                        log_y: bool = True, *,
                        size_px: tuple[int, int] = (900, 500)) -> pathlib.Path:
    """Training curves: one line per series against the optimisation step.

    Args:
        path: PNG file to write.
        steps: (S,) step numbers.
        values: series name -> (S,) values at ``steps`` (e.g. ``{"train": ..., "val": ...}``);
            NaN marks a step where the series was not logged, and the line joins the logged
            points.
        title: figure title.
        log_y: logarithmic y axis (then every logged value must be > 0).
        size_px: (width, height) of the image in pixels.
    """
    _check_mapping("values", values)
    if not values:
        raise ValueError("values is empty: nothing to plot")
    x = _as_array("steps", steps, "(S,)", ndim=1)
    series = {}
    for name, ys in values.items():
        y = _as_array(f"values[{name!r}]", ys, f"({x.size},)", ndim=1)
        if y.shape != x.shape:
            raise ValueError(f"values[{name!r}] must have shape {x.shape} like steps, got {y.shape}")
        logged = np.isfinite(y)
        if log_y and np.any(y[logged] <= 0):
            raise ValueError(f"values[{name!r}] has values <= 0, which a log axis cannot show; "
                             "pass log_y=False")
        series[name] = (x[logged], y[logged])

    figure = _figure(size_px)
    axes = figure.add_subplot()
    for i, (name, (xs, ys)) in enumerate(series.items()):
        axes.plot(xs, ys, color=f"C{i % 10}", linewidth=1.4, label=name,
                  marker="o" if xs.size <= 30 else None, markersize=3)
    if log_y:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return _save(figure, path)
