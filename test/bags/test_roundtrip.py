"""COCO -> bag -> numpy: counts and contents survive, in both storages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from picosam2_ros.bags.coco import ImageSkip, InstanceSkip, PromptMode
from picosam2_ros.bags.convert import coco_to_bag
from picosam2_ros.bags.layout import (
    FIRST_STAMP_NS,
    INFO_STAMP_NS,
    PERIOD_NS,
    TOPIC_CAMERA_INFO,
    TOPIC_COMPRESSED_IMAGE,
    TOPIC_GROUND_TRUTH,
    TOPIC_IMAGE,
    TOPIC_INFO,
    TOPIC_PROMPTS,
)
from picosam2_ros.bags.reader import BagReader, DatasetFrame, read_dataset, stamp_ns
from picosam2_ros.core.geometry import mask_bbox, paper_prompt_point

from .conftest import SyntheticCoco

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _check_frames_against_coco(
    frames: list[DatasetFrame],
    annotations: Path,
    images: Path,
    *,
    exact_pixels: bool,
    prompt: PromptMode = PromptMode.CENTER,
    category_names: set[str] | None = None,
    min_area: int = 0,
) -> int:
    """Every frame's masks equal pycocotools' annToMask, prompts follow the protocol,
    the image equals the file. Returns the number of instances checked."""
    reference = COCO(str(annotations))
    categories = {
        c["id"]
        for c in reference.cats.values()
        if category_names is None or c["name"] in category_names
    }
    checked = 0
    for index, frame in enumerate(frames):
        assert frame.complete
        assert frame.stamp_ns == FIRST_STAMP_NS + index * PERIOD_NS
        assert frame.image_id is not None
        image = reference.imgs[frame.image_id]
        assert (frame.width, frame.height) == (image["width"], image["height"])
        assert frame.rgb is not None
        if exact_pixels:
            np.testing.assert_array_equal(frame.rgb, _rgb(images / image["file_name"]))
        else:
            assert frame.rgb.shape == (image["height"], image["width"], 3)
        expected_ids = {
            a["id"]
            for a in reference.imgToAnns[frame.image_id]
            if not a.get("iscrowd", 0)
            and "segmentation" in a
            and a["category_id"] in reference.cats
            and a["id"] >= 1
            and reference.annToMask(a).sum() > max(0, min_area - 1)
            and a["category_id"] in categories
        }
        assert set(frame.ground_truth) == expected_ids
        assert set(frame.prompts) == expected_ids
        for object_id, gt in frame.ground_truth.items():
            ann = reference.anns[object_id]
            truth = reference.annToMask(ann).astype(bool)
            np.testing.assert_array_equal(gt.mask, truth, err_msg=f"object {object_id}")
            assert gt.bbox == mask_bbox(truth)
            assert gt.category_id == ann["category_id"]
            assert gt.category_name == reference.cats[ann["category_id"]]["name"]
            assert gt.prompt == frame.prompts[object_id]
            spec = frame.prompts[object_id]
            assert spec is not None
            if prompt is PromptMode.CENTER:
                point = paper_prompt_point(truth)
                assert point is not None
                assert spec.point == (float(point[0]), float(point[1]))
            elif prompt is PromptMode.BOX:
                x, y, w, h = ann["bbox"]
                assert spec.box == pytest.approx((x, y, x + w, y + h))
            checked += 1
    return checked


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "compressed"])
def test_round_trip_synthetic(
    synthetic_coco: SyntheticCoco, tmp_path: Path, storage: str, compressed: bool
) -> None:
    out = tmp_path / "bag"
    report = coco_to_bag(
        synthetic_coco.annotations,
        synthetic_coco.images,
        out,
        storage=storage,
        compressed=compressed,
        progress=False,
    )
    assert report.is_consistent()
    assert report.images_written == len(synthetic_coco.written_images)
    assert report.instances_written == len(synthetic_coco.written_ids)
    assert dict(report.instance_skips) == synthetic_coco.instance_skips
    assert dict(report.image_skips) == synthetic_coco.image_skips

    metadata = (out / "metadata.yaml").read_text()
    assert "  version: 9\n" in metadata
    assert f"  storage_identifier: {storage}\n" in metadata

    image_topic = TOPIC_COMPRESSED_IMAGE if compressed else TOPIC_IMAGE
    info, frames, stats = read_dataset(out)
    assert info is not None
    assert [f.image_id for f in frames] == list(synthetic_coco.written_images)
    assert stats.incomplete_frames == stats.duplicate_messages == 0
    checked = _check_frames_against_coco(
        frames, synthetic_coco.annotations, synthetic_coco.images, exact_pixels=not compressed
    )
    assert checked == len(synthetic_coco.written_ids)

    counts = info.raw["counts"]
    assert counts["instances"] == {
        "in_file": 16,
        "written": 6,
        "skipped": {k.value: v for k, v in synthetic_coco.instance_skips.items()},
    }
    assert counts["images"]["skipped"] == {
        k.value: v for k, v in synthetic_coco.image_skips.items()
    }
    assert counts["messages"] == {
        TOPIC_INFO: 1,
        TOPIC_PROMPTS: 6,
        TOPIC_GROUND_TRUTH: 3,
        TOPIC_CAMERA_INFO: 3,
        image_topic: 3,
    }
    assert {(s["image_id"], s["reason"]) for s in info.raw["skipped_images"]} == {
        (4, "missing_file"),
        (5, "unreadable"),
        (6, "size_mismatch"),
    }
    assert info.raw["topics"]["image"] == image_topic
    assert {c.name for c in info.categories.values()} == {
        "square",
        "disc",
        "traffic light",
        "unused",
    }

    with BagReader(out) as bag:
        assert {t: s.count for t, s in bag.topics.items()} == counts["messages"]
        assert bag.storage == storage
        first = next(bag.messages())
        assert (first.topic, first.timestamp) == (TOPIC_INFO, INFO_STAMP_NS)
        for message, msg in bag.decoded():
            if message.topic == TOPIC_INFO:
                continue
            # every message is logged at its header stamp
            assert stamp_ns(msg.header) == message.timestamp
            assert msg.header.frame_id == "camera"
            if message.topic == TOPIC_CAMERA_INFO:
                assert msg.width > 0
                assert msg.height > 0
            if message.topic == TOPIC_IMAGE:
                assert msg.encoding == "rgb8"
                assert msg.step == 3 * msg.width
            if message.topic == TOPIC_COMPRESSED_IMAGE:
                assert msg.format == "jpeg"
                if stamp_ns(msg.header) == FIRST_STAMP_NS + PERIOD_NS:  # b.jpg
                    source = (synthetic_coco.images / "b.jpg").read_bytes()
                    assert bytes(msg.data) == source
            if message.topic == TOPIC_PROMPTS:
                assert msg.track is False
                assert msg.object_id >= 1
            if message.topic == TOPIC_GROUND_TRUTH:
                assert msg.backend == "ground_truth"
                ids = [o.object_id for o in msg.objects]
                assert ids == sorted(ids)
                for obj in msg.objects:
                    assert obj.status == 0
                    assert obj.mask.encoding == "mono8"
                    assert set(np.unique(obj.mask.data)) <= {0, 255}
                    assert (obj.crop.width, obj.crop.height) == (obj.mask.width, obj.mask.height)


def test_round_trip_options(synthetic_coco: SyntheticCoco, tmp_path: Path) -> None:
    """--prompt box, --categories, --min-area, --max-images."""
    out = tmp_path / "bag"
    report = coco_to_bag(
        synthetic_coco.annotations,
        synthetic_coco.images,
        out,
        prompt="box",
        categories=["square", "traffic light"],
        min_area=20,
        max_images=1,
        progress=False,
    )
    assert report.is_consistent()
    # Image 1 holds 11 (square), 13 (traffic light); 12 is a disc, 15 is below 20 px.
    assert report.images_written == 1
    assert report.instances_written == 2
    assert report.instance_skips[InstanceSkip.CATEGORY_NOT_SELECTED] == 1
    assert report.instance_skips[InstanceSkip.BELOW_MIN_AREA] == 1
    assert report.images_not_processed == 6
    info, frames, _ = read_dataset(out)
    assert info is not None
    assert info.raw["options"]["categories"] == ["square", "traffic light"]
    _check_frames_against_coco(
        frames,
        synthetic_coco.annotations,
        synthetic_coco.images,
        exact_pixels=True,
        prompt=PromptMode.BOX,
        category_names={"square", "traffic light"},
        min_area=20,
    )
    assert all(p is not None and p.kind == "box" for p in frames[0].prompts.values())


def test_random_prompts_are_reproducible(synthetic_coco: SyntheticCoco, tmp_path: Path) -> None:
    def prompts(out: Path, seed: int) -> dict[int, Any]:
        coco_to_bag(
            synthetic_coco.annotations,
            synthetic_coco.images,
            out,
            prompt="random",
            seed=seed,
            progress=False,
        )
        _, frames, _ = read_dataset(out, images=False)
        return {k: v for f in frames for k, v in f.prompts.items()}

    a, b, c = prompts(tmp_path / "a", 1), prompts(tmp_path / "b", 1), prompts(tmp_path / "c", 2)
    assert a == b
    assert a != c


def test_images_false_skips_the_image_topic(synthetic_coco: SyntheticCoco, tmp_path: Path) -> None:
    out = tmp_path / "bag"
    coco_to_bag(synthetic_coco.annotations, synthetic_coco.images, out, progress=False)
    _, frames, stats = read_dataset(out, images=False)
    assert len(frames) == 3
    assert all(f.rgb is None and f.complete for f in frames)
    assert stats.frames_without_image == 0


@pytest.fixture(scope="module")
def sample_bags(
    coco_sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, Any]]:
    root = tmp_path_factory.mktemp("sample_bags")
    result = {}
    for name, storage, compressed in (("mcap", "mcap", False), ("sqlite3-jpeg", "sqlite3", True)):
        out = root / name
        report = coco_to_bag(
            coco_sample / "annotations.json",
            coco_sample / "images",
            out,
            storage=storage,
            compressed=compressed,
            progress=False,
        )
        result[name] = (out, report)
    return result


def test_real_sample_round_trip_mcap(coco_sample: Path, sample_bags: dict[str, Any]) -> None:
    out, report = sample_bags["mcap"]
    assert report.is_consistent()
    assert report.instances_written == 283
    assert report.instance_skips == {InstanceSkip.CROWD: 4}
    assert report.images_written + report.image_skips[ImageSkip.NO_ANNOTATIONS] == 31
    info, frames, stats = read_dataset(out)
    assert info is not None
    assert stats.incomplete_frames == 0
    assert len(frames) == report.images_written
    checked = _check_frames_against_coco(
        frames, coco_sample / "annotations.json", coco_sample / "images", exact_pixels=True
    )
    assert checked == 283
    assert sum(len(f["objects"]) for f in info.raw["frames"]) == 283


def test_real_sample_round_trip_sqlite3_compressed(
    coco_sample: Path, sample_bags: dict[str, Any]
) -> None:
    out, report = sample_bags["sqlite3-jpeg"]
    assert report.instances_written == 283
    info, frames, _ = read_dataset(out)
    assert info is not None
    checked = _check_frames_against_coco(
        frames, coco_sample / "annotations.json", coco_sample / "images", exact_pixels=False
    )
    assert checked == 283
    # The JPEGs are the source files, byte for byte.
    names = {f["stamp_ns"]: f["file_name"] for f in info.raw["frames"]}
    with BagReader(out) as bag:
        for _, msg in bag.decoded([TOPIC_COMPRESSED_IMAGE]):
            source = (coco_sample / "images" / names[stamp_ns(msg.header)]).read_bytes()
            assert bytes(msg.data) == source
    # ... and decode to the same pixels as the raw bag.
    _, raw_frames, _ = read_dataset(sample_bags["mcap"][0])
    for a, b in zip(frames, raw_frames, strict=True):
        assert a.rgb is not None
        assert b.rgb is not None
        np.testing.assert_array_equal(a.rgb, b.rgb)


def test_info_json_is_plain_json(sample_bags: dict[str, Any]) -> None:
    out, _ = sample_bags["mcap"]
    with BagReader(out) as bag:
        (_, msg), *_ = list(bag.decoded([TOPIC_INFO]))
    info = json.loads(msg.data)
    assert info["format"] == "picosam2_ros/coco-bag"
    assert info["source"]["annotations"].endswith("annotations.json")
    assert len(info["source"]["annotations_sha256"]) == 64
