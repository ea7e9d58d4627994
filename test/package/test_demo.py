"""`make demo` end to end: the shipped photographs -> bag -> replay_node ->
segmenter_node (the whole object from one click) -> evaluator_node, three real
processes, with the shipped models; every instance must come back evaluated and drawn.
And the same on generated flat shapes with the paper's single crop, where the
colour-match test model's masks are exact."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from picosam2_ros.demo import main
from picosam2_ros.resources import resolve_model_paths
from picosam2_ros.testing.models import build_colour_match_model

#: The shipped photographs with annotations (2 of the 11 have none): COCO image ids.
ANNOTATED_PHOTOS = {6818, 41888, 252219, 303818, 331352, 397133, 403385, 456496, 458054}


@pytest.mark.skipif(
    not resolve_model_paths("", "", whole_object=True)["point"].is_file(),
    reason="the shipped zoom model is not in this installation",
)
def test_the_demo_on_the_shipped_photographs(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["--out", str(out)]) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    counts = report["counts"]
    assert counts["instances_evaluated"] == counts["ground_truth_instances"] == 67
    # The whole object from one click on real photographs: above the single 96-px crop's
    # full-frame mIoU on these 67 instances (0.340), most of all on large objects, which
    # the single crop cuts to its square (0.215).
    summary = report["summary"]
    assert summary["full_frame"]["miou"] > 0.36
    assert report["by_size"]["large"]["full_frame"]["miou"] > 0.24
    for plot in ("iou_histogram.png", "category_miou.png", "overlays.png"):
        assert (out / "report" / plot).stat().st_size > 1000
    figures = {int(p.stem): p for p in (out / "overlays").glob("*.png")}
    assert set(figures) == ANNOTATED_PHOTOS
    for path in figures.values():
        figure = cv2.imread(str(path))
        assert figure is not None and figure.shape[1] > figure.shape[0]  # two panels
        half = figure.shape[1] // 2
        left, right = figure[40:, :half], figure[40:, half : 2 * half]
        # The masks from the clicks and the ground truth are not the same picture.
        assert (cv2.absdiff(left, right) > 40).mean() > 0.01


def test_the_demo_on_generated_shapes_is_exact_with_the_colour_model(tmp_path: Path) -> None:
    model = build_colour_match_model(tmp_path / "colour.onnx")
    out = tmp_path / "demo"
    assert (
        main(["--out", str(out), "--synthetic", "4", "--model", str(model), "--single-crop"]) == 0
    )
    report = json.loads((out / "report" / "report.json").read_text())
    counts = report["counts"]
    assert counts["instances_evaluated"] == counts["ground_truth_instances"] == 12
    # The colour model segments each flat object exactly inside the paper's crop.
    assert report["summary"]["paper_crop"]["miou"] > 0.99
    assert len(list((out / "overlays").glob("*.png"))) == 4
