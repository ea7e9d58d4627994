"""Read rosbag2 bags: any bag (``BagReader``) and COCO-derived ones (``DatasetBag``).

``BagReader`` opens a rosbag2 folder (mcap or sqlite3, with ``metadata.yaml``), a folder
holding a single storage file without ``metadata.yaml`` (a recording that was cut off),
or a bare ``.mcap`` / ``.db3`` file; bags written by ``ros2 bag record`` as well as by
rosbags or the mcap libraries. Message types come from the definitions embedded in the
bag; types without one (bags from ROS 2 Humble and older) are looked up in ROS 2 Jazzy's
and this package's types. It fails with a clear ``BagError`` subclass when the bag cannot
be opened (``BagOpenError``), reads empty (``EmptyBagError``), lacks a topic
(``MissingTopicError``), has a topic of another type (``TopicTypeError``) or a type it
cannot decode (``UnknownTypeError``).

``DatasetBag`` reads the layout of ``picosam2_ros.bags.layout`` back into numpy: per
image stamp, the RGB image, the prompts and the full-frame ground-truth masks with their
categories, so an evaluator matches results by (stamp, object id).

    with DatasetBag(path) as bag:
        for frame in bag.frames():
            frame.rgb, frame.prompts[object_id], frame.ground_truth[object_id].mask
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from picosam2_ros.bags import typestore as ts
from picosam2_ros.bags.layout import (
    INFO_FORMAT,
    TOPIC_CAMERA_INFO,
    TOPIC_COMPRESSED_IMAGE,
    TOPIC_GROUND_TRUTH,
    TOPIC_IMAGE,
    TOPIC_INFO,
    TOPIC_PROMPTS,
    PromptSpec,
    time_ns,
)
from picosam2_ros.core.geometry import Roi

STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}


class BagError(Exception):
    """A bag cannot be used as asked; the message says why."""


class BagOpenError(BagError):
    """The path is not a readable rosbag2."""


class EmptyBagError(BagError):
    """The bag holds no messages (or none on the topics asked for)."""


class MissingTopicError(BagError):
    """Topics the caller needs are not in the bag."""

    def __init__(self, message: str, missing: Collection[str], available: Mapping[str, str]):
        super().__init__(message)
        self.missing = sorted(missing)
        self.available = dict(available)


class TopicTypeError(BagError):
    """A topic is in the bag with another message type than expected."""


class UnknownTypeError(BagError):
    """The bag has no definition of a message type, and it is not a known type."""


class DatasetLayoutError(BagError):
    """``/dataset/info`` is not what ``picosam2-make-bag`` writes."""


@dataclass(frozen=True)
class TopicSummary:
    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagMessage:
    """One serialised message as stored: bag (receive) time in ns, CDR bytes."""

    topic: str
    msgtype: str
    timestamp: int
    data: bytes


def resolve_bag_path(path: Path | str) -> Path:
    """The path rosbags should open for ``path`` (folder, metadata.yaml or storage file).

    Raises:
        BagOpenError: nothing readable as a rosbag2 is there.
    """
    path = Path(path)
    if not path.exists():
        raise BagOpenError(f"no such bag: {path}")
    if path.is_file() and path.name == "metadata.yaml":
        path = path.parent
    if path.is_dir():
        if (path / "metadata.yaml").is_file():
            return path
        files = sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
        if len(files) == 1:
            return files[0]
        what = "no .mcap or .db3 file" if not files else f"{len(files)} storage files"
        raise BagOpenError(
            f"{path} is not a rosbag2 folder: no metadata.yaml and {what}"
            + (" (run `ros2 bag reindex` on it)" if files else "")
        )
    if path.suffix not in STORAGE_SUFFIXES:
        raise BagOpenError(
            f"{path} is not a rosbag2: expected a bag folder, a .mcap or a .db3 file"
        )
    return path


def _types_from_definition(connection: Connection) -> dict[str, Any]:
    fmt, text = connection.msgdef.format, connection.msgdef.data
    if fmt == MessageDefinitionFormat.MSG:
        return dict(get_types_from_msg(text, connection.msgtype))
    if fmt == MessageDefinitionFormat.IDL:
        sep = "=" * 80 + "\n"
        types: dict[str, Any] = {}
        if text.startswith(f"{sep}IDL: "):
            for part in text.split(sep)[1:]:
                types.update(get_types_from_idl(part.split("\n", 1)[1]))
        else:
            types.update(get_types_from_idl(text))
        return types
    return {}


class BagReader:
    """A rosbag2 opened for reading (use as a context manager).

    ``fallback`` supplies types the bag has no definition for (default: ROS 2 Jazzy
    plus this package's messages).
    """

    def __init__(self, path: Path | str, *, fallback: Typestore | None = None) -> None:
        self.requested_path = Path(path)
        self.path = resolve_bag_path(path)
        self._fallback = fallback
        self._reader: Reader | None = None
        self.store: Typestore = get_typestore(Stores.EMPTY)
        #: Message types neither defined in the bag nor known to the fallback.
        self.unknown_types: dict[str, str] = {}
        #: Things worth knowing about how the bag was read.
        self.notes: list[str] = []

    # -- opening -------------------------------------------------------------------

    def open(self) -> None:
        """Open the bag and build its typestore.

        Raises:
            BagOpenError: not readable. EmptyBagError: no topics or no messages.
        """
        if self._reader is not None:
            raise BagError(f"{self.path}: already open")
        self._reader = self._open_reader(self.path)
        try:
            self._check_metadata_agrees()
            self._build_typestore(self.reader.connections)
            self._check_not_empty()
        except BaseException:
            self.close()
            raise

    def _open_reader(self, path: Path) -> Reader:
        try:
            reader = Reader(path)
            reader.open()
        except BagError:
            raise
        except Exception as exc:  # rosbags, sqlite3, yaml and struct errors alike
            undefined = _sqlite_unknown_definitions(path) if isinstance(exc, KeyError) else []
            if undefined:
                raise UnknownTypeError(
                    f"cannot read bag {self.requested_path}: it stores no definition of "
                    f"{', '.join(undefined)} (encoding 'unknown': recorded where those "
                    "packages were not installed), and rosbags cannot open sqlite3 bags "
                    "like that. Convert it to mcap (`ros2 bag convert`) in an environment "
                    "that has the packages, or record again with them sourced."
                ) from exc
            raise BagOpenError(f"cannot read bag {self.requested_path}: {exc}") from exc
        return reader

    def _check_metadata_agrees(self) -> None:
        """rosbags reads a topic of a bag folder only where metadata.yaml and the storage
        file agree on its type and QoS; otherwise the topic silently reads empty. Probe
        one message per topic; on disagreement read the single storage file directly,
        or say which topics cannot be read."""
        if not self.path.is_dir():
            return
        unreadable = []
        for topic, info in self.topics.items():
            if info.count == 0:
                continue
            conns = [c for c in self.reader.connections if c.topic == topic]
            probe = self.reader.messages(conns)
            try:
                if next(probe, None) is None:
                    unreadable.append(topic)
            finally:
                probe.close()
        if not unreadable:
            return
        files = sorted(p for p in self.path.iterdir() if p.suffix in STORAGE_SUFFIXES)
        if len(files) == 1 and not self.reader.compression_mode:
            self.close()
            self.path = files[0]
            self._reader = self._open_reader(self.path)
            self.notes.append(
                f"metadata.yaml disagrees with {files[0].name} on {', '.join(unreadable)}; "
                f"read {files[0].name} directly"
            )
            return
        raise EmptyBagError(
            f"bag {self.requested_path} reads empty on {', '.join(unreadable)}: metadata.yaml "
            "lists messages there that its storage files do not yield (they disagree on "
            "the topic's type or QoS)"
        )

    def _build_typestore(self, connections: list[Connection]) -> None:
        store = get_typestore(Stores.EMPTY)
        defined: dict[str, Any] = {}
        for conn in connections:
            try:
                defined.update(_types_from_definition(conn))
            except Exception as exc:  # a definition rosbags cannot parse
                self.unknown_types[conn.msgtype] = f"its definition does not parse: {exc}"
        try:
            store.register(defined)
        except Exception as exc:
            raise BagOpenError(
                f"{self.requested_path}: inconsistent message definitions: {exc}"
            ) from exc
        for msgtype in sorted({c.msgtype for c in connections} - set(store.fielddefs)):
            fallback = self._fallback if self._fallback is not None else _default_fallback()
            try:
                needed = ts.type_closure(fallback, [msgtype])
            except KeyError:
                self.unknown_types.setdefault(
                    msgtype, "the bag has no definition for it and it is not a known type"
                )
                continue
            store.register({k: v for k, v in needed.items() if k not in store.fielddefs})
            self.unknown_types.pop(msgtype, None)
        self.store = store

    def _check_not_empty(self) -> None:
        if not self.connections:
            raise EmptyBagError(f"bag {self.requested_path} reads empty: it has no topics")
        if self.message_count == 0 and next(self._raw(None, None, None), None) is None:
            topics = ", ".join(sorted(self.topics))
            raise EmptyBagError(
                f"bag {self.requested_path} reads empty: no messages (topics: {topics})"
            )

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def __enter__(self) -> BagReader:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- description ---------------------------------------------------------------

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            raise BagError(f"bag {self.requested_path} is not open")
        return self._reader

    @property
    def connections(self) -> list[Connection]:
        return list(self.reader.connections)

    @property
    def storage(self) -> str:
        """``"mcap"`` or ``"sqlite3"``."""
        files = [self.path] if self.path.is_file() else sorted(self.path.iterdir())
        for file in files:
            for suffix, name in STORAGE_SUFFIXES.items():
                if suffix in file.suffixes:  # also x.mcap.zstd (file compression)
                    return name
        return "unknown"

    @property
    def topics(self) -> dict[str, TopicSummary]:
        """Topic name -> type and message count (from the bag's index)."""
        result: dict[str, TopicSummary] = {}
        for conn in self.reader.connections:
            have = result.get(conn.topic)
            count = conn.msgcount + (have.count if have else 0)
            result[conn.topic] = TopicSummary(conn.topic, conn.msgtype, count)
        return result

    @property
    def message_count(self) -> int:
        return int(self.reader.message_count)

    @property
    def start_ns(self) -> int:
        return int(self.reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self.reader.end_time)

    def describe(self) -> str:
        """One line per topic: name, type, count."""
        lines = [f"{self.requested_path} ({self.storage}, {self.message_count} messages):"]
        lines += [f"  {t.name}  [{t.msgtype}]  {t.count}" for t in self.topics.values()]
        return "\n".join(lines)

    def require(self, expected: Mapping[str, str | Collection[str]]) -> None:
        """Check that every topic of ``expected`` is there, with (one of) the type(s)
        given, has messages, and can be decoded.

        Raises:
            MissingTopicError, TopicTypeError, UnknownTypeError.
        """
        topics = self.topics
        available = {name: info.msgtype for name, info in topics.items()}
        missing = [name for name in expected if name not in topics]
        silent = [name for name in expected if name in topics and topics[name].count == 0]
        if missing or silent:
            parts = []
            if missing:
                parts.append(f"missing topic(s) {', '.join(missing)}")
            if silent:
                parts.append(f"topic(s) without messages {', '.join(silent)}")
            have = "\n  ".join(f"{n} [{t}]" for n, t in sorted(available.items()))
            raise MissingTopicError(
                f"bag {self.requested_path}: {'; '.join(parts)}; it has:\n  {have}",
                missing + silent,
                available,
            )
        for name, types in expected.items():
            allowed = {types} if isinstance(types, str) else set(types)
            if topics[name].msgtype not in allowed:
                raise TopicTypeError(
                    f"bag {self.requested_path}: topic {name} has type {topics[name].msgtype}, "
                    f"expected {' or '.join(sorted(allowed))}"
                )
            self.check_type(topics[name].msgtype, name)

    def check_type(self, msgtype: str, topic: str = "") -> None:
        """Raises UnknownTypeError when messages of ``msgtype`` cannot be decoded."""
        if msgtype in self.unknown_types or msgtype not in self.store.fielddefs:
            why = self.unknown_types.get(msgtype, "no definition")
            where = f" (topic {topic})" if topic else ""
            raise UnknownTypeError(
                f"bag {self.requested_path}: cannot decode {msgtype}{where}: {why}"
            )

    # -- messages ------------------------------------------------------------------

    def _raw(
        self, topics: Collection[str] | None, start: int | None, stop: int | None
    ) -> Iterator[tuple[Connection, int, bytes]]:
        conns = [c for c in self.reader.connections if topics is None or c.topic in topics]
        if not conns:
            return iter(())
        return self.reader.messages(conns, start=start, stop=stop)

    def messages(
        self,
        topics: Collection[str] | None = None,
        *,
        start: int | None = None,
        stop: int | None = None,
    ) -> Iterator[BagMessage]:
        """Serialised messages in bag-time order, of ``topics`` (all when None), with
        bag time in [start, stop)."""
        for conn, timestamp, data in self._raw(topics, start, stop):
            yield BagMessage(conn.topic, conn.msgtype, int(timestamp), bytes(data))

    def deserialize(self, message: BagMessage) -> Any:
        """The rosbags message object of a ``BagMessage``."""
        self.check_type(message.msgtype, message.topic)
        try:
            return self.store.deserialize_cdr(message.data, message.msgtype)
        except Exception as exc:
            raise BagError(
                f"bag {self.requested_path}: cannot decode a {message.msgtype} on "
                f"{message.topic} at {message.timestamp} ns: {exc}"
            ) from exc

    def decoded(self, topics: Collection[str] | None = None) -> Iterator[tuple[BagMessage, Any]]:
        """``(message, decoded)`` pairs in bag-time order."""
        for message in self.messages(topics):
            yield message, self.deserialize(message)


def _sqlite_unknown_definitions(path: Path) -> list[str]:
    """Types whose stored definition encoding is neither ros2msg nor ros2idl, in the
    sqlite3 files of a bag (rosbag2 writes 'unknown' when it found no definition)."""
    files = [path] if path.is_file() else sorted(path.glob("*.db3"))
    found: set[str] = set()
    for file in files:
        if file.suffix != ".db3":
            continue
        try:
            with contextlib.closing(
                sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
            ) as db:
                rows = db.execute(
                    "SELECT topic_type FROM message_definitions "
                    "WHERE encoding NOT IN ('ros2msg', 'ros2idl')"
                ).fetchall()
        except sqlite3.Error:
            continue
        found.update(str(row[0]) for row in rows)
    return sorted(found)


def _default_fallback() -> Typestore:
    try:
        return ts.default_typestore()
    except ts.MessageDefinitionsNotFoundError:
        return get_typestore(Stores.ROS2_JAZZY)


# -- message -> numpy ----------------------------------------------------------------


def stamp_ns(header: Any) -> int:
    """A header's stamp in nanoseconds."""
    return time_ns(header.stamp)


_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3}


def image_to_array(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` with 8-bit channels as (H, W) or (H, W, C) uint8, as
    stored (no colour conversion; rows of ``step`` bytes are cropped to the width)."""
    channels = _CHANNELS.get(str(msg.encoding))
    if channels is None:
        raise BagError(f"unsupported image encoding {msg.encoding!r}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if height == 0 or width == 0:
        return np.zeros((height, width) if channels == 1 else (height, width, channels), np.uint8)
    if step < width * channels or data.size < step * height:
        raise BagError(f"image data too short: {data.size} bytes for {height} rows of step {step}")
    rows = data[: step * height].reshape(height, step)[:, : width * channels]
    return rows.reshape(height, width) if channels == 1 else rows.reshape(height, width, channels)


def image_to_rgb(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` as (H, W, 3) uint8 RGB."""
    pixels = image_to_array(msg)
    encoding = str(msg.encoding)
    if encoding in {"rgb8", "8UC3"}:
        return pixels
    if encoding == "bgr8":
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[:, :, :3])
    if encoding == "bgra8":
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (JPEG or PNG) as (H, W, 3) uint8 RGB."""
    bgr = cv2.imdecode(np.frombuffer(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise BagError(f"cannot decode a compressed image of format {msg.format!r}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def roi_from_msg(msg: Any) -> Roi:
    return Roi(int(msg.x_offset), int(msg.y_offset), int(msg.width), int(msg.height))


def object_mask_to_frame(obj: Any, width: int, height: int) -> np.ndarray:
    """An ``ObjectMask``'s mask pasted into a full (height, width) boolean frame."""
    frame = np.zeros((height, width), dtype=bool)
    crop = roi_from_msg(obj.crop)
    if crop.is_empty or int(obj.mask.width) == 0:
        return frame
    pixels = image_to_array(obj.mask)
    if pixels.ndim != 2 or pixels.shape != (crop.height, crop.width):
        raise BagError(
            f"object {obj.object_id}: mask {pixels.shape} does not match its crop "
            f"{crop.height}x{crop.width}"
        )
    x1, y1 = min(width, crop.x + crop.width), min(height, crop.y + crop.height)
    if x1 > crop.x and y1 > crop.y:
        frame[crop.y : y1, crop.x : x1] = pixels[: y1 - crop.y, : x1 - crop.x] > 0
    return frame


def prompt_spec_from_msg(msg: Any) -> PromptSpec | None:
    """The box of a ``Prompt``, else its first foreground point; None when it has
    neither."""
    if msg.has_box:
        return PromptSpec(
            box=(
                float(msg.box_x_min),
                float(msg.box_y_min),
                float(msg.box_x_max),
                float(msg.box_y_max),
            )
        )
    labels = list(np.asarray(msg.labels).reshape(-1))
    for i, point in enumerate(msg.points):
        if i >= len(labels) or int(labels[i]) == ts.LABEL_FOREGROUND:
            return PromptSpec(point=(float(point.x), float(point.y)))
    return None


# -- COCO-derived bags ---------------------------------------------------------------


@dataclass(frozen=True)
class CategoryInfo:
    id: int
    name: str
    supercategory: str


@dataclass(frozen=True)
class ObjectInfo:
    """One ground-truth object as listed in ``/dataset/info``."""

    object_id: int
    category_id: int
    area: int
    image_id: int
    stamp_ns: int


@dataclass
class DatasetInfo:
    """``/dataset/info`` parsed."""

    raw: dict[str, Any]
    categories: dict[int, CategoryInfo]
    objects: dict[int, ObjectInfo]
    #: Image id per stamp (ns).
    image_ids: dict[int, int]

    @classmethod
    def from_json(cls, text: str) -> DatasetInfo:
        """Raises DatasetLayoutError when ``text`` is not a dataset info object."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetLayoutError(f"{TOPIC_INFO} is not JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != INFO_FORMAT:
            raise DatasetLayoutError(f"{TOPIC_INFO} is not a {INFO_FORMAT} object")
        try:
            categories = {
                int(c["id"]): CategoryInfo(
                    int(c["id"]), str(c["name"]), str(c.get("supercategory", ""))
                )
                for c in raw.get("categories", [])
            }
            objects: dict[int, ObjectInfo] = {}
            image_ids: dict[int, int] = {}
            for frame in raw["frames"]:
                stamp, image_id = int(frame["stamp_ns"]), int(frame["image_id"])
                image_ids[stamp] = image_id
                for obj in frame["objects"]:
                    oid = int(obj["object_id"])
                    objects[oid] = ObjectInfo(
                        oid, int(obj["category_id"]), int(obj["area"]), image_id, stamp
                    )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetLayoutError(f"{TOPIC_INFO} lacks or mistypes {exc}") from None
        return cls(raw, categories, objects, image_ids)

    def category_name(self, object_id: int) -> str | None:
        obj = self.objects.get(object_id)
        cat = self.categories.get(obj.category_id) if obj else None
        return cat.name if cat else None


@dataclass
class GroundTruthObject:
    object_id: int
    #: Full-frame boolean mask, shape (height, width).
    mask: np.ndarray
    bbox: Roi
    prompt: PromptSpec | None
    category_id: int | None = None
    category_name: str | None = None


@dataclass
class DatasetFrame:
    """Everything a COCO-derived bag holds for one image stamp."""

    stamp_ns: int
    image_id: int | None = None
    #: (H, W, 3) uint8 RGB; None when images were not read or the image is missing.
    rgb: np.ndarray | None = None
    width: int = 0
    height: int = 0
    has_camera_info: bool = False
    #: The bag has a camera_info topic, so a complete frame has one.
    expects_camera_info: bool = False
    prompts: dict[int, PromptSpec | None] = field(default_factory=dict)
    ground_truth: dict[int, GroundTruthObject] = field(default_factory=dict)
    has_ground_truth: bool = False
    #: The image was read (``images`` true) or not asked for.
    has_image: bool = False

    @property
    def complete(self) -> bool:
        """Image (if asked for), camera_info (if the bag has the topic), ground truth, and
        one prompt per ground-truth object."""
        return (
            self.has_image
            and self.has_ground_truth
            and (self.has_camera_info or not self.expects_camera_info)
            and set(self.prompts) == set(self.ground_truth)
        )


@dataclass
class DatasetStats:
    """What ``DatasetBag.frames`` met besides complete frames."""

    frames: int = 0
    incomplete_frames: int = 0
    prompts_without_ground_truth: int = 0
    ground_truth_without_prompt: int = 0
    frames_without_image: int = 0
    duplicate_messages: int = 0


class DatasetBag:
    """A COCO-derived bag (``picosam2-make-bag``) read back frame by frame.

    ``images=False`` skips the image topic (faster when only the ground truth is
    needed). Raises the ``BagError`` subclasses of ``BagReader`` when opening, and
    ``MissingTopicError`` when the layout's topics are not there.
    """

    def __init__(
        self, path: Path | str, *, images: bool = True, fallback: Typestore | None = None
    ) -> None:
        self.bag = BagReader(path, fallback=fallback)
        self.images = images
        self.info: DatasetInfo | None = None
        self.image_topic = ""
        self.has_camera_info = False
        self.stats = DatasetStats()

    def open(self) -> None:
        self.bag.open()
        try:
            topics = self.bag.topics
            self.has_camera_info = TOPIC_CAMERA_INFO in topics
            self.image_topic = (
                TOPIC_COMPRESSED_IMAGE
                if TOPIC_COMPRESSED_IMAGE in topics and TOPIC_IMAGE not in topics
                else TOPIC_IMAGE
            )
            expected: dict[str, str] = {
                TOPIC_PROMPTS: ts.PROMPT,
                TOPIC_GROUND_TRUTH: ts.SEGMENTATION,
            }
            if self.images:
                expected[self.image_topic] = (
                    ts.COMPRESSED_IMAGE if self.image_topic == TOPIC_COMPRESSED_IMAGE else ts.IMAGE
                )
            self.bag.require(expected)
            if TOPIC_INFO in topics:
                self.bag.require({TOPIC_INFO: ts.STRING})
                first = next(self.bag.decoded([TOPIC_INFO]), None)
                if first is None:
                    raise DatasetLayoutError(f"{TOPIC_INFO} yields no message")
                self.info = DatasetInfo.from_json(str(first[1].data))
        except BaseException:
            self.bag.close()
            raise

    def close(self) -> None:
        self.bag.close()

    def __enter__(self) -> DatasetBag:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def frames(self) -> Iterator[DatasetFrame]:
        """Frames in the order they complete (bag-time order for bags of this package),
        then any incomplete ones by stamp; ``stats`` counts what did not fit.

        Raises:
            EmptyBagError: the bag has not a single frame.
        """
        self.stats = DatasetStats()
        topics = [TOPIC_PROMPTS, TOPIC_GROUND_TRUTH]
        if self.has_camera_info:
            topics.append(TOPIC_CAMERA_INFO)
        if self.images:
            topics.append(self.image_topic)
        pending: dict[int, DatasetFrame] = {}
        for message, msg in self.bag.decoded(topics):
            stamp = stamp_ns(msg.header)
            frame = pending.get(stamp)
            if frame is None:
                frame = pending[stamp] = self._new_frame(stamp)
            self._add(frame, message.topic, msg)
            if frame.complete:
                del pending[stamp]
                yield self._finish(frame)
        for stamp in sorted(pending):
            frame = pending[stamp]
            self.stats.incomplete_frames += 1
            yield self._finish(frame)
        if self.stats.frames == 0:
            raise EmptyBagError(
                f"bag {self.bag.requested_path} reads empty: no frame on {', '.join(topics)}"
            )

    def _new_frame(self, stamp: int) -> DatasetFrame:
        frame = DatasetFrame(
            stamp_ns=stamp,
            has_image=not self.images,
            expects_camera_info=self.has_camera_info,
        )
        if self.info is not None:
            frame.image_id = self.info.image_ids.get(stamp)
        return frame

    def _add(self, frame: DatasetFrame, topic: str, msg: Any) -> None:
        if topic == TOPIC_PROMPTS:
            oid = int(msg.object_id)
            if oid in frame.prompts:
                self.stats.duplicate_messages += 1
            frame.prompts[oid] = prompt_spec_from_msg(msg)
        elif topic == TOPIC_GROUND_TRUTH:
            if frame.has_ground_truth:
                self.stats.duplicate_messages += 1
            frame.has_ground_truth = True
            frame.width, frame.height = int(msg.image_width), int(msg.image_height)
            frame.ground_truth = {}
            for obj in msg.objects:
                oid = int(obj.object_id)
                gt = GroundTruthObject(
                    object_id=oid,
                    mask=object_mask_to_frame(obj, frame.width, frame.height),
                    bbox=roi_from_msg(obj.bbox),
                    prompt=prompt_spec_from_msg(obj.prompt),
                )
                if self.info is not None and oid in self.info.objects:
                    gt.category_id = self.info.objects[oid].category_id
                    gt.category_name = self.info.category_name(oid)
                frame.ground_truth[oid] = gt
        elif topic == TOPIC_CAMERA_INFO:
            frame.has_camera_info = True
        else:
            if frame.has_image and frame.rgb is not None:
                self.stats.duplicate_messages += 1
            frame.rgb = (
                compressed_to_rgb(msg) if topic == TOPIC_COMPRESSED_IMAGE else image_to_rgb(msg)
            )
            frame.has_image = True

    def _finish(self, frame: DatasetFrame) -> DatasetFrame:
        self.stats.frames += 1
        self.stats.prompts_without_ground_truth += len(set(frame.prompts) - set(frame.ground_truth))
        self.stats.ground_truth_without_prompt += len(set(frame.ground_truth) - set(frame.prompts))
        if not frame.has_image:
            self.stats.frames_without_image += 1
        if frame.rgb is not None and not frame.width:
            frame.height, frame.width = frame.rgb.shape[:2]
        return frame


def read_dataset(
    path: Path | str, *, images: bool = True
) -> tuple[DatasetInfo | None, list[DatasetFrame], DatasetStats]:
    """All frames of a COCO-derived bag at once (small bags; tests)."""
    with DatasetBag(path, images=images) as bag:
        frames = list(bag.frames())
        return bag.info, frames, bag.stats
