"""picosam2-evaluate end to end on a generated COCO set, and its bad-input exits."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from picosam2_ros.bags import typestore as ts
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.tools import evaluate

from .conftest import TinySet


def run_cli(args: list[str]) -> int:
    return evaluate.main([*args, "--no-progress"])


def test_end_to_end_report(
    tiny_set: TinySet,
    tiny_bag: Path,
    colour_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "report"
    assert (
        run_cli(["--bag", str(tiny_bag), "--model", str(colour_model), "--report", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "paper crop : mIoU 1.000" in printed
    assert "full frame : mIoU 1.000" in printed
    assert "instances/s" in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["instances_evaluated"] == tiny_set.instances
    assert report["counts"]["instances_missing"] == 0
    assert report["counts"]["instances_unmatched"] == 0
    for protocol in ("paper_crop", "full_frame"):
        assert report["summary"][protocol]["miou"] == pytest.approx(1.0, abs=0.02)
        assert report["summary"][protocol]["paper_map"] == pytest.approx(1.0, abs=0.02)
    assert {c["name"] for c in report["by_category"]} == {"odd", "even"}
    ids = sorted(i["object_id"] for i in report["instances"])
    assert ids == sorted(oid for frame in tiny_set.object_ids for oid in frame)
    assert report["latency_ms"]["inference"]["count"] == len(tiny_set.object_ids)
    assert report["throughput"]["instances_per_s"] > 0
    for name in ("iou_histogram.png", "category_miou.png", "overlays.png"):
        assert (out / name).stat().st_size > 1000


def test_max_images_and_box_prompts(box_bag: Path, colour_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["--bag", str(box_bag), "--model", str(colour_model), "--report", str(out)]
    assert run_cli([*args, "--max-images", "2", "--no-plots"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["frames_evaluated"] == 2
    assert set(report["by_prompt"]) == {"box"}
    assert not (out / "iou_histogram.png").exists()


def _bag_with_only(path: Path, topic: str, messages: int = 1) -> Path:
    store = ts.default_typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(topic, ts.STRING, typestore=store)
        msg = store.types[ts.STRING](data="x")
        for i in range(messages):
            writer.write(conn, 1000 + i, bytes(store.serialize_cdr(msg, ts.STRING)))
    return path


def test_bad_inputs(
    tiny_bag: Path,
    colour_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rep = ["--report", str(tmp_path / "rep")]
    model = ["--model", str(colour_model)]

    def fails(args: list[str], words: str) -> None:
        assert run_cli(args) == evaluate.EXIT_BAD_INPUT
        assert words in capsys.readouterr().err

    fails(["--bag", str(tmp_path / "nope"), *model, *rep], "no such bag")
    (tmp_path / "empty").mkdir()
    fails(["--bag", str(tmp_path / "empty"), *model, *rep], "not a rosbag2")
    other = _bag_with_only(tmp_path / "other", "/chatter")
    fails(["--bag", str(other), *model, *rep], "missing topic")
    silent = _bag_with_only(tmp_path / "silent", "/ground_truth", messages=0)
    fails(["--bag", str(silent), *model, *rep], "reads empty")
    fails(["--bag", str(tiny_bag), "--model", str(tmp_path / "none.onnx"), *rep], "not found")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not an onnx model")
    fails(["--bag", str(tiny_bag), "--model", str(corrupt), *rep], "not a loadable ONNX model")
    monkeypatch.setattr("picosam2_ros.resources.MODELS_DIR", tmp_path / "no_models")
    fails(["--bag", str(tiny_bag), *rep], "pass --model")
    assert not (tmp_path / "rep").exists()
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--help"])
    assert exc.value.code == 0
    assert "NOT COCO AP" in capsys.readouterr().out


def test_everything_finds_every_instance_once(
    tiny_set: TinySet,
    tiny_bag: Path,
    colour_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "everything"
    args = ["--bag", str(tiny_bag), "--model", str(colour_model), "--report", str(out)]
    assert run_cli([*args, "--everything", "--points-per-side", "32"]) == 0
    printed = capsys.readouterr().out
    assert "AR@100" in printed
    report = json.loads((out / "everything.json").read_text(encoding="utf-8"))
    summary = report["summary"]
    assert summary["images"] == len(tiny_set.object_ids)
    assert summary["instances"] == tiny_set.instances
    # exact masks, one per object, nothing on the background
    assert summary["recall_75"] == 1.0 and summary["ar_100"] == pytest.approx(1.0, abs=0.02)
    assert summary["false_masks_per_image"] == 0.0
    assert summary["masks_per_image"] == tiny_set.instances / len(tiny_set.object_ids)
    assert report["settings"]["hierarchical"] is True
    assert 0 < report["crops_per_frame"] < 32 * 25


def test_excluded_images_are_left_out_of_both_modes(
    tiny_set: TinySet, tiny_bag: Path, colour_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    args = ["--bag", str(tiny_bag), "--model", str(colour_model), "--report", str(out)]
    assert run_cli([*args, "--exclude-images", "1", "3", "--no-plots"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    kept = len(tiny_set.object_ids[1]) + len(tiny_set.object_ids[3])
    assert report["counts"]["instances_evaluated"] == kept
    assert run_cli([*args, "--everything", "--dense", "--exclude-images", "1", "3"]) == 0
    report = json.loads((out / "everything.json").read_text(encoding="utf-8"))
    assert report["summary"]["instances"] == kept
    assert report["exclude_images"] == [1, 3]
    assert report["settings"]["hierarchical"] is False


def test_everything_grid_denser_than_the_frames_is_a_bad_input(
    tiny_bag: Path, colour_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--bag", str(tiny_bag), "--model", str(colour_model), "--report", str(tmp_path)]
    assert run_cli([*args, "--everything", "--points-per-side", "500"]) == evaluate.EXIT_BAD_INPUT
    assert "denser than the 224x176 image" in capsys.readouterr().err


def test_whole_object_option_is_applied_and_recorded(
    tiny_bag: Path, colour_model: Path, tmp_path: Path
) -> None:
    """The colour-match model as the point model: the answer is the last point window's
    mask, coarser than the 96-px crop's at the larger windows (3.5 frame px per input px
    at the largest one here), so not every mask is exact; the report records the search's
    settings, the defaults."""
    out = tmp_path / "whole"
    args = ["--bag", str(tiny_bag), "--model", str(colour_model), "--report", str(out)]
    assert run_cli([*args, "--whole-object", "--no-plots"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    settings = report["source"]["crop_settings"]["whole_object"]
    assert settings == dataclasses.asdict(WholeObjectSettings())
    assert report["counts"]["instances_missing"] == 0
    assert report["summary"]["full_frame"]["miou"] > 0.8
    assert "--whole-object" in evaluate.build_parser().format_help()
