"""Class-agnostic recall of segment-everything results, checked against COCOeval."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from picosam2_ros.evaluation.everything import (
    evaluate_image,
    format_everything_summary,
    match_one_to_one,
    summarise,
)
from picosam2_ros.evaluation.masks import CroppedMask

W, H = 120, 90


def _box(x: int, y: int, w: int, h: int) -> np.ndarray:
    out = np.zeros((H, W), dtype=bool)
    out[y : y + h, x : x + w] = True
    return out


def test_recall_counts_instances_any_mask_overlaps() -> None:
    truths = [_box(0, 0, 10, 10), _box(50, 50, 20, 20), _box(90, 10, 4, 4)]
    preds = [
        _box(0, 0, 10, 8),  # IoU 0.8 with truth 0
        _box(50, 50, 20, 12),  # IoU 0.6 with truth 1
        _box(0, 0, 10, 9),  # IoU 0.9 with truth 0: a duplicate
        _box(100, 60, 10, 10),  # on nothing
    ]
    rec = evaluate_image(
        [CroppedMask.from_frame(p) for p in preds],
        [0.9, 0.8, 0.7, 0.6],
        [CroppedMask.from_frame(t) for t in truths],
        W,
        H,
    )
    assert rec.best_iou.tolist() == pytest.approx([0.9, 0.6, 0.0])
    assert rec.false_masks == 1
    summary = summarise([rec])
    assert summary["recall_50"] == pytest.approx(2 / 3)
    assert summary["recall_75"] == pytest.approx(1 / 3)
    assert summary["masks_per_image"] == 4 and summary["false_masks_per_image"] == 1
    # all three truths (100, 400 and 16 px) are small (< 32^2 px)
    assert summary["by_size"]["small"]["instances"] == 3
    assert summary["by_size"]["large"]["recall_50"] is None
    # one-to-one at t = 0.85: the best-scored mask (IoU 0.8) misses truth 0, which the
    # duplicate (IoU 0.9) then takes; at 0.5 the best-scored mask takes truth 0 first
    assert summary["recall_by_iou"]["0.50"] == pytest.approx(2 / 3)
    assert summary["recall_by_iou"]["0.85"] == pytest.approx(1 / 3)
    assert "AR@100" in format_everything_summary(summary)


def test_one_to_one_matching_gives_each_truth_to_one_mask() -> None:
    ious = np.array([[0.9, 0.6], [0.8, 0.1]])
    # mask 0 takes truth 0 (its best); mask 1's best, truth 0, is taken, its next is 0.1
    assert match_one_to_one(ious, 0.5).tolist() == [True, False]
    assert match_one_to_one(np.array([[0.6, 0.9], [0.8, 0.1]]), 0.5).tolist() == [True, True]
    assert match_one_to_one(np.zeros((0, 3)), 0.5).tolist() == [False, False, False]


def _random_blobs(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    out = []
    for _ in range(count):
        w, h = (int(v) for v in rng.integers(3, 50, 2))
        x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        out.append(_box(x, y, w, h))
    return out


def test_average_recall_at_100_equals_cocoeval_without_categories() -> None:
    rng = np.random.default_rng(11)
    images, dts, gts, records = [], [], [], []
    for image_id in range(1, 6):
        truths = _random_blobs(rng, int(rng.integers(2, 8)))
        # predictions: jittered copies of some truths plus noise, more than 100 on one image
        preds = []
        for t in truths:
            shift = int(rng.integers(-4, 5))
            preds.append(np.roll(t, shift, axis=1))
        preds += _random_blobs(rng, 110 if image_id == 3 else 6)
        scores = rng.random(len(preds)).round(6).tolist()
        images.append({"id": image_id, "width": W, "height": H})
        for t in truths:
            rle = mask_utils.encode(np.asfortranarray(t.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            gts.append(
                {
                    "id": len(gts) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": rle,
                    "area": float(t.sum()),
                    "bbox": list(mask_utils.toBbox(rle)),
                    "iscrowd": 0,
                }
            )
        for p, s in zip(preds, scores, strict=True):
            rle = mask_utils.encode(np.asfortranarray(p.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            dts.append({"image_id": image_id, "category_id": 1, "segmentation": rle, "score": s})
        records.append(
            evaluate_image(
                [CroppedMask.from_frame(p) for p in preds],
                scores,
                [CroppedMask.from_frame(t) for t in truths],
                W,
                H,
                image_id,
            )
        )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": gts, "categories": [{"id": 1}]}
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(dts), "segm")
        evaluation.params.useCats = 0
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    coco_ar_100 = float(evaluation.stats[8])  # AR, all areas, maxDets 100
    summary = summarise(records)
    assert summary["instances"] == len(gts)
    assert 0.1 < coco_ar_100 < 0.95  # a case where the matching matters
    assert summary["ar_100"] == pytest.approx(coco_ar_100, abs=1e-9)
    recall = evaluation.eval["recall"]  # [iou, category, area, maxDets]
    assert summary["recall_by_iou"]["0.75"] == pytest.approx(float(recall[5, 0, 0, 2]))


def test_summary_of_nothing_has_no_figures() -> None:
    summary = summarise([])
    assert summary["instances"] == 0 and summary["recall_50"] is None
    assert summary["masks_per_image"] is None
