"""The layout of a COCO-derived rosbag2: what ``picosam2-make-bag`` writes and what the
replay node and the evaluator read (DESIGN.md, "Replay contract").

Storage and clock
-----------------
rosbag2 format version 9, storage ``mcap`` (default) or ``sqlite3``, CDR serialisation,
message definitions embedded (the package's types come from ``msg/*.msg``). Images get
synthetic stamps: image ``i`` (0-based, in the order written, ascending COCO image id)
is stamped ``1 s + i x 100 ms`` (``frame_stamp_ns``), so the bag plays at 10 Hz. Every
message of an image carries that stamp in its header AND is logged at that bag time.

Per image (all with the image's header: stamp as above, ``frame_id`` = ``"camera"``),
written in this order (readers must not rely on the order of messages that share a
bag time; group them by header stamp):

=================================  ==================================  ================
topic                              type                                count per image
=================================  ==================================  ================
``/prompts``                       ``picosam2_ros/msg/Prompt``         one per instance
``/ground_truth``                  ``picosam2_ros/msg/Segmentation``   one
``/camera/camera_info``            ``sensor_msgs/msg/CameraInfo``      one
``/camera/image_raw``              ``sensor_msgs/msg/Image``           one (``rgb8``)
``/camera/image_raw/compressed``   ``sensor_msgs/msg/CompressedImage`` one, instead of
                                                                       the raw image
                                                                       with --compressed
=================================  ==================================  ================

- ``/prompts``: ``object_id`` = the COCO annotation id (unique in the whole bag),
  ``track`` false, and one of: a single foreground point (``points`` = [(x, y, 0)],
  ``labels`` = [LABEL_FOREGROUND], ``has_box`` false) for ``--prompt center`` (the
  PicoSAM2 paper's protocol: the centre of the mask's bounding box, or the mask pixel
  nearest to it when the centre is off the mask; ``core.geometry.paper_prompt_point``)
  and ``--prompt random`` (a mask pixel drawn with ``numpy.random.default_rng([seed,
  object_id])``); or, for ``--prompt box``, no points and ``has_box`` true with the
  annotation's ``bbox`` as ``[x, x + w] x [y, y + h]`` (continuous pixel coordinates).
  Point coordinates are integer pixel positions (column, row).
  Prompts belong to their image only: ids never repeat across images, so a replayer
  that feeds a segmenter (whose prompts stand) must clear them before the next image.
- ``/ground_truth``: ``backend`` = ``"ground_truth"``, ``inference_ms`` 0,
  ``image_width``/``image_height`` = the image's size, ``objects`` in ascending
  ``object_id``, one ``ObjectMask`` per instance: ``status`` STATUS_OK, ``score`` 1.0,
  ``source_stamp`` = the stamp, ``crop`` = ``bbox`` = the mask's tight bounding box,
  ``mask`` = mono8 0/255 over that box (header = the image's header), ``prompt`` = the
  same prompt as on ``/prompts``. The full-frame mask is the ``mask`` pasted at
  (``crop.x_offset``, ``crop.y_offset``) into a zero image of the frame's size; it equals
  pycocotools' ``annToMask`` of the annotation.
  The category of an object is not in the message (``ObjectMask`` has no field for it):
  it is in ``/dataset/info`` (``frames[].objects[].category_id`` and ``categories``),
  and ``picosam2_ros.bags.reader`` joins the two.
- ``/camera/camera_info``: width and height of the image, everything else zero/empty
  (COCO has no calibration; an all-zero ``k`` means "uncalibrated").
- ``/camera/image_raw``: ``rgb8``, ``step`` = 3 x width. With ``--compressed``:
  ``format`` ``"jpeg"``, the source file's bytes when it is a JPEG that decodes at the
  annotated size, otherwise the pixels re-encoded as JPEG (quality 95).

Once per bag: ``/dataset/info`` (``std_msgs/msg/String``), logged and stamped at
``INFO_STAMP_NS`` (100 ms before the first image, so it is the first message in time
order; it is written last, once the counts are known), a JSON object::

    {
      "format": "picosam2_ros/coco-bag", "version": 1,
      "source": {"annotations": str, "annotations_sha256": str, "images": str},
      "options": {"prompt": "center" | "random" | "box", "seed": int, "min_area": int,
                  "categories": [str] | null, "max_images": int | null,
                  "compressed": bool},
      "topics": {"image": str, "camera_info": str, "prompts": str,
                 "ground_truth": str},
      "categories": [{"id": int, "name": str, "supercategory": str}, ...],
      "frames": [{"stamp_ns": int, "image_id": int, "file_name": str, "width": int,
                  "height": int,
                  "objects": [{"object_id": int, "category_id": int, "area": int}]}],
      "counts": {"images": {"in_file": int, "written": int,
                            "skipped": {reason: int}, "not_processed": int},
                 "instances": {"in_file": int, "written": int,
                               "skipped": {reason: int}},
                 "messages": {topic: int}},
      "skipped_images": [{"image_id": int, "file_name": str, "reason": str}]
    }

``categories`` lists every category of the source file; ``area`` is the mask's pixel
count. Every annotation of the source file is counted once: written, or under one skip
reason (see ``picosam2_ros.bags.coco``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from picosam2_ros.core.geometry import Roi

TOPIC_IMAGE = "/camera/image_raw"
TOPIC_COMPRESSED_IMAGE = "/camera/image_raw/compressed"
TOPIC_CAMERA_INFO = "/camera/camera_info"
TOPIC_PROMPTS = "/prompts"
TOPIC_GROUND_TRUTH = "/ground_truth"
TOPIC_INFO = "/dataset/info"

FRAME_ID = "camera"
#: Stamp of the first image and the period between images (10 Hz).
FIRST_STAMP_NS = 1_000_000_000
PERIOD_NS = 100_000_000
#: Stamp and bag time of the ``/dataset/info`` message.
INFO_STAMP_NS = FIRST_STAMP_NS - PERIOD_NS
#: ``Segmentation.backend`` of the ground-truth messages.
GROUND_TRUTH_BACKEND = "ground_truth"
INFO_FORMAT = "picosam2_ros/coco-bag"
INFO_VERSION = 1
#: Quality used when an image has to be (re-)encoded as JPEG.
JPEG_QUALITY = 95


def frame_stamp_ns(index: int) -> int:
    """Stamp (nanoseconds) of the ``index``-th image written (0-based)."""
    if index < 0:
        raise ValueError(f"frame index must be >= 0, got {index}")
    return FIRST_STAMP_NS + index * PERIOD_NS


def split_stamp(stamp_ns: int) -> tuple[int, int]:
    """``(sec, nanosec)`` of a stamp in nanoseconds."""
    return stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000


def time_ns(stamp: Any) -> int:
    """A ``builtin_interfaces/Time`` (``sec``, ``nanosec``) in nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass(frozen=True)
class PromptSpec:
    """One prompt: a foreground point ``(x, y)`` or a box ``(x_min, y_min, x_max, y_max)``,
    in full-frame pixels."""

    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if (self.point is None) == (self.box is None):
            raise ValueError("a PromptSpec holds exactly one of a point and a box")

    @property
    def kind(self) -> str:
        """``"point"`` or ``"box"``."""
        return "point" if self.point is not None else "box"


@dataclass
class Instance:
    """The ground truth of one object in one image."""

    object_id: int
    category_id: int
    #: Full-frame boolean mask, shape (height, width).
    mask: np.ndarray
    #: Tight bounding box of ``mask``.
    bbox: Roi
    prompt: PromptSpec
    area: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.area < 0:
            self.area = int(np.count_nonzero(self.mask))
