"""IMX500 output decoding, paste-back into the main stream, and tracking on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from picosam2_ros.camera import emulator
from picosam2_ros.camera.output import (
    OutputError,
    logits_to_tensor_data,
    mask_result,
    tensor_to_logits,
)
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.pipeline import ObjectStatus
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.testing.models import build_colour_match_model
from picosam2_ros.testing.scenes import SceneObject, render_scene

from .harness import write_frames


@pytest.fixture(scope="module")
def imx500(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulator.IMX500]:
    root = tmp_path_factory.mktemp("emulated")
    image, _ = render_scene(64, 48, [SceneObject("rect", (200, 30, 30), 10, 10, 20, 8)])
    camera = emulator.attach_camera(
        emulator.EmulatorSettings(
            source=str(write_frames(root / "frames", [image])),
            model=str(build_colour_match_model(root / "colour.onnx")),
        )
    )
    network = root / "net.rpk"
    network.write_bytes(b"\0" * 16)
    try:
        yield emulator.IMX500(str(network), camera.camera_id)
    finally:
        emulator.detach_camera(camera)


def metadata_for(logits: np.ndarray) -> dict[str, object]:
    """Metadata as the sensor delivers it for one output tensor."""
    flat, dims = logits_to_tensor_data(logits)
    return {
        "CnnOutputTensor": flat.tolist(),
        "CnnOutputTensorInfo": emulator.pack_tensor_info("picosam2", [dims]),
    }


def test_an_asymmetric_tensor_survives_the_column_major_reshape(imx500: emulator.IMX500) -> None:
    # 3 rows x 5 columns, every value distinct: a width/height swap or a missing
    # transpose cannot reproduce it.
    logits = np.arange(15, dtype=np.float32).reshape(3, 5)
    metadata = metadata_for(logits)
    assert imx500.get_output_shapes(metadata) == [[5, 3, 1]]  # innermost (width) first
    [tensor] = imx500.get_outputs(metadata)
    assert tensor.shape == (5, 3, 1)  # picamera2 hands out [x, y, c]
    assert tensor[4, 0, 0] == logits[0, 4]  # column 4 of row 0
    decoded = tensor_to_logits(tensor)
    assert decoded.shape == (3, 5)
    np.testing.assert_array_equal(decoded, logits)
    # A C-order reshape with the same dims would scramble it: the order matters.
    wrong = np.asarray(metadata["CnnOutputTensor"], np.float32).reshape(5, 3, 1)[:, :, 0].T
    assert not np.array_equal(wrong, logits)
    [batched] = imx500.get_outputs(metadata, add_batch=True)
    np.testing.assert_array_equal(tensor_to_logits(batched), logits)


def test_frames_without_output_and_kpi_follow_picamera2(imx500: emulator.IMX500) -> None:
    assert imx500.get_outputs({}) is None
    assert imx500.get_outputs({"CnnOutputTensor": []}) is None
    assert imx500.get_output_shapes({}) == []
    assert emulator.IMX500.get_kpi_info({"CnnKpiInfo": (11800, 2000)}) == (11.8, 2.0)
    assert emulator.IMX500.get_kpi_info({}) is None
    assert imx500.get_input_size() == (96, 96)


def test_tensor_info_is_the_libcamera_struct_and_rejects_other_lengths() -> None:
    blob = emulator.pack_tensor_info("net", [(96, 96, 1), (4,)])
    assert len(blob) == emulator.TENSOR_INFO_SIZE == 708
    info = emulator.parse_tensor_info(blob)
    assert info["network_name"] == "net" and info["num_tensors"] == 2
    assert [t["size"] for t in info["info"]] == [[96, 96, 1], [4]]
    assert info["info"][0]["tensor_data_num"] == 96 * 96
    with pytest.raises(ValueError, match="does not match"):
        emulator.parse_tensor_info(blob[:-1])


@pytest.mark.parametrize("shape", [(96, 96, 2), (96,), (2, 96, 96, 1)])
def test_tensors_that_are_not_one_mask_are_rejected(shape: tuple[int, ...]) -> None:
    with pytest.raises(OutputError):
        tensor_to_logits(np.zeros(shape, np.float32))


def test_the_mask_is_resized_into_the_roi_in_main_stream_pixels() -> None:
    logits = np.full((96, 96), -5.0, np.float32)
    logits[10:20, 30:70] = 5.0  # 10 rows x 40 columns
    prompt = ObjectPrompt.from_point(4, 150, 80)
    roi = Roi(100, 50, 192, 192)  # twice the model's size
    result = mask_result(prompt, logits, roi)
    assert result.status == ObjectStatus.OK and result.crop == roi
    assert result.mask.shape == (192, 192)
    assert result.bbox == Roi(100 + 60, 50 + 20, 80, 20)
    assert result.score == 1.0


def test_background_points_low_scores_and_rois_outside_the_image() -> None:
    logits = np.full((96, 96), -5.0, np.float32)
    logits[10:20, 10:20] = 5.0
    logits[60:70, 60:70] = 5.0
    roi = Roi(0, 0, 96, 96)
    prompt = ObjectPrompt(1, np.array([[15.0, 15.0], [65.0, 65.0]]), np.array([1, 0]))
    result = mask_result(prompt, logits, roi)
    assert result.bbox == Roi(10, 10, 10, 10)  # the background component was erased
    blurry = np.where(logits > 0, 0.5, -0.5).astype(np.float32)  # inside the +-1 band
    low = mask_result(ObjectPrompt.from_point(1, 15, 15), blurry, roi, min_score=0.5)
    assert low.status == ObjectStatus.EMPTY and low.bbox is None and not low.mask.any()
    skipped = mask_result(ObjectPrompt.from_point(1, 15, 15), logits, Roi(0, 0, 0, 0))
    assert skipped.status == ObjectStatus.SKIPPED and skipped.mask.size == 0


def test_tracking_recentres_on_each_mask_and_reports_loss_after_empty_ones() -> None:
    book = PromptBook(max_objects=4, lost_after=2)
    book.set(ObjectPrompt.from_point(1, 148, 98, track=True))
    roi = Roi(100, 50, 96, 96)
    logits = np.full((96, 96), -5.0, np.float32)
    logits[40:50, 60:90] = 5.0  # the object moved right inside the ROI
    book.update_tracking([mask_result(book.snapshot()[0], logits, roi)])
    [moved] = book.snapshot()
    x, y = moved.points[0]
    assert 100 + 60 <= x < 100 + 90 and 50 + 40 <= y < 50 + 50
    empty = np.full((96, 96), -5.0, np.float32)
    for _ in range(2):
        assert not book.is_lost(1)
        book.update_tracking([mask_result(book.snapshot()[0], empty, roi)])
    assert book.is_lost(1) and len(book) == 1  # reported, not dropped
    book.update_tracking([mask_result(book.snapshot()[0], logits, roi)])
    assert not book.is_lost(1)  # found again


def test_the_emulated_sensor_segments_the_roi_crop(tmp_path: Path) -> None:
    """End to end through the emulator's picamera2 API: capture_request, make_array,
    get_metadata, get_outputs, with the ROI set in full-sensor pixels."""
    obj = SceneObject("rect", (40, 200, 60), x=400, y=100, width=16, height=50)
    image, _ = render_scene(640, 480, [obj])
    camera = emulator.attach_camera(
        emulator.EmulatorSettings(
            source=str(write_frames(tmp_path / "f", [image])),
            model=str(build_colour_match_model(tmp_path / "m.onnx")),
            roi_lag_frames=1,
            upload_s=0.0,
            frame_rate=1000.0,
        )
    )
    network = tmp_path / "n.rpk"
    network.write_bytes(b"x")
    imx = emulator.IMX500(str(network), camera.camera_id)
    picam2 = emulator.Picamera2(imx.camera_num)
    try:
        config = picam2.create_preview_configuration(main={"size": (640, 480), "format": "RGB888"})
        picam2.start(config)
        scale = 4056 / 640
        roi = Roi(round(360 * scale), round(77 * scale), round(96 * scale), round(96 * scale))
        imx.set_inference_roi_abs((roi.x, roi.y, roi.width, roi.height))
        frames = []
        for _ in range(3):
            request = picam2.capture_request()
            frames.append((request.make_array("main"), request.get_metadata(), request))
            scaled = imx.get_roi_scaled(request)
            request.release()
        assert scaled[2] in (94, 95, 96)
        bgr, metadata, _ = frames[0]
        assert bgr.shape == (480, 640, 3)
        np.testing.assert_array_equal(bgr[125, 408], obj.colour[::-1])  # B, G, R in memory
        assert isinstance(metadata["SensorTimestamp"], int) and "ScalerCrop" in metadata
        # Set before frame 1 with a lag of one frame: in force from frame 2.
        assert [r.roi for r in camera.records] == [emulator.FULL_SENSOR, roi, roi]
        logits = tensor_to_logits(imx.get_outputs(frames[2][1])[0])
        found = logits > 0
        rows, cols = np.nonzero(found)
        # The object is 16 wide and 50 tall inside the 96 px crop starting at (360, 77).
        assert cols.max() - cols.min() + 1 in (15, 16, 17)
        assert rows.max() - rows.min() + 1 in (49, 50, 51)
        with pytest.raises(RuntimeError, match="busy"):
            emulator.Picamera2(imx.camera_num)
    finally:
        picam2.close()
        emulator.detach_camera(camera)


def test_emulator_sources_read_image_folders_bags_and_generated_scenes(tmp_path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    frames = [np.full((48, 64, 3), v, np.uint8) for v in (10, 200)]
    frames[1][5:9, 20:40] = (250, 20, 20)
    store = get_typestore(Stores.ROS2_JAZZY)
    image_type = store.types["sensor_msgs/msg/Image"]
    header_type = store.types["std_msgs/msg/Header"]
    time_type = store.types["builtin_interfaces/msg/Time"]
    bag = tmp_path / "bag"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/cam/image", image_type.__msgtype__, typestore=store)
        for i, rgb in enumerate(frames):
            msg = image_type(
                header=header_type(stamp=time_type(sec=i, nanosec=0), frame_id="cam"),
                height=48,
                width=64,
                encoding="rgb8",
                is_bigendian=0,
                step=64 * 3,
                data=rgb.reshape(-1),
            )
            writer.write(conn, i * 1000, store.serialize_cdr(msg, image_type.__msgtype__))
    source = emulator.open_source(str(bag))
    assert source.count == 2
    np.testing.assert_array_equal(source.frame(1), frames[1])
    np.testing.assert_array_equal(source.frame(2), frames[0])  # sources loop
    folder = emulator.open_source(str(write_frames(tmp_path / "png", frames)))
    np.testing.assert_array_equal(folder.frame(1), frames[1])
    scene = emulator.open_source("scene:3:2")
    assert scene.frame(0).shape == (1013, 1352, 3)
    moving = emulator.open_source("moving:1")
    assert not np.array_equal(moving.frame(0), moving.frame(5))
    with pytest.raises(emulator.SourceError, match="no such"):
        emulator.open_source(str(tmp_path / "absent"))
