"""``picosam2-make-bag``: turn COCO-format instance annotations into a rosbag2.

The bag's layout (topics, stamps, the ``/dataset/info`` JSON) is documented in
``picosam2_ros.bags.layout``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from picosam2_ros.bags.coco import CocoFormatError, PromptMode
from picosam2_ros.bags.convert import NothingToWriteError, coco_to_bag
from picosam2_ros.bags.typestore import MessageDefinitionsNotFoundError
from picosam2_ros.bags.writer import BagWriteError, Storage
from picosam2_ros.tools.arguments import (
    EXCLUDE_IMAGES_HELP,
    image_id_set,
    non_negative_int,
    positive_int,
)

#: Exit codes.
EXIT_OK = 0
EXIT_NOTHING_WRITTEN = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

EPILOG = """\
Per image the bag holds, all with the image's stamp (1 s + index x 100 ms, 10 Hz):
the image (/camera/image_raw rgb8, or /camera/image_raw/compressed JPEG), its
/camera/camera_info, one picosam2_ros/Prompt per instance on /prompts (object id =
annotation id) and the ground-truth masks as one picosam2_ros/Segmentation on
/ground_truth. /dataset/info (std_msgs/String, JSON) comes first: source, options,
categories, the image id and objects of each stamp, and the counts.

Skipped, counted and reported: crowd annotations, empty masks, masks below --min-area,
unselected categories, undecodable segmentations, images without annotations, images
left out with --exclude-images, image files that are missing, unreadable or of another
size than annotated. Validation figures on coco-val2017-sample leave out the demo
photographs the package ships: --exclude-images demo.

exit status: 0 written; 1 nothing to write (no bag created) or writing failed;
2 bad input (missing or malformed annotation file, missing image folder, unknown
category, output already exists, bad option); 130 interrupted (no bag left behind).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="picosam2-make-bag",
        description="Turn COCO-format instance annotations (polygons or RLE) and their "
        "images into a rosbag2 for replay and evaluation of PicoSAM2 through ROS 2.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--annotations",
        required=True,
        type=Path,
        metavar="A.json",
        help="COCO-format instance annotation file",
    )
    parser.add_argument(
        "--images",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder holding the images (file_name of each image is relative to it)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="BAG",
        help="bag folder to create (must not exist)",
    )
    parser.add_argument(
        "--storage",
        choices=[s.value for s in Storage],
        default=Storage.MCAP.value,
        help="rosbag2 storage plugin (default: %(default)s)",
    )
    parser.add_argument(
        "--max-images",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop after writing N images (ascending image id)",
    )
    parser.add_argument(
        "--categories",
        nargs="+",
        default=None,
        metavar="NAME",
        help="keep only instances of these category names (quote names with spaces)",
    )
    parser.add_argument(
        "--exclude-images",
        nargs="+",
        type=image_id_set,
        default=[],
        metavar="ID|FILE|demo",
        help=EXCLUDE_IMAGES_HELP,
    )
    parser.add_argument(
        "--min-area",
        type=non_negative_int,
        default=0,
        metavar="PX",
        help="skip masks with fewer than PX pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--prompt",
        choices=[m.value for m in PromptMode],
        default=PromptMode.CENTER.value,
        help="center: the PicoSAM2 paper's point (centre of the mask's box, or the mask "
        "pixel nearest to it); random: a random mask pixel (see --seed); box: the "
        "annotation's bbox as a box prompt (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="seed of --prompt random (default: %(default)s)",
    )
    parser.add_argument(
        "--compressed",
        action="store_true",
        help="store images as sensor_msgs/CompressedImage JPEG on "
        "/camera/image_raw/compressed (source JPEGs are stored unchanged)",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    return parser


def _fail(code: int, message: str) -> int:
    print(f"picosam2-make-bag: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = coco_to_bag(
            args.annotations,
            args.images,
            args.out,
            storage=args.storage,
            max_images=args.max_images,
            categories=args.categories,
            min_area=args.min_area,
            prompt=args.prompt,
            seed=args.seed,
            compressed=args.compressed,
            progress=False if args.no_progress else None,
            exclude_image_ids=frozenset().union(*args.exclude_images),
        )
    except (FileNotFoundError, CocoFormatError, BagWriteError, ValueError) as exc:
        if isinstance(exc, BagWriteError) and not str(exc).startswith("output already"):
            return _fail(EXIT_NOTHING_WRITTEN, f"writing {args.out} failed: {exc}")
        return _fail(EXIT_BAD_INPUT, str(exc))
    except MessageDefinitionsNotFoundError as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    except NothingToWriteError as exc:
        return _fail(EXIT_NOTHING_WRITTEN, str(exc))
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted; no bag was left behind")
    except OSError as exc:
        return _fail(EXIT_NOTHING_WRITTEN, f"writing {args.out} failed: {exc}")
    print(report.summary())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
