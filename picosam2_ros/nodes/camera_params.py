"""camera_node's parameters (declared by the node; also read by the launch file's tests)."""

from __future__ import annotations

from picosam2_ros.nodes.everything import FILTER_PARAMS
from picosam2_ros.nodes.params import DIAGNOSTICS_PERIOD, IMAGE_QOS, ParamSpec

PARAMS = (
    ParamSpec(
        "network",
        "",
        "IMX500 network package (.rpk) holding PicoSAM2 (imx500-package output); required",
        read_only=True,
    ),
    ParamSpec(
        "camera_id",
        "",
        "picamera2 IMX500 camera_id when several AI Cameras are connected; empty = the first",
        read_only=True,
    ),
    ParamSpec(
        "emulator_source",
        "",
        "run the picamera2 emulator instead of the camera on: an image folder, a rosbag2, "
        "scene[:SEED[:N]] or moving[:SEED]; empty = the real camera through picamera2",
        read_only=True,
    ),
    ParamSpec(
        "emulator_model",
        "",
        "ONNX model the emulator runs in place of the network; empty = the shipped point model",
        read_only=True,
    ),
    ParamSpec(
        "emulator_rate",
        30.0,
        "emulator frames per second",
        float_range=(0.1, 2000.0),
        read_only=True,
    ),
    ParamSpec(
        "emulator_no_output_share",
        0.0,
        "emulator: share of frames without a network output",
        float_range=(0.0, 0.95),
        read_only=True,
    ),
    ParamSpec(
        "emulator_roi_lag_frames",
        2,
        "emulator: frames after the next one that still use the previous ROI",
        int_range=(0, 30),
        read_only=True,
    ),
    ParamSpec(
        "emulator_fail_at_frame",
        0,
        "emulator: raise a camera error once at this frame (fault drill); 0 = never",
        int_range=(0, 1_000_000_000),
        read_only=True,
    ),
    ParamSpec(
        "emulator_upload_s",
        0.5,
        "emulator: seconds the network firmware upload takes",
        float_range=(0.0, 600.0),
        read_only=True,
    ),
    ParamSpec("width", 640, "main stream width, pixels", int_range=(64, 4056), read_only=True),
    ParamSpec("height", 480, "main stream height, pixels", int_range=(48, 3040), read_only=True),
    ParamSpec(
        "frame_rate",
        0.0,
        "camera frame rate; 0 = the network's inference rate (30 by default)",
        float_range=(0.0, 120.0),
        read_only=True,
    ),
    ParamSpec("buffer_count", 4, "picamera2 buffers", int_range=(2, 16), read_only=True),
    ParamSpec("frame_id", "camera_optical_frame", "frame_id of every header", read_only=True),
    ParamSpec(
        "calibration_file",
        "",
        "camera calibration YAML (camera_calibration format); empty = uncalibrated camera_info",
        read_only=True,
    ),
    ParamSpec(
        "roi_side_px",
        96,
        "side of a point prompt's square ROI in main-stream pixels",
        int_range=(8, 4056),
    ),
    ParamSpec(
        "box_margin",
        1.1,
        "a box prompt's ROI side = box_margin x the box's longer side",
        float_range=(1.0, 4.0),
    ),
    ParamSpec(
        "mask_threshold", 0.0, "logit threshold (0.0 = sigmoid 0.5)", float_range=(-20.0, 20.0)
    ),
    ParamSpec(
        "box_prior_weight",
        8.0,
        "box prompts: decode the network's logits with the box (core.box_prior: nothing "
        "outside it, its inscribed ellipse favoured by this weight); 8 is calibrated for the "
        "shipped point network on held-out training box crops; 0 = plain logits",
        float_range=(0.0, 50.0),
    ),
    ParamSpec(
        "min_score",
        0.0,
        "masks with a lower stability score count as empty (towards losing a tracked object)",
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "whole_object",
        False,
        "a single click returns the whole object: the host's search (point-network windows "
        "growing around the click, the last one's mask the answer), its up to "
        "3 runs consecutive sensor ROIs of one turn (camera.whole_object); the result is "
        "published when the search ends; false = the ROI around the click",
    ),
    ParamSpec(
        "whole_object_fit",
        "centred",
        "how a search window becomes a sensor ROI: centred (on the click, shrunk to fit "
        "inside the frame) or translated (the window's size, moved inside the frame)",
        choices=("centred", "translated"),
    ),
    ParamSpec("max_objects", 8, "most standing prompts at once", int_range=(1, 255)),
    ParamSpec(
        "lost_after",
        15,
        "empty masks in a row (of the object's own frames) before it is reported lost",
        int_range=(1, 100000),
    ),
    ParamSpec("track_clicks", False, "prompts made by prompt_point and click track their object"),
    ParamSpec(
        "turn_frames",
        2,
        "attributed frames each prompt keeps the sensor ROI before the next prompt's turn "
        "(a whole-object click keeps it until its search ends: at most 3 runs)",
        int_range=(1, 10000),
    ),
    ParamSpec(
        "settle_frames",
        2,
        "frames after an ROI change that are attributed to nobody (>= the camera's ROI lag)",
        int_range=(0, 30),
    ),
    ParamSpec(
        "everything_points_per_side",
        0,
        "segment everything on the sensor: a sweep of ROIs over this grid (points along the "
        "longer side, square cells, one ROI per frame, taking turns with the prompts), "
        "published on `everything` when a sweep completes; 0 = off",
        int_range=(0, 64),
    ),
    *FILTER_PARAMS,
    ParamSpec(
        "publish_qos",
        "reliable",
        "QoS of image_raw, camera_info, mask and overlay: reliable (system default) or "
        "sensor_data (best effort); segmentation always uses the results QoS",
        choices=tuple(IMAGE_QOS),
        read_only=True,
    ),
    ParamSpec(
        "reconnect_max_s",
        5.0,
        "longest wait between attempts to reopen a failed camera, seconds",
        float_range=(0.1, 300.0),
        read_only=True,
    ),
    DIAGNOSTICS_PERIOD,
)
