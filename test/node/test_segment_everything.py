"""segmenter_node's segment everything (service and continuous topic) on a real rclpy
graph, with the colour-match model: on a scene of flat, separated objects each object
must come back once, with its exact mask, and nothing on the background."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from geometry_msgs.msg import Point as PointMsg
from picosam2_ros.msg import Prompt, Segmentation
from picosam2_ros.srv import SegmentEverything
from rclpy.parameter import Parameter

from picosam2_ros.core.everything import MAX_FRAME_PIXELS
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.io.image import image_to_array
from picosam2_ros.testing.models import build_colour_match_model
from picosam2_ros.testing.scenes import PALETTE, SceneObject, render_scene

from .harness import SegmenterGraph, image_msg, wait_until

W, H = 640, 480
# No larger than half a crop and at least 50 px from the edges (see test/unit/test_everything).
OBJECTS = [
    SceneObject("rect", PALETTE[0], 100, 80, 44, 20),
    SceneObject("ellipse", PALETTE[1], 300, 120, 30, 46),
    SceneObject("L", PALETTE[2], 480, 300, 42, 40),
    SceneObject("rect", PALETTE[3], 150, 330, 18, 40),
]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_colour_match_model(tmp_path_factory.mktemp("models") / "colour.onnx")


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, list[np.ndarray]]:
    return render_scene(W, H, OBJECTS)


@pytest.fixture
def graph(model_path: Path) -> Iterator[SegmenterGraph]:
    g = SegmenterGraph(
        {
            "point_model": str(model_path),
            "diagnostics_period": 0.2,
            "everything_points_per_side": 32,
        }
    )
    yield g
    g.close()


def _call(graph: SegmenterGraph) -> SegmentEverything.Response:
    client = graph.client.create_client(SegmentEverything, "segment_everything")
    assert client.wait_for_service(timeout_sec=5)
    future = client.call_async(SegmentEverything.Request())
    wait_until(future.done, timeout=30)
    response: SegmentEverything.Response = future.result()
    graph.client.destroy_client(client)
    return response


def _show(graph: SegmenterGraph, array: np.ndarray, stamp_ns: int) -> Any:
    """Publish an image and wait until the node holds it as its latest."""
    msg = image_msg(array, "rgb8" if array.ndim == 3 else "mono8", stamp_ns)
    graph.image_pub.publish(msg)
    wait_until(
        lambda: (
            graph.node._latest_image is not None
            and graph.node._latest_image.header.stamp == msg.header.stamp
        )
    )
    return msg


def _masks(seg: Segmentation) -> list[np.ndarray]:
    out = []
    for obj in seg.objects:
        full = np.zeros((seg.image_height, seg.image_width), bool)
        c = obj.crop
        full[c.y_offset : c.y_offset + c.height, c.x_offset : c.x_offset + c.width] = (
            image_to_array(obj.mask) > 0
        )
        out.append(full)
    return out


def _check_every_object_once(seg: Segmentation, truths: list[np.ndarray]) -> None:
    masks = _masks(seg)
    assert len(masks) == len(truths)
    for truth in truths:
        ious = sorted(mask_iou(m, truth) for m in masks)
        assert ious[-1] == pytest.approx(1.0) and ious[-2] == 0.0
    assert [o.object_id for o in seg.objects] == list(range(1, len(truths) + 1))
    scores = [o.score for o in seg.objects]
    assert scores == sorted(scores, reverse=True)


def test_service_before_any_frame_says_so_then_finds_each_object_once(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    early = _call(graph)
    assert not early.success and "no image received yet" in early.message
    image, truths = scene
    msg = _show(graph, image, stamp_ns=7)
    response = _call(graph)
    assert response.success, response.message
    seg = response.segmentation
    assert seg.header.stamp == msg.header.stamp and seg.header.frame_id == "cam"
    assert (seg.image_width, seg.image_height) == (W, H)
    _check_every_object_once(seg, truths)
    for obj in seg.objects:  # each prompt is the grid point that found the object
        x, y = obj.prompt.points[0].x, obj.prompt.points[0].y
        assert _masks(seg)[obj.object_id - 1][int(y), int(x)]
    assert graph.node._counts["everything_results"] == 1
    assert graph.node._counts["everything_failures"] == 1


class _Gate:
    """Stands in for the node's segment-everything lock: notes that a call reached it and
    holds the call there until the test opens it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()

    def __enter__(self) -> _Gate:
        self.reached.set()
        assert self.opened.wait(30), "the gate was never opened"
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def test_prompts_and_images_are_served_while_a_service_call_runs(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    image, truths = scene
    _show(graph, image, stamp_ns=20)
    gate = _Gate()
    graph.node._everything_busy = gate  # type: ignore[assignment]
    client = graph.client.create_client(SegmentEverything, "segment_everything")
    assert client.wait_for_service(timeout_sec=5)
    future = client.call_async(SegmentEverything.Request())
    assert gate.reached.wait(10), "the service call never started"

    # While the call is held inside segment-everything, a prompt and a frame still get
    # their answer: the service does not occupy the thread images and prompts run on.
    ys, xs = np.nonzero(truths[0])
    prompt = Prompt(object_id=5, labels=bytes([1]))
    prompt.points = [PointMsg(x=float(np.median(xs)), y=float(np.median(ys)))]
    graph.send_prompt(prompt)
    wait_until(lambda: graph.standing() == 1)
    result = graph.segment(image, "rgb8", stamp_ns=21)
    [obj] = result.objects
    assert obj.object_id == 5 and mask_iou(_masks(result)[0], truths[0]) == pytest.approx(1.0)
    assert not future.done()

    gate.opened.set()
    wait_until(future.done, timeout=30)
    response = future.result()
    assert response.success, response.message
    _check_every_object_once(response.segmentation, truths)
    graph.client.destroy_client(client)


def test_bad_images_and_a_grid_denser_than_the_frame_get_clear_errors(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    image, truths = scene
    _show(graph, np.zeros((0, 0, 3), np.uint8), stamp_ns=1)
    zero = _call(graph)
    assert not zero.success and "zero size" in zero.message

    # A frame larger than segment-everything takes, handed to the image callback directly
    # (a 67 MB message is pointless to push through DDS in a test).
    side = int(MAX_FRAME_PIXELS**0.5) + 1
    graph.node._on_image(image_msg(np.zeros((side, side), np.uint8), "mono8", 2))
    huge = _call(graph)
    assert not huge.success and "larger than segment-everything takes" in huge.message

    [ok] = graph.node.set_parameters([Parameter("everything_points_per_side", value=100)])
    assert ok.successful
    _show(graph, np.ascontiguousarray(image[:48, :64]), stamp_ns=3)
    dense = _call(graph)
    assert not dense.success and "denser than the 64x48 image" in dense.message

    status = graph.fresh_diagnostics()
    assert status.level == status.WARN and "denser" in status.message
    assert graph.node._counts["everything_failures"] == 3

    # still serving, with the same node
    [ok] = graph.node.set_parameters([Parameter("everything_points_per_side", value=32)])
    _show(graph, image, stamp_ns=4)
    response = _call(graph)
    assert response.success
    _check_every_object_once(response.segmentation, truths)


def test_continuous_topic_publishes_the_latest_frames_objects(
    graph: SegmenterGraph, scene: tuple[np.ndarray, list[np.ndarray]]
) -> None:
    received: list[Segmentation] = []
    graph.client.create_subscription(Segmentation, "everything", received.append, 10)
    wait_until(lambda: graph.node._everything_pub.get_subscription_count() > 0)
    results = graph.node.set_parameters(
        [
            Parameter("everything_rate_hz", value=5.0),
            Parameter("everything_hierarchical", value=False),
        ]
    )
    assert all(r.successful for r in results)
    image, truths = scene
    msg = _show(graph, image, stamp_ns=11)
    seg = wait_until(
        lambda: next((s for s in received if s.header.stamp == msg.header.stamp), None),
        timeout=30,
    )
    _check_every_object_once(seg, truths)

    def counted() -> dict[str, str] | None:  # diagnostics published after the result
        values = graph.diagnostic_values()
        return values if int(values["everything_results"]) >= 1 else None

    assert wait_until(counted)["everything_rate_hz_set"] == "5.00"


def test_everything_parameters_are_declared_with_ranges(graph: SegmenterGraph) -> None:
    for param in (
        Parameter("everything_points_per_side", value=0),
        Parameter("everything_nms_iou", value=0.0),
        Parameter("everything_rate_hz", value=100.0),
        Parameter("everything_max_masks", value=0),
        Parameter("everything_min_score", value=1.5),
    ):
        [res] = graph.node.set_parameters([param])
        assert not res.successful, param.name
    results = graph.node.set_parameters(
        [Parameter("everything_nms_iou", value=0.5), Parameter("everything_max_masks", value=3)]
    )
    assert all(r.successful for r in results)
    settings = graph.node._everything_settings()
    assert settings.nms_iou == 0.5 and settings.max_masks == 3
    descriptor = graph.node.describe_parameter("everything_points_per_side")
    assert descriptor.integer_range[0].from_value == 1 and descriptor.description
