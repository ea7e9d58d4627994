"""segmenter_node on a real rclpy graph (real DDS, own domain, localhost).

The model is an ONNX graph built here with the PicoSAM2 contract whose output is the
region matching the crop centre's colour, so every assertion checks real geometry.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Point, PointStamped
from picosam2_ros.msg import ObjectMask, Prompt
from picosam2_ros.srv import RemoveObject
from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.io.image import image_to_array
from picosam2_ros.testing.models import build_colour_match_model, build_wrong_shape_model
from picosam2_ros.testing.scenes import SceneObject, render_scene

from .harness import SegmenterGraph, image_msg, wait_until

W, H = 640, 480
# Asymmetric objects: a width/height swap or a transposed mask cannot pass.
RECT = SceneObject("rect", (220, 40, 40), x=100, y=150, width=60, height=20)
TALL = SceneObject("rect", (40, 200, 60), x=400, y=100, width=16, height=50)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_colour_match_model(tmp_path_factory.mktemp("models") / "colour.onnx")


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, list[np.ndarray]]:
    return render_scene(W, H, [RECT, TALL])


@pytest.fixture
def graph(model_path: Path) -> Iterator[SegmenterGraph]:
    g = SegmenterGraph({"point_model": str(model_path), "diagnostics_period": 0.2})
    yield g
    g.close()


def point_prompt(object_id: int, x: float, y: float, labels: list[int] | None = None) -> Prompt:
    msg = Prompt(object_id=object_id)
    msg.points = [Point(x=float(x), y=float(y))]
    msg.labels = bytes(labels if labels is not None else [1])
    return msg


def frame_mask(res_obj: ObjectMask) -> np.ndarray:
    """An ObjectMask's mask pasted into a full frame (bool)."""
    full = np.zeros((H, W), bool)
    crop = res_obj.crop
    local = image_to_array(res_obj.mask) > 0
    full[
        crop.y_offset : crop.y_offset + crop.height, crop.x_offset : crop.x_offset + crop.width
    ] = local
    return full


def wait_standing(graph: SegmenterGraph, count: int) -> None:
    wait_until(lambda: graph.standing() == count)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "rgba8", "bgra8"])
def test_mask_lands_on_the_prompted_object_with_the_image_header(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]], encoding: str
) -> None:
    rgb, masks = scene
    image = {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "mono8": rgb.mean(axis=2).astype(np.uint8),
        "rgba8": np.dstack([rgb, np.full((H, W), 255, np.uint8)]),
        "bgra8": np.dstack([rgb[..., ::-1], np.full((H, W), 7, np.uint8)]),
    }[encoding]
    graph.send_prompt(point_prompt(7, RECT.x + 30, RECT.y + 10))
    wait_standing(graph, 1)

    result = graph.segment(image, encoding, stamp_ns=5_000_000_123)

    assert result.header.frame_id == "cam"
    assert (result.header.stamp.sec, result.header.stamp.nanosec) == (5, 123)
    assert (result.image_width, result.image_height) == (W, H)
    assert result.backend.startswith("onnxruntime")
    [obj] = result.objects
    assert obj.object_id == 7 and obj.status == ObjectMask.STATUS_OK
    assert obj.source_stamp == result.header.stamp
    assert mask_iou(frame_mask(obj), masks[0]) > 0.9
    assert (obj.bbox.x_offset, obj.bbox.y_offset, obj.bbox.width, obj.bbox.height) == (
        RECT.x,
        RECT.y,
        RECT.width,
        RECT.height,
    )
    assert 0.0 < obj.score <= 1.0
    mask = wait_until(lambda: graph.mask_for(result.header.stamp))
    assert (mask.encoding, mask.width, mask.height) == ("mono8", W, H)
    assert mask.header == result.header
    full = image_to_array(mask)
    assert set(np.unique(full)) <= {0, 255}
    assert mask_iou(full > 0, masks[0]) > 0.9


def test_each_object_gets_its_own_mask_and_the_mask_topic_is_their_union(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, masks = scene
    graph.send_prompt(point_prompt(1, RECT.x + 30, RECT.y + 10))
    graph.send_prompt(point_prompt(2, TALL.x + 8, TALL.y + 25))
    wait_standing(graph, 2)
    result = graph.segment(rgb, "rgb8", stamp_ns=1)
    assert [o.object_id for o in result.objects] == [1, 2]
    assert mask_iou(frame_mask(result.objects[0]), masks[0]) > 0.9
    assert mask_iou(frame_mask(result.objects[1]), masks[1]) > 0.9
    union = image_to_array(wait_until(lambda: graph.mask_for(result.header.stamp))) > 0
    assert mask_iou(union, masks[0] | masks[1]) > 0.9


def test_the_full_frame_mask_is_built_only_for_a_reader(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]], monkeypatch
) -> None:
    from picosam2_ros.nodes import segmenter_node

    built: list[int] = []
    union_mask = segmenter_node.union_mask
    monkeypatch.setattr(
        segmenter_node, "union_mask", lambda frame: built.append(1) or union_mask(frame)
    )
    rgb, masks = scene
    graph.send_prompt(point_prompt(1, RECT.x + 30, RECT.y + 10))
    wait_standing(graph, 1)
    graph.client.destroy_subscription(graph.mask_sub)
    wait_until(lambda: graph.node._mask_pub.get_subscription_count() == 0)
    result = graph.segment(rgb, "rgb8", stamp_ns=11)
    assert mask_iou(frame_mask(result.objects[0]), masks[0]) > 0.9
    assert built == []
    graph.mask_sub = graph.client.create_subscription(Image, "mask", graph.masks.append, 50)
    wait_until(lambda: graph.node._mask_pub.get_subscription_count() == 1)
    result = graph.segment(rgb, "rgb8", stamp_ns=12)
    mask = wait_until(lambda: graph.mask_for(result.header.stamp))
    assert built == [1] and mask_iou(image_to_array(mask) > 0, masks[0]) > 0.9


def test_box_prompt_segments_the_boxed_object(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, masks = scene
    msg = Prompt(object_id=3, has_box=True)
    msg.box_x_min, msg.box_y_min = float(TALL.x), float(TALL.y)
    msg.box_x_max, msg.box_y_max = float(TALL.x + TALL.width), float(TALL.y + TALL.height)
    graph.send_prompt(msg)
    wait_standing(graph, 1)
    [obj] = graph.segment(rgb, "rgb8", stamp_ns=2).objects
    # The box crop is square, 1.1 x the box's longer side, centred on the box.
    assert obj.crop.width == obj.crop.height == round(1.1 * TALL.height)
    assert mask_iou(frame_mask(obj), masks[1]) > 0.9


def test_clicks_add_objects_and_services_remove_and_clear_them(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, masks = scene
    graph.click_pub.publish(Point(x=float(RECT.x + 30), y=float(RECT.y + 10)))
    stamped = PointStamped()
    stamped.point.x, stamped.point.y = float(TALL.x + 8), float(TALL.y + 25)
    graph.point_pub.publish(stamped)
    wait_standing(graph, 2)
    result = graph.segment(rgb, "rgb8", stamp_ns=3)
    ids = [o.object_id for o in result.objects]
    assert len(set(ids)) == 2
    by_iou = sorted(mask_iou(frame_mask(o), masks[0]) for o in result.objects)
    assert by_iou[-1] > 0.9

    remove = graph.client.create_client(RemoveObject, "remove_object")
    clear = graph.client.create_client(Trigger, "clear_prompts")
    assert remove.wait_for_service(timeout_sec=5) and clear.wait_for_service(timeout_sec=5)
    resp = wait_until(lambda: _call(remove, RemoveObject.Request(object_id=ids[0])))
    assert resp.success
    missing = wait_until(lambda: _call(remove, RemoveObject.Request(object_id=999)))
    assert not missing.success and "999" in missing.message
    assert [o.object_id for o in graph.segment(rgb, "rgb8", stamp_ns=4).objects] == [ids[1]]
    cleared = wait_until(lambda: _call(clear, Trigger.Request()))
    assert cleared.success and "1" in cleared.message
    assert graph.segment(rgb, "rgb8", stamp_ns=5).objects == []


def _call(client, request):  # type: ignore[no-untyped-def]
    future = client.call_async(request)
    wait_until(future.done)
    return future.result()


def test_background_point_erases_its_component(graph: SegmenterGraph) -> None:
    # Two same-coloured blobs inside one crop; the background point removes the second.
    left = SceneObject("rect", (200, 200, 40), x=300, y=300, width=20, height=12)
    right = SceneObject("rect", (200, 200, 40), x=340, y=300, width=14, height=30)
    image, masks = render_scene(W, H, [left, right])
    msg = Prompt(object_id=4)
    msg.points = [Point(x=310.0, y=306.0), Point(x=347.0, y=315.0)]
    msg.labels = bytes([1, 0])
    graph.send_prompt(msg)
    wait_standing(graph, 1)
    [obj] = graph.segment(image, "rgb8", stamp_ns=6).objects
    got = frame_mask(obj)
    assert mask_iou(got, masks[0]) > 0.9
    assert not (got & masks[1]).any()


def test_overlay_is_published_while_subscribed(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, _ = scene
    graph.subscribe_overlay()
    graph.send_prompt(point_prompt(1, RECT.x + 30, RECT.y + 10))
    wait_standing(graph, 1)
    result = graph.segment(rgb, "rgb8", stamp_ns=7)
    overlay = wait_until(lambda: graph.overlays[-1] if graph.overlays else None)
    assert overlay.header == result.header
    assert (overlay.encoding, overlay.width, overlay.height) == ("bgr8", W, H)
    pixels = image_to_array(overlay)
    # Tinted inside the object, untouched far from every object.
    assert not np.array_equal(pixels[RECT.y + 10, RECT.x + 30], rgb[RECT.y + 10, RECT.x + 30, ::-1])
    assert np.array_equal(pixels[470, 630], rgb[470, 630, ::-1])


BAD_PROMPTS = {
    "NaN coordinate": point_prompt(1, float("nan"), 10),
    "negative coordinate": point_prompt(1, -5, 10),
    "no points and no box": Prompt(object_id=1),
    "label count mismatch": point_prompt(1, 10, 10, labels=[1, 0]),
    "object id 0": point_prompt(0, 10, 10),
}


def test_bad_prompts_are_rejected_counted_and_the_node_keeps_serving(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, masks = scene
    for bad in BAD_PROMPTS.values():
        graph.send_prompt(bad)
    wait_until(lambda: graph.node._counts["bad_prompts"] == len(BAD_PROMPTS))
    assert graph.standing() == 0
    status = graph.fresh_diagnostics()
    assert status.level == status.WARN and "prompt rejected" in status.message
    assert {kv.key: kv.value for kv in status.values}["bad_prompts"] == str(len(BAD_PROMPTS))
    graph.send_prompt(point_prompt(5, RECT.x + 30, RECT.y + 10))
    wait_standing(graph, 1)
    [obj] = graph.segment(rgb, "rgb8", stamp_ns=9).objects
    assert mask_iou(frame_mask(obj), masks[0]) > 0.9


def test_a_prompt_outside_the_frame_is_reported_skipped_and_others_are_served(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, masks = scene
    graph.send_prompt(point_prompt(1, W + 50, 10))  # fine for a larger image, not this one
    graph.send_prompt(point_prompt(2, RECT.x + 30, RECT.y + 10))
    wait_standing(graph, 2)
    outside, inside = graph.segment(rgb, "rgb8", stamp_ns=15).objects
    assert outside.object_id == 1 and outside.status == ObjectMask.STATUS_SKIPPED
    assert outside.mask.width == 0 and outside.crop.width == 0
    assert inside.status == ObjectMask.STATUS_OK
    assert mask_iou(frame_mask(inside), masks[0]) > 0.9
    status = graph.fresh_diagnostics()
    assert status.level == status.WARN and "object 1 skipped" in status.message
    assert "outside" in status.message
    assert int({kv.key: kv.value for kv in status.values}["objects_skipped"]) >= 1


def test_bad_images_are_rejected_counted_and_the_node_keeps_serving(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, masks = scene
    graph.send_prompt(point_prompt(1, RECT.x + 30, RECT.y + 10))
    wait_standing(graph, 1)
    good = image_msg(rgb, "rgb8", 10)
    bad = [
        image_msg(rgb, "yuv422", 11),  # unsupported encoding
        image_msg(np.zeros((0, 0, 3), np.uint8), "rgb8", 12),  # zero size
    ]
    truncated = image_msg(rgb, "rgb8", 13)
    truncated.data = truncated.data[: len(truncated.data) // 2]
    bad.append(truncated)
    for count, msg in enumerate(bad, start=1):
        graph.image_pub.publish(msg)  # one at a time: a newer frame would replace it
        wait_until(lambda n=count: graph.node._counts["bad_images"] == n)
    status = graph.fresh_diagnostics()
    assert status.level == status.WARN and "image rejected" in status.message
    graph.image_pub.publish(good)
    result = wait_until(lambda: graph.result_for(good.header.stamp))
    assert mask_iou(frame_mask(result.objects[0]), masks[0]) > 0.9
    assert not any(graph.result_for(m.header.stamp) for m in bad)


def test_image_smaller_than_the_crop_is_segmented_with_a_smaller_crop(
    graph: SegmenterGraph,
) -> None:
    tiny_obj = SceneObject("rect", (250, 30, 30), x=10, y=12, width=14, height=6)
    image, masks = render_scene(40, 30, [tiny_obj])
    graph.send_prompt(point_prompt(1, 16, 15))
    wait_standing(graph, 1)
    [obj] = graph.segment(image, "rgb8", stamp_ns=14).objects
    assert (obj.crop.width, obj.crop.height) == (30, 30)
    local = image_to_array(obj.mask) > 0
    full = np.zeros((30, 40), bool)
    full[obj.crop.y_offset : obj.crop.y_offset + 30, obj.crop.x_offset : obj.crop.x_offset + 30] = (
        local
    )
    assert mask_iou(full, masks[0]) > 0.8


def test_every_frame_is_accounted_for_when_images_arrive_faster_than_it_segments(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, _ = scene
    for i in range(8):
        graph.send_prompt(point_prompt(i + 1, 20 + 60 * i, 400))
    wait_standing(graph, 8)
    sent = 60
    for i in range(sent):
        graph.image_pub.publish(image_msg(rgb, "rgb8", 100 + i))
    counts = graph.node._counts

    def settled() -> bool:
        # Reliable KEEP_LAST may overwrite unsent samples in the publisher, so count
        # what arrived: each arrived frame is segmented or dropped, none is queued.
        time.sleep(0.3)
        arrived = counts["frames_in"]
        return arrived > 0 and counts["frames_out"] + graph.node._slot.dropped == arrived

    wait_until(settled, timeout=30)
    assert counts["frames_out"] >= 1
    # The newest frame is always segmented; intermediate ones may be dropped, never queued.
    last = graph.segment(rgb, "rgb8", stamp_ns=100 + sent)
    assert len(last.objects) == 8
    values = graph.diagnostic_values()
    assert int(values["frames_dropped"]) == graph.node._slot.dropped


def test_missing_corrupt_and_wrong_shape_models_report_errors_and_recover(
    tmp_path: Path, model_path: Path, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    rgb, masks = scene
    missing = tmp_path / "nope.onnx"
    g = SegmenterGraph({"point_model": str(missing), "diagnostics_period": 0.2})
    try:
        status = g.fresh_diagnostics()
        assert status.level == status.ERROR and "nope.onnx" in status.message
        g.send_prompt(point_prompt(1, RECT.x + 30, RECT.y + 10))
        wait_standing(g, 1)
        g.image_pub.publish(image_msg(rgb, "rgb8", 20))
        wait_until(lambda: g.node._counts["frames_without_model"] == 1)

        corrupt = tmp_path / "corrupt.onnx"
        corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
        wrong = build_wrong_shape_model(tmp_path / "wrong.onnx", "output")
        for path, words in ((corrupt, "corrupt.onnx"), (wrong, "wrong.onnx")):
            [res] = g.node.set_parameters([Parameter("point_model", value=str(path))])
            assert res.successful  # the file exists; loading it is what fails
            status = g.fresh_diagnostics()
            assert status.level == status.ERROR and words in status.message

        [res] = g.node.set_parameters([Parameter("point_model", value=str(model_path))])
        assert res.successful
        [obj] = g.segment(rgb, "rgb8", stamp_ns=21).objects
        assert mask_iou(frame_mask(obj), masks[0]) > 0.9
        # Back to OK once the last problem is older than the diagnostics' 5 s window.
        wait_until(lambda: g.fresh_diagnostics().level == DiagnosticStatus.OK, timeout=10)
    finally:
        g.close()


def test_parameters_are_validated(graph: SegmenterGraph, tmp_path: Path) -> None:
    cases = [
        Parameter("crop_side_px", value=2),  # below range
        Parameter("box_margin", value=9.0),  # above range
        Parameter("point_model", value=str(tmp_path / "absent.onnx")),
        Parameter("image_qos", value="reliable"),  # read-only after start
    ]
    for param in cases:
        [res] = graph.node.set_parameters([param])
        assert isinstance(res, SetParametersResult) and not res.successful, param.name
    [ok] = graph.node.set_parameters([Parameter("crop_side_px", value=64)])
    assert ok.successful and graph.node._settings().point_side_px == 64


def test_whole_object_parameter_turns_a_click_into_the_whole_object(
    graph: SegmenterGraph,
) -> None:
    big = SceneObject("ellipse", (40, 60, 210), x=200, y=150, width=180, height=150)
    rgb, (truth,) = render_scene(W, H, [big])
    graph.send_prompt(point_prompt(3, 270, 210))  # a click off the object's centre
    wait_standing(graph, 1)
    native = graph.segment(rgb, "rgb8", stamp_ns=1_000)
    [obj] = native.objects
    assert (obj.crop.width, obj.crop.height) == (96, 96)
    assert mask_iou(frame_mask(obj), truth) < 0.45  # the 96-px crop cuts the object

    [res] = graph.node.set_parameters([Parameter("whole_object", value=True)])
    assert res.successful and graph.node._settings().whole_object is not None
    whole = graph.segment(rgb, "rgb8", stamp_ns=2_000)
    [obj] = whole.objects
    assert obj.status == ObjectMask.STATUS_OK
    assert mask_iou(frame_mask(obj), truth) > 0.9
    [bad] = graph.node.set_parameters([Parameter("whole_object", value="yes")])
    assert not bad.successful and graph.node._settings().whole_object is not None
    [res] = graph.node.set_parameters([Parameter("whole_object", value=False)])
    assert res.successful and graph.node._settings().whole_object is None
