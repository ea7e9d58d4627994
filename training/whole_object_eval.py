"""Quick offline measurement of point prompts on full frames, with and without the
whole-object decoding (``picosam2_ros.core.whole_object``), for tuning its settings on
held-out TRAINING images and for iterating on models.

    python -m training.whole_object_eval --data ../shared/data/train-real/coco2017 \\
        ../shared/data/train-real/davis2016 --held-out 0.05 \\
        --model picosam2_ros/models/picosam2_point.onnx --first 0.6 --fill 0.6

Each instance is prompted once at the paper's centre point and once at a mask pixel
drawn as ``picosam2-make-bag --prompt random`` draws it (``[seed, annotation id]``); every
frame's prompts go through ``core.pipeline.segment_frame`` together, as the nodes run
them. It prints full-frame mIoU overall and by size, and the mean ms per prompt
(segment_frame wall time). The figures to report come from ``picosam2-make-bag`` +
``picosam2-evaluate``; this is the faster loop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.geometry import paper_prompt_point
from picosam2_ros.core.pipeline import CropSettings, segment_frame
from picosam2_ros.core.prompts import LABEL_FOREGROUND, ObjectPrompt
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.resources import resolve_model_paths
from training.data import InstanceSet, load_coco_folders, size_class
from training.train import is_dev_image


def load_instances(folders: list[str], held_out: float) -> InstanceSet:
    """Every instance of the COCO-format ``folders``, or only ``training.train``'s held-out
    share ``held_out`` of their images (0 = every image)."""
    return load_coco_folders(
        folders,
        min_area=1,
        image_filter=(lambda f, r: is_dev_image(f, r, held_out)) if held_out > 0 else None,
    )


def random_mask_point(mask: np.ndarray, seed: int, ann_id: int) -> tuple[int, int]:
    """A mask pixel drawn as ``picosam2-make-bag --prompt random`` draws it."""
    ys, xs = np.nonzero(mask)
    k = int(np.random.default_rng([seed, ann_id]).integers(xs.size))
    return int(xs[k]), int(ys[k])


def evaluate(
    data: InstanceSet,
    backends: dict[str, OnnxBackend],
    settings: CropSettings,
    prompt: str,
    seed: int = 0,
) -> dict:
    by_image: dict[int, list[int]] = {}
    for i, inst in enumerate(data.instances):
        by_image.setdefault(inst.image_index, []).append(i)
    ious: list[float] = []
    sizes: list[str] = []
    seconds = 0.0
    for image_index, members in by_image.items():
        image = data.images[image_index]
        h, w = image.shape[:2]
        prompts = []
        for i in members:
            inst = data.instances[i]
            if prompt == "center":
                p = paper_prompt_point(inst.mask)
                assert p is not None
                px, py = p
            else:
                px, py = random_mask_point(inst.mask, seed, inst.ann_id)
            points = np.array([[px + inst.mask_x, py + inst.mask_y]], dtype=np.float64)
            prompts.append(
                ObjectPrompt(i + 1, points, np.array([LABEL_FOREGROUND], dtype=np.uint8))
            )
        start = time.perf_counter()
        result = segment_frame(image, "rgb8", prompts, backends, settings)
        seconds += time.perf_counter() - start
        for obj in result.objects:
            inst = data.instances[obj.object_id - 1]
            pred = np.zeros((h, w), dtype=bool)
            if obj.mask.size:
                pred[obj.crop.slices] = obj.mask
            truth = inst.full_mask(h, w)
            union = int((pred | truth).sum())
            ious.append(float((pred & truth).sum()) / union if union else 1.0)
            sizes.append(size_class(inst.area))
    iou = np.array(ious)
    out: dict = {
        "prompt": prompt,
        "instances": len(ious),
        "miou": round(float(iou.mean()), 4),
        "ms_per_prompt": round(1000.0 * seconds / max(1, len(ious)), 2),
    }
    for s in ("small", "medium", "large"):
        sel = np.array([z == s for z in sizes])
        out[f"{s}_miou"] = round(float(iou[sel].mean()), 4) if sel.any() else None
        out[f"{s}_n"] = int(sel.sum())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.whole_object_eval", description=__doc__)
    ap.add_argument("--data", nargs="+", required=True, help="COCO-format folder(s)")
    ap.add_argument(
        "--held-out",
        type=float,
        default=0.0,
        help="use only the held-out share of these TRAINING folders (training.train's "
        "split, e.g. 0.05); 0 = every image",
    )
    ap.add_argument("--model", type=Path, help="point model (default: the shipped one)")
    ap.add_argument("--box-model", type=Path, help="box model (default: the shipped one)")
    ap.add_argument("--off", action="store_true", help="the native 96-px crop only")
    ap.add_argument("--first", type=float, default=WholeObjectSettings.first_side_fraction)
    ap.add_argument("--fill", type=float, default=WholeObjectSettings.fill)
    ap.add_argument("--margin", type=float, default=WholeObjectSettings.margin)
    ap.add_argument("--grow", type=float, default=WholeObjectSettings.grow)
    ap.add_argument("--min-side", type=float, default=WholeObjectSettings.min_side)
    ap.add_argument("--reuse-within", type=float, default=WholeObjectSettings.reuse_within)
    ap.add_argument("--no-box", action="store_true", help="no box-model refinement (run 3)")
    ap.add_argument("--windows", type=int, default=WholeObjectSettings.windows)
    ap.add_argument(
        "--no-edge-window", action="store_true", help="box run even when the mask is still cut"
    )
    ap.add_argument("--edge-grow", type=float, default=WholeObjectSettings.edge_grow)
    ap.add_argument("--box-extend", type=float, default=WholeObjectSettings.box_extend)
    ap.add_argument("--extent-offset", type=float, default=WholeObjectSettings.extent_offset)
    ap.add_argument("--prompts", default="center,random", help="center, random or both")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="random prompts' seed (make-bag's)")
    args = ap.parse_args(argv)
    data = load_instances(args.data, args.held_out)
    paths = resolve_model_paths(str(args.model or ""), str(args.box_model or ""), not args.off)
    point = OnnxBackend(paths["point"], threads=args.threads)
    backends = {"point": point, "box": OnnxBackend(paths["box"], threads=args.threads)}
    whole = None
    if not args.off:
        whole = WholeObjectSettings(
            first_side_fraction=args.first,
            fill=args.fill,
            margin=args.margin,
            grow=args.grow,
            min_side=args.min_side,
            reuse_within=args.reuse_within,
            box_refine=not args.no_box,
            windows=args.windows,
            edge_window=not args.no_edge_window,
            edge_grow=args.edge_grow,
            box_extend=args.box_extend,
            extent_offset=args.extent_offset,
        )
    settings = CropSettings(whole_object=whole)
    for prompt in args.prompts.split(","):
        r = evaluate(data, backends, settings, prompt, args.seed)
        r["settings"] = "off" if whole is None else whole.__dict__
        print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
