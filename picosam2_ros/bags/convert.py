"""COCO-format annotations + image folder -> a COCO-derived bag (``coco_to_bag``).

The library side of ``picosam2-make-bag``: it accounts for every image and annotation
of the file (written, skipped with a reason, or not processed after ``max_images``) and
returns that accounting as a ``ConversionReport``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from picosam2_ros.bags.coco import (
    IMAGE_SKIP_TEXT,
    INSTANCE_SKIP_TEXT,
    CocoDataset,
    ImageSkip,
    InstanceSkip,
    PromptMode,
    load_image,
)
from picosam2_ros.bags.writer import BagWriteError, DatasetBagWriter, Storage


class NothingToWriteError(RuntimeError):
    """No image of the input has a usable instance; no bag was created."""

    def __init__(self, message: str, report: ConversionReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ConversionReport:
    """What ``coco_to_bag`` wrote and what it skipped, and why."""

    out: Path
    storage: Storage
    images_in_file: int = 0
    images_written: int = 0
    images_not_processed: int = 0
    image_skips: Counter[ImageSkip] = field(default_factory=Counter)
    instances_in_file: int = 0
    instances_written: int = 0
    instance_skips: Counter[InstanceSkip] = field(default_factory=Counter)
    #: (image id, file name, reason) of images skipped for a problem with the file.
    skipped_images: list[tuple[int, str, ImageSkip]] = field(default_factory=list)
    message_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    bytes_written: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def counts_json(self) -> dict[str, Any]:
        return {
            "images": {
                "in_file": self.images_in_file,
                "written": self.images_written,
                "skipped": {k.value: v for k, v in sorted(self.image_skips.items())},
                "not_processed": self.images_not_processed,
            },
            "instances": {
                "in_file": self.instances_in_file,
                "written": self.instances_written,
                "skipped": {k.value: v for k, v in sorted(self.instance_skips.items())},
            },
        }

    def is_consistent(self) -> bool:
        """Every image and annotation is counted exactly once."""
        images = self.images_written + self.images_not_processed + sum(self.image_skips.values())
        instances = self.instances_written + sum(self.instance_skips.values())
        return images == self.images_in_file and instances == self.instances_in_file

    def summary(self) -> str:
        """A human-readable account, several lines."""
        lines: list[str] = []
        if self.images_written:
            rate = self.images_written / self.seconds if self.seconds > 0 else float("inf")
            lines.append(
                f"wrote {self.out} ({self.storage.value}, {self.bytes_written / 1e6:.1f} MB): "
                f"{self.images_written} images, {self.instances_written} instances, "
                f"{sum(self.message_counts.values())} messages in {self.seconds:.1f} s "
                f"({rate:.1f} images/s)"
            )
            lines.append(
                "  messages: " + ", ".join(f"{t} {n}" for t, n in self.message_counts.items())
            )
        lines.append(
            f"images: {self.images_in_file} in the annotation file, {self.images_written} written"
        )
        for image_why, n in sorted(self.image_skips.items()):
            lines.append(f"  skipped {n}: {IMAGE_SKIP_TEXT[image_why]}")
        if self.images_not_processed:
            lines.append(f"  not processed {self.images_not_processed}: --max-images reached")
        lines.append(
            f"instances: {self.instances_in_file} annotations, {self.instances_written} written"
        )
        for why, n in sorted(self.instance_skips.items()):
            lines.append(f"  skipped {n}: {INSTANCE_SKIP_TEXT[why]}")
        for reason in (ImageSkip.MISSING_FILE, ImageSkip.UNREADABLE, ImageSkip.SIZE_MISMATCH):
            names = [name for _, name, why in self.skipped_images if why is reason]
            if names:
                shown = ", ".join(names[:10]) + (
                    f", ... ({len(names) - 10} more)" if len(names) > 10 else ""
                )
                lines.append(f"{IMAGE_SKIP_TEXT[reason]} ({len(names)}): {shown}")
        return "\n".join(lines)


def coco_to_bag(
    annotations: Path | str,
    images: Path | str,
    out: Path | str,
    *,
    storage: Storage | str = Storage.MCAP,
    max_images: int | None = None,
    categories: Sequence[str] | None = None,
    min_area: int = 0,
    prompt: PromptMode | str = PromptMode.CENTER,
    seed: int = 0,
    compressed: bool = False,
    progress: bool | None = None,
    dataset: CocoDataset | None = None,
    exclude_image_ids: Collection[int] = (),
) -> ConversionReport:
    """Write the bag ``out`` from a COCO-format annotation file and its image folder.

    ``progress``: show a progress bar (None: only on a terminal). ``dataset``: an
    already loaded ``annotations`` file. ``exclude_image_ids``: images left out (counted
    as excluded, with their annotations; they do not count towards ``max_images``).

    Raises:
        FileNotFoundError: annotation file or image folder missing.
        CocoFormatError: malformed annotation file, or unknown category names.
        BagWriteError: ``out`` exists.
        NothingToWriteError: no image has a usable instance (nothing is created).
        ValueError: bad numeric option.
    """
    annotations, images, out = Path(annotations), Path(images), Path(out)
    storage, prompt = Storage(storage), PromptMode(prompt)
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be at least 1, got {max_images}")
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not images.is_dir():
        raise FileNotFoundError(f"image folder not found: {images}")
    data = dataset if dataset is not None else CocoDataset.load(annotations)
    category_ids = data.category_ids(categories)
    excluded = frozenset(exclude_image_ids)
    writer = DatasetBagWriter(out, storage=storage, compressed=compressed)
    if out.exists() or out.is_symlink():
        raise BagWriteError(f"output already exists, not overwriting: {out}")

    report = ConversionReport(out=out, storage=storage)
    report.images_in_file = len(data.images)
    report.instances_in_file = len(data.annotations)
    if data.orphans:
        report.instance_skips[InstanceSkip.UNKNOWN_IMAGE] = len(data.orphans)
    started = time.perf_counter()
    with writer:
        ids = [i for i in data.image_ids() if i not in excluded]
        for image_id in excluded & set(data.images):
            report.image_skips[ImageSkip.EXCLUDED] += 1
            report.instance_skips[InstanceSkip.IMAGE_EXCLUDED] += len(data.by_image[image_id])
        bar = tqdm(
            ids, desc="images", unit="img", disable=None if progress is None else not progress
        )
        for position, image_id in enumerate(bar):
            image = data.images[image_id]
            anns = data.by_image[image_id]
            if max_images is not None and report.images_written >= max_images:
                rest = ids[position:]
                report.images_not_processed = len(rest)
                report.instance_skips[InstanceSkip.NOT_PROCESSED] += sum(
                    len(data.by_image[i]) for i in rest
                )
                break
            if not anns:
                report.image_skips[ImageSkip.NO_ANNOTATIONS] += 1
                continue
            skipped: Counter[InstanceSkip] = Counter()
            instances = data.instances(
                image,
                category_ids=category_ids,
                min_area=min_area,
                prompt=prompt,
                seed=seed,
                skipped=skipped,
            )
            report.instance_skips.update(skipped)
            if not instances:
                report.image_skips[ImageSkip.NO_USABLE_INSTANCES] += 1
                continue
            loaded = load_image(images / image.file_name, image.width, image.height)
            if isinstance(loaded, ImageSkip):
                report.image_skips[loaded] += 1
                report.skipped_images.append((image.id, image.file_name, loaded))
                report.instance_skips[InstanceSkip.IMAGE_SKIPPED] += len(instances)
                continue
            writer.write_frame(
                image_id=image.id,
                file_name=image.file_name,
                rgb=loaded.rgb,
                instances=instances,
                jpeg=loaded.jpeg,
            )
            report.images_written += 1
            report.instances_written += len(instances)
            bar.set_postfix(written=report.images_written, instances=report.instances_written)
        bar.close()
        if report.images_written == 0:
            report.seconds = time.perf_counter() - started
            raise NothingToWriteError(
                f"nothing to write: no image of {annotations} has a usable instance "
                f"(and an image file)\n{report.summary()}",
                report,
            )
        report.info = writer.finish(
            {
                "source": {
                    "annotations": str(annotations.resolve()),
                    "annotations_sha256": data.sha256,
                    "images": str(images.resolve()),
                },
                "options": {
                    "prompt": prompt.value,
                    "seed": seed,
                    "min_area": min_area,
                    "categories": list(categories) if categories is not None else None,
                    "max_images": max_images,
                    "exclude_images": sorted(excluded & set(data.images)),
                    "compressed": compressed,
                },
                "categories": [
                    {"id": c.id, "name": c.name, "supercategory": c.supercategory}
                    for c in sorted(data.categories.values(), key=lambda c: c.id)
                ],
                "counts": report.counts_json(),
                "skipped_images": [
                    {"image_id": i, "file_name": n, "reason": r.value}
                    for i, n, r in report.skipped_images
                ],
            }
        )
    report.seconds = time.perf_counter() - started
    report.message_counts = dict(report.info["counts"]["messages"])
    report.bytes_written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return report
