"""The camera's per-frame state machine without ROS: the emulated IMX500 (picamera2's API,
the only fake) runs the colour-match ONNX model through onnxruntime on the ROI the
machine sets, so every attribution and mask is checked against real geometry."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from picosam2_ros.camera import emulator
from picosam2_ros.camera.api import load_camera_api, open_camera
from picosam2_ros.camera.machine import (
    CameraStateMachine,
    DecodeSettings,
    FrameOutcome,
    LatestResult,
)
from picosam2_ros.camera.scheduler import RoiScheduler
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.core.pipeline import FrameResult, ObjectStatus, union_mask
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.testing.models import build_colour_match_model
from picosam2_ros.testing.scenes import SceneObject, render_scene

W, H = 640, 480
# Asymmetric objects: a width/height swap or a transposed mask fails.
WIDE = SceneObject("rect", (220, 40, 40), x=100, y=150, width=60, height=20)
TALL = SceneObject("rect", (40, 200, 60), x=400, y=100, width=16, height=50)


def centre(obj: SceneObject) -> tuple[float, float]:
    return obj.x + obj.width / 2.0, obj.y + obj.height / 2.0


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("machine")
    network = root / "picosam2.rpk"
    network.write_bytes(b"network package stand-in" * 64)
    still = root / "still"
    still.mkdir()
    scene, _ = render_scene(W, H, [WIDE, TALL])
    cv2.imwrite(str(still / "0000.png"), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    return {
        "model": build_colour_match_model(root / "colour.onnx"),
        "network": network,
        "still": still,
    }


@pytest.fixture(scope="module")
def truth() -> dict[int, np.ndarray]:
    masks = render_scene(W, H, [WIDE, TALL])[1]
    return {1: masks[0], 2: masks[1]}


@dataclass
class Rig:
    """The machine on an emulated, started camera."""

    machine: CameraStateMachine
    camera: emulator.EmulatedCamera
    imx500: Any
    picam2: Any
    problems: list[tuple[str, str]]

    def prompt(self, prompt: ObjectPrompt) -> None:
        """What the node's prompt callbacks do."""
        with self.machine.lock:
            self.machine.book.set(prompt)
            self.machine.prompt_changed(prompt.object_id)

    def frames(self, count: int) -> list[FrameOutcome]:
        """``count`` captured frames through the machine, as the node's capture loop."""
        outcomes = []
        for _ in range(count):
            request = self.picam2.capture_request()
            try:
                outcomes.append(self.machine.step(self.machine.read(request.get_metadata())))
            finally:
                request.release()
        return outcomes


def make_rig(files: dict[str, Path], settle_frames: int = 2, turn_frames: int = 2) -> Rig:
    camera = emulator.attach_camera(
        emulator.EmulatorSettings(
            source=str(files["still"]),
            model=str(files["model"]),
            frame_rate=2000.0,
            roi_lag_frames=2,
            upload_s=0.0,
        )
    )
    api = load_camera_api(emulated=True)
    imx500, picam2, raw_size = open_camera(
        api, files["network"], camera.camera_id, (W, H), 0.0, 4, lambda _imx500: None
    )
    problems: list[tuple[str, str]] = []
    machine = CameraStateMachine(
        (W, H),
        PromptBook(8, lost_after=15),
        RoiScheduler(turn_frames, settle_frames),
        DecodeSettings(roi_side_px=96, box_margin=1.1),
        ros_now_ns=lambda: 1_700_000_000_000_000_000,
        report=lambda key, text: problems.append((key, text)),
    )
    machine.camera_opened(imx500, raw_size)
    return Rig(machine, camera, imx500, picam2, problems)


@pytest.fixture
def rig(files: dict[str, Path]) -> Iterator[Rig]:
    r = make_rig(files)
    yield r
    r.picam2.stop()
    r.picam2.close()
    emulator.detach_camera(r.camera)


def full_mask(latest: LatestResult) -> np.ndarray:
    return union_mask(FrameResult(W, H, [latest.result], 0.0)) > 0


def fresh_objects(outcome: FrameOutcome) -> list[LatestResult]:
    return [o for o in outcome.objects if o.stamp_ns == outcome.frame.stamp_ns]


def test_prompts_take_turns_and_each_fresh_mask_is_its_own_object(
    rig: Rig, truth: dict[int, np.ndarray]
) -> None:
    rig.prompt(ObjectPrompt.from_point(1, *centre(WIDE)))
    rig.prompt(ObjectPrompt.from_point(2, *centre(TALL)))
    outcomes = rig.frames(40)
    order = []
    for outcome in outcomes:
        fresh = fresh_objects(outcome)
        assert outcome.fresh == bool(fresh)
        if not fresh:
            continue
        [new] = fresh  # one ROI per frame: one fresh object
        assert new.result.status == ObjectStatus.OK
        assert mask_iou(full_mask(new), truth[new.result.object_id]) > 0.85
        # Every standing object is in the outcome, ascending id.
        assert [o.result.object_id for o in outcome.objects] == [1, 2]
        order.append(new.result.object_id)
    runs = [(oid, len(list(group))) for oid, group in itertools.groupby(order)]
    assert len(runs) >= 4
    assert all(a[0] != b[0] for a, b in itertools.pairwise(runs))
    assert all(length == 2 for _oid, length in runs[:-1])  # turn_frames = 2
    # The settle rule: every attributed frame was computed on its object's ROI, as the
    # emulated sensor recorded it; the two frames after each switch belong to nobody.
    records = {r.sequence: r for r in rig.camera.records}
    assert len(rig.machine.attributions) == len(order)
    assert all(records[frame].roi == roi for frame, _oid, roi in rig.machine.attributions)
    switches = rig.machine.scheduler.switches
    assert switches >= 4
    assert rig.machine.counts["frames_settling"] >= 2 * (switches - 1)
    assert rig.machine.counts["frames"] == 40
    assert rig.machine.counts["results"] == len(order)
    # The ROI each outcome announces is the one the sensor got next.
    announced = [o.next_roi for o in outcomes if o.next_roi is not None]
    assert announced == [roi for _frame, roi in rig.camera.roi_history[1:]]


def test_settle_frames_below_the_roi_lag_attribute_frames_of_the_previous_roi(
    files: dict[str, Path],
) -> None:
    """Why the settle rule exists: the emulated sensor applies an ROI two frames late."""
    r = make_rig(files, settle_frames=0)
    try:
        r.prompt(ObjectPrompt.from_point(1, *centre(WIDE)))
        r.prompt(ObjectPrompt.from_point(2, *centre(TALL)))
        r.frames(30)
        records = {rec.sequence: rec for rec in r.camera.records}
        wrong = [a for a in r.machine.attributions if records[a[0]].roi != a[2]]
        assert wrong
    finally:
        r.picam2.stop()
        r.picam2.close()
        emulator.detach_camera(r.camera)


def test_a_replaced_prompt_never_gets_an_output_of_its_old_place(
    rig: Rig, truth: dict[int, np.ndarray]
) -> None:
    rig.prompt(ObjectPrompt.from_point(1, *centre(WIDE)))
    before = rig.frames(8)
    assert any(fresh_objects(o) for o in before)
    rig.prompt(ObjectPrompt.from_point(1, *centre(TALL)))
    after = rig.frames(12)
    # Its old result is dropped at once: waiting (SKIPPED, no stamp) until a new one.
    first = after[0].objects[0]
    assert first.stamp_ns == 0 and first.result.status == ObjectStatus.SKIPPED
    fresh = [obj for o in after for obj in fresh_objects(o)]
    assert len(fresh) >= 3
    assert all(mask_iou(full_mask(obj), truth[2]) > 0.85 for obj in fresh)
    assert rig.machine.counts["frames_stale_prompt"] >= 1


def test_stamps_come_from_the_injected_clocks(rig: Rig) -> None:
    machine = CameraStateMachine(
        (W, H),
        PromptBook(4),
        RoiScheduler(),
        DecodeSettings(),
        ros_now_ns=lambda: 5_000_000,
        report=lambda key, text: None,
        monotonic_ns=lambda: 10_000,
    )
    machine.camera_opened(rig.imx500, (2028, 1520))
    read = machine.read({"SensorTimestamp": 7_000})
    # Read out 3 us ago by the monotonic clock: stamped 3 us before ROS now.
    assert read.stamp_ns == 5_000_000 - 3_000
    assert read.number == 1 and read.outputs is None and read.kpi is None
    assert machine.read({}).stamp_ns == 5_000_000  # no timestamp: age 0
    assert machine.counts["frames_without_output"] == 2
    outcome = machine.step(read)
    assert not outcome.fresh and outcome.objects == [] and outcome.next_roi is None


def test_an_output_that_is_not_a_mask_is_reported_and_the_next_frames_still_served(
    rig: Rig,
) -> None:
    machine = rig.machine
    machine.camera_opened(rig.imx500, (2028, 1520))
    rig.prompt(ObjectPrompt.from_point(1, *centre(WIDE)))
    two_channels = {
        "SensorTimestamp": 1,
        "CnnOutputTensor": np.zeros(96 * 96 * 2, np.float32).tolist(),
        "CnnOutputTensorInfo": emulator.pack_tensor_info("picosam2", [(96, 96, 2)]),
    }
    outcomes = [machine.step(machine.read(two_channels)) for _ in range(6)]
    assert not any(o.fresh for o in outcomes)
    assert machine.counts["bad_outputs"] == 6 - 1 - 2  # after the first ROI and settling
    # Reported every time under one key (the node logs a key once).
    assert len(rig.problems) == 3 and len({key for key, _text in rig.problems}) == 1
    key, text = rig.problems[0]
    assert key.startswith("output:") and "one mask channel" in text
    # The camera's real frames after that are attributed as before.
    assert any(o.fresh for o in rig.frames(6))
