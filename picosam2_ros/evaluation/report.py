"""Aggregates of the evaluated instances, the JSON report and its text summary.

Metrics per protocol (``paper_crop``: inside the paper's crop around the prompt;
``full_frame``: the whole masks):
- ``miou``: mean of the per-instance IoUs;
- ``paper_map``: the PicoSAM2 paper's "mAP@[.5:.95]" = the fraction of instances whose
  IoU reaches t, averaged over t = 0.50, 0.55, ..., 0.95. It is NOT COCO AP (no scores,
  no ranking, no false positives); the name says so.
Both per category, per object size (COCO classes by ground-truth area: small < 32^2,
medium < 96^2, large) and per prompt kind; counts of missing and unmatched instances;
latency statistics (p50/p90/p99/mean); an IoU histogram.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from picosam2_ros.core.metrics import PAPER_MAP_THRESHOLDS, mean_iou, paper_map
from picosam2_ros.evaluation.evaluator import STATUS_NAMES, Evaluator
from picosam2_ros.evaluation.protocol import SIZE_CLASSES
from picosam2_ros.evaluation.records import InstanceRecord

REPORT_FORMAT = "picosam2_ros/evaluation-report"
REPORT_VERSION = 1
REPORT_FILE = "report.json"
PROTOCOLS = ("paper_crop", "full_frame")
#: Histogram bin edges of the IoU plots and the report.
HISTOGRAM_EDGES = np.round(np.linspace(0.0, 1.0, 21), 2)
METRIC_NOTE = (
    "paper_map is the PicoSAM2 paper's 'mAP@[.5:.95]': the fraction of instances with "
    "IoU >= t, averaged over t = 0.50:0.05:0.95. It is NOT COCO AP. IoU of an empty "
    "union counts as 1.0. paper_crop: prediction and ground truth restricted to the "
    "paper's crop around the prompt (96 px around a point, clipped at the right/bottom "
    "border; a box prompt's square crop); full_frame: the whole masks."
)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def protocol_metrics(ious: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """``count``, ``miou``, ``paper_map`` and the share at IoU >= 0.5 and >= 0.75 (None
    where there is nothing to average)."""
    arr = np.asarray(ious, dtype=np.float64)
    return {
        "count": int(arr.size),
        "miou": _finite(mean_iou(arr)),
        "paper_map": _finite(paper_map(arr)),
        "iou_ge_0.50": _finite(float((arr >= 0.5).mean())) if arr.size else None,
        "iou_ge_0.75": _finite(float((arr >= 0.75).mean())) if arr.size else None,
    }


def metrics_of(records: Sequence[InstanceRecord]) -> dict[str, Any]:
    """Both protocols' metrics of some records."""
    return {
        "count": len(records),
        "paper_crop": protocol_metrics([r.iou_crop for r in records]),
        "full_frame": protocol_metrics([r.iou_full for r in records]),
    }


def latency_stats(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """``count``, ``mean``, ``p50``, ``p90``, ``p99``, ``min``, ``max`` in the values'
    unit (None when there are none)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {
            "count": 0,
            "mean": None,
            "p50": None,
            "p90": None,
            "p99": None,
            "min": None,
            "max": None,
        }
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def histogram(values: Sequence[float]) -> list[int]:
    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=HISTOGRAM_EDGES)
    return [int(c) for c in counts]


def instance_json(record: InstanceRecord, category: int | None, name: str | None) -> dict[str, Any]:
    return {
        "stamp_ns": record.stamp_ns,
        "object_id": record.object_id,
        "category_id": category,
        "category": name,
        "area": record.area,
        "size": record.size,
        "prompt": record.prompt_kind,
        "crop": [record.crop.x, record.crop.y, record.crop.width, record.crop.height],
        "iou_crop": record.iou_crop,
        "iou_full": record.iou_full,
        "status": STATUS_NAMES.get(record.status, str(record.status)),
        "score": record.score,
        "predicted_area": record.predicted_area,
    }


def build_report(
    evaluator: Evaluator,
    *,
    source: Mapping[str, Any] | None = None,
    wall_s: float | None = None,
    final: bool = True,
    include_instances: bool = True,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring).

    ``wall_s``: seconds the evaluation took end to end, for the throughput figures;
    ``final``: False for a report written while results may still come.
    """
    records = evaluator.records
    names = evaluator.category_names()
    by_category: dict[int | None, list[InstanceRecord]] = defaultdict(list)
    for record in records:
        by_category[evaluator.category_of(record)].append(record)
    categories = []
    for cid in sorted(by_category, key=lambda c: (c is None, c if c is not None else 0)):
        entry = {"category_id": cid, "name": names.get(cid) if cid is not None else None}
        entry.update(metrics_of(by_category[cid]))
        categories.append(entry)
    by_size = {s: metrics_of([r for r in records if r.size == s]) for s in SIZE_CLASSES}
    kinds = sorted({r.prompt_kind for r in records})
    by_prompt = {k: metrics_of([r for r in records if r.prompt_kind == k]) for k in kinds}
    statuses: dict[str, int] = defaultdict(int)
    for record in records:
        statuses[STATUS_NAMES.get(record.status, str(record.status))] += 1
    counts = evaluator.counts()
    throughput: dict[str, Any] = {"wall_s": wall_s}
    if wall_s is not None and wall_s > 0:
        throughput["instances_per_s"] = len(records) / wall_s
        throughput["frames_per_s"] = counts["frames_evaluated"] / wall_s
    latency = {name: latency_stats(v) for name, v in sorted(evaluator.latency_ms.items())}
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created_unix_s": time.time(),
        "final": final,
        "source": dict(source or {}),
        "protocol": {
            "point_crop_side_px": evaluator.protocol.point_side,
            "box_margin": evaluator.protocol.box_margin,
            "paper_map_thresholds": [float(t) for t in PAPER_MAP_THRESHOLDS],
            "size_classes_px": {"small": "< 32^2", "medium": "< 96^2", "large": ">= 96^2"},
            "note": METRIC_NOTE,
        },
        "summary": metrics_of(records),
        "by_size": by_size,
        "by_category": categories,
        "by_prompt": by_prompt,
        "statuses": dict(sorted(statuses.items())),
        "counts": counts,
        "latency_ms": latency,
        "throughput": throughput,
        "histogram": {
            "edges": [float(e) for e in HISTOGRAM_EDGES],
            "paper_crop": histogram([r.iou_crop for r in records]),
            "full_frame": histogram([r.iou_full for r in records]),
        },
        "listed": evaluator.listed(),
    }
    if include_instances:
        report["instances"] = [
            instance_json(
                r,
                evaluator.category_of(r),
                names.get(c) if (c := evaluator.category_of(r)) is not None else None,
            )
            for r in sorted(records, key=lambda r: (r.stamp_ns, r.object_id))
        ]
    return report


def _clean(value: Any) -> Any:
    """NaN and infinities -> None, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_report(report: Mapping[str, Any], out_dir: Path | str) -> Path:
    """Write ``report.json`` into ``out_dir`` (created) atomically; returns its path."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(dict(report)), indent=1, allow_nan=False) + "\n", "utf-8")
    tmp.replace(path)
    return path


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_summary(report: Mapping[str, Any]) -> str:
    """A few lines for the terminal: mIoU and paper_map on both protocols, by size,
    counts, latency and throughput."""
    s = report["summary"]
    c = report["counts"]
    lines = [
        f"instances evaluated: {c['instances_evaluated']} of {c['ground_truth_instances']} "
        f"in {c['frames_evaluated']} of {c['ground_truth_frames']} frames",
        f"  paper crop : mIoU {_fmt(s['paper_crop']['miou'])}   "
        f"paper_map {_fmt(s['paper_crop']['paper_map'])}",
        f"  full frame : mIoU {_fmt(s['full_frame']['miou'])}   "
        f"paper_map {_fmt(s['full_frame']['paper_map'])}",
        "  (paper_map = the paper's 'mAP@[.5:.95]': share of IoU >= t over t = .50:.05:.95;"
        " not COCO AP)",
    ]
    sizes = "   ".join(
        f"{name} {_fmt(m['paper_crop']['miou'])}/{_fmt(m['full_frame']['miou'])} (n={m['count']})"
        for name, m in report["by_size"].items()
    )
    lines.append(f"  mIoU by size (crop/full): {sizes}")
    lines.append(
        f"missing {c['instances_missing']} (frames without result {c['frames_without_result']}),"
        f" unmatched {c['instances_unmatched']}, results for unseen stamps "
        f"{c['results_for_unseen_stamps_instances']} in {c['results_for_unseen_stamps_frames']} "
        f"frame(s), duplicate result frames {c['duplicate_result_frames']}"
    )
    for name, stats in report["latency_ms"].items():
        if stats["count"]:
            lines.append(
                f"latency {name} [ms]: p50 {stats['p50']:.2f}  p90 {stats['p90']:.2f}  "
                f"p99 {stats['p99']:.2f}  mean {stats['mean']:.2f}  (n={stats['count']})"
            )
    t = report["throughput"]
    if t.get("instances_per_s") is not None:
        lines.append(
            f"throughput: {t['instances_per_s']:.1f} instances/s, "
            f"{t['frames_per_s']:.1f} frames/s ({t['wall_s']:.2f} s)"
        )
    return "\n".join(lines)
