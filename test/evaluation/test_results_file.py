"""picosam2-evaluate --results: COCO-style result files scored on a COCO-format data set
(a tiny generated set and result files written here; the PicoSAM2 authors' own files
where ../shared is present), and --exclude-images on both of its paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from picosam2_ros.bags.coco import CocoDataset
from picosam2_ros.bags.layout import PromptSpec
from picosam2_ros.core.geometry import paper_point_crop
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.evaluation import CroppedMask, Evaluator, GroundTruthInstance, Prediction
from picosam2_ros.tools import evaluate

from ..tiny_coco import TinySet

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLE = SHARED / "coco-val2017-sample"
OFFICIAL = SHARED / "picosam2-official"


def rle(mask: np.ndarray) -> dict[str, Any]:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode()}


def run_cli(args: list[str]) -> int:
    return evaluate.main([*args, "--no-progress"])


def read_report(folder: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return report


def paper_crop_of(dataset: CocoDataset, image_id: int, object_id: int) -> tuple[Any, np.ndarray]:
    """(paper crop, full-frame ground-truth mask) of one annotation."""
    image = dataset.images[image_id]
    every = set(dataset.categories)
    inst = next(i for i in dataset.instances(image, category_ids=every) if i.object_id == object_id)
    assert inst.prompt.point is not None
    x, y = inst.prompt.point
    return paper_point_crop(x, y, image.width, image.height), inst.mask


def test_scores_full_frame_and_crop_sized_results(
    tiny_set: TinySet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = CocoDataset.load(tiny_set.annotations)
    (a1, a2, a3), (b1,), (c1, c2, c3), _ = tiny_set.object_ids
    results: list[dict[str, Any]] = []
    expected_full: dict[int, float] = {}
    expected_crop: dict[int, float] = {}

    # Image 1, by file order: exact full-frame mask; the left half of the mask; nothing.
    _, m1 = paper_crop_of(dataset, 1, a1)
    crop2, m2 = paper_crop_of(dataset, 1, a2)
    cols = np.nonzero(m2.any(axis=0))[0]
    half = m2.copy()
    half[:, (cols[0] + cols[-1]) // 2 :] = False
    results += [
        {"image_id": 1, "segmentation": rle(m1), "score": 0.9, "category_id": 1},
        {"image_id": 1, "segmentation": rle(half), "score": 0.5, "category_id": 1},
        {"image_id": 1, "segmentation": rle(np.zeros_like(m1)), "category_id": 1},
    ]
    expected_full |= {a1: 1.0, a2: mask_iou(half, m2), a3: 0.0}
    expected_crop[a2] = mask_iou(half[crop2.slices], m2[crop2.slices])
    # Image 2: a crop-sized 96x96 result, the ground truth cut to the paper crop and
    # resized nearest as the paper does: exact at the crop's own resolution.
    crop, m = paper_crop_of(dataset, 2, b1)
    on_crop = cv2.resize(m[crop.slices].astype(np.uint8), (96, 96), cv2.INTER_NEAREST) > 0
    results.append({"image_id": 2, "segmentation": rle(on_crop), "category_id": 1})
    expected_crop[b1] = 1.0
    # Image 3: results named by annotation id, out of order; one names a missing id.
    _, m3 = paper_crop_of(dataset, 3, c3)
    _, m1c = paper_crop_of(dataset, 3, c1)
    results += [
        {"image_id": 3, "annotation_id": c3, "segmentation": rle(m3)},
        {"image_id": 3, "annotation_id": c1, "segmentation": rle(m1c)},
        {"image_id": 3, "annotation_id": c1, "segmentation": rle(np.zeros_like(m1c))},
        {"image_id": 3, "annotation_id": 999999, "segmentation": rle(m1c)},
    ]
    expected_full |= {c1: 1.0, c3: 1.0}
    # Image 4 has no result; a result for an image the data set lacks; one too many.
    results += [
        {"image_id": 77, "segmentation": rle(np.ones((5, 5), bool))},
        {"image_id": 2, "segmentation": rle(on_crop)},
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")

    out = tmp_path / "report"
    args = ["--results", str(path), "--annotations", str(tiny_set.annotations)]
    assert run_cli([*args, "--images", str(tiny_set.images), "--report", str(out)]) == 0
    printed = capsys.readouterr().out
    report = read_report(out)
    by_id = {i["object_id"]: i for i in report["instances"]}
    assert set(by_id) == {a1, a2, a3, b1, c1, c3}
    for oid, iou in expected_full.items():
        assert by_id[oid]["iou_full"] == pytest.approx(iou, abs=1e-9), oid
    for oid, iou in expected_crop.items():
        assert by_id[oid]["iou_crop"] == pytest.approx(iou, abs=1e-9), oid
    assert by_id[a3]["iou_crop"] == 0.0 and by_id[a1]["iou_crop"] == 1.0
    assert by_id[a1]["score"] == pytest.approx(0.9)
    # The crop-sized mask, resized back onto the crop, is the ground truth inside it.
    crop_b, m_b = paper_crop_of(dataset, 2, b1)
    assert by_id[b1]["crop"] == [crop_b.x, crop_b.y, crop_b.width, crop_b.height]
    assert by_id[b1]["predicted_area"] > 0.9 * np.count_nonzero(m_b[crop_b.slices])
    # Categories come from the data set, not from the results (all 1 here).
    assert by_id[a2]["category"] == ("odd" if a2 % 2 == 0 else "even")
    counts = report["counts"]
    assert counts["instances_evaluated"] == 6
    assert counts["instances_missing"] == tiny_set.instances - 6  # image 3's c2, image 4's
    assert counts["frames_without_result"] == 1
    missing = {m["object_id"] for m in report["listed"]["missing"]}
    assert missing == {c2, *tiny_set.object_ids[3]}
    source = report["source"]["results"]
    assert source["entries"] == len(results) and source["matched"] == 6
    assert source["not_scored"] == {
        "a second result for one annotation": 1,
        "beyond the image's non-crowd annotations": 1,
        "for an annotation the data set cannot score": 1,
        "for an image not in the data set": 1,
    }
    assert "not scored 1: for an image not in the data set" in printed
    ious = [i["iou_crop"] for i in report["instances"]]
    assert report["summary"]["paper_crop"]["miou"] == pytest.approx(np.mean(ious))
    assert (out / "overlays.png").stat().st_size > 1000

    # Leaving images out: their instances and results are not scored, and said so.
    out2 = tmp_path / "report2"
    assert run_cli([*args, "--exclude-images", "1", "3", "--report", str(out2)]) == 0
    report2 = read_report(out2)
    assert {i["object_id"] for i in report2["instances"]} == {b1}
    assert report2["counts"]["ground_truth_instances"] == 1 + len(tiny_set.object_ids[3])
    assert report2["source"]["exclude_images"] == [1, 3]
    assert (
        report2["source"]["results"]["not_scored"]["for an excluded image (--exclude-images)"] == 7
    )


def test_bad_result_files_and_options(
    tiny_set: TinySet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rep = ["--report", str(tmp_path / "rep")]
    ann = ["--annotations", str(tiny_set.annotations)]

    def fails(args: list[str], words: str, code: int = evaluate.EXIT_BAD_INPUT) -> None:
        assert run_cli([*args, *rep]) == code
        assert words in capsys.readouterr().err

    def written(name: str, content: str) -> str:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return str(path)

    fails(["--results", str(tmp_path / "none.json"), *ann], "result file not found")
    fails(["--results", written("a.json", "{nope"), *ann], "not valid JSON")
    fails(["--results", written("b.json", '{"image_id": 1}'), *ann], "a JSON list of results")
    fails(["--results", written("c.json", '[{"segmentation": {}}]'), *ann], "integer 'image_id'")
    fails(["--results", written("d.json", '[{"image_id": 1}]'), *ann], "has no 'segmentation'")
    bad_rle = '[{"image_id": 1, "segmentation": {"size": [96, 96], "counts": 5}}]'
    fails(["--results", written("e.json", bad_rle), *ann], "result [0] (image 1)")
    good = written("f.json", "[]")
    fails(["--results", good], "--results needs --annotations")
    fails(["--results", good, *ann, "--model", "m.onnx"], "apply to --bag")
    fails(["--results", good, "--annotations", str(tmp_path / "x.json")], "not found")
    fails(["--results", good, *ann], "no result matched", evaluate.EXIT_NOTHING_EVALUATED)
    for wrong in (
        ["--results", good, "--bag", "b"],
        [*ann],
        ["--results", good, "--exclude-images", "nope"],
    ):
        with pytest.raises(SystemExit) as exc:
            evaluate.main(wrong)
        assert exc.value.code == 2
    assert "neither an image id" in capsys.readouterr().err


def test_exclude_images_on_the_bag_path(
    tiny_set: TinySet, tiny_bag: Path, colour_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    args = ["--bag", str(tiny_bag), "--model", str(colour_model), "--no-plots"]
    assert run_cli([*args, "--exclude-images", "2", "4", "--report", str(out)]) == 0
    report = read_report(out)
    kept = {*tiny_set.object_ids[0], *tiny_set.object_ids[2]}
    assert {i["object_id"] for i in report["instances"]} == kept
    assert report["counts"]["ground_truth_frames"] == 2
    assert report["source"]["frames_excluded"] == 2
    # An annotation file as the list: all its images.
    assert (
        run_cli([*args, "--exclude-images", str(tiny_set.annotations), "--report", str(out)]) == 1
    )


@pytest.mark.skipif(
    not (SAMPLE / "annotations.json").is_file() or not (OFFICIAL / "Distilled.json").is_file(),
    reason="needs ../shared/data/coco-val2017-sample and picosam2-official (the project's "
    "shared data folder, not shipped with the package)",
)
@pytest.mark.parametrize(
    ("model", "miou", "paper_map"),
    [("Distilled", 0.382, 0.135), ("Quantized", 0.381, 0.135), ("Trained", 0.353, 0.101)],
)
def test_reproduces_the_authors_figures_on_the_validation_sample(
    model: str, miou: float, paper_map: float, tmp_path: Path
) -> None:
    """The authors' own predictions, scored on the 283 non-crowd instances of
    coco-val2017-sample, give the figures their folder's README states."""
    out = tmp_path / model
    args = ["--results", str(OFFICIAL / f"{model}.json")]
    args += ["--annotations", str(SAMPLE / "annotations.json"), "--no-plots"]
    assert run_cli([*args, "--report", str(out)]) == 0
    report = read_report(out)
    assert report["counts"]["instances_evaluated"] == 283
    assert report["counts"]["instances_missing"] == 0
    assert round(report["summary"]["paper_crop"]["miou"], 3) == miou
    assert round(report["summary"]["paper_crop"]["paper_map"], 3) == paper_map
    # Without the demo photographs: the other 20 images' 216 instances.
    assert run_cli([*args, "--exclude-images", "demo", "--report", str(out)]) == 0
    assert read_report(out)["counts"]["instances_evaluated"] == 216


def test_crop_sized_masks_are_scored_at_their_own_resolution_on_clipped_crops() -> None:
    """Where the paper crop is clipped at the right border (here 62 px wide), a 96x96
    crop mask is compared with the ground truth cut and resized to 96x96, as the paper
    compares them; the full-frame IoU uses the mask resized back onto the crop."""
    width, height = 120, 100
    truth_frame = np.zeros((height, width), dtype=bool)
    truth_frame[30:70, 95:118] = True
    crop = paper_point_crop(106, 50, width, height)
    assert (crop.width, crop.height) == (62, 96)
    cut = truth_frame[crop.slices].astype(np.uint8)
    native = cv2.resize(cut, (96, 96), interpolation=cv2.INTER_NEAREST) > 0
    guess = native.copy()
    cols = np.nonzero(native.any(axis=0))[0]
    guess[:, : (cols[0] + cols[-1]) // 2] = False  # drops part of the object, at 96x96
    truth = GroundTruthInstance(7, CroppedMask.from_frame(truth_frame), PromptSpec(point=(106, 50)))
    evaluator = Evaluator()
    for mask96, expected in ((native, 1.0), (guess, mask_iou(guess, native))):
        on_crop = cv2.resize(mask96.astype(np.uint8), (crop.width, crop.height), cv2.INTER_NEAREST)
        pred = Prediction(7, CroppedMask(crop, on_crop > 0), crop_mask=mask96)
        record = evaluator.score(0, width, height, truth, pred)
        assert record.iou_crop == pytest.approx(expected)
        assert expected < 1.0 or record.iou_full > 0.9
    # Without the crop-sized mask the same prediction is scored in frame pixels.
    plain = Prediction(7, CroppedMask(crop, cv2.resize(guess.astype(np.uint8), (62, 96)) > 0))
    assert evaluator.score(0, width, height, truth, plain).iou_crop != pytest.approx(
        mask_iou(guess, native)
    )
