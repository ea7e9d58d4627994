"""A bag written without rosbags, by mcap + mcap-ros2-support from the .msg files, reads
back correctly: compatibility beyond our own writer.

The schemas are built here from the .msg files alone (the ``ros2msg`` concatenation that
rosbag2 stores), and the metadata.yaml is the one ``ros2 bag record`` (Jazzy) writes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from picosam2_ros.bags import typestore as ts
from picosam2_ros.bags.layout import (
    TOPIC_CAMERA_INFO,
    TOPIC_GROUND_TRUTH,
    TOPIC_IMAGE,
    TOPIC_INFO,
    TOPIC_PROMPTS,
)
from picosam2_ros.bags.reader import DatasetBag

mcap_ros2_writer = pytest.importorskip(
    "mcap_ros2.writer", reason="mcap-ros2-support not installed (pip install mcap-ros2-support)"
)

PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
    "int32", "uint32", "int64", "uint64", "string", "wstring",
}  # fmt: skip
SEPARATOR = "=" * 80


def _msg_file(package: str, name: str) -> Path:
    if package == "picosam2_ros":
        return ts.find_msg_dir() / f"{name}.msg"
    return Path(sys.prefix) / "share" / package / "msg" / f"{name}.msg"


def _field_types(package: str, text: str) -> list[tuple[str, str]]:
    """(package, name) of the message types the fields of a .msg text use."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        base = re.sub(r"\[.*\]$", "", line.split()[0])
        base = re.sub(r"<=\d+$", "", base)
        if base in PRIMITIVES:
            continue
        parts = base.split("/")
        found.append((parts[0], parts[-1]) if len(parts) > 1 else (package, parts[0]))
    return found


def ros2msg_schema(package: str, name: str) -> str:
    """The complete ``ros2msg`` definition: the type's .msg text, then each dependency
    after a line of 80 '=' and ``MSG: pkg/msg/Name``."""
    main = _msg_file(package, name).read_text()
    parts = [main]
    seen = {(package, name)}
    pending = _field_types(package, main)
    while pending:
        dep = pending.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        path = _msg_file(*dep)
        if not path.is_file():
            pytest.skip(f"message definition {path} not available")
        text = path.read_text()
        parts.append(f"{SEPARATOR}\nMSG: {dep[0]}/msg/{dep[1]}\n{text}")
        pending.extend(_field_types(dep[0], text))
    return "\n".join(parts)


def _rosidl_hash(package: str, name: str) -> str:
    path = _msg_file(package, name).with_suffix(".json")
    if not path.is_file():
        return ""
    hashes = json.loads(path.read_text())["type_hashes"]
    return str(next(h["hash_string"] for h in hashes if h["type_name"] == f"{package}/msg/{name}"))


QOS_V8 = (
    "- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n"
    "  deadline:\n    sec: 9223372036\n    nsec: 854775807\n"
    "  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n"
    "  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n"
    "  avoid_ros_namespace_conventions: false"
)


def _metadata_yaml(file_name: str, topics: dict[str, tuple[str, int]], start: int, end: int) -> str:
    """metadata.yaml as rosbag2 (Jazzy, format version 8) writes it."""
    total = sum(n for _, n in topics.values())
    lines = [
        "rosbag2_bagfile_information:",
        "  version: 8",
        "  storage_identifier: mcap",
        "  duration:",
        f"    nanoseconds: {end - start}",
        "  starting_time:",
        f"    nanoseconds_since_epoch: {start}",
        f"  message_count: {total}",
        "  topics_with_message_count:",
    ]
    for topic, (msgtype, count) in topics.items():
        package, _, name = msgtype.split("/")
        lines += [
            "    - topic_metadata:",
            f"        name: {topic}",
            f"        type: {msgtype}",
            "        serialization_format: cdr",
            f"        offered_qos_profiles: {json.dumps(QOS_V8)}",
            f'        type_description_hash: "{_rosidl_hash(package, name)}"',
            f"      message_count: {count}",
        ]
    lines += [
        '  compression_format: ""',
        '  compression_mode: ""',
        "  relative_file_paths:",
        f"    - {file_name}",
        "  files:",
        f"    - path: {file_name}",
        "      starting_time:",
        f"        nanoseconds_since_epoch: {start}",
        "      duration:",
        f"        nanoseconds: {end - start}",
        f"      message_count: {total}",
        "  custom_data: ~",
        "  ros_distro: jazzy",
    ]
    return "\n".join(lines) + "\n"


def _header(stamp: int) -> dict[str, Any]:
    return {"stamp": {"sec": stamp // 10**9, "nanosec": stamp % 10**9}, "frame_id": "camera"}


def _roi(x: int, y: int, w: int, h: int) -> dict[str, Any]:
    return {"x_offset": x, "y_offset": y, "width": w, "height": h, "do_rectify": False}


TOPIC_TYPES = {
    TOPIC_INFO: ts.STRING,
    TOPIC_PROMPTS: ts.PROMPT,
    TOPIC_GROUND_TRUTH: ts.SEGMENTATION,
    TOPIC_CAMERA_INFO: ts.CAMERA_INFO,
    TOPIC_IMAGE: ts.IMAGE,
}


def write_independent_bag(folder: Path, *, channel_qos: bool = True) -> dict[str, Any]:
    """Two frames of the bag layout written with mcap-ros2-support; returns the truth.

    ``channel_qos``: give each channel the metadata rosbag2's mcap plugin writes (QoS
    and type hash), as in a real recording; without it metadata.yaml and the mcap
    disagree on the topics' QoS.
    """
    rng = np.random.default_rng(3)
    width, height = 32, 24
    stamps = [1_000_000_000, 1_100_000_000]
    truth: dict[str, Any] = {"frames": []}
    folder.mkdir()
    file_name = "independent_0.mcap"
    counts: dict[str, tuple[str, int]] = {}
    with (folder / file_name).open("wb") as stream:
        writer = mcap_ros2_writer.Writer(stream)
        schemas = {
            t: writer.register_msgdef(t, ros2msg_schema(*t.split("/msg/")))
            for t in (ts.STRING, ts.PROMPT, ts.SEGMENTATION, ts.CAMERA_INFO, ts.IMAGE)
        }
        if channel_qos:
            # mcap-ros2-support registers channels without metadata; register them
            # the way rosbag2 does first (its writer then reuses them by topic).
            for topic, msgtype in TOPIC_TYPES.items():
                package, _, name = msgtype.split("/")
                writer._channel_ids[topic] = writer._writer.register_channel(
                    topic=topic,
                    message_encoding="cdr",
                    schema_id=schemas[msgtype].id,
                    metadata={
                        "offered_qos_profiles": QOS_V8,
                        "topic_type_hash": _rosidl_hash(package, name),
                    },
                )

        def put(topic: str, msgtype: str, message: dict[str, Any], stamp: int) -> None:
            writer.write_message(
                topic, schemas[msgtype], message, log_time=stamp, publish_time=stamp
            )
            counts[topic] = (msgtype, counts.get(topic, (msgtype, 0))[1] + 1)

        frames_json = []
        for index, stamp in enumerate(stamps):
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            objects, masks, prompts = [], {}, {}
            for k, (x, y, w, h) in enumerate([(2, 3, 10, 8), (15, 10, 12, 9)]):
                object_id = 100 * (index + 1) + k + 1
                crop = rng.random((h, w)) > 0.4
                crop[h // 2, w // 2] = True
                full = np.zeros((height, width), bool)
                full[y : y + h, x : x + w] = crop
                point = (float(x + w // 2), float(y + h // 2))
                prompt = {
                    "header": _header(stamp),
                    "object_id": object_id,
                    "points": [{"x": point[0], "y": point[1], "z": 0.0}],
                    "labels": bytes([1]),
                    "has_box": False,
                    "box_x_min": 0.0,
                    "box_y_min": 0.0,
                    "box_x_max": 0.0,
                    "box_y_max": 0.0,
                    "track": False,
                }
                put(TOPIC_PROMPTS, ts.PROMPT, prompt, stamp)
                objects.append(
                    {
                        "object_id": object_id,
                        "status": 0,
                        "score": 1.0,
                        "source_stamp": _header(stamp)["stamp"],
                        "crop": _roi(x, y, w, h),
                        "bbox": _roi(x, y, w, h),
                        "mask": {
                            "header": _header(stamp),
                            "height": h,
                            "width": w,
                            "encoding": "mono8",
                            "is_bigendian": 0,
                            "step": w,
                            "data": (crop.astype(np.uint8) * 255).tobytes(),
                        },
                        "prompt": prompt,
                    }
                )
                masks[object_id] = full
                prompts[object_id] = point
            put(
                TOPIC_GROUND_TRUTH,
                ts.SEGMENTATION,
                {
                    "header": _header(stamp),
                    "image_width": width,
                    "image_height": height,
                    "backend": "ground_truth",
                    "inference_ms": 0.0,
                    "objects": objects,
                },
                stamp,
            )
            put(
                TOPIC_CAMERA_INFO,
                ts.CAMERA_INFO,
                {
                    "header": _header(stamp),
                    "height": height,
                    "width": width,
                    "distortion_model": "",
                    "d": [],
                    "k": [0.0] * 9,
                    "r": [0.0] * 9,
                    "p": [0.0] * 12,
                    "binning_x": 0,
                    "binning_y": 0,
                    "roi": _roi(0, 0, 0, 0),
                },
                stamp,
            )
            put(
                TOPIC_IMAGE,
                ts.IMAGE,
                {
                    "header": _header(stamp),
                    "height": height,
                    "width": width,
                    "encoding": "rgb8",
                    "is_bigendian": 0,
                    "step": 3 * width,
                    "data": rgb.tobytes(),
                },
                stamp,
            )
            truth["frames"].append({"stamp": stamp, "rgb": rgb, "masks": masks, "prompts": prompts})
            frames_json.append(
                {
                    "stamp_ns": stamp,
                    "image_id": 500 + index,
                    "file_name": f"{index}.png",
                    "width": width,
                    "height": height,
                    "objects": [
                        {"object_id": oid, "category_id": 1, "area": int(m.sum())}
                        for oid, m in masks.items()
                    ],
                }
            )
        info = {
            "format": "picosam2_ros/coco-bag",
            "version": 1,
            "categories": [{"id": 1, "name": "blob", "supercategory": "thing"}],
            "frames": frames_json,
        }
        put(TOPIC_INFO, ts.STRING, {"data": json.dumps(info)}, 900_000_000)
        writer.finish()
    (folder / "metadata.yaml").write_text(
        _metadata_yaml(file_name, counts, 900_000_000, stamps[-1])
    )
    truth["file"] = folder / file_name
    return truth


def _check(path: Path, truth: dict[str, Any]) -> list[str]:
    with DatasetBag(path) as bag:
        frames = list(bag.frames())
        info, stats, notes = bag.info, bag.stats, bag.bag.notes
    assert info is not None
    assert stats.incomplete_frames == stats.duplicate_messages == 0
    assert [f.stamp_ns for f in frames] == [f["stamp"] for f in truth["frames"]]
    assert [f.image_id for f in frames] == [500, 501]
    for frame, expected in zip(frames, truth["frames"], strict=True):
        assert frame.complete
        assert frame.rgb is not None
        np.testing.assert_array_equal(frame.rgb, expected["rgb"])
        assert set(frame.ground_truth) == set(expected["masks"])
        for object_id, mask in expected["masks"].items():
            np.testing.assert_array_equal(frame.ground_truth[object_id].mask, mask)
            assert frame.ground_truth[object_id].category_name == "blob"
            spec = frame.prompts[object_id]
            assert spec is not None
            assert spec.point == expected["prompts"][object_id]
    return notes


def test_independent_mcap_bag_folder_reads_back(tmp_path: Path) -> None:
    truth = write_independent_bag(tmp_path / "bag")
    assert _check(tmp_path / "bag", truth) == []


def test_metadata_that_disagrees_with_the_mcap_is_worked_around(tmp_path: Path) -> None:
    """rosbags yields nothing for topics whose QoS differ between metadata.yaml and the
    mcap; the reader notices and reads the mcap directly."""
    truth = write_independent_bag(tmp_path / "bag", channel_qos=False)
    (note,) = _check(tmp_path / "bag", truth)
    assert "metadata.yaml disagrees with independent_0.mcap" in note


def test_independent_bare_mcap_file_reads_back(tmp_path: Path) -> None:
    truth = write_independent_bag(tmp_path / "bag")
    _check(truth["file"], truth)
    (tmp_path / "bag" / "metadata.yaml").unlink()
    _check(tmp_path / "bag", truth)


def test_schema_text_parses_like_ours() -> None:
    """Sanity of the hand-built schemas: rosbags parses them to our types."""
    from rosbags.typesys import get_types_from_msg

    for msgtype in (ts.PROMPT, ts.SEGMENTATION, ts.IMAGE):
        parsed = get_types_from_msg(ros2msg_schema(*msgtype.split("/msg/")), msgtype)
        assert parsed[msgtype][1] == ts.default_typestore().fielddefs[msgtype][1]
