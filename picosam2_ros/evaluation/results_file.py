"""COCO-style result files scored on the instances of a COCO-format data set
(``picosam2-evaluate --results``), with the metrics and report of every other path.

A result file is a JSON list with one object per predicted instance::

    {"image_id": int, "segmentation": RLE or polygons, "score": float (optional),
     "annotation_id": int (optional), "category_id": ... (ignored)}

Which instance a result belongs to: the annotation named by ``annotation_id`` when it
has one; otherwise the k-th result of an image is that image's k-th non-crowd
annotation in file order, the order in which the PicoSAM2 authors wrote their
predictions (their files carry ``category_id`` 1 for every instance, so categories come
from the data set).

Where its mask lies: a segmentation of the image's size (or polygons) is a full-frame
mask; an RLE of any other size is a mask over the instance's paper crop (``core.geometry.
paper_point_crop`` around the paper's prompt point), predicted on that crop resized to
the RLE's size (the authors' 96x96). Such a mask is resized back onto the crop (as the
segmenter pastes its masks) for the full-frame IoU; its paper-crop IoU is measured at
its own resolution, against the ground truth cut to the crop and resized (nearest) to
it, as the paper's evaluation and ``training/evaluate.py`` measure it
(``evaluation.protocol.resampled_crop_iou``).

Results that cannot be placed are counted, never dropped silently: for images not in
the data set, for excluded images, beyond an image's annotations, for annotations the
data set cannot use (crowd, undecodable), and second results for one annotation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from picosam2_ros.bags.coco import (
    CocoDataset,
    ImageRecord,
    LoadedImage,
    decode_rle,
    load_image,
    read_json_file,
)
from picosam2_ros.bags.layout import Instance, frame_stamp_ns
from picosam2_ros.bags.reader import CategoryInfo, DatasetInfo, ObjectInfo
from picosam2_ros.core.postprocess import resize_mask
from picosam2_ros.evaluation.evaluator import GroundTruthInstance, Prediction
from picosam2_ros.evaluation.masks import CroppedMask
from picosam2_ros.evaluation.protocol import evaluation_crop
from picosam2_ros.evaluation.session import EvaluationSession


class ResultsFileError(ValueError):
    """The result file cannot be used at all; the message names the entry and why."""


@dataclass(frozen=True)
class Result:
    """One entry of a result file, decoded."""

    #: Boolean mask: the full frame, or the crop at the resolution it was predicted at.
    mask: np.ndarray
    #: True when ``mask`` covers the full frame; False for a crop-sized mask.
    full_frame: bool
    score: float


@dataclass
class ResultsAccounting:
    """Where every entry of the result file went."""

    path: str
    sha256: str
    entries: int = 0
    matched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "sha256": self.sha256,
            "entries": self.entries,
            "matched": self.matched,
            "not_scored": dict(sorted(self.skipped.items())),
        }

    def summary(self) -> str:
        lines = [f"results: {self.entries} in {self.path}, {self.matched} matched to an instance"]
        lines += [f"  not scored {n}: {why}" for why, n in sorted(self.skipped.items())]
        return "\n".join(lines)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_results(path: Path | str) -> tuple[list[dict[str, Any]], str]:
    """The entries of a result file and the file's SHA-256.

    Raises FileNotFoundError, or ResultsFileError when it is not a JSON list of objects
    with an integer ``image_id`` and a ``segmentation``.
    """
    path = Path(path)
    data, sha256 = read_json_file(path, "result file", ResultsFileError)
    if not isinstance(data, list):
        raise ResultsFileError(f"{path}: a result file is a JSON list of results")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ResultsFileError(f"{path}: result [{i}] is not an object")
        if not _is_int(entry.get("image_id")):
            raise ResultsFileError(f"{path}: result [{i}] needs an integer 'image_id'")
        if "segmentation" not in entry:
            raise ResultsFileError(f"{path}: result [{i}] has no 'segmentation'")
        if "annotation_id" in entry and not _is_int(entry["annotation_id"]):
            raise ResultsFileError(f"{path}: result [{i}] has a non-integer 'annotation_id'")
    return data, sha256


def decode_result(
    dataset: CocoDataset, index: int, entry: Mapping[str, Any], image: ImageRecord
) -> Result:
    """One entry as a mask (full frame, or crop-sized). Raises ResultsFileError when
    pycocotools cannot decode its segmentation."""
    segm = entry["segmentation"]
    size = segm.get("size") if isinstance(segm, dict) else None
    target = image
    if isinstance(size, list) and len(size) == 2 and list(size) != [image.height, image.width]:
        if not all(_is_int(v) for v in size):
            raise ResultsFileError(
                f"result [{index}] (image {image.id}): segmentation size must be "
                f"[height, width] integers, got {size!r}"
            )
        target = ImageRecord(image.id, image.file_name, size[1], size[0])
    full_frame = target is image
    rle = None
    if target.width > 0 and target.height > 0:
        rle = dataset.decode(entry, target)
    if rle is None:
        raise ResultsFileError(
            f"result [{index}] (image {image.id}): segmentation is not an RLE or polygon "
            f"list pycocotools can decode"
        )
    score = entry.get("score", 0.0)
    return Result(
        mask=decode_rle(rle),
        full_frame=full_frame,
        score=float(score) if isinstance(score, int | float) else 0.0,
    )


def _prediction(result: Result, instance: Instance, image: ImageRecord) -> Prediction:
    if result.full_frame:
        return Prediction(
            instance.object_id, CroppedMask.from_frame(result.mask), score=result.score
        )
    crop = evaluation_crop(instance.prompt, image.width, image.height)
    on_crop = resize_mask(result.mask, crop.width, crop.height)
    return Prediction(
        instance.object_id, CroppedMask(crop, on_crop), score=result.score, crop_mask=result.mask
    )


def score_results(
    dataset: CocoDataset,
    results: list[dict[str, Any]],
    session: EvaluationSession,
    accounting: ResultsAccounting,
    exclude_image_ids: Collection[int] = (),
    images_dir: Path | None = None,
) -> None:
    """Score ``results`` on ``dataset``'s instances into ``session``; count every
    entry in ``accounting``.

    Images are taken in ascending id (images without usable instances and excluded
    images left out) and stamped ``frame_stamp_ns(k)`` like the k-th image of a bag
    ``picosam2-make-bag`` writes from the same file and exclusions, so the report's
    (stamp, object id) pairs match a bag run's. ``images_dir``: the data set's image
    folder, read only for the overlay tiles (grey without it). Raises ResultsFileError
    for an entry that cannot be decoded.
    """
    excluded = frozenset(exclude_image_ids)
    accounting.entries = len(results)
    by_image: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for i, entry in enumerate(results):
        image_id = int(entry["image_id"])
        if image_id in excluded:
            accounting.skipped["for an excluded image (--exclude-images)"] += 1
        elif image_id not in dataset.images:
            accounting.skipped["for an image not in the data set"] += 1
        else:
            by_image[image_id].append((i, entry))
    categories = {
        c.id: CategoryInfo(c.id, c.name, c.supercategory) for c in dataset.categories.values()
    }
    objects: dict[int, ObjectInfo] = {}
    stamps: dict[int, int] = {}
    every_category = set(dataset.categories)
    for image_id in dataset.image_ids():
        if image_id in excluded:
            continue
        image = dataset.images[image_id]
        instances = {
            inst.object_id: inst for inst in dataset.instances(image, category_ids=every_category)
        }
        entries = by_image.get(image_id, [])
        if not instances:
            if entries:
                accounting.skipped["for an image without usable annotations"] += len(entries)
            continue
        stamp = frame_stamp_ns(len(stamps))
        stamps[stamp] = image_id
        session.evaluator.add_ground_truth(
            stamp,
            image.width,
            image.height,
            [
                GroundTruthInstance(
                    inst.object_id,
                    CroppedMask(inst.bbox, inst.mask[inst.bbox.slices]),
                    inst.prompt,
                    inst.category_id,
                    inst.area,
                )
                for inst in instances.values()
            ],
        )
        for inst in instances.values():
            objects[inst.object_id] = ObjectInfo(
                inst.object_id, inst.category_id, inst.area, image_id, stamp
            )
        in_file_order = [
            int(a["id"]) for a in dataset.by_image[image_id] if not a.get("iscrowd", 0)
        ]
        predictions: dict[int, Prediction] = {}
        position = 0
        for i, entry in entries:
            if "annotation_id" in entry:
                annotation_id = int(entry["annotation_id"])
            elif position < len(in_file_order):
                annotation_id = in_file_order[position]
                position += 1
            else:
                accounting.skipped["beyond the image's non-crowd annotations"] += 1
                continue
            instance = instances.get(annotation_id)
            if instance is None:
                accounting.skipped["for an annotation the data set cannot score"] += 1
                continue
            if annotation_id in predictions:
                accounting.skipped["a second result for one annotation"] += 1
                continue
            result = decode_result(dataset, i, entry, image)
            predictions[annotation_id] = _prediction(result, instance, image)
        if not entries:
            continue  # its instances count as missing (a frame without result)
        accounting.matched += len(predictions)
        frame = None
        if images_dir is not None and session.overlays is not None:
            loaded = load_image(images_dir / image.file_name, image.width, image.height)
            frame = loaded.rgb if isinstance(loaded, LoadedImage) else None
        session.evaluator.add_result(
            stamp, image.width, image.height, list(predictions.values()), image=frame
        )
    session.evaluator.set_dataset_info(
        DatasetInfo(
            raw={"source": {"annotations": str(dataset.path)}},
            categories=categories,
            objects=objects,
            image_ids=stamps,
        )
    )
