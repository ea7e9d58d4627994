"""Evaluator accounting, report contents and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from picosam2_ros.bags.layout import PromptSpec
from picosam2_ros.bags.reader import DatasetInfo
from picosam2_ros.core.geometry import Roi
from picosam2_ros.evaluation import (
    CroppedMask,
    EvaluationSession,
    Evaluator,
    GroundTruthInstance,
    Prediction,
    build_report,
    write_report,
)
from picosam2_ros.evaluation.report import format_summary, latency_stats, protocol_metrics

W, H = 120, 100
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def box(x0: int, y0: int, x1: int, y1: int) -> CroppedMask:
    return CroppedMask(Roi(x0, y0, x1 - x0, y1 - y0), np.ones((y1 - y0, x1 - x0), bool))


def gt(oid: int, mask: CroppedMask, category: int | None = None) -> GroundTruthInstance:
    cx, cy = mask.roi.x + mask.roi.width // 2, mask.roi.y + mask.roi.height // 2
    return GroundTruthInstance(oid, mask, PromptSpec(point=(cx, cy)), category)


def info_json() -> str:
    return json.dumps(
        {
            "format": "picosam2_ros/coco-bag",
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            "frames": [
                {
                    "stamp_ns": 10,
                    "image_id": 1,
                    "objects": [
                        {"object_id": 1, "category_id": 1, "area": 100},
                        {"object_id": 2, "category_id": 2, "area": 100},
                    ],
                },
                {
                    "stamp_ns": 20,
                    "image_id": 2,
                    "objects": [{"object_id": 3, "category_id": 2, "area": 100}],
                },
            ],
        }
    )


def test_paper_map_and_miou_hand_computed() -> None:
    m = protocol_metrics([1.0, 0.5, 0.0])
    assert m["miou"] == pytest.approx(0.5)
    # t = 0.50: 2 of 3 reach it; t = 0.55 ... 0.95 (9 thresholds): 1 of 3.
    assert m["paper_map"] == pytest.approx((2 / 3 + 9 / 3) / 10)
    assert protocol_metrics([])["miou"] is None


def test_latency_stats() -> None:
    stats = latency_stats(np.arange(1, 101, dtype=float))
    assert stats["count"] == 100
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["mean"] == pytest.approx(50.5)
    assert latency_stats([])["p50"] is None


def test_matching_and_accounting() -> None:
    ev = Evaluator()
    # A result before its ground truth waits and is matched when the truth arrives.
    assert ev.add_result(10, W, H, [Prediction(1, box(10, 10, 20, 20))], inference_ms=2.0) == []
    records = ev.add_ground_truth(
        10, W, H, [gt(1, box(10, 10, 20, 20)), gt(2, box(50, 50, 60, 70))]
    )
    assert [(r.object_id, r.iou_crop, r.iou_full) for r in records] == [(1, 1.0, 1.0)]
    # Frame 20: object 3 half right, plus an object the ground truth does not have.
    ev.add_ground_truth(20, W, H, [gt(3, box(0, 0, 20, 10))])
    ev.add_result(20, W, H, [Prediction(3, box(0, 0, 10, 10)), Prediction(99, box(0, 0, 2, 2))])
    ev.add_result(20, W, H, [Prediction(3, box(0, 0, 20, 10))])  # duplicate: ignored
    # Frame 30: ground truth only. Frame 40: a result for a stamp never seen.
    ev.add_ground_truth(30, W, H, [gt(4, box(0, 0, 5, 5)), gt(5, box(9, 9, 12, 12))])
    ev.add_result(40, W, H, [Prediction(7, box(0, 0, 3, 3)), Prediction(8, box(0, 0, 3, 3))])
    counts = ev.counts()
    assert counts == {
        "ground_truth_frames": 3,
        "ground_truth_instances": 5,
        "result_frames": 3,
        "result_instances": 5,
        "frames_evaluated": 2,
        "instances_evaluated": 2,
        "frames_without_result": 1,
        "instances_missing": 3,
        "instances_missing_in_evaluated_frames": 1,
        "instances_missing_in_frames_without_result": 2,
        "instances_unmatched": 1,
        "results_for_unseen_stamps_frames": 1,
        "results_for_unseen_stamps_instances": 2,
        "duplicate_result_frames": 1,
        "duplicate_ground_truth_frames": 0,
        "image_size_mismatches": 0,
    }
    assert [r.iou_full for r in ev.records] == [1.0, 0.5]
    listed = ev.listed()
    assert {"stamp_ns": 10, "object_id": 2} in listed["missing"]
    assert {"stamp_ns": 30, "object_id": 5} in listed["missing"]
    assert listed["unmatched"] == [{"stamp_ns": 20, "object_id": 99}]
    assert listed["unseen_stamps"] == [{"stamp_ns": 40}]


def test_pending_results_are_bounded_and_counted() -> None:
    ev = Evaluator(max_pending_frames=2)
    for stamp in (1, 2, 3):
        ev.add_result(stamp, W, H, [Prediction(1, box(0, 0, 2, 2))])
    c = ev.counts()
    assert c["results_for_unseen_stamps_frames"] == 3
    assert c["results_for_unseen_stamps_instances"] == 3


def _session() -> EvaluationSession:
    session = EvaluationSession(overlay_count=2)
    session.set_dataset_info_json(info_json())
    ev = session.evaluator
    image = np.full((H, W, 3), 128, np.uint8)
    ev.add_ground_truth(10, W, H, [gt(1, box(10, 10, 20, 20)), gt(2, box(50, 40, 90, 90))])
    preds = [Prediction(1, box(10, 10, 20, 15)), Prediction(2, box(50, 40, 90, 90))]
    ev.add_result(10, W, H, preds, inference_ms=3.0, image=image)
    ev.add_ground_truth(20, W, H, [gt(3, box(0, 0, 30, 40))])
    ev.add_result(20, W, H, [Prediction(3, CroppedMask.empty(), status=1)], inference_ms=5.0)
    return session


def test_report_contents(tmp_path: Path) -> None:
    session = _session()
    report = build_report(session.evaluator, source={"tool": "test"}, wall_s=2.0)
    s = report["summary"]
    assert s["count"] == 3
    assert s["paper_crop"]["miou"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert s["full_frame"]["miou"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert s["paper_crop"]["paper_map"] == pytest.approx((2 / 3 + 9 / 3) / 10)
    cats = {c["name"]: c for c in report["by_category"]}
    assert set(cats) == {"cat", "dog"}
    assert cats["cat"]["paper_crop"]["miou"] == pytest.approx(0.5)
    assert cats["dog"]["count"] == 2
    assert cats["dog"]["full_frame"]["miou"] == pytest.approx(0.5)
    # Areas 100 (small), 2000 (medium), 1200 (medium).
    assert report["by_size"]["small"]["count"] == 1
    assert report["by_size"]["medium"]["count"] == 2
    assert report["by_size"]["large"]["paper_crop"]["miou"] is None
    assert report["statuses"] == {"empty": 1, "ok": 2}
    assert report["latency_ms"]["inference"]["p50"] == pytest.approx(4.0)
    assert report["throughput"]["instances_per_s"] == pytest.approx(1.5)
    assert sum(report["histogram"]["paper_crop"]) == 3
    assert report["histogram"]["paper_crop"][0] == 1  # the empty prediction
    assert report["histogram"]["paper_crop"][-1] == 1  # IoU 1.0 lands in the last bin
    assert "NOT COCO AP" in report["protocol"]["note"]
    inst = {(i["stamp_ns"], i["object_id"]): i for i in report["instances"]}
    assert inst[(10, 1)]["category"] == "cat"
    assert inst[(20, 3)]["status"] == "empty"
    path = write_report(report, tmp_path / "out")
    loaded = json.loads(path.read_text(encoding="utf-8"))  # strict JSON: None, no NaN
    assert loaded["by_size"]["large"]["paper_crop"]["miou"] is None
    assert loaded["summary"] == json.loads(json.dumps(report["summary"]))
    text = format_summary(report)
    assert "paper_map" in text and "not COCO AP" in text and "small" in text


def test_plots_are_written(tmp_path: Path) -> None:
    session = _session()
    report, files = session.write(tmp_path / "rep", source={"tool": "test"})
    names = sorted(f.name for f in files)
    assert names == ["category_miou.png", "iou_histogram.png", "overlays.png", "report.json"]
    for f in files:
        assert f.stat().st_size > 1000
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == PNG_MAGIC
    assert report["plots"] == ["iou_histogram.png", "category_miou.png", "overlays.png"]
    # Best first, worst first; the frame without image got a grey tile.
    assert [t.object_id for t in session.overlays.best] == [2, 1]  # type: ignore[union-attr]
    assert [t.object_id for t in session.overlays.worst] == [3, 1]  # type: ignore[union-attr]
    assert not session.overlays.worst[0].has_image  # type: ignore[union-attr]


def test_empty_report_still_writes(tmp_path: Path) -> None:
    session = EvaluationSession()
    report, files = session.write(tmp_path / "empty")
    assert report["summary"]["paper_crop"]["miou"] is None
    assert [f.name for f in files] == ["report.json", "iou_histogram.png"]
    assert DatasetInfo.from_json(info_json()).category_name(3) == "dog"
