"""The package's ROS messages <-> the core's prompt and result types."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header

from picosam2_ros.camera.calibration import Calibration
from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.pipeline import FrameResult, ObjectResult, ObjectStatus
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.msg import ObjectMask, Prompt, Segmentation


def prompt_from_msg(msg: Prompt) -> ObjectPrompt:
    """Structural conversion only; ``validate_prompt`` judges the content."""
    points = np.array([(p.x, p.y) for p in msg.points], dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(msg.labels, dtype=np.uint8).reshape(-1)
    box = (
        (float(msg.box_x_min), float(msg.box_y_min), float(msg.box_x_max), float(msg.box_y_max))
        if msg.has_box
        else None
    )
    return ObjectPrompt(
        object_id=int(msg.object_id), points=points, labels=labels, box=box, track=bool(msg.track)
    )


def prompt_to_msg(prompt: ObjectPrompt, header: Header) -> Prompt:
    msg = Prompt(header=header, object_id=prompt.object_id, track=prompt.track)
    msg.points = [Point(x=float(x), y=float(y)) for x, y in prompt.points]
    msg.labels = prompt.labels.astype(np.uint8).tobytes()
    if prompt.box is not None:
        msg.has_box = True
        msg.box_x_min, msg.box_y_min, msg.box_x_max, msg.box_y_max = (float(v) for v in prompt.box)
    return msg


def roi_to_msg(roi: Roi | None) -> RegionOfInterest:
    if roi is None or roi.is_empty:
        return RegionOfInterest()
    return RegionOfInterest(x_offset=roi.x, y_offset=roi.y, width=roi.width, height=roi.height)


def mask_to_msg(mask: np.ndarray, header: Header) -> Image:
    """A boolean (or 0/255) 2-D mask as a mono8 0/255 image."""
    height, width = mask.shape
    data = (mask.astype(bool, copy=False).view(np.uint8) * np.uint8(255)).tobytes()
    return Image(header=header, height=height, width=width, encoding="mono8", step=width, data=data)


def object_to_msg(obj: ObjectResult, header: Header, source_stamp: Time, lost: bool) -> ObjectMask:
    status = ObjectStatus.LOST if lost and obj.status != ObjectStatus.SKIPPED else obj.status
    return ObjectMask(
        object_id=obj.object_id,
        status=int(status),
        score=float(obj.score),
        source_stamp=source_stamp,
        crop=roi_to_msg(obj.crop),
        bbox=roi_to_msg(obj.bbox),
        mask=mask_to_msg(obj.mask, header),
        prompt=prompt_to_msg(obj.prompt, header),
    )


def frame_to_msg(
    frame: FrameResult,
    header: Header,
    backend: str,
    lost_ids: Collection[int] = (),
    source_stamps: Sequence[Time] | None = None,
) -> Segmentation:
    """The result message of one frame, stamped with the source image's header.
    ``source_stamps``: per object, the stamp of the frame its result was computed on
    (default: this frame's)."""
    stamps = source_stamps if source_stamps is not None else [header.stamp] * len(frame.objects)
    return Segmentation(
        header=header,
        image_width=frame.width,
        image_height=frame.height,
        backend=backend,
        inference_ms=float(frame.inference_ms),
        objects=[
            object_to_msg(obj, header, stamp, obj.object_id in lost_ids)
            for obj, stamp in zip(frame.objects, stamps, strict=True)
        ],
    )


class ImageSlot:
    """One sensor_msgs/Image reused for every publish on one topic.

    rclpy converts and serialises a message inside ``publish()``, so the message is free
    again once publish returns. Refilling its data array in place copies the frame once
    and allocates nothing: a fresh 3.7 MB array per 1280x960 frame would also cost the
    page faults of new memory (io.image's array_to_image copies twice, through bytes).
    """

    def __init__(self) -> None:
        self._msg: Image | None = None

    def fill(self, array: np.ndarray, encoding: str, header: Header) -> Image:
        height, width = array.shape[:2]
        channels = array.shape[2] if array.ndim == 3 else 1
        flat = np.ascontiguousarray(array, dtype=np.uint8).reshape(-1)
        msg = self._msg
        if msg is None or len(msg.data) != flat.size:
            msg = Image()
            msg.data.frombytes(flat)
            self._msg = msg
        else:
            memoryview(msg.data)[:] = flat
        msg.header = header
        msg.height, msg.width, msg.step = height, width, width * channels
        msg.encoding = encoding
        msg.is_bigendian = 0
        return msg


def stamp_from_ns(ns: int) -> Time:
    """A builtin_interfaces/Time from nanoseconds."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def camera_info_msg(cal: Calibration, header: Header) -> CameraInfo:
    return CameraInfo(
        header=header,
        width=cal.width,
        height=cal.height,
        distortion_model=cal.distortion_model,
        d=cal.d,
        k=cal.k,
        r=cal.r,
        p=cal.p,
    )
