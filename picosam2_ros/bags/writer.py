"""Write COCO-derived rosbag2 bags (the layout is in ``picosam2_ros.bags.layout``).

Messages are rosbags message objects serialised with ``Typestore.serialize_cdr``; no
rclpy is needed. ``DatasetBagWriter`` numbers the images and stamps them, keeps the
frame index for ``/dataset/info``, and removes a half-written bag when writing fails.

    with DatasetBagWriter(out, storage=Storage.MCAP) as bag:
        bag.write_frame(image_id=..., file_name=..., rgb=rgb, instances=instances)
        bag.finish({"source": ..., "categories": ...})
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import cv2
import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys.store import Typestore

from picosam2_ros.bags import typestore as ts
from picosam2_ros.bags.layout import (
    FRAME_ID,
    GROUND_TRUTH_BACKEND,
    INFO_FORMAT,
    INFO_STAMP_NS,
    INFO_VERSION,
    JPEG_QUALITY,
    TOPIC_CAMERA_INFO,
    TOPIC_COMPRESSED_IMAGE,
    TOPIC_GROUND_TRUTH,
    TOPIC_IMAGE,
    TOPIC_INFO,
    TOPIC_PROMPTS,
    Instance,
    PromptSpec,
    frame_stamp_ns,
    split_stamp,
)
from picosam2_ros.core.geometry import Roi

#: rosbag2 format version written.
BAG_VERSION: Final = 9


class Storage(str, Enum):
    """rosbag2 storage plugin."""

    MCAP = "mcap"
    SQLITE3 = "sqlite3"

    @property
    def plugin(self) -> StoragePlugin:
        return StoragePlugin.MCAP if self is Storage.MCAP else StoragePlugin.SQLITE3


class BagWriteError(RuntimeError):
    """The bag cannot be written (for example: the output path exists)."""


def _qos(depth: int, durability: QosDurability) -> Qos:
    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE,
        durability,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


#: Offered QoS recorded for the data topics, for the ground truth (transient-local, as
#: evaluator_node subscribes by default, so ``ros2 bag play`` offers what it can match)
#: and for ``/dataset/info`` (latched).
DATA_QOS = _qos(10, QosDurability.VOLATILE)
GROUND_TRUTH_QOS = _qos(10, QosDurability.TRANSIENT_LOCAL)
INFO_QOS = _qos(1, QosDurability.TRANSIENT_LOCAL)


class MessageFactory:
    """Builds rosbags message objects of the bag's types."""

    def __init__(self, store: Typestore) -> None:
        self.store = store
        self._t = store.types

    def header(self, stamp_ns: int, frame_id: str = FRAME_ID) -> Any:
        return self._t[ts.HEADER](stamp=self.time(stamp_ns), frame_id=frame_id)

    def time(self, stamp_ns: int) -> Any:
        sec, nanosec = split_stamp(stamp_ns)
        return self._t[ts.TIME](sec=sec, nanosec=nanosec)

    def roi(self, roi: Roi | None) -> Any:
        if roi is None or roi.is_empty:
            roi = Roi(0, 0, 0, 0)
        return self._t[ts.REGION_OF_INTEREST](
            x_offset=roi.x, y_offset=roi.y, height=roi.height, width=roi.width, do_rectify=False
        )

    def image(self, header: Any, pixels: np.ndarray, encoding: str) -> Any:
        """A ``sensor_msgs/Image`` of a (H, W) or (H, W, C) uint8 array."""
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        height, width = pixels.shape[:2]
        return self._t[ts.IMAGE](
            header=header,
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=0,
            step=pixels.strides[0],
            data=pixels.reshape(-1),
        )

    def compressed_image(self, header: Any, data: bytes, fmt: str = "jpeg") -> Any:
        return self._t[ts.COMPRESSED_IMAGE](
            header=header, format=fmt, data=np.frombuffer(data, dtype=np.uint8)
        )

    def camera_info(self, header: Any, width: int, height: int) -> Any:
        """Size only: COCO images have no calibration (all-zero ``k`` = uncalibrated)."""
        return self._t[ts.CAMERA_INFO](
            header=header,
            height=height,
            width=width,
            distortion_model="",
            d=np.zeros(0, dtype=np.float64),
            k=np.zeros(9, dtype=np.float64),
            r=np.zeros(9, dtype=np.float64),
            p=np.zeros(12, dtype=np.float64),
            binning_x=0,
            binning_y=0,
            roi=self.roi(None),
        )

    def prompt(self, header: Any, object_id: int, spec: PromptSpec, track: bool = False) -> Any:
        prompt_t = self._t[ts.PROMPT]
        points = []
        labels = np.zeros(0, dtype=np.uint8)
        box = (0.0, 0.0, 0.0, 0.0)
        if spec.point is not None:
            points = [self._t[ts.POINT](x=float(spec.point[0]), y=float(spec.point[1]), z=0.0)]
            labels = np.array([ts.LABEL_FOREGROUND], dtype=np.uint8)
        if spec.box is not None:
            box = spec.box
        return prompt_t(
            header=header,
            object_id=object_id,
            points=points,
            labels=labels,
            has_box=spec.box is not None,
            box_x_min=float(box[0]),
            box_y_min=float(box[1]),
            box_x_max=float(box[2]),
            box_y_max=float(box[3]),
            track=track,
        )

    def ground_truth_object(self, header: Any, instance: Instance, prompt: Any) -> Any:
        """An ``ObjectMask`` holding the instance's mask over its bounding box."""
        crop = instance.mask[instance.bbox.slices]
        mask_pixels = crop.astype(np.uint8) * np.uint8(255)
        object_mask_t = self._t[ts.OBJECT_MASK]
        return object_mask_t(
            object_id=instance.object_id,
            status=ts.STATUS_OK,
            score=1.0,
            source_stamp=header.stamp,
            crop=self.roi(instance.bbox),
            bbox=self.roi(instance.bbox),
            mask=self.image(header, mask_pixels, "mono8"),
            prompt=prompt,
        )

    def segmentation(self, header: Any, width: int, height: int, objects: Sequence[Any]) -> Any:
        return self._t[ts.SEGMENTATION](
            header=header,
            image_width=width,
            image_height=height,
            backend=GROUND_TRUTH_BACKEND,
            inference_ms=0.0,
            objects=list(objects),
        )

    def string(self, text: str) -> Any:
        return self._t[ts.STRING](data=text)


@dataclass
class WrittenFrame:
    """What was written for one image (an entry of ``/dataset/info`` ``frames``)."""

    index: int
    stamp_ns: int
    image_id: int
    file_name: str
    width: int
    height: int
    objects: list[dict[str, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "stamp_ns": self.stamp_ns,
            "image_id": self.image_id,
            "file_name": self.file_name,
            "width": self.width,
            "height": self.height,
            "objects": self.objects,
        }


class DatasetBagWriter:
    """Writes a COCO-derived bag: one ``write_frame`` per image, then ``finish``.

    The output folder must not exist. If the ``with`` block raises, or the writer is
    aborted, the partly written folder is removed.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        storage: Storage | str = Storage.MCAP,
        compressed: bool = False,
        typestore: Typestore | None = None,
    ) -> None:
        self.path = Path(path)
        self.storage = Storage(storage)
        self.compressed = compressed
        self.store = typestore if typestore is not None else ts.default_typestore()
        self.msgs = MessageFactory(self.store)
        self.frames: list[WrittenFrame] = []
        self.message_counts: dict[str, int] = {}
        self.info: dict[str, Any] | None = None
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}
        self._created = False

    @property
    def image_topic(self) -> str:
        return TOPIC_COMPRESSED_IMAGE if self.compressed else TOPIC_IMAGE

    def open(self) -> None:
        if self._writer is not None:
            raise BagWriteError(f"{self.path}: already open")
        if self.path.exists():
            raise BagWriteError(f"output already exists, not overwriting: {self.path}")
        writer = Writer(self.path, version=BAG_VERSION, storage_plugin=self.storage.plugin)
        writer.open()
        self._created = True
        self._writer = writer
        image_type = ts.COMPRESSED_IMAGE if self.compressed else ts.IMAGE
        for topic, msgtype, qos in (
            (TOPIC_INFO, ts.STRING, INFO_QOS),
            (TOPIC_PROMPTS, ts.PROMPT, DATA_QOS),
            (TOPIC_GROUND_TRUTH, ts.SEGMENTATION, GROUND_TRUTH_QOS),
            (TOPIC_CAMERA_INFO, ts.CAMERA_INFO, DATA_QOS),
            (self.image_topic, image_type, DATA_QOS),
        ):
            self._connections[topic] = writer.add_connection(
                topic, msgtype, typestore=self.store, offered_qos_profiles=[qos]
            )
            self.message_counts[topic] = 0

    def _write(self, topic: str, timestamp: int, message: Any) -> None:
        assert self._writer is not None
        connection = self._connections[topic]
        data = self.store.serialize_cdr(message, connection.msgtype)
        self._writer.write(connection, timestamp, data)
        self.message_counts[topic] += 1

    def write_frame(
        self,
        *,
        image_id: int,
        file_name: str,
        rgb: np.ndarray,
        instances: Sequence[Instance],
        jpeg: bytes | None = None,
    ) -> WrittenFrame:
        """Write one image with its prompts and ground truth; returns its index entry.

        ``rgb`` is (H, W, 3) uint8. With ``compressed``, ``jpeg`` (the source file's
        bytes, which must decode to ``rgb``) is stored as is; without it ``rgb`` is
        encoded.
        """
        if self._writer is None:
            self.open()
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        height, width = rgb.shape[:2]
        index = len(self.frames)
        stamp = frame_stamp_ns(index)
        header = self.msgs.header(stamp)
        frame = WrittenFrame(index, stamp, image_id, file_name, width, height)

        objects = []
        for instance in sorted(instances, key=lambda i: i.object_id):
            if instance.mask.shape != (height, width):
                raise ValueError(
                    f"object {instance.object_id}: mask {instance.mask.shape} does not match "
                    f"the image {(height, width)}"
                )
            prompt = self.msgs.prompt(header, instance.object_id, instance.prompt)
            self._write(TOPIC_PROMPTS, stamp, prompt)
            objects.append(self.msgs.ground_truth_object(header, instance, prompt))
            frame.objects.append(
                {
                    "object_id": instance.object_id,
                    "category_id": instance.category_id,
                    "area": instance.area,
                }
            )
        self._write(
            TOPIC_GROUND_TRUTH, stamp, self.msgs.segmentation(header, width, height, objects)
        )
        self._write(TOPIC_CAMERA_INFO, stamp, self.msgs.camera_info(header, width, height))
        if self.compressed:
            if jpeg is None:
                bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise BagWriteError(f"image {image_id}: JPEG encoding failed")
                jpeg = encoded.tobytes()
            self._write(TOPIC_COMPRESSED_IMAGE, stamp, self.msgs.compressed_image(header, jpeg))
        else:
            self._write(TOPIC_IMAGE, stamp, self.msgs.image(header, rgb, "rgb8"))
        self.frames.append(frame)
        return frame

    def finish(self, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write ``/dataset/info`` and close the bag; returns the info written.

        ``info`` supplies ``source``, ``options``, ``categories``, ``counts`` (images,
        instances) and ``skipped_images``; the writer adds ``format``, ``version``,
        ``topics``, ``frames`` and ``counts.messages``.
        """
        if self._writer is None:
            self.open()
        assert self._writer is not None
        given = dict(info or {})
        counts = dict(given.pop("counts", {}))
        message_counts = dict(self.message_counts)
        message_counts[TOPIC_INFO] = 1
        counts["messages"] = message_counts
        full: dict[str, Any] = {
            "format": INFO_FORMAT,
            "version": INFO_VERSION,
            **given,
            "topics": {
                "image": self.image_topic,
                "camera_info": TOPIC_CAMERA_INFO,
                "prompts": TOPIC_PROMPTS,
                "ground_truth": TOPIC_GROUND_TRUTH,
            },
            "frames": [f.as_json() for f in self.frames],
            "counts": counts,
        }
        self._write(TOPIC_INFO, INFO_STAMP_NS, self.msgs.string(json.dumps(full)))
        self._writer.close()
        self._writer = None
        self.info = full
        return full

    def abort(self) -> None:
        """Stop writing and remove what this writer created."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.abort()
        if self._created and self.path.exists():
            shutil.rmtree(self.path)
        self._created = False

    def __enter__(self) -> DatasetBagWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif self._writer is not None:
            self.finish()
