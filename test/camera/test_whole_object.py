"""The camera's whole-object mode without ROS: the state machine drives the emulated
IMX500 (picamera2's API, the only fake), which runs the colour-match ONNX model on the
ROI in force for each frame, so every run, settle frame and mask is real geometry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.camera import emulator
from picosam2_ros.camera.api import emulator_default_model, load_camera_api, open_camera
from picosam2_ros.camera.machine import CameraStateMachine, DecodeSettings, FrameOutcome
from picosam2_ros.camera.scheduler import RoiScheduler
from picosam2_ros.camera.sensor import SENSOR_HEIGHT, SENSOR_WIDTH, StreamGeometry
from picosam2_ros.camera.whole_object import UNSEEN_LOGIT, logits_in_window, window_roi
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.core.pipeline import (
    CropSettings,
    FrameResult,
    ObjectResult,
    ObjectStatus,
    segment_frame,
    union_mask,
)
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.core.window import Window
from picosam2_ros.resources import WHOLE_OBJECT_MODEL_FILE
from picosam2_ros.testing.models import build_colour_match_model
from picosam2_ros.testing.scenes import SceneObject, render_scene

W, H = 640, 480
# Larger than the native 96-px ROI and than the search's second window, clicked
# off-centre; wider than tall so a swapped axis shows.
BIG = SceneObject("rect", (40, 90, 200), x=150, y=110, width=300, height=200)
SMALL = SceneObject("rect", (220, 40, 40), x=520, y=330, width=40, height=24)
CLICK = (220.0, 170.0)  # 70 px right of BIG's left edge, 60 below its top
SETTLE = 2
RUN_FRAMES = SETTLE + 1  # an ROI change, its settle frames, the attributed frame


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("whole")
    network = root / "picosam2.rpk"
    network.write_bytes(b"network package stand-in" * 64)
    still = root / "still"
    still.mkdir()
    scene, _ = render_scene(W, H, [BIG, SMALL])
    cv2.imwrite(str(still / "0000.png"), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    return {
        "model": build_colour_match_model(root / "colour.onnx"),
        # Negative tolerance: no pixel, not even the centre, is ever foreground.
        "blind": build_colour_match_model(root / "blind.onnx", tolerance=-1.0),
        "network": network,
        "still": still,
    }


@pytest.fixture(scope="module")
def truth() -> list[np.ndarray]:
    return render_scene(W, H, [BIG, SMALL])[1]


@dataclass
class Rig:
    machine: CameraStateMachine
    camera: emulator.EmulatedCamera
    picam2: Any

    def prompt(self, prompt: ObjectPrompt) -> None:
        with self.machine.lock:
            self.machine.book.set(prompt)
            self.machine.prompt_changed(prompt.object_id)

    def frames(self, count: int) -> list[FrameOutcome]:
        outcomes = []
        for _ in range(count):
            request = self.picam2.capture_request()
            try:
                outcomes.append(self.machine.step(self.machine.read(request.get_metadata())))
            finally:
                request.release()
        return outcomes

    def close(self) -> None:
        self.picam2.stop()
        self.picam2.close()
        emulator.detach_camera(self.camera)


def make_rig(files: dict[str, Path], whole_object: bool = True, model: str = "model") -> Rig:
    camera = emulator.attach_camera(
        emulator.EmulatorSettings(
            source=str(files["still"]),
            model=str(files[model]),
            frame_rate=2000.0,
            roi_lag_frames=SETTLE,
            upload_s=0.0,
        )
    )
    imx500, picam2, raw_size = open_camera(
        load_camera_api(emulated=True),
        files["network"],
        camera.camera_id,
        (W, H),
        0.0,
        4,
        lambda _imx500: None,
    )
    settings = DecodeSettings(box_prior_weight=8.0, whole_object=whole_object)
    machine = CameraStateMachine(
        (W, H),
        PromptBook(8, lost_after=3),
        RoiScheduler(2, SETTLE),
        settings,
        ros_now_ns=lambda: 1_700_000_000_000_000_000,
        report=lambda key, text: None,
    )
    machine.camera_opened(imx500, raw_size)
    return Rig(machine, camera, picam2)


@pytest.fixture
def rig(files: dict[str, Path]) -> Iterator[Rig]:
    r = make_rig(files)
    yield r
    r.close()


def full_mask(result: ObjectResult) -> np.ndarray:
    return union_mask(FrameResult(W, H, [result], 0.0)) > 0


def fresh_results(outcomes: list[FrameOutcome], object_id: int) -> list[tuple[int, ObjectResult]]:
    return [
        (o.frame.number, obj.result)
        for o in outcomes
        for obj in o.objects
        if obj.result.object_id == object_id and obj.stamp_ns == o.frame.stamp_ns
    ]


# ----------------------------------------------------------------- windows -> ROIs
GEOMETRY = StreamGeometry((W, H))
SCALE = SENSOR_WIDTH / W


def test_a_window_inside_the_frame_is_its_roi_in_both_fits() -> None:
    window = Window(320.5, 240.5, 100.0)
    for fit in ("centred", "translated"):
        roi = window_roi(window, GEOMETRY, fit)
        assert abs(roi.width - 100.0 * SCALE) <= 1 and roi.width == roi.height
        assert abs(roi.x + roi.width / 2.0 - 320.5 * SCALE) <= 1


def test_near_the_border_centred_shrinks_around_the_click_and_translated_moves_off_it() -> None:
    window = Window(40.5, 240.5, 200.0)  # reaches 60 px past the left edge
    centred = window_roi(window, GEOMETRY, "centred")
    translated = window_roi(window, GEOMETRY, "translated")
    assert centred.x == 0 and abs(centred.width / 2.0 - 40.5 * SCALE) <= 1
    assert abs(centred.y + centred.height / 2.0 - 240.5 * SENSOR_HEIGHT / H) <= 1
    assert translated.x == 0 and abs(translated.width - 200.0 * SCALE) <= 1
    # A click a pixel from the border: a centred square would be under the network's
    # input size, so the square is translated instead.
    edge = window_roi(Window(0.5, 240.5, 200.0), GEOMETRY, "centred")
    assert edge.x == 0 and edge.width >= 96
    # A window larger than the frame: at most the sensor's shorter side.
    huge = window_roi(Window(320.5, 240.5, 2000.0), GEOMETRY, "translated")
    assert huge.width == huge.height == SENSOR_HEIGHT
    with pytest.raises(ValueError, match="fit"):
        window_roi(window, GEOMETRY, "stretched")


def test_an_roi_output_lands_in_its_window_grid_and_the_rest_is_unseen() -> None:
    window = Window(100.5, 100.5, 96.0)
    # The ROI is the window's right half: its logits land there, the left half unseen.
    roi_main = (100, 52, 48, 96)  # x, y, w, h in main-stream pixels (continuous)
    roi = Roi(round(roi_main[0] * SCALE), round(roi_main[1] * SCALE), 304, 608)
    logits = np.full((96, 96), 5.0, np.float32)
    logits[:, :48] = -5.0  # the ROI's left half says "not the object"
    out = logits_in_window(logits, roi, GEOMETRY, window, 96)
    assert out.shape == (96, 96)
    assert (out[:, :47] == UNSEEN_LOGIT).all()
    assert (out[10:-10, 49:70] < 0).all() and (out[10:-10, 74:95] > 0).all()


# --------------------------------------------------------------- the state machine
def camera_result(files: dict[str, Path], prompt: ObjectPrompt, **settings: Any) -> ObjectResult:
    """The first fresh result of ``prompt`` on a fresh rig (DecodeSettings overrides)."""
    r = make_rig(files, whole_object=settings.pop("whole_object", True))
    try:
        for name, value in settings.items():
            setattr(r.machine.settings, name, value)
        r.prompt(prompt)
        return fresh_results(r.frames(3 * RUN_FRAMES + 1), prompt.object_id)[0][1]
    finally:
        r.close()


def host_result(files: dict[str, Path], prompt: ObjectPrompt) -> ObjectResult:
    """The host's whole-object decoding of the same scene with the same network."""
    scene, _ = render_scene(W, H, [BIG, SMALL])
    backend = OnnxBackend(str(files["model"]))
    backend.box_prior_weight = 8.0
    settings = CropSettings(whole_object=WholeObjectSettings())
    backends = {"point": backend, "box": backend}
    return segment_frame(scene, "rgb8", [prompt], backends, settings).objects[0]


def test_a_large_object_clicked_off_centre_comes_back_whole_as_on_the_host(
    files: dict[str, Path], truth: list[np.ndarray]
) -> None:
    click = ObjectPrompt.from_point(1, *CLICK)
    native = camera_result(files, click, whole_object=False)
    centred = camera_result(files, click)
    translated = camera_result(files, click, whole_object_fit="translated")
    host = host_result(files, click)
    # Measured: 0.154 (the 96-px ROI), 0.792 (centred), 0.986 (translated), 0.975 (host).
    assert mask_iou(full_mask(native), truth[0]) < 0.2
    assert mask_iou(full_mask(centred), truth[0]) > 0.7
    assert centred.status == ObjectStatus.OK and centred.prompt == click
    # The same mechanism as the host's: where the sensor can show the window's view of
    # the object, the same mask (measured 0.988). The centred fit shrinks the last,
    # frame-sized window around the click, which cuts this object (0.813 against the
    # host) but keeps the click at the input's centre, which wins on photographs.
    assert mask_iou(full_mask(translated), full_mask(host)) > 0.95
    assert mask_iou(full_mask(centred), full_mask(host)) > 0.7


def test_a_small_object_comes_back_as_on_the_host_in_either_fit(
    files: dict[str, Path], truth: list[np.ndarray]
) -> None:
    click = ObjectPrompt.from_point(2, SMALL.x + 10.0, SMALL.y + 12.0)
    host = full_mask(host_result(files, click))
    for fit in ("centred", "translated"):
        found = full_mask(camera_result(files, click, whole_object_fit=fit))
        assert mask_iou(found, host) > 0.98  # measured 1.000
        assert mask_iou(found, truth[1]) > 0.9  # measured 0.942


def test_each_run_is_one_roi_settled_then_attributed(rig: Rig, truth: list[np.ndarray]) -> None:
    rig.prompt(ObjectPrompt.from_point(1, *CLICK))
    outcomes = rig.frames(3 * 3 * RUN_FRAMES + 1)
    results = fresh_results(outcomes, 1)
    # The first ROI is set after frame 1; three runs of (settle + 1) frames each.
    assert [frame for frame, _ in results] == [1 + 3 * RUN_FRAMES * k for k in (1, 2, 3)]
    assert all(mask_iou(full_mask(r), truth[0]) > 0.7 for _, r in results)
    # Only finished searches are published: nothing fresh in between.
    assert sum(o.fresh for o in outcomes) == 3
    counts = rig.machine.counts
    assert counts["results"] == 3 and rig.machine.searches.runs == 9
    # The node's diagnostics publish the machine's counters as they are.
    assert counts["whole_object_runs"] == 9 and counts["whole_object_searches"] == 3
    assert counts["frames_settling"] == SETTLE * 9
    # Every attributed frame was computed on its run's ROI (the emulator's record).
    records = {r.sequence: r for r in rig.camera.records}
    attributions = list(rig.machine.attributions)
    assert len(attributions) == 9
    assert all(records[frame].roi == roi for frame, _oid, roi in attributions)
    first = [roi for _f, _o, roi in attributions[:3]]
    assert first[0].width < first[1].width  # the second window grew
    assert [roi for _f, _o, roi in attributions[3:6]] == first  # a still scene


def test_before_its_first_search_ends_an_object_is_waiting(rig: Rig) -> None:
    rig.prompt(ObjectPrompt.from_point(1, *CLICK))
    outcomes = rig.frames(3 * RUN_FRAMES)
    assert not any(o.fresh for o in outcomes)
    assert all(o.objects[0].stamp_ns == 0 for o in outcomes)
    assert all(o.objects[0].result.status == ObjectStatus.SKIPPED for o in outcomes)


def test_a_prompt_replaced_mid_search_drops_the_old_search_and_its_outputs(
    rig: Rig, truth: list[np.ndarray]
) -> None:
    rig.prompt(ObjectPrompt.from_point(1, *CLICK))
    rig.frames(1 + RUN_FRAMES + SETTLE)  # the second window's output is next
    rig.prompt(ObjectPrompt.from_point(1, SMALL.x + 10.0, SMALL.y + 12.0))
    outcomes = rig.frames(4 * RUN_FRAMES)
    assert rig.machine.counts["frames_stale_prompt"] >= 1
    results = fresh_results(outcomes, 1)
    assert results, "the new click got no result"
    frame, first = results[0]
    # A whole new search: its three runs, none taken over from the old one.
    assert frame >= 1 + RUN_FRAMES + SETTLE + 3 * RUN_FRAMES
    assert mask_iou(full_mask(first), truth[1]) > 0.8
    assert not full_mask(first)[truth[0]].any()


def test_a_click_where_the_first_window_finds_nothing_gets_the_native_rois_answer(
    files: dict[str, Path],
) -> None:
    blind = make_rig(files, model="blind")
    try:
        blind.prompt(ObjectPrompt.from_point(1, *CLICK, track=True))
        outcomes = blind.frames(3 * 2 * RUN_FRAMES + 1)
        results = fresh_results(outcomes, 1)
        # One window, then the native point ROI: two runs per result.
        assert [f for f, _ in results] == [1 + 2 * RUN_FRAMES * k for k in (1, 2, 3)]
        assert all(r.status == ObjectStatus.EMPTY for _, r in results)
        assert all(r.crop.width == 96 for _, r in results)  # the native ROI
        # Empty searches count towards losing a tracked object (lost_after = 3).
        assert outcomes[-1].lost == frozenset({1})
    finally:
        blind.close()


def test_a_tracked_click_is_recentred_on_the_whole_mask_between_searches(
    rig: Rig, truth: list[np.ndarray]
) -> None:
    rig.prompt(ObjectPrompt.from_point(1, *CLICK, track=True))
    results = fresh_results(rig.frames(2 * 3 * RUN_FRAMES + 1), 1)
    assert len(results) == 2
    with rig.machine.lock:
        [moved] = rig.machine.book.snapshot()
    x, y = moved.foreground[0]
    assert (x, y) != CLICK and truth[0][int(y), int(x)]
    # The second search looked from the re-centred click: its mask is still the object.
    assert mask_iou(full_mask(results[1][1]), truth[0]) > 0.45


def test_box_and_multi_point_prompts_keep_their_one_roi(rig: Rig, truth: list[np.ndarray]) -> None:
    box = (SMALL.x - 2.0, SMALL.y - 2.0, SMALL.x + SMALL.width + 2.0, SMALL.y + 30.0)
    rig.prompt(ObjectPrompt(2, np.zeros((0, 2)), np.zeros(0), box=box))
    results = fresh_results(rig.frames(8), 2)
    assert len(results) >= 4  # a result per attributed frame, as without the search
    assert mask_iou(full_mask(results[-1][1]), truth[1]) > 0.8
    assert rig.machine.searches.runs == 0


def test_whole_object_off_is_the_roi_around_the_click(files: dict[str, Path]) -> None:
    assert DecodeSettings().whole_object is False
    off = make_rig(files, whole_object=False)
    try:
        off.prompt(ObjectPrompt.from_point(1, *CLICK))
        results = fresh_results(off.frames(10), 1)
        assert [f for f, _ in results] == list(range(1 + RUN_FRAMES, 11))
        assert all(r.crop.width == 96 for _, r in results)
        assert off.machine.searches.runs == 0
    finally:
        off.close()


def test_the_emulator_runs_the_zoom_model_under_whole_object() -> None:
    params = {"emulator_model": "", "whole_object": True}
    assert Path(emulator_default_model(params)).name == WHOLE_OBJECT_MODEL_FILE
    assert Path(emulator_default_model({**params, "whole_object": False})).name != (
        WHOLE_OBJECT_MODEL_FILE
    )


def test_a_photograph_shown_to_an_attached_camera_is_its_next_frames(
    files: dict[str, Path],
) -> None:
    r = make_rig(files, whole_object=False)
    try:
        photo = np.zeros((H, W, 3), np.uint8)
        photo[:, :, 1] = 200
        r.camera.show(emulator.still_source(photo, "green"))
        request = r.picam2.capture_request()
        try:
            main = request.make_array("main")  # RGB888: B, G, R
        finally:
            request.release()
        assert (main[:, :, 1] == 200).all() and (main[:, :, 0] == 0).all()
        with pytest.raises(emulator.SourceError):
            emulator.still_source(photo[:, :, 0])
    finally:
        r.close()


def test_two_clicks_take_turns_one_whole_search_each(rig: Rig, truth: list[np.ndarray]) -> None:
    rig.prompt(ObjectPrompt.from_point(1, *CLICK))
    rig.prompt(ObjectPrompt.from_point(2, SMALL.x + 10.0, SMALL.y + 12.0))
    outcomes = rig.frames(2 * 3 * RUN_FRAMES + 1)
    big, small = fresh_results(outcomes, 1), fresh_results(outcomes, 2)
    assert len(big) == 1 and len(small) == 1
    assert mask_iou(full_mask(big[0][1]), truth[0]) > 0.45
    assert mask_iou(full_mask(small[0][1]), truth[1]) > 0.8
    # A click's runs are consecutive ROIs of its one turn (the scene they see is the
    # same moment), then the other click's search has its turn.
    order = [oid for _frame, oid, _roi in rig.machine.attributions]
    assert order == [1, 1, 1, 2, 2, 2]
    assert big[0][0] == 1 + 3 * RUN_FRAMES and small[0][0] == 1 + 6 * RUN_FRAMES
    # Three ROIs per turn, each settled: six ROI changes in two turns, and the last
    # frame starts the first click's next search (its turn and first ROI).
    assert rig.machine.scheduler.turns == 3 and rig.machine.scheduler.switches == 7
