"""Segment everything at 640x480: the dense grid vs the hierarchical strategy, side by side.

For the shipped point model in fp32 and int8 (one onnxruntime thread), every frame is
segmented with the dense grid and with the hierarchical strategy at the same final
density (the same ``points_per_side``), one right after the other, so both see the same
machine load. Printed per case: median ms per frame, frames per second, crops and masks
per frame; then the dense / hierarchical time ratio per model (TinySAM's claim is about
2x). Prints only; asserts nothing.

Frames: real photographs from --images (scaled to cover 640x480 and centre-cropped;
--exclude-images leaves out files by COCO image id), or generated scenes of flat shapes
when --images is not given. --overlay IMAGE writes the hierarchical int8 result on that
image (640x480, the best --overlay-masks masks) to --overlay-out.

Run: .venv/bin/python bench/bench_everything.py [--images DIR] [--frames N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.everything import EverythingSettings, segment_everything
from picosam2_ros.core.overlay import render_overlay
from picosam2_ros.core.pipeline import FrameResult
from picosam2_ros.resources import resolve_model_paths
from picosam2_ros.testing.scenes import random_scene

WIDTH, HEIGHT = 640, 480


def to_frame(bgr: np.ndarray) -> np.ndarray:
    """Scale to cover WIDTHxHEIGHT, centre-crop, return RGB."""
    h, w = bgr.shape[:2]
    scale = max(WIDTH / w, HEIGHT / h)
    resized = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    y0 = (resized.shape[0] - HEIGHT) // 2
    x0 = (resized.shape[1] - WIDTH) // 2
    crop = resized[y0 : y0 + HEIGHT, x0 : x0 + WIDTH]
    return np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))


def load_frames(images: Path | None, exclude: set[int], count: int) -> tuple[list[np.ndarray], str]:
    if images is None:
        frames = [random_scene(WIDTH, HEIGHT, 6, seed=s)[0] for s in range(count)]
        return frames, f"{count} generated scenes"
    files = sorted(
        p
        for p in images.iterdir()
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        and not (p.stem.isdigit() and int(p.stem) in exclude)
    )[:count]
    frames = []
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"bench_everything: cannot read image {path}")
        frames.append(to_frame(bgr))
    if not frames:
        raise SystemExit(f"bench_everything: no images in {images}")
    return frames, f"{len(frames)} images from {images}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, default=None, help="folder of photographs")
    parser.add_argument("--exclude-images", type=int, nargs="*", default=[], metavar="ID")
    parser.add_argument("--frames", type=int, default=5, help="frames (default: %(default)s)")
    parser.add_argument("--points-per-side", type=int, default=EverythingSettings().points_per_side)
    parser.add_argument("--overlay", type=Path, default=None, metavar="IMAGE")
    parser.add_argument("--overlay-out", type=Path, default=Path("bench_output/everything.jpg"))
    parser.add_argument("--overlay-masks", type=int, default=25)
    args = parser.parse_args()

    frames, source = load_frames(args.images, set(args.exclude_images), args.frames)
    point = resolve_model_paths("", "")["point"]
    models = {"fp32": point, "int8": point.with_name(point.stem + "_int8.onnx")}
    hierarchical = EverythingSettings(points_per_side=args.points_per_side)
    dense = replace(hierarchical, hierarchical=False)
    print(
        f"segment everything, {WIDTH}x{HEIGHT}, {source}, {args.points_per_side} points per "
        f"side, sparse stride {hierarchical.sparse_stride}, confident score "
        f"{hierarchical.confident_score}, 1 onnxruntime thread"
    )
    print("| model | strategy | ms/frame (median) | frames/s | crops/frame | masks/frame |")
    print("| --- | --- | --- | --- | --- | --- |")
    ratios = {}
    for name, path in models.items():
        backends = {"point": OnnxBackend(path, threads=1)}
        segment_everything(frames[0], "rgb8", backends, hierarchical)  # warm-up
        times: dict[str, list[float]] = {"dense": [], "hierarchical": []}
        crops: dict[str, list[int]] = {"dense": [], "hierarchical": []}
        masks: dict[str, list[int]] = {"dense": [], "hierarchical": []}
        for frame in frames:
            for label, settings in (("dense", dense), ("hierarchical", hierarchical)):
                start = time.perf_counter()
                result = segment_everything(frame, "rgb8", backends, settings)
                times[label].append((time.perf_counter() - start) * 1000.0)
                crops[label].append(result.crops_run)
                masks[label].append(len(result.frame.objects))
        for label in ("dense", "hierarchical"):
            ms = statistics.median(times[label])
            print(
                f"| {name} | {label} | {ms:.0f} | {1000.0 / ms:.2f} | "
                f"{statistics.mean(crops[label]):.0f} | {statistics.mean(masks[label]):.1f} |"
            )
        ratios[name] = (
            sum(times["dense"]) / sum(times["hierarchical"]),
            sum(crops["dense"]) / sum(crops["hierarchical"]),
        )
    for name, (time_ratio, crop_ratio) in ratios.items():
        print(
            f"{name}: hierarchical is {time_ratio:.2f}x faster than dense "
            f"({crop_ratio:.2f}x fewer crops; TinySAM's claim: about 2x)"
        )

    if args.overlay is not None:
        bgr = cv2.imread(str(args.overlay), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"bench_everything: cannot read image {args.overlay}")
        frame = to_frame(bgr)
        backends = {"point": OnnxBackend(models["int8"], threads=1)}
        result = segment_everything(frame, "rgb8", backends, hierarchical)
        best = FrameResult(
            WIDTH, HEIGHT, result.frame.objects[: args.overlay_masks], result.frame.inference_ms
        )
        args.overlay_out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.overlay_out), render_overlay(frame, "rgb8", best))
        print(
            f"wrote {args.overlay_out}: the best {len(best.objects)} of "
            f"{len(result.frame.objects)} masks ({result.crops_run} crops)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
