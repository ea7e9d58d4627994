"""`make demo` end to end, small: generated sample -> bag -> replay_node -> segmenter_node
-> evaluator_node, three real processes; every instance must come back evaluated."""

from __future__ import annotations

import json
from pathlib import Path

from picosam2_ros.demo import main


def test_the_replay_demo_evaluates_every_instance(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    from picosam2_ros.testing.models import build_colour_match_model

    model = build_colour_match_model(model_dir / "colour.onnx")
    assert main(["--out", str(tmp_path / "demo"), "--images", "4", "--model", str(model)]) == 0
    report = json.loads((tmp_path / "demo" / "report" / "report.json").read_text())
    assert (
        report["counts"]["instances_evaluated"] == report["counts"]["ground_truth_instances"] == 12
    )
    # The colour model segments each flat object exactly inside the paper's crop.
    assert report["summary"]["paper_crop"]["miou"] > 0.99
    for plot in ("iou_histogram.png", "category_miou.png", "overlays.png"):
        assert (tmp_path / "demo" / "report" / plot).stat().st_size > 1000
