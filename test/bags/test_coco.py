"""COCO-format annotations -> instances and prompts (no bag involved)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from picosam2_ros.bags.coco import (
    CocoDataset,
    CocoFormatError,
    ImageSkip,
    InstanceSkip,
    LoadedImage,
    PromptMode,
    load_image,
    make_prompt,
)
from picosam2_ros.core.geometry import mask_bbox, paper_prompt_point

from .conftest import SyntheticCoco

# pycocotools' annToMask, the reference here, warns on every decode under numpy 2.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _reference(path: Path) -> COCO:
    return COCO(str(path))


def _all_instances(dataset: CocoDataset, **kwargs: Any) -> tuple[dict[int, Any], Counter[Any]]:
    skipped: Counter[InstanceSkip] = Counter()
    found = {}
    category_ids = kwargs.pop("category_ids", None) or dataset.category_ids(None)
    for image_id in dataset.image_ids():
        for inst in dataset.instances(
            dataset.images[image_id],
            category_ids=category_ids,
            skipped=skipped,
            **kwargs,
        ):
            found[inst.object_id] = inst
    return found, skipped


def test_instances_equal_pycocotools_masks_for_polygons_and_rle(
    synthetic_coco: SyntheticCoco,
) -> None:
    dataset = CocoDataset.load(synthetic_coco.annotations)
    reference = _reference(synthetic_coco.annotations)
    found, _ = _all_instances(dataset)
    # Images 4-6 have usable instances too (their files are the problem, not ours here).
    assert set(found) == set(synthetic_coco.written_ids) | {41, 51, 61}
    for object_id, inst in found.items():
        expected = reference.annToMask(reference.anns[object_id]).astype(bool)
        np.testing.assert_array_equal(inst.mask, expected, err_msg=f"object {object_id}")
        assert inst.area == int(expected.sum())
        assert inst.bbox == mask_bbox(expected)
        assert inst.category_id == reference.anns[object_id]["category_id"]


def test_skip_reasons_are_counted(synthetic_coco: SyntheticCoco) -> None:
    dataset = CocoDataset.load(synthetic_coco.annotations)
    _, skipped = _all_instances(dataset)
    assert skipped == Counter(
        {
            InstanceSkip.CROWD: 1,
            InstanceSkip.EMPTY_MASK: 2,
            InstanceSkip.NO_SEGMENTATION: 1,
            InstanceSkip.UNKNOWN_CATEGORY: 1,
            InstanceSkip.INVALID_ID: 1,
        }
    )
    assert [a["id"] for a in dataset.orphans] == [81]


def test_min_area_and_category_filter(synthetic_coco: SyntheticCoco) -> None:
    dataset = CocoDataset.load(synthetic_coco.annotations)
    found, skipped = _all_instances(dataset, min_area=20)
    assert 15 not in found
    assert skipped[InstanceSkip.BELOW_MIN_AREA] == 1
    found, skipped = _all_instances(
        dataset, category_ids=dataset.category_ids(["traffic light", "disc"])
    )
    assert set(found) == {12, 13, 21, 71}
    # 11, 15, 41, 51, 61 (square) and the empty/bbox-only squares 22, 23, 24 and the
    # invalid id 0 (disc, but checked after the category) are out.
    assert skipped[InstanceSkip.CATEGORY_NOT_SELECTED] == 8
    with pytest.raises(CocoFormatError, match="unknown category 'triangle'"):
        dataset.category_ids(["triangle"])


def test_center_prompt_is_the_paper_protocol(synthetic_coco: SyntheticCoco) -> None:
    dataset = CocoDataset.load(synthetic_coco.annotations)
    found, _ = _all_instances(dataset)
    ring = found[13]
    cx = (ring.bbox.x + ring.bbox.x + ring.bbox.width - 1) // 2
    cy = (ring.bbox.y + ring.bbox.y + ring.bbox.height - 1) // 2
    assert not ring.mask[cy, cx], "the ring's box centre must be off the mask"
    for inst in found.values():
        point = paper_prompt_point(inst.mask)
        assert point is not None
        assert inst.prompt.point == (float(point[0]), float(point[1]))
        assert inst.mask[point[1], point[0]]


def test_random_prompt_is_seeded_and_on_the_mask(synthetic_coco: SyntheticCoco) -> None:
    dataset = CocoDataset.load(synthetic_coco.annotations)
    first, _ = _all_instances(dataset, prompt=PromptMode.RANDOM, seed=3)
    again, _ = _all_instances(dataset, prompt=PromptMode.RANDOM, seed=3)
    other, _ = _all_instances(dataset, prompt=PromptMode.RANDOM, seed=4)
    assert {k: v.prompt for k, v in first.items()} == {k: v.prompt for k, v in again.items()}
    assert {k: v.prompt for k, v in first.items()} != {k: v.prompt for k, v in other.items()}
    for inst in first.values():
        assert inst.prompt.point is not None
        x, y = inst.prompt.point
        assert inst.mask[int(y), int(x)]
        # the documented draw: numpy.random.default_rng([seed, object_id]) over
        # np.nonzero(full-frame mask)
        ys, xs = np.nonzero(inst.mask)
        k = int(np.random.default_rng([3, inst.object_id]).integers(xs.size))
        assert inst.prompt.point == (float(xs[k]), float(ys[k]))


def test_box_prompt_is_the_annotation_bbox(synthetic_coco: SyntheticCoco) -> None:
    dataset = CocoDataset.load(synthetic_coco.annotations)
    found, _ = _all_instances(dataset, prompt=PromptMode.BOX)
    ann = synthetic_coco.annotation(21)
    x, y, w, h = ann["bbox"]
    assert found[21].prompt.box == (x, y, x + w, y + h)
    assert found[21].prompt.point is None
    # Without a bbox in the annotation, the mask's box (continuous coordinates).
    mask = found[41].mask
    spec = make_prompt(mask, PromptMode.BOX, object_id=41, bbox=None)
    roi = mask_bbox(mask)
    assert roi is not None
    assert spec.box == (roi.x, roi.y, roi.x + roi.width, roi.y + roi.height)


def test_load_image_reasons(synthetic_coco: SyntheticCoco) -> None:
    images = synthetic_coco.images
    png = load_image(images / "a.png", 64, 48)
    assert isinstance(png, LoadedImage)
    bgr = cv2.imread(str(images / "a.png"))
    assert bgr is not None
    np.testing.assert_array_equal(png.rgb, bgr[:, :, ::-1])
    assert png.jpeg is None
    jpg = load_image(images / "b.jpg", 80, 60)
    assert isinstance(jpg, LoadedImage)
    assert jpg.jpeg == (images / "b.jpg").read_bytes()
    assert load_image(images / "missing.png", 20, 20) is ImageSkip.MISSING_FILE
    assert load_image(images / "broken.png", 20, 20) is ImageSkip.UNREADABLE
    assert load_image(images / "wrong.png", 64, 48) is ImageSkip.SIZE_MISMATCH


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "top level must be a JSON object"),
        ('{"images": [], "categories": []}', "no 'annotations' list"),
        ('{"images": {}, "annotations": [], "categories": []}', "'images' must be a list"),
        (
            '{"images": [{"id": 1, "file_name": "a", "width": 2}], '
            '"annotations": [], "categories": []}',
            r"images\[0\] needs an integer 'height'",
        ),
        (
            '{"images": [], "categories": [], "annotations": '
            '[{"id": 1, "image_id": 1, "category_id": 1}, '
            '{"id": 1, "image_id": 1, "category_id": 1}]}',
            "repeats annotation id 1",
        ),
        (
            '{"images": [], "annotations": [], "categories": [{"id": "x", "name": "a"}]}',
            r"categories\[0\] needs an integer 'id'",
        ),
    ],
)
def test_malformed_files_are_fatal(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CocoFormatError, match=message):
        CocoDataset.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        CocoDataset.load(tmp_path / "nope.json")


def test_invalid_segmentations_are_skipped_not_fatal(tmp_path: Path) -> None:
    data = {
        "images": [{"id": 1, "file_name": "x.png", "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            # RLE of another size than the image
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": {"size": [5, 5], "counts": [25]},
            },
            # neither a list nor a dict
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": "oops"},
            # empty polygon list
            {"id": 3, "image_id": 1, "category_id": 1, "segmentation": []},
            {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 8, 1, 8, 8]]},
        ],
    }
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    dataset = CocoDataset.load(path)
    skipped: Counter[InstanceSkip] = Counter()
    found = dataset.instances(dataset.images[1], category_ids={1}, skipped=skipped)
    assert [i.object_id for i in found] == [4]
    assert skipped == Counter({InstanceSkip.INVALID_SEGMENTATION: 3})


def test_real_sample_instances_match_pycocotools(coco_sample: Path) -> None:
    dataset = CocoDataset.load(coco_sample / "annotations.json")
    reference = _reference(coco_sample / "annotations.json")
    found, skipped = _all_instances(dataset)
    assert len(found) == 283
    assert skipped == Counter({InstanceSkip.CROWD: 4})
    for object_id, inst in found.items():
        expected = reference.annToMask(reference.anns[object_id]).astype(bool)
        assert np.array_equal(inst.mask, expected), object_id
