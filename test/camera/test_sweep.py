"""Segment everything on the sensor: the camera's state machine sweeping grid ROIs over
the emulated IMX500 (picamera2's API, the only fake), which runs the colour-match ONNX
model through onnxruntime on each ROI. On a generated scene of flat, separated objects
the answer is known: each object once, nothing on the background. One node test checks
the wiring (parameter, `everything` topic) on a real rclpy graph."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from picosam2_ros.msg import Segmentation
from rclpy.parameter import Parameter

from picosam2_ros.camera import emulator
from picosam2_ros.camera.sweep import SWEEP_ID, EverythingSweep, SweepResult
from picosam2_ros.core.everything import EverythingError, EverythingSettings, grid_shape
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.core.pipeline import FrameResult, ObjectResult, ObjectStatus, union_mask
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.testing.models import build_colour_match_model
from picosam2_ros.testing.scenes import PALETTE, SceneObject, render_scene

from .harness import CameraGraph, frame_mask, wait_until
from .test_machine import Rig, make_rig

W, H = 640, 480
POINTS_PER_SIDE = 12  # a 12 x 9 grid: cells of 53.3 px, points at 26.7 + 53.3 k
# Separated, asymmetric objects no larger than half a 96 px ROI (an ROI centred on any of
# their pixels holds all of them), at least 50 px from the frame's edges, each holding at
# least one point of the 12 and of the 24 points-per-side grid.
OBJECTS = [
    SceneObject("rect", PALETTE[0], 60, 60, 44, 24),
    SceneObject("ellipse", PALETTE[1], 220, 110, 36, 46),
    SceneObject("L", PALETTE[2], 400, 180, 44, 44),
    SceneObject("rect", PALETTE[3], 500, 330, 22, 44),
    SceneObject("ellipse", PALETTE[4], 120, 385, 46, 30),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sweep")
    network = root / "picosam2.rpk"
    network.write_bytes(b"network package stand-in" * 64)
    scene, _ = render_scene(W, H, OBJECTS)
    still = root / "still"
    still.mkdir()
    cv2.imwrite(str(still / "0000.png"), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    return {
        "model": build_colour_match_model(root / "colour.onnx"),
        "network": network,
        "still": still,
    }


@pytest.fixture(scope="module")
def truths() -> list[np.ndarray]:
    return render_scene(W, H, OBJECTS)[1]


@pytest.fixture
def rig(files: dict[str, Path]) -> Iterator[Rig]:
    r = make_rig(files)
    yield r
    r.picam2.stop()
    r.picam2.close()
    emulator.detach_camera(r.camera)


def settings(
    points_per_side: int = POINTS_PER_SIDE, hierarchical: bool = True
) -> EverythingSettings:
    return EverythingSettings(points_per_side=points_per_side, hierarchical=hierarchical)


def sweep_until_done(rig: Rig, limit: int = 3000) -> tuple[SweepResult, int]:
    """Frames through the machine until a sweep completes: its result and the frames."""
    for count in range(1, limit + 1):
        [outcome] = rig.frames(1)
        if outcome.everything is not None:
            return outcome.everything, count
    raise AssertionError(f"no sweep completed in {limit} frames")


def full(obj: ObjectResult) -> np.ndarray:
    return union_mask(FrameResult(W, H, [obj], 0.0)) > 0


def check_each_object_once(swept: SweepResult, truths: list[np.ndarray]) -> None:
    masks = [full(obj) for obj in swept.result.objects]
    assert len(masks) == len(truths)
    for truth in truths:
        ious = sorted(mask_iou(mask, truth) for mask in masks)
        assert ious[-1] > 0.85 and ious[-2] == 0.0  # found, and found once
    # Nothing on the background: no mask reaches beyond a 2 px band around the objects
    # (the ROI is resampled from the sensor, so edges may move by a pixel).
    near = cv2.dilate(np.logical_or.reduce(truths).astype(np.uint8), np.ones((5, 5), np.uint8))
    assert not np.any(np.logical_or.reduce(masks) & (near == 0))
    assert [o.object_id for o in swept.result.objects] == list(range(1, len(truths) + 1))
    scores = [o.score for o in swept.result.objects]
    assert scores == sorted(scores, reverse=True)


# Hierarchical at 24 points per side: the first pass's points (every third, 80 px apart)
# are closer than a 96 px ROI, so its background masks cover dense points; at 12 per side
# they are 160 px apart and would cover none.
@pytest.mark.parametrize(
    ("points_per_side", "hierarchical"), [(POINTS_PER_SIDE, False), (24, True)]
)
def test_one_sweep_finds_each_object_once_and_nothing_in_the_background(
    rig: Rig, truths: list[np.ndarray], points_per_side: int, hierarchical: bool
) -> None:
    rig.machine.configure_sweep(
        settings(points_per_side=points_per_side, hierarchical=hierarchical)
    )
    swept, frames = sweep_until_done(rig)
    check_each_object_once(swept, truths)
    columns, rows = grid_shape(W, H, points_per_side)
    assert swept.points_run + swept.skipped_points == columns * rows
    if hierarchical:
        assert swept.skipped_points > 0
    else:
        assert swept.points_run == columns * rows and swept.skipped_points == 0
    # One attributed frame per grid point, each computed on that point's ROI (the settle
    # rule): the emulated sensor recorded the ROI in force for every frame.
    records = {r.sequence: r for r in rig.camera.records}
    mine = [a for a in rig.machine.attributions if a[1] == SWEEP_ID]
    assert len(mine) == swept.points_run
    assert all(records[frame].roi == roi for frame, _oid, roi in mine)
    # Each object keeps the stamp of the frame its mask came from.
    assert len(swept.stamps_ns) == len(swept.result.objects)
    assert all(stamp > 0 for stamp in swept.stamps_ns)
    assert swept.frames <= frames and rig.machine.counts["everything_sweeps"] == 1
    assert swept.frames >= swept.points_run  # at least one frame per point


def test_prompts_and_the_sweep_take_turns(rig: Rig, truths: list[np.ndarray]) -> None:
    first = OBJECTS[0]
    rig.prompt(ObjectPrompt.from_point(1, first.x + 10.0, first.y + 12.0))
    rig.machine.configure_sweep(settings(points_per_side=24, hierarchical=True))
    swept, _frames = sweep_until_done(rig)
    check_each_object_once(swept, truths)
    owners = [oid for _frame, oid, _roi in rig.machine.attributions]
    sweep_turns = [k for k, oid in enumerate(owners) if oid == SWEEP_ID]
    assert len(sweep_turns) == swept.points_run
    # Between two sweep points the prompt had its turn: it is never starved.
    for a, b in itertools.pairwise(sweep_turns):
        assert 1 in owners[a + 1 : b]
    prompt_frames = owners.count(1)
    assert prompt_frames >= 2 * (swept.points_run - 1)  # turn_frames = 2 per round


def test_sweeps_repeat_stop_and_reject_a_grid_denser_than_the_frame(rig: Rig) -> None:
    rig.machine.configure_sweep(settings(points_per_side=4, hierarchical=False))
    first, _ = sweep_until_done(rig)
    second, _ = sweep_until_done(rig)
    assert len(first.result.objects) == len(second.result.objects) > 0
    with pytest.raises(EverythingError, match="denser than the 640x480 image"):
        rig.machine.configure_sweep(settings(points_per_side=641))
    assert rig.machine.sweep is not None  # the sweep in force stays
    rig.machine.configure_sweep(None)
    outcomes = rig.frames(60)
    assert all(o.everything is None for o in outcomes)
    assert rig.machine.counts["everything_sweeps"] == 2


def test_a_reconfigured_sweep_drops_the_outputs_of_the_old_one(rig: Rig) -> None:
    rig.machine.configure_sweep(settings(points_per_side=4, hierarchical=False))
    # The first point's ROI is set after frame 1 and settles over frames 2 and 3: frame 4
    # would be the point's. A new sweep configured now must not get that output.
    rig.frames(3)
    rig.machine.configure_sweep(settings(points_per_side=4, hierarchical=False))
    swept, _ = sweep_until_done(rig)
    assert swept.points_run == 4 * 3  # the new sweep ran every point of its own
    assert rig.machine.counts["frames_stale_prompt"] >= 1


def test_sweep_alone_collects_points_in_raster_order_and_starts_again() -> None:
    """The pure sweep: one result per point, the kept masks with their own stamps when
    the last point is in, then the next sweep from the first point."""
    sweep = EverythingSweep((W, H), settings(points_per_side=2, hierarchical=False))
    points = [(160.0, 120.0), (480.0, 120.0), (160.0, 360.0), (480.0, 360.0)]
    seen = []
    for k, (x, y) in enumerate(points):
        prompt = sweep.prompt()
        assert prompt is not None and prompt.object_id == SWEEP_ID
        assert sweep.point == (x, y)
        seen.append(sweep.point)
        crop = Roi(int(x) - 48, int(y) - 48, 96, 96)
        mask = np.zeros((96, 96), bool)
        if k in (1, 2):  # an object under these two points, a background crop elsewhere
            mask[40:60, 38:58] = True
            bbox = Roi(crop.x + 38, crop.y + 40, 20, 20)
            result = ObjectResult(SWEEP_ID, ObjectStatus.OK, 0.5 + k / 10, crop, mask, bbox, prompt)
        else:
            result = ObjectResult(SWEEP_ID, ObjectStatus.EMPTY, 0.0, crop, mask, None, prompt)
        done = sweep.take(result, frame_number=10 + 3 * k, stamp_ns=1000 + k)
        assert (done is None) == (k < 3)
    assert done is not None
    assert [o.prompt.foreground.tolist()[0] for o in done.result.objects] == [
        [160.0, 360.0],
        [480.0, 120.0],
    ]
    assert done.stamps_ns == [1002, 1001]  # decreasing score: point 2 first
    assert done.candidates == 2 and done.points_run == 4
    assert sweep.point == points[0]  # the next sweep


def test_camera_node_publishes_each_sweep_on_everything(
    files: dict[str, Path], truths: list[np.ndarray]
) -> None:
    graph = CameraGraph(
        {
            "network": str(files["network"]),
            "emulator_source": str(files["still"]),
            "emulator_model": str(files["model"]),
            "emulator_rate": 300.0,
            "everything_points_per_side": POINTS_PER_SIDE,
        },
        full_frames=False,
    )
    try:
        received: list[Segmentation] = []
        graph.client.create_subscription(Segmentation, "everything", received.append, 10)
        seg = wait_until(lambda: received[:1], timeout=60.0)[0]
        assert (seg.image_width, seg.image_height) == (W, H)
        masks = [frame_mask(obj) for obj in seg.objects]
        assert len(masks) == len(truths)
        for truth in truths:
            assert max(mask_iou(m, truth) for m in masks) > 0.85
        # Each object's source stamp is the frame its mask came from, at or before the
        # frame that completed the sweep.
        last = seg.header.stamp.sec * 10**9 + seg.header.stamp.nanosec
        for obj in seg.objects:
            assert 0 < obj.source_stamp.sec * 10**9 + obj.source_stamp.nanosec <= last
        # Diagnostics published after the sweep count it.
        wait_until(lambda: int(graph.diagnostic_values()["everything_sweeps"]) >= 1)
        [res] = graph.node.set_parameters([Parameter("everything_points_per_side", value=0)])
        assert res.successful and graph.node._machine.sweep is None
        [bad] = graph.node.set_parameters([Parameter("everything_points_per_side", value=65)])
        assert not bad.successful  # out of the declared range
    finally:
        graph.close()
