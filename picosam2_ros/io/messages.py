"""The package's ROS messages <-> the core's prompt and result types."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

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
    frame: FrameResult, header: Header, backend: str, lost_ids: Collection[int] = ()
) -> Segmentation:
    """The result message of one frame, stamped with the source image's header."""
    return Segmentation(
        header=header,
        image_width=frame.width,
        image_height=frame.height,
        backend=backend,
        inference_ms=float(frame.inference_ms),
        objects=[
            object_to_msg(obj, header, header.stamp, obj.object_id in lost_ids)
            for obj in frame.objects
        ],
    )
