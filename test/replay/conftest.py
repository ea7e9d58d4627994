"""Fixtures for the replay tests: a tiny COCO-format set rendered with
picosam2_ros.testing.scenes, turned into real bags by picosam2_ros.bags, and the
colour-match model (the scenes' objects have flat, distinct colours, so the model's
mask is exact and every prompt gets a result)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from picosam2_ros.bags import coco_to_bag
from picosam2_ros.testing.models import build_colour_match_model
from picosam2_ros.testing.scenes import random_scene


@dataclass(frozen=True)
class TinySet:
    root: Path
    annotations: Path
    images: Path
    #: Annotation (object) ids per image, in image order.
    object_ids: tuple[tuple[int, ...], ...]

    @property
    def instances(self) -> int:
        return sum(len(ids) for ids in self.object_ids)


def write_tiny_coco(
    root: Path, sizes: list[tuple[int, int]], objects_per_image: list[int]
) -> TinySet:
    """One image per (width, height) of ``sizes`` with that many objects each."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    images, annotations, object_ids = [], [], []
    next_id = 101
    for index, ((width, height), count) in enumerate(zip(sizes, objects_per_image, strict=True)):
        rgb, _, masks = random_scene(width, height, count, seed=10 + index)
        name = f"img{index}.png"
        cv2.imwrite(str(images_dir / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        images.append({"id": index + 1, "file_name": name, "width": width, "height": height})
        ids = []
        for mask in masks:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            ys, xs = np.nonzero(mask)
            annotations.append(
                {
                    "id": next_id,
                    "image_id": index + 1,
                    "category_id": 1 + next_id % 2,
                    "iscrowd": 0,
                    "segmentation": {
                        "size": [int(v) for v in rle["size"]],
                        "counts": rle["counts"].decode("ascii"),
                    },
                    "bbox": [
                        int(xs.min()),
                        int(ys.min()),
                        int(np.ptp(xs)) + 1,
                        int(np.ptp(ys)) + 1,
                    ],
                }
            )
            ids.append(next_id)
            next_id += 1
        object_ids.append(tuple(ids))
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": 1, "name": "odd", "supercategory": "shape"},
            {"id": 2, "name": "even", "supercategory": "shape"},
        ],
    }
    path = root / "annotations.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return TinySet(root, path, images_dir, tuple(object_ids))


#: Five 224x176 frames with 1 to 4 objects (12 instances).
TINY_SIZES = [(224, 176)] * 5
TINY_COUNTS = [3, 1, 4, 2, 2]


@pytest.fixture(scope="package")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> TinySet:
    return write_tiny_coco(tmp_path_factory.mktemp("tiny_coco"), TINY_SIZES, TINY_COUNTS)


@pytest.fixture(scope="package")
def tiny_bag(tiny_set: TinySet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bags") / "tiny"
    coco_to_bag(tiny_set.annotations, tiny_set.images, out, progress=False)
    return out


@pytest.fixture(scope="package")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_colour_match_model(tmp_path_factory.mktemp("models") / "colour.onnx")
