"""How much the core adds to the model: pre- and post-processing per prompt vs onnxruntime.

At 640x480 bgr8 with 1 and 8 prompts, times over many frames (medians):
- core: everything ``segment_frame`` does except the backend call (crop, resize,
  normalise, threshold, score, resize back, paste, bbox), measured with a backend that
  replays logits computed beforehand, so only the core's own work is timed;
- in a real run: ``segment_frame`` wall time minus its own ``inference_ms``, with a
  model that costs about what PicoSAM2 costs (336M MACs per crop);
- onnxruntime: the bare ``infer`` call on the same batch, for that model and for the
  trivially cheap colour-match model.
The target is a core cost of at most 0.3 ms per prompt. Prints only; asserts nothing.

Run: .venv/bin/python bench/bench_core.py [--frames 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.geometry import paper_prompt_point
from picosam2_ros.core.pipeline import CropSettings, plan_crops, segment_frame
from picosam2_ros.core.preprocess import crop_to_model_input, normalise
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.testing.models import PICOSAM2_MACS, build_colour_match_model
from picosam2_ros.testing.scenes import random_scene

WIDTH, HEIGHT = 640, 480
TARGET_MS_PER_PROMPT = 0.3


class ReplayBackend:
    """Returns logits computed beforehand: the core's work without a model's."""

    name = "replay"
    input_size = 96

    def __init__(self, logits: np.ndarray) -> None:
        self.logits = logits

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.logits[: batch.shape[0]]


def _median_ms(fn: Callable[[], object], frames: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(frames):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def _measure(
    image: np.ndarray,
    prompts: list[ObjectPrompt],
    light: OnnxBackend,
    heavy: OnnxBackend,
    frames: int,
) -> tuple[float, float, float, float]:
    """Per prompt, in ms: core alone, core inside a real run, bare onnxruntime for the
    PicoSAM2-cost model and for the trivial model."""
    settings = CropSettings()
    n = len(prompts)
    jobs, _ = plan_crops(prompts, WIDTH, HEIGHT, settings)
    batch = normalise(np.stack([crop_to_model_input(image, "bgr8", j.roi) for j in jobs]))
    replay = ReplayBackend(light.infer(batch))

    def core_only() -> None:
        segment_frame(image, "bgr8", prompts, {"point": replay, "box": replay}, settings)

    overheads: list[float] = []

    def real_run() -> None:
        start = time.perf_counter()
        frame = segment_frame(image, "bgr8", prompts, {"point": heavy, "box": heavy}, settings)
        overheads.append((time.perf_counter() - start) * 1000.0 - frame.inference_ms)

    def ort_heavy() -> None:
        heavy.infer(batch)

    def ort_light() -> None:
        light.infer(batch)

    core_ms = _median_ms(core_only, frames)
    _median_ms(real_run, frames, warmup=0)
    in_run_ms = statistics.median(overheads)
    return (
        core_ms / n,
        in_run_ms / n,
        _median_ms(ort_heavy, frames) / n,
        _median_ms(ort_light, frames) / n,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="timed frames per figure")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    rgb, _, masks = random_scene(WIDTH, HEIGHT, 8, seed=1)
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    prompts = []
    for i, mask in enumerate(masks):
        point = paper_prompt_point(mask)
        assert point is not None
        prompts.append(ObjectPrompt.from_point(i + 1, *point))

    with tempfile.TemporaryDirectory() as tmp:
        light = OnnxBackend(build_colour_match_model(Path(tmp) / "light.onnx"), args.threads)
        heavy_path = build_colour_match_model(
            Path(tmp) / "picosam2_cost.onnx", extra_conv_macs=PICOSAM2_MACS
        )
        heavy = OnnxBackend(heavy_path, args.threads)
        rows = [(n, *_measure(image, prompts[:n], light, heavy, args.frames)) for n in (1, 8)]

    print(f"core pre+post vs onnxruntime, {WIDTH}x{HEIGHT} bgr8, medians of {args.frames} frames")
    print(
        f"onnxruntime threads: {args.threads}; "
        f"PicoSAM2-cost model: ~{PICOSAM2_MACS / 1e6:.0f}M MACs/crop"
    )
    print()
    header = (
        f"{'prompts':>7} | {'core ms/prompt':>14} | {'core in real run':>16} | "
        f"{'ORT PicoSAM2-cost':>17} | {'core/ORT':>8} | {'ORT trivial model':>17} | "
        f"<= {TARGET_MS_PER_PROMPT} ms (core/real run)"
    )
    print(header)
    print("-" * len(header))
    for n, core, in_run, ort_heavy, ort_light in rows:
        verdict = "/".join(
            "holds" if v <= TARGET_MS_PER_PROMPT else "MISSED" for v in (core, in_run)
        )
        print(
            f"{n:>7} | {core:>14.3f} | {in_run:>16.3f} | {ort_heavy:>17.3f} | "
            f"{core / ort_heavy:>8.3f} | {ort_light:>17.3f} | {verdict}"
        )
    print()
    print("core: segment_frame with a backend replaying stored logits (the core's work only);")
    print("core in real run: segment_frame wall time minus its inference_ms, with the")
    print("PicoSAM2-cost model (caches are cold after the model ran); ORT: bare infer() call.")
    load_after = os.getloadavg()[0]
    print(
        f"1-min load average: {load_before:.2f} before, {load_after:.2f} after, "
        f"on {os.cpu_count()} CPUs"
    )
    if max(load_before, load_after) > 0.5 * (os.cpu_count() or 1):
        print("the machine was busy: other processes inflate these figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
