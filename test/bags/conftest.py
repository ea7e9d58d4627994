"""Fixtures for the bag tests: a generated COCO-format data set and the real sample.

The generated set covers every path of the converter: polygons, uncompressed and
compressed RLE, a crowd annotation, empty masks (a degenerate polygon and an all-zero
RLE), a bbox-only annotation, an unknown category, an id that cannot be an object id,
an annotation of an unknown image, an image without annotations, and image files that
are missing, unreadable or of another size than annotated.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from picosam2_ros.bags.coco import ImageSkip, InstanceSkip

SAMPLE_ENV = "PICOSAM2_COCO_SAMPLE"
REPO = Path(__file__).resolve().parents[2]


def sample_dir() -> Path:
    """The real COCO val2017 sample (``$PICOSAM2_COCO_SAMPLE`` or ../shared/data/...)."""
    env = os.environ.get(SAMPLE_ENV)
    return Path(env) if env else REPO.parent / "shared" / "data" / "coco-val2017-sample"


@pytest.fixture(scope="session")
def coco_sample() -> Path:
    folder = sample_dir()
    if not (folder / "annotations.json").is_file() or not (folder / "images").is_dir():
        pytest.skip(
            f"real COCO sample not found at {folder} (a project-internal fixture; set "
            f"{SAMPLE_ENV} to a folder with annotations.json and images/ to run this)"
        )
    return folder


def _rle_uncompressed(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE: column-major run lengths, starting with zeros."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    counts: list[int] = []
    value, run = 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = int(pixel), 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def _rle_compressed(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@dataclass
class SyntheticCoco:
    root: Path
    annotations: Path
    images: Path
    data: dict[str, Any]
    #: Expected outcome with default options.
    written_ids: tuple[int, ...]
    instance_skips: dict[InstanceSkip, int]
    image_skips: dict[ImageSkip, int]
    written_images: tuple[int, ...]

    def annotation(self, ann_id: int) -> dict[str, Any]:
        return next(a for a in self.data["annotations"] if a["id"] == ann_id)


def write_synthetic_coco(root: Path) -> SyntheticCoco:
    """A small COCO-format set in ``root`` (annotations.json + images/)."""
    rng = np.random.default_rng(7)
    images_dir = root / "images"
    images_dir.mkdir(parents=True)

    # Image 1: 64x48 PNG with a square (polygon), a disc (uncompressed RLE), a ring whose
    # box centre is off the mask (compressed RLE), a crowd region and a tiny triangle.
    h1, w1 = 48, 64
    cv2.imwrite(str(images_dir / "a.png"), _noise(rng, h1, w1))
    disc = np.zeros((h1, w1), np.uint8)
    cv2.circle(disc, (40, 30), 9, 1, -1)
    ring = np.zeros((h1, w1), np.uint8)
    cv2.circle(ring, (20, 30), 12, 1, 3)
    crowd = np.zeros((h1, w1), np.uint8)
    crowd[0:6, 50:64] = 1
    # Image 2: 80x60 JPEG with a polygon, an empty polygon, an all-zero RLE and a
    # bbox-only annotation.
    h2, w2 = 60, 80
    cv2.imwrite(str(images_dir / "b.jpg"), _noise(rng, h2, w2), [cv2.IMWRITE_JPEG_QUALITY, 90])
    # Image 3: no annotations. 4: file missing. 5: not an image. 6: wrong size.
    cv2.imwrite(str(images_dir / "c.png"), _noise(rng, 30, 40))
    (images_dir / "broken.png").write_bytes(b"this is not an image")
    cv2.imwrite(str(images_dir / "wrong.png"), _noise(rng, 32, 32))
    # Image 7: 50x40 PNG in a subfolder, one instance of a category with a space in its
    # name, one of an unknown category, one whose id cannot be an object id.
    (images_dir / "sub").mkdir()
    cv2.imwrite(str(images_dir / "sub" / "d.png"), _noise(rng, 40, 50))

    def poly(*xy: float) -> list[list[float]]:
        return [list(xy)]

    # fmt: off
    anns = [
        {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": poly(4, 4, 20, 4, 20, 18, 4, 18), "bbox": [4, 4, 16, 14]},
        {"id": 12, "image_id": 1, "category_id": 2, "iscrowd": 0,
         "segmentation": _rle_uncompressed(disc), "bbox": [31, 21, 19, 19]},
        {"id": 13, "image_id": 1, "category_id": 3, "iscrowd": 0,
         "segmentation": _rle_compressed(ring), "bbox": [7, 17, 27, 27]},
        {"id": 14, "image_id": 1, "category_id": 1, "iscrowd": 1,
         "segmentation": _rle_uncompressed(crowd), "bbox": [50, 0, 14, 6]},
        {"id": 15, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": poly(55, 40, 59, 40, 55, 44), "bbox": [55, 40, 4, 4]},
        {"id": 21, "image_id": 2, "category_id": 2, "iscrowd": 0,
         "segmentation": poly(10, 10, 70, 12, 60, 50, 15, 45), "bbox": [10, 10, 60, 40]},
        {"id": 22, "image_id": 2, "category_id": 1, "iscrowd": 0,
         "segmentation": poly(5, 5, 5, 5, 5, 5), "bbox": [5, 5, 0, 0]},
        {"id": 23, "image_id": 2, "category_id": 1, "iscrowd": 0,
         "segmentation": _rle_uncompressed(np.zeros((h2, w2), np.uint8))},
        {"id": 24, "image_id": 2, "category_id": 1, "iscrowd": 0, "bbox": [1, 1, 5, 5]},
        {"id": 41, "image_id": 4, "category_id": 1, "iscrowd": 0,
         "segmentation": poly(2, 2, 10, 2, 10, 10)},
        {"id": 51, "image_id": 5, "category_id": 1, "iscrowd": 0,
         "segmentation": poly(2, 2, 10, 2, 10, 10)},
        {"id": 61, "image_id": 6, "category_id": 1, "iscrowd": 0,
         "segmentation": poly(2, 2, 10, 2, 10, 10)},
        {"id": 71, "image_id": 7, "category_id": 3, "iscrowd": 0,
         "segmentation": poly(20, 5, 45, 5, 45, 35, 20, 35), "bbox": [20, 5, 25, 30]},
        {"id": 72, "image_id": 7, "category_id": 99, "iscrowd": 0,
         "segmentation": poly(1, 1, 9, 1, 9, 9)},
        {"id": 0, "image_id": 7, "category_id": 2, "iscrowd": 0,
         "segmentation": poly(1, 20, 9, 20, 9, 29)},
        {"id": 81, "image_id": 999, "category_id": 1, "iscrowd": 0,
         "segmentation": poly(1, 1, 9, 1, 9, 9)},
    ]
    # fmt: on
    data: dict[str, Any] = {
        "info": {"description": "synthetic test set"},
        "images": [
            {"id": 1, "file_name": "a.png", "width": w1, "height": h1},
            {"id": 2, "file_name": "b.jpg", "width": w2, "height": h2},
            {"id": 3, "file_name": "c.png", "width": 40, "height": 30},
            {"id": 4, "file_name": "missing.png", "width": 20, "height": 20},
            {"id": 5, "file_name": "broken.png", "width": 20, "height": 20},
            {"id": 6, "file_name": "wrong.png", "width": 64, "height": 48},
            {"id": 7, "file_name": "sub/d.png", "width": 50, "height": 40},
        ],
        "categories": [
            {"id": 1, "name": "square", "supercategory": "shape"},
            {"id": 2, "name": "disc", "supercategory": "shape"},
            {"id": 3, "name": "traffic light", "supercategory": "outdoor"},
            {"id": 4, "name": "unused", "supercategory": "shape"},
        ],
        "annotations": anns,
    }
    annotations = root / "annotations.json"
    annotations.write_text(json.dumps(data), encoding="utf-8")
    return SyntheticCoco(
        root=root,
        annotations=annotations,
        images=images_dir,
        data=data,
        written_ids=(11, 12, 13, 15, 21, 71),
        instance_skips={
            InstanceSkip.CROWD: 1,
            InstanceSkip.EMPTY_MASK: 2,
            InstanceSkip.NO_SEGMENTATION: 1,
            InstanceSkip.IMAGE_SKIPPED: 3,
            InstanceSkip.UNKNOWN_CATEGORY: 1,
            InstanceSkip.INVALID_ID: 1,
            InstanceSkip.UNKNOWN_IMAGE: 1,
        },
        image_skips={
            ImageSkip.NO_ANNOTATIONS: 1,
            ImageSkip.MISSING_FILE: 1,
            ImageSkip.UNREADABLE: 1,
            ImageSkip.SIZE_MISMATCH: 1,
        },
        written_images=(1, 2, 7),
    )


@pytest.fixture
def synthetic_coco(tmp_path: Path) -> SyntheticCoco:
    return write_synthetic_coco(tmp_path / "coco")
