"""A COCO-format folder without some images: annotations.json rewritten, images/ linked.

    python -m training.coco_subset --src ../shared/data/coco-val2017-sample \\
        --out training/runs/val-less-demo --exclude 6818 41888 ...

Used to validate on ``coco-val2017-sample`` less the images the package ships as demo
images. Nothing is copied: ``OUT/images`` is a symbolic link to ``SRC/images``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.coco_subset", description=__doc__)
    ap.add_argument("--src", type=Path, required=True, help="COCO-format folder")
    ap.add_argument("--out", type=Path, required=True, help="folder to write")
    ap.add_argument("--exclude", type=int, nargs="+", required=True, help="image ids to drop")
    args = ap.parse_args(argv)
    try:
        data = json.loads((args.src / "annotations.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.src / 'annotations.json'}: {exc}", file=sys.stderr)
        return 2
    exclude = set(args.exclude)
    unknown = exclude - {img["id"] for img in data["images"]}
    if unknown:
        print(f"image ids not in {args.src}: {sorted(unknown)}", file=sys.stderr)
        return 2
    data["images"] = [img for img in data["images"] if img["id"] not in exclude]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] not in exclude]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "annotations.json").write_text(json.dumps(data))
    link = args.out / "images"
    if not link.exists():
        link.symlink_to((args.src / "images").resolve(), target_is_directory=True)
    print(f"{len(data['images'])} images, {len(data['annotations'])} annotations -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
