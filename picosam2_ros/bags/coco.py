"""COCO-format instance annotations -> per-image ground truth and prompts.

Reads any COCO-format instance annotation file (polygons, uncompressed and compressed
RLE) with pycocotools. Fatal problems with the file itself (not JSON, not an object,
missing or ill-typed ``images``/``annotations``/``categories`` entries, duplicate ids)
raise ``CocoFormatError``. Problems with single annotations or images are not fatal:
the annotation or image is skipped and counted under one ``InstanceSkip`` or
``ImageSkip`` reason, so every annotation of the file ends up counted exactly once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import warnings
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from picosam2_ros.bags.layout import Instance, PromptSpec
from picosam2_ros.core.geometry import Roi, mask_bbox, paper_prompt_point

#: Largest object id a ``uint32`` field can carry.
MAX_OBJECT_ID = 2**32 - 1


class CocoFormatError(ValueError):
    """The annotation file cannot be used at all (fatal)."""


class PromptMode(str, Enum):
    """How the prompt of an instance is chosen."""

    #: The PicoSAM2 paper: centre of the mask's bounding box, or the nearest mask pixel.
    CENTER = "center"
    #: A mask pixel drawn at random (seeded per instance: ``[seed, object_id]``).
    RANDOM = "random"
    #: The annotation's ``bbox`` as a box prompt.
    BOX = "box"


class InstanceSkip(str, Enum):
    """Why an annotation was not written."""

    CROWD = "crowd"
    EMPTY_MASK = "empty_mask"
    BELOW_MIN_AREA = "below_min_area"
    CATEGORY_NOT_SELECTED = "category_not_selected"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_IMAGE = "unknown_image"
    NO_SEGMENTATION = "no_segmentation"
    INVALID_SEGMENTATION = "invalid_segmentation"
    INVALID_ID = "invalid_id"
    IMAGE_SKIPPED = "image_skipped"
    NOT_PROCESSED = "not_processed"
    IMAGE_EXCLUDED = "image_excluded"


class ImageSkip(str, Enum):
    """Why an image was not written."""

    MISSING_FILE = "missing_file"
    UNREADABLE = "unreadable"
    SIZE_MISMATCH = "size_mismatch"
    NO_ANNOTATIONS = "no_annotations"
    NO_USABLE_INSTANCES = "no_usable_instances"
    EXCLUDED = "excluded"


INSTANCE_SKIP_TEXT: Mapping[InstanceSkip, str] = {
    InstanceSkip.CROWD: "crowd annotations (iscrowd = 1)",
    InstanceSkip.EMPTY_MASK: "empty masks (no pixel)",
    InstanceSkip.BELOW_MIN_AREA: "masks below --min-area",
    InstanceSkip.CATEGORY_NOT_SELECTED: "categories not selected (--categories)",
    InstanceSkip.UNKNOWN_CATEGORY: "category id not in the file's categories",
    InstanceSkip.UNKNOWN_IMAGE: "image id not in the file's images",
    InstanceSkip.NO_SEGMENTATION: "no segmentation (bbox-only annotation)",
    InstanceSkip.INVALID_SEGMENTATION: "segmentation pycocotools cannot decode at the image size",
    InstanceSkip.INVALID_ID: f"annotation id not usable as object id (1..{MAX_OBJECT_ID})",
    InstanceSkip.IMAGE_SKIPPED: "their image was skipped",
    InstanceSkip.NOT_PROCESSED: "their image was not processed (--max-images reached)",
    InstanceSkip.IMAGE_EXCLUDED: "their image was excluded (--exclude-images)",
}

IMAGE_SKIP_TEXT: Mapping[ImageSkip, str] = {
    ImageSkip.MISSING_FILE: "image file missing",
    ImageSkip.UNREADABLE: "image file unreadable",
    ImageSkip.SIZE_MISMATCH: "image size differs from the annotation's width/height",
    ImageSkip.NO_ANNOTATIONS: "no annotations",
    ImageSkip.NO_USABLE_INSTANCES: "annotations, but none usable",
    ImageSkip.EXCLUDED: "excluded (--exclude-images)",
}


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    supercategory: str


@dataclass(frozen=True)
class ImageRecord:
    id: int
    file_name: str
    width: int
    height: int


@dataclass
class LoadedImage:
    """An image file decoded as RGB, plus a JPEG of exactly those pixels' source."""

    rgb: np.ndarray
    #: The source file's bytes when it is a JPEG that decodes to ``rgb``, else None.
    jpeg: bytes | None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_list(data: Mapping[str, Any], key: str, path: Path) -> list[Any]:
    if key not in data:
        raise CocoFormatError(f"{path}: no '{key}' list; this is not a COCO instances file")
    value = data[key]
    if not isinstance(value, list):
        raise CocoFormatError(f"{path}: '{key}' must be a list, got {type(value).__name__}")
    return value


def _entry_error(path: Path, key: str, index: int, what: str) -> CocoFormatError:
    return CocoFormatError(f"{path}: {key}[{index}] {what}")


def _parse_images(path: Path, entries: list[Any]) -> dict[int, ImageRecord]:
    images: dict[int, ImageRecord] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _entry_error(path, "images", i, "is not an object")
        for key in ("id", "width", "height"):
            if not _is_int(entry.get(key)):
                raise _entry_error(path, "images", i, f"needs an integer '{key}'")
        if not isinstance(entry.get("file_name"), str) or not entry["file_name"]:
            raise _entry_error(path, "images", i, "needs a non-empty string 'file_name'")
        if entry["width"] <= 0 or entry["height"] <= 0:
            raise _entry_error(path, "images", i, "has a non-positive width or height")
        if entry["id"] in images:
            raise _entry_error(path, "images", i, f"repeats image id {entry['id']}")
        images[entry["id"]] = ImageRecord(
            entry["id"], entry["file_name"], entry["width"], entry["height"]
        )
    return images


def _parse_categories(path: Path, entries: list[Any]) -> dict[int, Category]:
    categories: dict[int, Category] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _entry_error(path, "categories", i, "is not an object")
        if not _is_int(entry.get("id")):
            raise _entry_error(path, "categories", i, "needs an integer 'id'")
        if not isinstance(entry.get("name"), str):
            raise _entry_error(path, "categories", i, "needs a string 'name'")
        if entry["id"] in categories:
            raise _entry_error(path, "categories", i, f"repeats category id {entry['id']}")
        supercategory = entry.get("supercategory")
        categories[entry["id"]] = Category(
            entry["id"], entry["name"], supercategory if isinstance(supercategory, str) else ""
        )
    return categories


def _check_annotations(path: Path, entries: list[Any]) -> None:
    seen: set[int] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _entry_error(path, "annotations", i, "is not an object")
        for key in ("id", "image_id", "category_id"):
            if not _is_int(entry.get(key)):
                raise _entry_error(path, "annotations", i, f"needs an integer '{key}'")
        if entry["id"] in seen:
            raise _entry_error(path, "annotations", i, f"repeats annotation id {entry['id']}")
        seen.add(entry["id"])


def read_json_file(path: Path, what: str, error: type[Exception]) -> tuple[Any, str]:
    """A JSON file's content and its SHA-256 (which reports record, so a figure names the
    exact file it came from). Raises FileNotFoundError naming ``what``, or ``error`` when
    the file is not JSON."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON: {exc}") from None
    return data, hashlib.sha256(raw).hexdigest()


class CocoDataset:
    """A COCO-format instance annotation file, validated and indexed."""

    def __init__(self, path: Path, data: dict[str, Any], sha256: str = "") -> None:
        self.path = path
        #: SHA-256 of the file's bytes (empty when built from data in memory).
        self.sha256 = sha256
        self.images: dict[int, ImageRecord] = _parse_images(
            path, _require_list(data, "images", path)
        )
        annotations = _require_list(data, "annotations", path)
        _check_annotations(path, annotations)
        self.categories: dict[int, Category] = _parse_categories(
            path, _require_list(data, "categories", path)
        )
        self.annotations: list[dict[str, Any]] = annotations
        self.by_image: dict[int, list[dict[str, Any]]] = {i: [] for i in self.images}
        #: Annotations whose image id is not among the images.
        self.orphans: list[dict[str, Any]] = []
        for ann in annotations:
            self.by_image.get(ann["image_id"], self.orphans).append(ann)
        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()

    @classmethod
    def load(cls, path: Path | str) -> CocoDataset:
        """Read and validate an annotation file.

        Raises:
            FileNotFoundError: the file does not exist.
            CocoFormatError: the file is not a usable COCO instances file.
        """
        path = Path(path)
        data, sha256 = read_json_file(path, "annotation file", CocoFormatError)
        if not isinstance(data, dict):
            raise CocoFormatError(f"{path}: the top level must be a JSON object")
        return cls(path, data, sha256)

    def image_ids(self) -> list[int]:
        """All image ids, ascending."""
        return sorted(self.images)

    def category_ids(self, names: Iterable[str] | None) -> set[int]:
        """Ids of the categories named; all ids for None.

        Raises:
            CocoFormatError: a name is not a category of the file.
        """
        if names is None:
            return set(self.categories)
        by_name: dict[str, set[int]] = {}
        for cat in self.categories.values():
            by_name.setdefault(cat.name, set()).add(cat.id)
        unknown = [n for n in names if n not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name)) or "(none)"
            raise CocoFormatError(
                f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(map(repr, unknown))}; the file has: {known}"
            )
        return set().union(*(by_name[n] for n in names))

    def decode(self, ann: Mapping[str, Any], image: ImageRecord) -> dict[str, Any] | None:
        """The annotation's segmentation as an RLE at the image's size; None when
        pycocotools cannot make one."""
        segm = ann["segmentation"]
        h, w = image.height, image.width
        try:
            if isinstance(segm, list):
                if not segm:
                    return None
                rles = mask_utils.frPyObjects(segm, h, w)
                rle: dict[str, Any] = mask_utils.merge(rles)
            elif isinstance(segm, dict):
                size = segm.get("size")
                if not isinstance(size, list) or [int(v) for v in size] != [h, w]:
                    return None
                if isinstance(segm.get("counts"), list):
                    rle = mask_utils.frPyObjects(segm, h, w)
                else:
                    counts = segm["counts"]
                    if isinstance(counts, str):
                        counts = counts.encode("ascii")
                    rle = {"size": [h, w], "counts": counts}
            else:
                return None
            mask_utils.area(rle)
        except (TypeError, ValueError, KeyError, IndexError, UnicodeError, OverflowError):
            return None
        return rle

    def instances(
        self,
        image: ImageRecord,
        *,
        category_ids: Collection[int],
        min_area: int = 0,
        prompt: PromptMode = PromptMode.CENTER,
        seed: int = 0,
        skipped: Counter[InstanceSkip] | None = None,
    ) -> list[Instance]:
        """The usable instances of ``image``, ascending annotation id.

        Every annotation of the image that is not returned is counted in ``skipped``.
        """
        counts: Counter[InstanceSkip] = skipped if skipped is not None else Counter()
        result: list[Instance] = []
        for ann in sorted(self.by_image.get(image.id, []), key=lambda a: int(a["id"])):
            reason, instance = self._instance(ann, image, category_ids, min_area, prompt, seed)
            if reason is not None:
                counts[reason] += 1
            elif instance is not None:
                result.append(instance)
        return result

    def _instance(
        self,
        ann: Mapping[str, Any],
        image: ImageRecord,
        category_ids: Collection[int],
        min_area: int,
        prompt: PromptMode,
        seed: int,
    ) -> tuple[InstanceSkip | None, Instance | None]:
        if ann.get("iscrowd", 0):
            return InstanceSkip.CROWD, None
        if ann["category_id"] not in self.categories:
            return InstanceSkip.UNKNOWN_CATEGORY, None
        if ann["category_id"] not in category_ids:
            return InstanceSkip.CATEGORY_NOT_SELECTED, None
        if not 1 <= ann["id"] <= MAX_OBJECT_ID:
            return InstanceSkip.INVALID_ID, None
        if ann.get("segmentation") is None:
            return InstanceSkip.NO_SEGMENTATION, None
        rle = self.decode(ann, image)
        if rle is None:
            return InstanceSkip.INVALID_SEGMENTATION, None
        area = int(mask_utils.area(rle))
        if area == 0:
            return InstanceSkip.EMPTY_MASK, None
        if area < min_area:
            return InstanceSkip.BELOW_MIN_AREA, None
        mask = decode_rle(rle)
        bbox = mask_bbox(mask)
        if bbox is None:  # pragma: no cover - area > 0 above
            return InstanceSkip.EMPTY_MASK, None
        spec = make_prompt(
            mask, prompt, object_id=ann["id"], seed=seed, bbox=ann.get("bbox"), roi=bbox
        )
        return None, Instance(ann["id"], ann["category_id"], mask, bbox, spec, area)


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """An RLE as a C-contiguous boolean (height, width) mask.

    pycocotools 2.0.11 under numpy 2 warns on every decode (a ``copy=False`` inside
    its extension); the warning says nothing about the result and is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        decoded = mask_utils.decode(rle)
    return np.ascontiguousarray(decoded, dtype=bool)


def make_prompt(
    mask: np.ndarray,
    mode: PromptMode,
    *,
    object_id: int,
    seed: int = 0,
    bbox: object = None,
    roi: Roi | None = None,
) -> PromptSpec:
    """The prompt for one instance (``mask`` must not be empty).

    ``bbox`` is the annotation's COCO ``[x, y, w, h]``; for ``PromptMode.BOX`` the mask's
    bounding box is used when it is absent or invalid. ``roi``: the mask's tight
    bounding box when already known (the point prompts are searched inside it only,
    which gives the same points as on the full mask, faster).
    """
    if roi is None:
        roi = mask_bbox(mask)
    if roi is None:
        raise ValueError("empty mask has no prompt")
    if mode is PromptMode.CENTER:
        point = paper_prompt_point(mask[roi.slices])
        if point is None:  # pragma: no cover - roi is the bbox of a non-empty mask
            raise ValueError("empty mask has no prompt")
        return PromptSpec(point=(float(roi.x + point[0]), float(roi.y + point[1])))
    if mode is PromptMode.RANDOM:
        # Row-major order inside the box is the full frame's order: same pixel as
        # drawing from np.nonzero(mask).
        ys, xs = np.nonzero(mask[roi.slices])
        k = int(np.random.default_rng([seed, object_id]).integers(xs.size))
        return PromptSpec(point=(float(roi.x + xs[k]), float(roi.y + ys[k])))
    if (
        isinstance(bbox, (list, tuple))
        and len(bbox) == 4
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)
        and bbox[2] >= 0
        and bbox[3] >= 0
    ):
        x, y, w, h = (float(v) for v in bbox)
        return PromptSpec(box=(x, y, x + w, y + h))
    return PromptSpec(
        box=(float(roi.x), float(roi.y), float(roi.x + roi.width), float(roi.y + roi.height))
    )


def _is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def load_image(path: Path, width: int, height: int) -> LoadedImage | ImageSkip:
    """Decode an image file as RGB at the annotated size, or say why it cannot be used.

    OpenCV applies a JPEG's EXIF orientation; when the oriented image does not have the
    annotated size but the stored one does, the stored orientation is used (COCO
    annotates stored pixels) and the JPEG is not passed through.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ImageSkip.MISSING_FILE
    except OSError:
        return ImageSkip.UNREADABLE
    buf = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        return ImageSkip.UNREADABLE
    passthrough = _is_jpeg(data)
    if bgr.shape[:2] != (height, width):
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        passthrough = False
        if bgr is None or bgr.shape[:2] != (height, width):
            return ImageSkip.SIZE_MISMATCH
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return LoadedImage(rgb=np.ascontiguousarray(rgb), jpeg=data if passthrough else None)
