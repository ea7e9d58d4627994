"""A tiny COCO-format set rendered with picosam2_ros.testing.scenes (flat, distinctly
coloured shapes, so the colour-match model's masks are exact), shared by the replay and
evaluation tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

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
    root: Path, sizes: list[tuple[int, int]], objects_per_image: list[int], seed: int = 10
) -> TinySet:
    """One PNG per (width, height) of ``sizes`` with that many objects each (scene seeds
    ``seed``, ``seed + 1``, ...); annotation ids from 101, category 1 + id % 2."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    images, annotations, object_ids = [], [], []
    next_id = 101
    for index, ((width, height), count) in enumerate(zip(sizes, objects_per_image, strict=True)):
        rgb, _, masks = random_scene(width, height, count, seed=seed + index)
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
