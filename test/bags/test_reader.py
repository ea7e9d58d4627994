"""BagReader and DatasetBag on bags that are not what they should be, and interop with
the real ROS 2 message stack (rclpy, rosidl type hashes)."""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

from picosam2_ros.bags import typestore as ts
from picosam2_ros.bags.convert import coco_to_bag
from picosam2_ros.bags.layout import (
    TOPIC_CAMERA_INFO,
    TOPIC_GROUND_TRUTH,
    TOPIC_IMAGE,
    TOPIC_INFO,
    TOPIC_PROMPTS,
)
from picosam2_ros.bags.reader import (
    BagOpenError,
    BagReader,
    DatasetBag,
    DatasetLayoutError,
    EmptyBagError,
    MissingTopicError,
    TopicTypeError,
    UnknownTypeError,
    image_to_rgb,
    read_dataset,
    resolve_bag_path,
)

from .conftest import SyntheticCoco

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def synthetic_bag(synthetic_coco: SyntheticCoco, tmp_path: Path) -> Path:
    out = tmp_path / "bag"
    coco_to_bag(synthetic_coco.annotations, synthetic_coco.images, out, progress=False)
    return out


def _write_bag(
    path: Path, topics: dict[str, str], messages: int = 1, storage: str = "mcap"
) -> Path:
    """A bag with ``messages`` default-valued messages per topic."""
    store = ts.default_typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        for topic, msgtype in topics.items():
            conn = writer.add_connection(topic, msgtype, typestore=store)
            for i in range(messages):
                writer.write(conn, 1000 + i, bytes(store.serialize_cdr(_default(msgtype), msgtype)))
    return path


def _default(msgtype: str) -> Any:
    store = ts.default_typestore()
    if msgtype == ts.STRING:
        return store.types[ts.STRING](data="x")
    if msgtype == ts.IMAGE:
        header = store.types[ts.HEADER](stamp=store.types[ts.TIME](sec=1, nanosec=0), frame_id="")
        return store.types[ts.IMAGE](
            header=header,
            height=1,
            width=1,
            encoding="rgb8",
            is_bigendian=0,
            step=3,
            data=np.zeros(3, np.uint8),
        )
    raise AssertionError(msgtype)


# -- paths -------------------------------------------------------------------------


def test_paths_that_are_bags(synthetic_bag: Path) -> None:
    storage_file = next(synthetic_bag.glob("*.mcap"))
    assert resolve_bag_path(synthetic_bag) == synthetic_bag
    assert resolve_bag_path(synthetic_bag / "metadata.yaml") == synthetic_bag
    assert resolve_bag_path(storage_file) == storage_file
    # A recording cut off before metadata.yaml was written: the single storage file.
    (synthetic_bag / "metadata.yaml").unlink()
    assert resolve_bag_path(synthetic_bag) == storage_file
    _, frames, _ = read_dataset(synthetic_bag)
    assert len(frames) == 3


def test_paths_that_are_not_bags(tmp_path: Path) -> None:
    with pytest.raises(BagOpenError, match="no such bag"):
        BagReader(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagOpenError, match=r"no metadata\.yaml and no \.mcap or \.db3 file"):
        BagReader(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BagOpenError, match="expected a bag folder"):
        BagReader(tmp_path / "notes.txt")
    (tmp_path / "fake.mcap").write_bytes(b"\x89MCAP0\r\n but not really")
    with pytest.raises(BagOpenError, match="cannot read bag"):
        BagReader(tmp_path / "fake.mcap").open()
    (tmp_path / "fake.db3").write_bytes(b"not sqlite")
    with pytest.raises(BagOpenError, match="cannot read bag"):
        BagReader(tmp_path / "fake.db3").open()


def test_truncated_bag_is_reported(synthetic_bag: Path) -> None:
    storage_file = next(synthetic_bag.glob("*.mcap"))
    data = storage_file.read_bytes()
    storage_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagOpenError, match="cannot read bag"):
        read_dataset(synthetic_bag)


# -- empty, missing, mistyped, unknown -----------------------------------------------


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_without_messages_reads_empty(tmp_path: Path, storage: str) -> None:
    path = _write_bag(tmp_path / "bag", {TOPIC_IMAGE: ts.IMAGE}, messages=0, storage=storage)
    with pytest.raises(
        EmptyBagError, match=r"reads empty: no messages \(topics: /camera/image_raw"
    ):
        BagReader(path).open()


def test_bag_without_topics_reads_empty(tmp_path: Path) -> None:
    path = _write_bag(tmp_path / "bag", {})
    with pytest.raises(EmptyBagError, match="reads empty: it has no topics"):
        BagReader(path).open()


def test_missing_topics_are_named(tmp_path: Path) -> None:
    path = _write_bag(tmp_path / "bag", {TOPIC_IMAGE: ts.IMAGE, "/other": ts.STRING})
    with pytest.raises(MissingTopicError) as err:
        DatasetBag(path).open()
    assert err.value.missing == sorted([TOPIC_GROUND_TRUTH, TOPIC_PROMPTS])
    message = str(err.value)
    assert "missing topic(s) /prompts, /ground_truth" in message
    assert "/other [std_msgs/msg/String]" in message
    assert err.value.available[TOPIC_IMAGE] == ts.IMAGE


def test_topic_without_messages_counts_as_missing(tmp_path: Path) -> None:
    store = ts.default_typestore()
    path = tmp_path / "bag"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        writer.add_connection("/silent", ts.STRING, typestore=store)
        conn = writer.add_connection("/talk", ts.STRING, typestore=store)
        writer.write(conn, 1, bytes(store.serialize_cdr(_default(ts.STRING), ts.STRING)))
    with BagReader(path) as bag, pytest.raises(MissingTopicError, match="without messages /silent"):
        bag.require({"/silent": ts.STRING, "/talk": ts.STRING})


def test_topic_of_another_type(tmp_path: Path) -> None:
    path = _write_bag(
        tmp_path / "bag",
        {TOPIC_IMAGE: ts.IMAGE, TOPIC_PROMPTS: ts.STRING, TOPIC_GROUND_TRUTH: ts.STRING},
    )
    with pytest.raises(TopicTypeError, match="/prompts has type std_msgs/msg/String, expected"):
        DatasetBag(path).open()


def _write_raw_mcap(path: Path, channels: list[tuple[str, str, str, bytes, bytes]]) -> Path:
    """An mcap file written with the mcap library alone: (topic, type, schema encoding,
    schema data, one message)."""
    mcap_writer = pytest.importorskip("mcap.writer")
    with path.open("wb") as stream:
        writer = mcap_writer.Writer(stream)
        writer.start(profile="ros2", library="test")
        for i, (topic, msgtype, encoding, schema, message) in enumerate(channels):
            schema_id = writer.register_schema(msgtype, encoding, schema)
            channel_id = writer.register_channel(topic, "cdr", schema_id)
            writer.add_message(channel_id, log_time=10 + i, publish_time=10 + i, data=message)
        writer.finish()
    return path


def test_unknown_type_is_reported(tmp_path: Path) -> None:
    string_cdr = bytes(ts.default_typestore().serialize_cdr(_default(ts.STRING), ts.STRING))
    path = _write_raw_mcap(
        tmp_path / "x.mcap",
        [
            ("/mystery", "foo_msgs/msg/Bar", "", b"", b"\x00\x01\x00\x00abcd"),
            # no definition either, but a known type: decoded with the fallback types
            ("/chatter", ts.STRING, "", b"", string_cdr),
        ],
    )
    with BagReader(path) as bag:
        assert set(bag.unknown_types) == {"foo_msgs/msg/Bar"}
        with pytest.raises(UnknownTypeError, match="cannot decode foo_msgs/msg/Bar"):
            bag.require({"/mystery": "foo_msgs/msg/Bar"})
        decoded = {m.topic: m for m in bag.messages()}
        with pytest.raises(UnknownTypeError, match=r"topic /mystery"):
            bag.deserialize(decoded["/mystery"])
        assert bag.deserialize(decoded["/chatter"]).data == "x"


def test_sqlite3_bag_without_definitions_uses_known_types(
    synthetic_coco: SyntheticCoco, tmp_path: Path
) -> None:
    """Like a ROS 2 Humble recording: no message definitions stored."""
    out = tmp_path / "bag"
    coco_to_bag(
        synthetic_coco.annotations, synthetic_coco.images, out, storage="sqlite3", progress=False
    )
    with sqlite3.connect(next(out.glob("*.db3"))) as db:
        db.execute("DELETE FROM message_definitions")
    _, frames, stats = read_dataset(out)
    assert len(frames) == 3
    assert stats.incomplete_frames == 0


def test_sqlite3_bag_with_unknown_definitions_is_explained(
    synthetic_coco: SyntheticCoco, tmp_path: Path
) -> None:
    """What ros2 bag record (sqlite3) stores for types it has no definition of."""
    out = tmp_path / "bag"
    coco_to_bag(
        synthetic_coco.annotations, synthetic_coco.images, out, storage="sqlite3", progress=False
    )
    with sqlite3.connect(next(out.glob("*.db3"))) as db:
        db.execute(
            "UPDATE message_definitions SET encoding = 'unknown', encoded_message_definition = '' "
            "WHERE topic_type = 'picosam2_ros/msg/Prompt'"
        )
    with pytest.raises(
        UnknownTypeError, match=r"no definition of picosam2_ros/msg/Prompt \(encoding 'unknown'"
    ):
        read_dataset(out)


def test_dataset_bag_reports_incomplete_frames(synthetic_bag: Path, tmp_path: Path) -> None:
    """Drop one prompt while copying: the frame comes out incomplete, and is counted."""
    out = tmp_path / "copy"
    store = ts.default_typestore()
    with (
        BagReader(synthetic_bag) as src,
        Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as dst,
    ):
        conns = {
            c.topic: dst.add_connection(c.topic, c.msgtype, typestore=store)
            for c in src.connections
        }
        dropped = False
        for message in src.messages():
            if message.topic == TOPIC_PROMPTS and not dropped:
                dropped = True
                continue
            dst.write(conns[message.topic], message.timestamp, message.data)
    info, frames, stats = read_dataset(out)
    assert info is not None
    assert len(frames) == 3
    assert stats.incomplete_frames == 1
    assert stats.ground_truth_without_prompt == 1
    assert sum(not f.complete for f in frames) == 1


# -- real ROS 2 -------------------------------------------------------------------


def _rosidl_hash(name: str) -> str | None:
    for folder in ts.candidate_msg_dirs()[1:]:
        path = folder / f"{name}.json"
        if path.is_file():
            hashes = json.loads(path.read_text())["type_hashes"]
            return str(
                next(h["hash_string"] for h in hashes if h["type_name"].endswith(f"/{name}"))
            )
    return None


@pytest.mark.parametrize("name", ts.PACKAGE_MESSAGES)
def test_type_hashes_equal_rosidl(name: str) -> None:
    """The RIHS01 hash of our types from the .msg text equals the one rosidl generated,
    so ROS 2 tools accept the bags' type_description_hash."""
    expected = _rosidl_hash(name)
    if expected is None:
        pytest.skip("no rosidl-generated type description found (messages not built/installed)")
    assert ts.default_typestore().hash_rihs01(f"picosam2_ros/msg/{name}") == expected


@pytest.mark.filterwarnings("ignore:module 'sre_:DeprecationWarning")
def test_rclpy_reads_our_messages_and_we_read_rclpys(synthetic_bag: Path) -> None:
    """The replay node deserialises bag records with rclpy; the evaluator may read
    recordings of rclpy-published messages. Both directions must agree."""
    serialization = pytest.importorskip("rclpy.serialization", reason="rclpy not installed")
    try:
        ours_msgs = importlib.import_module("picosam2_ros.msg")
    except ImportError:
        pytest.skip("picosam2_ros messages are not built (picosam2_ros.msg not importable)")
    sensor_msgs = importlib.import_module("sensor_msgs.msg")
    std_msgs = importlib.import_module("std_msgs.msg")

    classes = {
        TOPIC_INFO: std_msgs.String,
        TOPIC_PROMPTS: ours_msgs.Prompt,
        TOPIC_GROUND_TRUTH: ours_msgs.Segmentation,
        TOPIC_CAMERA_INFO: sensor_msgs.CameraInfo,
        TOPIC_IMAGE: sensor_msgs.Image,
    }
    seen = set()
    with BagReader(synthetic_bag) as bag:
        for message, ours in bag.decoded():
            theirs = serialization.deserialize_message(message.data, classes[message.topic])
            back: Any = bag.store.deserialize_cdr(
                serialization.serialize_message(theirs), message.msgtype
            )
            seen.add(message.topic)
            if message.topic == TOPIC_INFO:
                assert theirs.data == ours.data == back.data
                continue
            assert theirs.header.stamp.sec == ours.header.stamp.sec
            assert theirs.header.stamp.nanosec == ours.header.stamp.nanosec
            assert theirs.header.frame_id == ours.header.frame_id == back.header.frame_id
            if message.topic == TOPIC_IMAGE:
                assert bytes(theirs.data) == ours.data.tobytes() == back.data.tobytes()
                np.testing.assert_array_equal(image_to_rgb(back), image_to_rgb(ours))
            elif message.topic == TOPIC_PROMPTS:
                assert theirs.object_id == ours.object_id == back.object_id
                assert [(p.x, p.y) for p in theirs.points] == [(p.x, p.y) for p in ours.points]
                assert list(theirs.labels) == list(ours.labels) == list(back.labels)
            elif message.topic == TOPIC_GROUND_TRUTH:
                assert [o.object_id for o in theirs.objects] == [o.object_id for o in ours.objects]
                for t, o, b in zip(theirs.objects, ours.objects, back.objects, strict=True):
                    assert bytes(t.mask.data) == o.mask.data.tobytes() == b.mask.data.tobytes()
                    assert t.crop.x_offset == o.crop.x_offset == b.crop.x_offset
                    assert t.prompt.object_id == o.prompt.object_id == b.prompt.object_id
            elif message.topic == TOPIC_CAMERA_INFO:
                assert (theirs.width, theirs.height) == (ours.width, ours.height)
    assert seen == set(classes)


def test_msg_dir_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = ts.find_msg_dir()
    assert (folder / "Prompt.msg").is_file()
    assert ts.candidate_msg_dirs()[-1] == Path(sys.prefix) / "share" / "picosam2_ros" / "msg"
    monkeypatch.setattr(ts, "candidate_msg_dirs", lambda: [Path("/nonexistent/msg")])
    with pytest.raises(ts.MessageDefinitionsNotFoundError, match="looked in:\n  /nonexistent/msg"):
        ts.find_msg_dir()


def test_dataset_info_that_is_not_ours(synthetic_bag: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    store = ts.default_typestore()
    with (
        BagReader(synthetic_bag) as src,
        Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as dst,
    ):
        conns = {
            c.topic: dst.add_connection(c.topic, c.msgtype, typestore=store)
            for c in src.connections
        }
        for message in src.messages():
            data = message.data
            if message.topic == TOPIC_INFO:
                other = store.types[ts.STRING](data='{"format": "something else"}')
                data = bytes(store.serialize_cdr(other, ts.STRING))
            dst.write(conns[message.topic], message.timestamp, data)
    with pytest.raises(DatasetLayoutError, match="is not a picosam2_ros/coco-bag object"):
        read_dataset(out)


@pytest.mark.parametrize("mode", [CompressionMode.FILE, CompressionMode.MESSAGE])
def test_zstd_compressed_bags(tmp_path: Path, mode: CompressionMode) -> None:
    """What `ros2 bag record --compression-mode file|message` writes."""
    store = ts.default_typestore()
    path = tmp_path / "bag"
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3)
    writer.set_compression(mode, CompressionFormat.ZSTD)
    with writer:
        conn = writer.add_connection("/chatter", ts.STRING, typestore=store)
        for i in range(3):
            msg = store.types[ts.STRING](data=f"hello {i}")
            writer.write(conn, 10 + i, bytes(store.serialize_cdr(msg, ts.STRING)))
    with BagReader(path) as bag:
        assert bag.storage == "sqlite3"
        assert [m.data for _, m in bag.decoded()] == ["hello 0", "hello 1", "hello 2"]
