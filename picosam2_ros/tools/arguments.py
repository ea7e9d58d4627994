"""argparse value types shared by the command-line tools."""

from __future__ import annotations

import argparse

from picosam2_ros.bags.coco import CocoDataset, CocoFormatError
from picosam2_ros.resources import demo_image_ids


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


#: The help text of ``--exclude-images`` (picosam2-make-bag, picosam2-evaluate).
EXCLUDE_IMAGES_HELP = (
    "leave these images out: COCO image ids, COCO-format annotation files (all their "
    "images) or 'demo' (the photographs the package ships for `make demo`, which every "
    "validation figure on coco-val2017-sample leaves out)"
)


def image_id_set(text: str) -> frozenset[int]:
    """One ``--exclude-images`` value: an image id, ``demo`` (the shipped demo
    photographs) or a COCO-format annotation file (the ids of its ``images``)."""
    if text == "demo":
        try:
            return demo_image_ids()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise argparse.ArgumentTypeError(
                f"the demo photographs' annotations are not readable: {exc}"
            ) from None
    try:
        value = int(text)
    except ValueError:
        pass
    else:
        if value < 0:
            raise argparse.ArgumentTypeError(f"an image id is >= 0, got {value}")
        return frozenset({value})
    try:
        return frozenset(CocoDataset.load(text).images)
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an image id, 'demo' nor an existing annotation file"
        ) from None
    except (CocoFormatError, OSError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value
