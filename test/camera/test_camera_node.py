"""camera_node on a real rclpy graph with the emulated IMX500 (the only fake: picamera2
and the sensor). The network stand-in is the colour-match ONNX model run by
onnxruntime, so a mask is exactly the flat-coloured object under the ROI centre and
every assertion checks real geometry."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from picosam2_ros.msg import ObjectMask, Prompt
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from picosam2_ros.camera import emulator
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.io.image import image_to_array
from picosam2_ros.nodes.camera_node import CameraNode, CameraStartError
from picosam2_ros.testing.models import build_colour_match_model
from picosam2_ros.testing.scenes import SceneObject, render_scene, shape_mask

from .harness import (
    CameraGraph,
    H,
    W,
    frame_mask,
    fresh,
    point_prompt,
    wait_until,
    write_frames,
)

ROOT = Path(__file__).resolve().parents[2]
# Asymmetric objects: a width/height swap, a transposed mask or a mirrored paste fails.
WIDE = SceneObject("rect", (220, 40, 40), x=100, y=150, width=60, height=20)
TALL = SceneObject("rect", (40, 200, 60), x=400, y=100, width=16, height=50)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("camera")
    network = root / "picosam2.rpk"
    network.write_bytes(b"network package stand-in" * 64)
    scene, _ = render_scene(W, H, [WIDE, TALL])
    return {
        "model": build_colour_match_model(root / "colour.onnx"),
        "network": network,
        "still": write_frames(root / "still", [scene]),
    }


@pytest.fixture(scope="module")
def scene_masks() -> list[np.ndarray]:
    return render_scene(W, H, [WIDE, TALL])[1]


def params(files: dict[str, Path], **extra: object) -> dict[str, object]:
    return {
        "network": str(files["network"]),
        "emulator_source": str(files["still"]),
        "emulator_model": str(files["model"]),
        **extra,
    }


@pytest.fixture
def still_graph(files: dict[str, Path]) -> Iterator[CameraGraph]:
    g = CameraGraph(params(files, turn_frames=2, settle_frames=2, emulator_roi_lag_frames=2))
    yield g
    g.close()


def centre(obj: SceneObject) -> tuple[float, float]:
    return obj.x + obj.width / 2.0, obj.y + obj.height / 2.0


def bbox(obj: ObjectMask) -> tuple[int, int, int, int]:
    b = obj.bbox
    return b.x_offset, b.y_offset, b.width, b.height


def test_a_prompt_on_an_asymmetric_object_lands_its_mask_at_the_right_place(
    still_graph: CameraGraph, scene_masks: list[np.ndarray]
) -> None:
    g = still_graph
    g.send(point_prompt(7, *centre(WIDE)))
    [obj] = g.wait_fresh(7)
    result = next(r for r in g.snapshot(g.results) if obj in fresh(r))
    assert obj.status == ObjectMask.STATUS_OK
    assert (result.image_width, result.image_height) == (W, H)
    assert result.header.frame_id == "camera_optical_frame"
    assert result.backend.startswith("imx500-emulator")
    assert mask_iou(frame_mask(obj), scene_masks[0]) > 0.85
    # The sensor's ROI maps back to the main stream with integer rounding: within 2 px.
    x, y, w, h = bbox(obj)
    assert abs(x - WIDE.x) <= 2 and abs(y - WIDE.y) <= 2
    assert abs(w - WIDE.width) <= 2 and abs(h - WIDE.height) <= 2
    # The point ROI: a square of 96 main-stream pixels around the prompt.
    assert abs(obj.crop.width - 96) <= 2 and abs(obj.crop.height - 96) <= 2
    # mask, image_raw and camera_info carry the same header as the result.
    mask = wait_until(
        lambda: next(
            (m for m in g.snapshot(g.masks) if m and m.header.stamp == result.header.stamp), None
        )
    )
    assert (mask.encoding, mask.width, mask.height) == ("mono8", W, H)
    assert mask_iou(image_to_array(mask) > 0, scene_masks[0]) > 0.85
    wait_until(lambda: any(h.stamp == result.header.stamp for h in g.snapshot(g.image_headers)))
    info = wait_until(lambda: g.snapshot(g.infos)[-1:])[0]
    assert (info.width, info.height) == (W, H) and list(info.k) == [0.0] * 9


def test_a_segmentation_only_consumer_gets_masks_without_full_frames_being_built(
    files: dict[str, Path], scene_masks: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    copies: list[str] = []
    make_array = emulator.CompletedRequest.make_array

    def counting_make_array(self: emulator.CompletedRequest, name: str) -> np.ndarray:
        copies.append(name)
        return make_array(self, name)

    monkeypatch.setattr(emulator.CompletedRequest, "make_array", counting_make_array)
    g = CameraGraph(params(files), full_frames=False)
    try:
        g.send(point_prompt(3, *centre(WIDE)))
        objs = g.wait_fresh(3, n=3)
        assert all(o.status == ObjectMask.STATUS_OK for o in objs)
        assert all(mask_iou(frame_mask(o), scene_masks[0]) > 0.85 for o in objs)
        # Nobody reads image_raw, mask or overlay: the main stream is never copied out of
        # a request and no full-frame message is built.
        assert copies == []
        assert g.node._union is None
        frames = g.node._counts["frames"]
        # A reader appears: from then on the frames are copied and published for it.
        images = []
        g.client.create_subscription(Image, "image_raw", images.append, 10)
        wait_until(lambda: images)
        assert "main" in copies and g.node._counts["frames"] > frames
    finally:
        g.close()


@pytest.mark.parametrize("weight", [0.0, 8.0])
def test_a_box_prompt_is_decoded_with_its_box(files: dict[str, Path], weight: float) -> None:
    """A tall, narrow box across WIDE: its square ROI (1.1 x 40 px) sees WIDE across its
    whole width. With box-conditioned decoding the mask ends at the box's sides; with
    weight 0 the network's mask fills the ROI's width."""
    g = CameraGraph(params(files, box_prior_weight=weight))
    try:
        msg = Prompt(object_id=4, has_box=True)
        msg.box_x_min, msg.box_y_min, msg.box_x_max, msg.box_y_max = 120.0, 140.0, 135.0, 180.0
        g.send(msg)
        [obj] = g.wait_fresh(4)
        assert obj.status == ObjectMask.STATUS_OK
        x, y, w, h = bbox(obj)
        assert abs(y - WIDE.y) <= 2 and abs(h - WIDE.height) <= 2
        if weight:
            assert abs(x - 120) <= 2 and abs(w - 15) <= 2
        else:
            assert abs(obj.crop.width - 44) <= 2 and w >= obj.crop.width - 2
    finally:
        g.close()


def test_several_prompts_take_turns_and_each_gets_its_own_mask(
    still_graph: CameraGraph, scene_masks: list[np.ndarray]
) -> None:
    g = still_graph
    g.send(point_prompt(1, *centre(WIDE)))
    g.send(point_prompt(2, *centre(TALL)))
    wait_until(lambda: g.standing() == 2)
    start = len(g.snapshot(g.results))
    g.wait_fresh(1, n=4)
    g.wait_fresh(2, n=4)
    order: list[int] = []
    for result in g.results_after(start):
        [new] = fresh(result)  # exactly one object is fresh per frame
        truth = scene_masks[0] if new.object_id == 1 else scene_masks[1]
        assert mask_iou(frame_mask(new), truth) > 0.85, new.object_id
        # The other object is its previous result, older than this frame.
        [other] = [o for o in result.objects if o is not new]
        age = (result.header.stamp.sec - other.source_stamp.sec) * 1e9 + (
            result.header.stamp.nanosec - other.source_stamp.nanosec
        )
        assert other.source_stamp.sec == 0 or age > 0
        order.append(new.object_id)
    # Turns of turn_frames = 2 attributed frames, alternating (the first and the last
    # run may be cut by when the test started and stopped looking).
    runs = [order[0]]
    lengths = [1]
    for oid in order[1:]:
        if oid == runs[-1]:
            lengths[-1] += 1
        else:
            runs.append(oid)
            lengths.append(1)
    assert all(a != b for a, b in itertools.pairwise(runs))
    assert all(n == 2 for n in lengths[1:-1]) and len(runs) >= 3
    # Settle rule: every attributed frame was computed on its object's ROI, as the
    # emulated sensor recorded it.
    records = {r.sequence: r for r in g.camera.records}
    attributed = [a for a in list(g.node.attributions) if a[0] in records]
    assert len(attributed) >= 8
    assert all(records[frame].roi == roi for frame, _oid, roi in attributed)
    values = g.diagnostic_values()
    assert int(values["frames_settling"]) >= 2 * (int(values["roi_switches"]) - 2)
    assert float(values["roi_switches_per_s"]) > 0


def test_settle_frames_below_the_roi_lag_would_attribute_frames_of_the_previous_roi(
    still_graph: CameraGraph,
) -> None:
    """Why the settle rule exists: the emulated sensor applies an ROI two frames late;
    with settle_frames 0 some frames are attributed to a prompt whose ROI was not yet in
    force (the node cannot tell from the frame alone)."""
    g = still_graph
    [ok] = g.node.set_parameters([Parameter("settle_frames", value=0)])
    assert ok.successful
    g.send(point_prompt(1, *centre(WIDE)))
    g.send(point_prompt(2, *centre(TALL)))
    g.wait_fresh(1, n=4)
    g.wait_fresh(2, n=4)
    records = {r.sequence: r for r in g.camera.records}
    attributed = [a for a in list(g.node.attributions) if a[0] in records]
    wrong = [a for a in attributed if records[a[0]].roi != a[2]]
    assert wrong, "with settle_frames < ROI lag some attributed frames used another ROI"


CALIBRATION = """image_width: 1280
image_height: 960
camera_name: imx500
camera_matrix: {rows: 3, cols: 3, data: [1000.0, 0.0, 640.0, 0.0, 1000.0, 480.0, 0.0, 0.0, 1.0]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [0.1, -0.05, 0.0, 0.0, 0.0]}
rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
projection_matrix: {rows: 3, cols: 4, data: [1000, 0, 640, 0, 0, 1000, 480, 0, 0, 0, 1, 0]}
"""


def test_frames_without_output_are_counted_and_the_rest_still_served(
    files: dict[str, Path], scene_masks: list[np.ndarray], tmp_path: Path
) -> None:
    calibration = tmp_path / "imx500.yaml"
    calibration.write_text(CALIBRATION)
    g = CameraGraph(
        params(
            files,
            emulator_no_output_share=0.5,
            settle_frames=2,
            calibration_file=str(calibration),
        )
    )
    try:
        # camera_info from the calibration file, scaled from 1280x960 to the stream.
        info = wait_until(lambda: g.snapshot(g.infos)[-1:])[0]
        assert list(info.k) == [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
        assert list(info.d) == [0.1, -0.05, 0.0, 0.0, 0.0]
        g.send(point_prompt(3, *centre(TALL)))
        for obj in g.wait_fresh(3, n=5):
            assert mask_iou(frame_mask(obj), scene_masks[1]) > 0.85
        node_frames = g.node._counts["frames"]
        missing = sum(1 for r in g.camera.records[:node_frames] if not r.has_output)
        assert 0.2 * node_frames < missing < 0.8 * node_frames
        # Counted as the emulated sensor produced them (the node sees every frame).
        wait_until(lambda: g.node._counts["frames"] > node_frames)
        counted = g.node._counts["frames_without_output"]
        seen = g.node._counts["frames"]
        assert counted >= missing
        assert counted == sum(1 for r in g.camera.records[:seen] if not r.has_output)
        values = g.diagnostic_values()
        assert int(values["frames_without_output"]) > 0
        assert values["dnn_runtime_p50_ms"] == "11.80"
        assert values["firmware"] == "loaded"
    finally:
        g.close()


def moving_sequence(frames: int, leave_at: int) -> tuple[list[np.ndarray], list[SceneObject]]:
    """A flat wide object moving right 6 px per frame over a textured dark background
    (which the colour-match model segments only as a blurry, low-score mask); gone from
    ``leave_at`` on."""
    images, objects = [], []
    background = np.random.default_rng(0).integers(0, 140, (H, W, 3), dtype=np.uint8)
    for i in range(frames):
        obj = SceneObject("rect", (230, 210, 40), x=300 + 6 * i, y=200, width=60, height=24)
        image = background.copy()
        if i < leave_at:
            image[shape_mask(obj, W, H)] = obj.colour
        images.append(image)
        objects.append(obj)
    return images, objects


def test_tracking_follows_a_moving_object_and_reports_it_lost_when_it_disappears(
    files: dict[str, Path], tmp_path: Path
) -> None:
    images, objects = moving_sequence(60, leave_at=30)
    folder = write_frames(tmp_path / "moving", images)
    g = CameraGraph(
        params(
            files,
            emulator_source=str(folder),
            turn_frames=1,
            settle_frames=2,
            lost_after=3,
            min_score=0.8,
            emulator_rate=30.0,
        )
    )
    try:
        start_obj = objects[0]
        g.send(point_prompt(5, *centre(start_obj), track=True))

        def lost() -> bool:
            return any(
                o.status == ObjectMask.STATUS_LOST for r in g.snapshot(g.results) for o in r.objects
            )

        wait_until(lost, timeout=30)
        seen = [o for r in g.snapshot(g.results) for o in fresh(r) if o.object_id == 5]
        found = [o for o in seen if o.status == ObjectMask.STATUS_OK]
        # Followed: the mask kept the object's size while its x kept increasing.
        xs = [o.bbox.x_offset for o in found]
        assert len(found) >= 4 and xs == sorted(xs) and xs[-1] - xs[0] >= 30
        for o in found:
            # The whole height; the width can be cut by the ROI edge when the object ran
            # ahead of its (re-centred, settling) ROI, never wider than the object.
            assert abs(o.bbox.height - 24) <= 2 and 30 <= o.bbox.width <= 62
        # The prompt moved with it (re-centred on each new mask).
        last_ok = found[-1]
        assert last_ok.prompt.points[0].x > centre(start_obj)[0] + 20
        # After it disappeared: empty masks, then LOST, and the prompt is kept standing.
        statuses = [o.status for o in seen]
        first_lost = statuses.index(ObjectMask.STATUS_LOST)
        assert statuses[first_lost - 1] == ObjectMask.STATUS_EMPTY
        assert g.standing() == 1
    finally:
        g.close()


def test_a_camera_error_mid_stream_is_reported_and_survived(
    files: dict[str, Path], scene_masks: list[np.ndarray]
) -> None:
    g = CameraGraph(params(files, emulator_fail_at_frame=12, reconnect_max_s=0.5))
    try:
        g.send(point_prompt(1, *centre(WIDE)))
        g.wait_fresh(1)

        def error_status() -> object:
            status = g.fresh_status()
            return status if status.level == status.ERROR else None

        status = wait_until(error_status)
        assert "camera error" in status.message and "timed out" in status.message
        wait_until(lambda: g.node._counts["reconnects"] == 1)
        # Serving again after the reconnect: fresh, correct masks.
        for obj in g.wait_fresh(1, n=3):
            assert mask_iou(frame_mask(obj), scene_masks[0]) > 0.85
        assert g.node._counts["camera_errors"] == 1
        values = g.diagnostic_values()
        assert values["reconnects"] == "1" and "timed out" in values["last_camera_error"]
    finally:
        g.close()


def test_prompts_outside_the_frame_are_rejected_and_a_flood_keeps_the_newest(
    still_graph: CameraGraph,
) -> None:
    g = still_graph
    g.send(point_prompt(1, W + 60, 10))
    wait_until(lambda: g.node._counts["bad_prompts"] == 1)
    assert g.standing() == 0
    assert "outside the 640x480 frame" in g.node._last_problem
    flood = 60
    for i in range(flood):
        g.send(point_prompt(2, 20 + 5 * i, 300))
    newest = [20.0 + 5 * (flood - 1), 300.0]
    # Queues may drop some of a flood (KEEP_LAST); the newest prompt always wins.
    wait_until(lambda: [p.points[0].tolist() for p in g.node._book.snapshot()] == [newest])
    assert 1 < g.node._counts["prompts_received"] <= flood + 1
    values = g.fresh_status().values
    rate = float(next(kv.value for kv in values if kv.key == "prompt_rate_hz"))
    assert rate > 0


def test_busy_camera_and_missing_picamera2_fail_with_clear_errors(
    files: dict[str, Path],
) -> None:
    import rclpy
    from rclpy.context import Context

    other = emulator.attach_camera(
        emulator.EmulatorSettings(source=str(files["still"]), model=str(files["model"]))
    )
    holder = emulator.Picamera2(other.num)  # another process holds the camera
    context = Context()
    rclpy.init(context=context)
    try:
        overrides = [
            Parameter(k, value=v) for k, v in params(files, camera_id=other.camera_id).items()
        ]
        with pytest.raises(CameraStartError, match="busy"):
            CameraNode(context=context, parameter_overrides=overrides)
        real = [Parameter("network", value=str(files["network"]))]
        try:
            import picamera2  # noqa: F401
        except ImportError:
            with pytest.raises(
                CameraStartError, match=r"picamera2 is not importable.*emulator_source"
            ):
                CameraNode(context=context, parameter_overrides=real)
    finally:
        holder.close()
        emulator.detach_camera(other)
        rclpy.shutdown(context=context)


@pytest.mark.parametrize(
    ("network", "words"),
    [("missing.rpk", "network: no such file"), ("", "network: set the path")],
)
def test_a_bad_network_path_exits_non_zero_with_one_clear_line(
    files: dict[str, Path], tmp_path: Path, network: str, words: str
) -> None:
    path = str(tmp_path / network) if network else ""
    env = dict(os.environ, AMENT_PREFIX_PATH=str(ROOT / ".venv"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "picosam2_ros.nodes.camera_node",
            "--ros-args",
            "-p",
            f"network:={path}" if path else "network:=''",
            "-p",
            f"emulator_source:={files['still']}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and words in errors[0], proc.stderr
    assert errors[0].startswith("camera_node: error: ")


def test_whole_object_publishes_the_whole_clicked_object_once_its_search_ends(
    files: dict[str, Path], tmp_path: Path
) -> None:
    big = SceneObject("rect", (40, 90, 200), x=150, y=110, width=300, height=200)
    scene, masks = render_scene(W, H, [big])
    still = write_frames(tmp_path / "big", [scene])
    g = CameraGraph(
        params(
            files,
            emulator_source=str(still),
            whole_object=True,
            box_prior_weight=8.0,
            turn_frames=2,
            settle_frames=2,
            emulator_roi_lag_frames=2,
        )
    )
    try:
        g.send(point_prompt(3, 220.0, 170.0))  # off the object's centre
        first, second = g.wait_fresh(3, n=2)
        for obj in (first, second):
            assert obj.status == ObjectMask.STATUS_OK
            # Measured 0.792; the 96-px ROI around the click gives 0.154.
            assert mask_iou(frame_mask(obj), masks[0]) > 0.7
        # A result per finished search: three runs, each an ROI change and its settle
        # frames before the attributed one.
        counts = g.node._counts
        assert counts["results"] * 9 <= counts["frames"]
        bad = g.node.set_parameters([Parameter("whole_object_fit", value="stretched")])
        assert not bad[0].successful
    finally:
        g.close()
