"""Generated COCO-format data sets: images of flat-coloured asymmetric objects with their
instance masks (RLE), written the way any COCO folder is laid out (annotations.json +
images/). Used by the demo and tests; everything in them is synthetic, made here."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from picosam2_ros.testing.scenes import random_scene

CATEGORIES = ({"id": 1, "name": "rect"}, {"id": 2, "name": "ellipse"}, {"id": 3, "name": "L"})


def write_scene_dataset(
    root: Path, images: int, width: int = 640, height: int = 480, objects: int = 3, seed: int = 0
) -> Path:
    """Write ``images`` generated scenes under ``root``; returns the annotation file."""
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    ids = {c["name"]: c["id"] for c in CATEGORIES}
    coco: dict[str, list[dict[str, object]]] = {
        "images": [],
        "annotations": [],
        "categories": [dict(c) for c in CATEGORIES],
    }
    ann_id = 1
    for index in range(images):
        rgb, scene_objects, masks = random_scene(width, height, objects, seed=seed + index)
        name = f"scene_{index:04d}.png"
        cv2.imwrite(str(image_dir / name), np.ascontiguousarray(rgb[..., ::-1]))
        coco["images"].append(
            {"id": index + 1, "file_name": name, "width": width, "height": height}
        )
        for obj, mask in zip(scene_objects, masks, strict=True):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            rle["counts"] = rle["counts"].decode("ascii")
            coco["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": index + 1,
                    "category_id": ids[obj.shape],
                    "segmentation": rle,
                    "area": float(mask.sum()),
                    "bbox": [x, y, w, h],
                    "iscrowd": 0,
                }
            )
            ann_id += 1
    path = root / "annotations.json"
    path.write_text(json.dumps(coco))
    return path
