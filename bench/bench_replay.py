"""Instances per second on the replay path, three ways, on the same bag and model:

- ROS lock-step: replay_node -> segmenter_node -> evaluator_node, three processes
  (the `make demo` machinery), the evaluator's own throughput figure;
- offline: picosam2-evaluate on the same bag (no ROS graph);
- bare inference: OnnxBackend.infer on the same instances' crops, one batch per frame.

Targets: lock-step >= 50% of offline, offline >= 80% of bare inference. Also prints how
long full COCO val2017 (36,781 instances) would take at each measured rate.
Figures only; nothing is asserted.

    .venv/bin/python bench/bench_replay.py [--images 40] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

COCO_VAL2017_INSTANCES = 36_781


def bare_inference_rate(bag: Path, model: Path) -> float:
    from picosam2_ros.backends.onnx_backend import OnnxBackend
    from picosam2_ros.bags.reader import read_dataset
    from picosam2_ros.core.geometry import point_to_roi
    from picosam2_ros.core.preprocess import crop_to_model_input, normalise

    backend = OnnxBackend(model, threads=1)
    batches = []
    _, frames, _ = read_dataset(bag)
    for frame in frames:
        h, w = frame.rgb.shape[:2]
        crops = [
            crop_to_model_input(frame.rgb, "rgb8", point_to_roi(p[0], p[1], 96, w, h))
            for p in (spec.point for spec in frame.prompts.values())
            if p is not None
        ]
        batches.append(normalise(np.stack(crops)))
    instances = sum(len(b) for b in batches)
    start = time.perf_counter()
    for batch in batches:
        backend.infer(batch)
    return instances / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--images", type=int, default=40, help="generated images (3 objects each)")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="ONNX model (default: shipped, else PicoSAM2-cost test model)",
    )
    args = parser.parse_args()

    from picosam2_ros import demo
    from picosam2_ros.resources import resolve_model_paths
    from picosam2_ros.testing.models import PICOSAM2_MACS, build_colour_match_model
    from picosam2_ros.tools import evaluate

    work = Path(tempfile.mkdtemp(prefix="bench_replay_"))
    shipped = resolve_model_paths("", "")["point"]
    model = args.model or (
        shipped
        if shipped.is_file()
        else build_colour_match_model(work / "picosam2_cost.onnx", extra_conv_macs=PICOSAM2_MACS)
    )
    print(f"model: {model}\nload average: {os.getloadavg()[0]:.2f} (2 cores)\n")

    demo.main(["--out", str(work / "ros"), "--synthetic", str(args.images), "--model", str(model)])
    ros = json.loads((work / "ros" / "report" / "report.json").read_text())["throughput"]
    bag = work / "ros" / "demo.bag"
    evaluate.main(
        [
            "--bag",
            str(bag),
            "--model",
            str(model),
            "--report",
            str(work / "offline"),
            "--threads",
            "1",
        ]
    )
    offline = json.loads((work / "offline" / "report.json").read_text())["throughput"]
    bare = bare_inference_rate(bag, model)

    rates = {
        "ROS lock-step": ros["instances_per_s"],
        "offline": offline["instances_per_s"],
        "bare inference": bare,
    }
    print("\n| path | instances/s | full COCO val2017 would take |")
    print("| --- | --- | --- |")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {COCO_VAL2017_INSTANCES / rate / 60:.1f} min |")
    print(
        f"\nlock-step / offline = {rates['ROS lock-step'] / rates['offline']:.2f} "
        "(target >= 0.50); "
        f"offline / bare = {rates['offline'] / rates['bare inference']:.2f} (target >= 0.80)"
    )


if __name__ == "__main__":
    main()
