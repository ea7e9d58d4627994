"""Host cost per point prompt: the whole-object decoding (core.whole_object with its
defaults: up to three point windows) against the paper's single 96-px crop, fp32 and
int8.

On real photographs (a COCO-format folder, default the validation sample) every
instance is prompted at its paper centre point; each frame's prompts go through
``segment_frame`` together, as in the segmenter node. The two modes run interleaved,
frame by frame, so a busy machine slows both alike. Prints medians of the per-frame
ms per prompt and the ratio (target: at most 3x). Prints only; asserts nothing.

Run: .venv/bin/python bench/bench_whole_object.py [--data DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from pycocotools.coco import COCO

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.geometry import paper_prompt_point
from picosam2_ros.core.pipeline import CropSettings, segment_frame
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.resources import resolve_model_paths

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "coco-val2017-sample"
TARGET_RATIO = 3.0


def load_frames(folder: Path, limit: int) -> list[tuple[np.ndarray, list[ObjectPrompt]]]:
    coco = COCO(str(folder / "annotations.json"))
    frames = []
    for image_id in sorted(coco.getImgIds())[:limit]:
        info = coco.loadImgs(image_id)[0]
        bgr = cv2.imread(str(folder / "images" / info["file_name"]), cv2.IMREAD_COLOR)
        prompts = []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False)):
            point = paper_prompt_point(coco.annToMask(ann) > 0)
            if point is not None:
                prompts.append(ObjectPrompt.from_point(len(prompts) + 1, *point))
        if prompts:
            frames.append((bgr, prompts))
    return frames


def _precision(path: Path, precision: str) -> Path:
    """The fp32 file itself, or its shipped int8 sibling."""
    return path if precision == "fp32" else path.with_name(path.stem + "_int8.onnx")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="COCO-format folder")
    ap.add_argument("--images", type=int, default=31, help="first N images")
    ap.add_argument("--repeats", type=int, default=3, help="passes over the images")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not (args.data / "annotations.json").is_file():
        print(f"no COCO-format folder at {args.data}; pass --data")
        return 1
    frames = load_frames(args.data, args.images)
    prompts_total = sum(len(p) for _, p in frames)
    single_paths = resolve_model_paths("", "")
    whole_paths = resolve_model_paths("", "", whole_object=True)
    modes = {
        "single crop": (CropSettings(), single_paths),
        "whole object": (CropSettings(whole_object=WholeObjectSettings()), whole_paths),
    }
    print(f"{len(frames)} frames, {prompts_total} point prompts, {args.threads} thread(s)")
    print(f"single crop: {single_paths['point'].name}; whole object: {whole_paths['point'].name}")
    results = {}
    for precision in ("fp32", "int8"):
        runs = {}
        for mode, (settings, paths) in modes.items():
            files = {kind: _precision(path, precision) for kind, path in paths.items()}
            backends = {k: OnnxBackend(f, threads=args.threads) for k, f in files.items()}
            runs[mode] = (settings, backends)
        per_prompt: dict[str, list[float]] = {m: [] for m in modes}
        for bgr, prompts in frames[:2]:  # warm-up
            for settings, backends in runs.values():
                segment_frame(bgr, "bgr8", prompts, backends, settings)
        for _ in range(args.repeats):
            for bgr, prompts in frames:
                for mode, (settings, backends) in runs.items():
                    start = time.perf_counter()
                    segment_frame(bgr, "bgr8", prompts, backends, settings)
                    per_prompt[mode].append(1000 * (time.perf_counter() - start) / len(prompts))
        single = statistics.median(per_prompt["single crop"])
        whole = statistics.median(per_prompt["whole object"])
        results[precision] = {"single_ms": single, "whole_ms": whole, "ratio": whole / single}
        print(
            f"{precision}: single crop {single:.2f} ms/prompt, whole object {whole:.2f} "
            f"ms/prompt, ratio {whole / single:.2f}x (target <= {TARGET_RATIO:.0f}x)"
        )
    print(json.dumps({k: {n: round(v, 3) for n, v in r.items()} for k, r in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
