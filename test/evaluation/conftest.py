"""Fixtures for the evaluation tests: a tiny COCO-format set rendered with
picosam2_ros.testing.scenes (flat, distinctly coloured shapes), turned into a real bag
by picosam2_ros.bags.coco_to_bag, and the colour-match model, whose masks on those
scenes are exact (IoU 1 expected)."""

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

CATEGORIES = [
    {"id": 1, "name": "odd", "supercategory": "shape"},
    {"id": 2, "name": "even", "supercategory": "shape"},
]


@dataclass(frozen=True)
class TinySet:
    annotations: Path
    images: Path
    object_ids: tuple[tuple[int, ...], ...]

    @property
    def instances(self) -> int:
        return sum(len(ids) for ids in self.object_ids)


def write_tiny_coco(root: Path, sizes: list[tuple[int, int]], counts: list[int]) -> TinySet:
    """One PNG per (width, height) with that many objects; category 1 + id % 2."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    images, annotations, object_ids = [], [], []
    next_id = 101
    for index, ((width, height), count) in enumerate(zip(sizes, counts, strict=True)):
        rgb, _, masks = random_scene(width, height, count, seed=20 + index)
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
    path = root / "annotations.json"
    data = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    path.write_text(json.dumps(data), encoding="utf-8")
    return TinySet(path, images_dir, tuple(object_ids))


#: Four 224x176 frames, 9 instances.
TINY_SIZES = [(224, 176)] * 4
TINY_COUNTS = [3, 1, 3, 2]


@pytest.fixture(scope="package")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> TinySet:
    return write_tiny_coco(tmp_path_factory.mktemp("eval_coco"), TINY_SIZES, TINY_COUNTS)


@pytest.fixture(scope="package")
def tiny_bag(tiny_set: TinySet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_bags") / "tiny"
    coco_to_bag(tiny_set.annotations, tiny_set.images, out, progress=False)
    return out


@pytest.fixture(scope="package")
def box_bag(tiny_set: TinySet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_bags") / "box"
    coco_to_bag(tiny_set.annotations, tiny_set.images, out, prompt="box", progress=False)
    return out


@pytest.fixture(scope="package")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_colour_match_model(tmp_path_factory.mktemp("eval_models") / "colour.onnx")
