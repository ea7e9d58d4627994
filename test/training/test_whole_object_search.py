"""training.whole_object_search: settings parsing, the IoU over two frame rectangles,
the paired comparison of two tries and of two point models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import make_coco_folder

from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.resources import MODELS_DIR
from training.whole_object_search import main, paired_difference, parse_settings, piece_iou


def test_parse_settings_types_values_as_the_fields() -> None:
    assert parse_settings("") == WholeObjectSettings()
    s = parse_settings("grow=5, edge_window=0,windows=1,extent_offset=0.5")
    assert (s.grow, s.edge_window, s.windows, s.extent_offset) == (5.0, False, 1, 0.5)
    with pytest.raises(SystemExit, match="unknown setting"):
        parse_settings("nope=1")
    with pytest.raises(ValueError, match="out of range"):
        parse_settings("fill=2")


def test_piece_iou_matches_the_full_frame_iou() -> None:
    rng = np.random.default_rng(0)
    frame = (60, 80)
    mask = rng.random((20, 30)) > 0.5
    truth = rng.random((25, 15)) > 0.4
    roi, (tx, ty) = Roi(10, 5, 30, 20), (20, 12)
    a = np.zeros(frame, dtype=bool)
    a[roi.slices] = mask
    b = np.zeros(frame, dtype=bool)
    b[ty : ty + 25, tx : tx + 15] = truth
    want = (a & b).sum() / (a | b).sum()
    assert piece_iou((roi, mask), (tx, ty, 15, 25), truth) == pytest.approx(want)
    assert piece_iou((Roi(0, 0, 0, 0), np.zeros((0, 0), bool)), (tx, ty, 15, 25), truth) == 0.0


def test_paired_difference_is_the_mean_change_with_its_error() -> None:
    base = np.linspace(0.0, 1.0, 100)
    same = paired_difference(base, base)
    assert same == {"diff": 0.0, "se": 0.0, "changed": 0}
    # Ten instances up by 0.5 each: mean +0.05; the bootstrap error of a mean of ten
    # 0.5s among 100 is 0.5 * sqrt(0.1 * 0.9 / 100) = 0.015.
    better = base.copy()
    better[::10] += 0.5
    got = paired_difference(better, base)
    assert got["diff"] == pytest.approx(0.05)
    assert got["changed"] == 10
    assert got["se"] == pytest.approx(0.015, abs=0.003)


def test_against_compares_two_point_models_on_the_same_clicks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped zoom model against itself changes no instance; against the single-crop
    point model it changes some, and the difference is the two models' mIoU difference."""
    coco = make_coco_folder(tmp_path / "coco", n_images=4, seed=5)
    zoom, point = MODELS_DIR / "picosam2_point_zoom.onnx", MODELS_DIR / "picosam2_point.onnx"
    base = ["--data", str(coco), "--held-out", "0", "--cache", str(tmp_path / "cache")]

    def run(against: Path) -> dict:
        assert main([*base, "--model", str(zoom), "--against", str(against)]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    same = run(zoom)["vs_against"]
    other = run(point)
    assert same["model"] == zoom.name
    for prompt in ("center", "random"):
        assert (same[prompt]["diff"], same[prompt]["changed"]) == (0.0, 0)
        theirs = other["vs_against"][prompt]
        assert theirs["changed"] > 0
        want = other[prompt]["miou"] - theirs["against_miou"]["miou"]
        assert theirs["diff"] == pytest.approx(want, abs=2e-4)


def test_overflows_window_only_where_the_frame_goes_on() -> None:
    from picosam2_ros.core.window import Window
    from training.whole_object_search import overflows_window

    window = Window(50.0, 50.0, 20.0)  # covers [40, 60) in both axes
    assert not overflows_window(window, (42, 45, 10, 10), 100, 100)
    assert overflows_window(window, (30, 45, 15, 10), 100, 100)  # past its left edge
    assert overflows_window(window, (45, 45, 20, 5), 100, 100)  # past its right edge
    # A window whose right edge is the frame's: nothing lies past it.
    edge = Window(90.0, 50.0, 20.0)
    assert not overflows_window(edge, (85, 45, 15, 10), 100, 100)


def test_a_search_told_the_object_overflows_grows_after_its_first_window() -> None:
    from training.whole_object_search import _FirstWindowTold

    settings = WholeObjectSettings()
    size = 96
    # A small blob at the input's centre: the plain search sizes the next window from it.
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.where((xx - 48) ** 2 + (yy - 48) ** 2 < 36, 5.0, -5.0).astype(np.float32)
    plain = _FirstWindowTold((320.0, 240.0), 640, 480, settings, overflows=False)
    told = _FirstWindowTold((320.0, 240.0), 640, 480, settings, overflows=True)
    first = plain.next_run()
    assert first == told.next_run()
    plain.take_point(blob)
    told.take_point(blob)
    # The blob is small: the plain search stops (its next window would be within
    # reuse_within of the first); the told one grows by ``grow``.
    assert plain.next_run() is None
    grown = told.next_run()
    assert grown is not None and grown.window.side == pytest.approx(  # type: ignore[union-attr]
        first.window.side * settings.grow  # type: ignore[union-attr]
    )


def test_diagnose_splits_the_clicks_and_bounds_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coco = make_coco_folder(tmp_path / "coco", n_images=4, seed=7)
    argv = ["--data", str(coco), "--held-out", "0", "--cache", str(tmp_path / "c"), "--diagnose"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    first = json.loads(lines[1])
    got = json.loads(lines[-1])["diagnose"]
    for prompt in ("center", "random"):
        d = got[prompt]
        assert d["search"]["miou"] == first[prompt]["miou"]
        # The best window with hindsight is never below the search's own answer.
        assert d["best_window_hindsight"]["diff"] >= 0.0
        assert d["best_window_hindsight"]["miou"] >= d["search"]["miou"]
        n = sum(g["n"] for groups in d["last_side_vs_needed"].values() for g in groups.values())
        assert n == first[prompt]["ends"]["window"] + first[prompt]["ends"].get("native", 0)
        assert 0.0 <= d["first_window_told"]["miou"] <= 1.0


def test_first_model_answers_only_the_first_window(tmp_path: Path) -> None:
    """With another model as the scout, the scout runs each click's first window and the
    search's model every later one (each model's own cache holds what it ran); the scout
    equal to the model gives the plain search."""
    from picosam2_ros.backends.onnx_backend import OnnxBackend
    from picosam2_ros.core.pipeline import CropSettings
    from training.whole_object_eval import load_instances
    from training.whole_object_search import CachedRuns, make_clicks, search_click

    coco = make_coco_folder(tmp_path / "coco", n_images=3, seed=9)
    data = load_instances([str(coco)], 0.0)
    box = OnnxBackend(MODELS_DIR / "picosam2_box.onnx")

    def runs(name: str) -> CachedRuns:
        return CachedRuns(data, OnnxBackend(MODELS_DIR / name), box, CropSettings())

    zoom, plain = runs("picosam2_point_zoom.onnx"), runs("picosam2_point_zoom.onnx")
    scout = runs("picosam2_point.onnx")
    settings = WholeObjectSettings()
    later = 0
    for inst, click in zip(data.instances, make_clicks(data, 0)["center"], strict=True):
        seen: list = []
        search_click(zoom, inst.image_index, click, settings, first=scout, seen=seen)
        key = (inst.image_index, seen[0].cx, seen[0].cy, seen[0].side)
        assert key in scout.windows and key not in zoom.windows
        later += len(seen) - 1
        seen_plain: list = []
        mine, _, _ = search_click(plain, inst.image_index, click, settings, seen=seen_plain)
        same, _, _ = search_click(plain, inst.image_index, click, settings, first=plain)
        assert np.array_equal(mine[1], same[1]) and mine[0] == same[0]
    assert len(scout.windows) == len(data.instances)
    assert len(zoom.windows) == later > 0
