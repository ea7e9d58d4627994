"""COCO-format instance data: any number of folders, each with ``annotations.json`` and
``images/`` (or image paths relative to the folder), read through pycocotools.

Filtering (documented in the model card):

- ``iscrowd=1`` annotations are never centre objects.
- Masks smaller than ``min_area`` pixels (default ``MIN_MASK_AREA``) are skipped.
- Images marked ``"labels_complete": false`` keep only their annotated objects as centre
  objects; because every training target is the mask of ONE instance, unlabelled pixels
  of such an image are never used as another object's background label.

Every problem with the input (missing folder, missing or corrupt annotations or images,
annotations without masks, nothing left after filtering) raises SystemExit with a
message naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

#: Smallest mask (pixels) used as a training centre object.
MIN_MASK_AREA = 16
#: COCO's size classes, by mask area in pixels.
SMALL_AREA = 32 * 32
MEDIUM_AREA = 96 * 96


def size_class(area: int) -> str:
    if area < SMALL_AREA:
        return "small"
    if area < MEDIUM_AREA:
        return "medium"
    return "large"


@dataclass
class Instance:
    """One object: its mask stored inside its tight bounding box to save memory."""

    image_index: int
    ann_id: int
    category: str
    box: tuple[float, float, float, float]  # annotation bbox as (x0, y0, x1, y1)
    mask_x: int
    mask_y: int
    mask: np.ndarray  # bool, (h, w), the tight box of the mask
    area: int
    source: str

    def full_mask(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), dtype=bool)
        h, w = self.mask.shape
        out[self.mask_y : self.mask_y + h, self.mask_x : self.mask_x + w] = self.mask
        return out

    def mask_region(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """The mask over the frame rectangle [x, x+w) x [y, y+h) (bool, (h, w))."""
        out = np.zeros((h, w), dtype=bool)
        mh, mw = self.mask.shape
        x0, y0 = max(x, self.mask_x), max(y, self.mask_y)
        x1, y1 = min(x + w, self.mask_x + mw), min(y + h, self.mask_y + mh)
        if x1 > x0 and y1 > y0:
            out[y0 - y : y1 - y, x0 - x : x1 - x] = self.mask[
                y0 - self.mask_y : y1 - self.mask_y, x0 - self.mask_x : x1 - self.mask_x
            ]
        return out


@dataclass
class InstanceSet:
    images: list[np.ndarray] = field(default_factory=list)  # RGB uint8
    image_names: list[str] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instances)


def decode_segmentation(seg: object, height: int, width: int) -> np.ndarray:
    """COCO polygon(s), uncompressed or compressed RLE -> (H, W) bool mask."""
    if isinstance(seg, list):
        if not seg:
            raise ValueError("empty polygon list")
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg, dict) and "counts" in seg:
        if isinstance(seg["counts"], list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = dict(seg)
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode("ascii")
    else:
        raise ValueError(f"unsupported segmentation of type {type(seg).__name__}")
    m = mask_utils.decode(rle)
    if m.ndim == 3:
        m = m.any(axis=2)
    if m.shape != (height, width):
        raise ValueError(f"mask is {m.shape[1]}x{m.shape[0]}, image is {width}x{height}")
    return m.astype(bool)


def _read_annotations(folder: Path) -> dict:
    if not folder.is_dir():
        raise SystemExit(f"dataset folder not found: {folder}")
    ann_path = folder / "annotations.json"
    if not ann_path.is_file():
        raise SystemExit(f"dataset {folder}: annotations.json not found")
    try:
        data = json.loads(ann_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SystemExit(f"dataset {folder}: annotations.json is corrupt: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations")
    ):
        raise SystemExit(
            f"dataset {folder}: annotations.json is not COCO format "
            "(needs 'images' and 'annotations' lists)"
        )
    return data


def _image_path(folder: Path, file_name: str) -> Path:
    for cand in (folder / "images" / file_name, folder / file_name):
        if cand.is_file():
            return cand
    raise SystemExit(f"dataset {folder}: image file {file_name!r} not found")


def read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"image {path} is missing or corrupt (cannot be decoded)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_coco_folders(
    folders: list[str | Path],
    *,
    min_area: int = MIN_MASK_AREA,
    image_filter=None,
    max_images: int | None = None,
) -> InstanceSet:
    """Read every folder into one InstanceSet (images decoded into memory).

    ``image_filter(folder_name, image_record) -> bool`` selects images (e.g. a split).
    """
    out = InstanceSet()
    skipped = {"iscrowd": 0, "small": 0, "empty": 0}
    if not folders:
        raise SystemExit("no dataset folders given")
    for folder in map(Path, folders):
        data = _read_annotations(folder)
        name = folder.name
        cats = {c["id"]: c.get("name", str(c["id"])) for c in data.get("categories", [])}
        by_image: dict[int, list[dict]] = {}
        for ann in data["annotations"]:
            if not isinstance(ann, dict) or "image_id" not in ann:
                raise SystemExit(f"dataset {folder}: annotation without image_id: {ann!r:.80}")
            seg = ann.get("segmentation")
            if not seg:
                raise SystemExit(
                    f"dataset {folder}: annotation {ann.get('id')} has no mask "
                    "('segmentation' missing or empty); PicoSAM2 training needs instance masks"
                )
            by_image.setdefault(ann["image_id"], []).append(ann)
        n_images = n_inst = 0
        for rec in data["images"]:
            if image_filter is not None and not image_filter(name, rec):
                continue
            anns = by_image.get(rec.get("id"), [])
            if not anns:
                continue
            if max_images is not None and n_images >= max_images:
                break
            img = read_image(_image_path(folder, str(rec.get("file_name"))))
            h, w = img.shape[:2]
            if (rec.get("height", h), rec.get("width", w)) != (h, w):
                raise SystemExit(
                    f"dataset {folder}: image {rec.get('file_name')} is {w}x{h} but "
                    f"annotations.json says {rec.get('width')}x{rec.get('height')}"
                )
            kept = []
            for ann in anns:
                if ann.get("iscrowd", 0):
                    skipped["iscrowd"] += 1
                    continue
                try:
                    m = decode_segmentation(ann["segmentation"], h, w)
                except (ValueError, TypeError, KeyError) as exc:
                    raise SystemExit(
                        f"dataset {folder}: annotation {ann.get('id')} has an unreadable "
                        f"mask: {exc}"
                    ) from exc
                area = int(m.sum())
                if area == 0:
                    skipped["empty"] += 1
                    continue
                if area < min_area:
                    skipped["small"] += 1
                    continue
                rows = np.flatnonzero(m.any(axis=1))
                cols = np.flatnonzero(m.any(axis=0))
                y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                bx, by, bw, bh = (float(v) for v in ann.get("bbox", (x0, y0, x1 - x0, y1 - y0)))
                kept.append(
                    Instance(
                        image_index=len(out.images),
                        ann_id=int(ann.get("id", -1)),
                        category=cats.get(ann.get("category_id"), str(ann.get("category_id"))),
                        box=(bx, by, bx + bw, by + bh),
                        mask_x=int(x0),
                        mask_y=int(y0),
                        mask=np.ascontiguousarray(m[y0:y1, x0:x1]),
                        area=area,
                        source=name,
                    )
                )
            if not kept:
                continue
            out.instances.extend(kept)
            out.images.append(img)
            out.image_names.append(f"{name}/{rec.get('file_name')}")
            out.image_ids.append(int(rec.get("id", -1)))
            n_images += 1
            n_inst += len(kept)
        out.counts[name] = {"images": n_images, "instances": n_inst}
    out.skipped = skipped
    if not out.instances:
        raise SystemExit(
            f"dataset is empty after filtering ({', '.join(map(str, folders))}): no non-crowd "
            f"instance with a mask of at least {min_area} pixels (skipped: {skipped})"
        )
    return out
