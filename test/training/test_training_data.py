"""Dataset reading and the bad-input errors (each a SystemExit naming the problem)."""

from __future__ import annotations

import numpy as np
import pytest
from training_fixtures import make_coco_folder, read_annotations, write_annotations

from training.data import MIN_MASK_AREA, load_coco_folders


def test_reads_polygons_and_rle_from_several_folders(tmp_path) -> None:
    a = make_coco_folder(tmp_path / "a", n_images=4, seed=0)
    b = make_coco_folder(tmp_path / "b", n_images=2, seed=1)
    data = load_coco_folders([a, b])
    assert data.counts == {"a": {"images": 4, "instances": 6}, "b": {"images": 2, "instances": 3}}
    for inst in data.instances:
        assert inst.mask.dtype == bool and inst.mask.sum() == inst.area >= MIN_MASK_AREA
        h, w = data.images[inst.image_index].shape[:2]
        full = inst.full_mask(h, w)
        assert full.sum() == inst.area
        np.testing.assert_array_equal(inst.mask_region(0, 0, w, h), full)


def test_crowd_and_tiny_masks_are_skipped(tmp_path) -> None:
    root = make_coco_folder(tmp_path / "d", n_images=2)
    data = read_annotations(root)
    data["annotations"][0]["iscrowd"] = 1
    data["annotations"][1]["segmentation"] = [[10, 10, 12, 10, 12, 12, 10, 12]]
    write_annotations(root, data)
    out = load_coco_folders([root])
    assert out.skipped["iscrowd"] == 1 and out.skipped["small"] == 1
    assert len(out) == len(data["annotations"]) - 2


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(SystemExit, match="dataset folder not found"):
        load_coco_folders([tmp_path / "nowhere"])


def test_missing_annotations(tmp_path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(SystemExit, match=r"annotations\.json not found"):
        load_coco_folders([tmp_path / "d"])


def test_corrupt_annotations(tmp_path) -> None:
    root = make_coco_folder(tmp_path / "d", n_images=1)
    (root / "annotations.json").write_text('{"images": [')
    with pytest.raises(SystemExit, match=r"annotations\.json is corrupt"):
        load_coco_folders([root])
    (root / "annotations.json").write_text('{"categories": []}')
    with pytest.raises(SystemExit, match="not COCO format"):
        load_coco_folders([root])


def test_missing_and_corrupt_images(tmp_path) -> None:
    root = make_coco_folder(tmp_path / "d", n_images=2)
    (root / "images" / "0000.png").unlink()
    with pytest.raises(SystemExit, match=r"image file .0000\.png. not found"):
        load_coco_folders([root])
    (root / "images" / "0000.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SystemExit, match="missing or corrupt"):
        load_coco_folders([root])


def test_annotation_without_mask(tmp_path) -> None:
    root = make_coco_folder(tmp_path / "d", n_images=2)
    data = read_annotations(root)
    del data["annotations"][1]["segmentation"]
    write_annotations(root, data)
    with pytest.raises(SystemExit, match="annotation 2 has no mask"):
        load_coco_folders([root])


def test_unreadable_mask(tmp_path) -> None:
    root = make_coco_folder(tmp_path / "d", n_images=1)
    data = read_annotations(root)
    data["annotations"][0]["segmentation"] = {"size": [5, 5], "counts": "zz"}
    write_annotations(root, data)
    with pytest.raises(SystemExit, match="annotation 1 has an unreadable mask"):
        load_coco_folders([root])


def test_empty_after_filtering(tmp_path) -> None:
    root = make_coco_folder(tmp_path / "d", n_images=2)
    data = read_annotations(root)
    for ann in data["annotations"]:
        ann["iscrowd"] = 1
    write_annotations(root, data)
    with pytest.raises(SystemExit, match="empty after filtering"):
        load_coco_folders([root])
    with pytest.raises(SystemExit, match="empty after filtering"):
        load_coco_folders([make_coco_folder(tmp_path / "e", n_images=1)], min_area=10**6)
