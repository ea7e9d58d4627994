"""PNG plots of a report: IoU histogram (both protocols), per-category mIoU bars, and a
grid of the best and worst overlays. matplotlib's object API with the Agg canvas: no
pyplot state, no display needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from picosam2_ros.evaluation.overlays import OverlayCollector, Tile

HISTOGRAM_FILE = "iou_histogram.png"
CATEGORY_FILE = "category_miou.png"
OVERLAY_FILE = "overlays.png"
#: Categories shown in the bar chart (the most frequent ones).
MAX_CATEGORY_BARS = 40


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(str(path), dpi=100)
    return path


def plot_histogram(report: Mapping[str, Any], path: Path) -> Path:
    """Per-instance IoU histogram, paper crop and full frame side by side."""
    edges = np.asarray(report["histogram"]["edges"], dtype=np.float64)
    width = float(edges[1] - edges[0])
    fig = Figure(figsize=(7.0, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    labels = {"paper_crop": "paper crop", "full_frame": "full frame"}
    for i, (key, colour) in enumerate((("paper_crop", "tab:blue"), ("full_frame", "tab:orange"))):
        counts = np.asarray(report["histogram"][key], dtype=np.float64)
        miou = report["summary"][key]["miou"]
        label = f"{labels[key]} (mIoU {miou:.3f})" if miou is not None else labels[key]
        ax.bar(
            edges[:-1] + i * width / 2,
            counts,
            width=width / 2,
            align="edge",
            color=colour,
            label=label,
        )
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("IoU per instance")
    ax.set_ylabel("instances")
    ax.set_title(f"IoU histogram ({report['summary']['count']} instances)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def plot_categories(report: Mapping[str, Any], path: Path) -> Path:
    """Per-category mIoU bars (both protocols), the most frequent categories."""
    cats = sorted(report["by_category"], key=lambda c: -int(c["count"]))[:MAX_CATEGORY_BARS]
    names = [f"{c['name'] or c['category_id'] or 'unknown'} ({c['count']})" for c in reversed(cats)]
    crop = [c["paper_crop"]["miou"] or 0.0 for c in reversed(cats)]
    full = [c["full_frame"]["miou"] or 0.0 for c in reversed(cats)]
    fig = Figure(figsize=(7.0, 1.2 + 0.28 * max(1, len(cats))))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(cats), dtype=np.float64)
    ax.barh(y + 0.2, crop, height=0.4, color="tab:blue", label="paper crop")
    ax.barh(y - 0.2, full, height=0.4, color="tab:orange", label="full frame")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("mIoU")
    shown = len(cats)
    total = len(report["by_category"])
    what = f"the {shown} most frequent of {total} categories" if shown < total else "categories"
    ax.set_title(f"mIoU per category ({what}; instances in brackets)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _draw_tiles(
    fig: Figure,
    tiles: Sequence[Tile],
    row: int,
    rows: int,
    cols: int,
    title: str,
    names: Mapping[int, str],
) -> None:
    for i in range(cols):
        ax = fig.add_subplot(rows, cols, row * cols + i + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(tiles):
            ax.set_axis_off()
            continue
        tile = tiles[i]
        ax.imshow(tile.render(), interpolation="nearest")
        if tile.point is not None:
            ax.plot([tile.point[0]], [tile.point[1]], marker="+", color="yellow", markersize=8)
        cat = names.get(tile.category_id, "") if tile.category_id is not None else ""
        ax.set_title(
            f"{tile.iou_crop:.2f} / {tile.iou_full:.2f}\n#{tile.object_id} {cat}", fontsize=7
        )
        if i == 0:
            ax.set_ylabel(title, fontsize=8)


def plot_overlays(
    collector: OverlayCollector, path: Path, category_names: Mapping[int, str] | None = None
) -> Path | None:
    """Best (top row) and worst (bottom row) instances: the paper crop with the
    prediction tinted red and the ground truth outlined green; titles give IoU
    crop / full. None when there is no tile."""
    best, worst = collector.best, collector.worst
    if not best and not worst:
        return None
    cols = max(len(best), len(worst))
    fig = Figure(figsize=(1.6 * cols, 4.2))
    names = dict(category_names or {})
    _draw_tiles(fig, best, 0, 2, cols, "best", names)
    _draw_tiles(fig, worst, 1, 2, cols, "worst", names)
    fig.suptitle(
        "best (top) and worst (bottom) by paper-crop IoU; red = prediction, green = ground truth",
        fontsize=8,
    )
    fig.tight_layout()
    return _save(fig, path)


def write_plots(
    report: Mapping[str, Any],
    out_dir: Path | str,
    overlays: OverlayCollector | None = None,
    category_names: Mapping[int, str] | None = None,
) -> list[Path]:
    """Write the plots into ``out_dir`` (created); returns the files written. The
    category chart needs at least one instance; the overlay grid a collector with tiles."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = [plot_histogram(report, folder / HISTOGRAM_FILE)]
    if report["by_category"]:
        written.append(plot_categories(report, folder / CATEGORY_FILE))
    if overlays is not None:
        grid = plot_overlays(overlays, folder / OVERLAY_FILE, category_names)
        if grid is not None:
            written.append(grid)
    return written
