"""The demo behind `make demo`: the host replay path end to end, in one command.

generated COCO-format sample -> picosam2-make-bag -> replay_node (lock-step) ->
segmenter_node -> evaluator_node -> mIoU, the paper's "mAP", latency, report and plots.

The three nodes are the real executables, each in its own process, wired as
launch/replay.launch.py wires them (ros2 launch is not needed). The sample is made
here (picosam2_ros.testing.coco: flat-coloured asymmetric shapes, a seeded generator);
it proves the pipeline, not PicoSAM2's accuracy on photographs. The model is the shipped
point model when the package has one, else the ONNX test model the package builds (it
segments the region whose colour matches the crop centre); the output says which.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from picosam2_ros.resources import config_file, resolve_model_paths


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="picosam2-demo",
        description="Generate a small COCO-format sample, turn it into a rosbag2, replay it "
        "lock-step through segmenter_node and evaluator_node, and report mIoU, the paper's "
        "mAP and latency.",
    )
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument("--images", type=int, default=24, help="generated images (default 24)")
    parser.add_argument(
        "--model", type=Path, default=None, help="point model (default: the shipped one)"
    )
    parser.add_argument(
        "--timeout", type=float, default=110.0, help="seconds before the demo gives up"
    )
    return parser.parse_args(argv)


def _node(executable: str, *ros_args: str) -> list[str]:
    return [sys.executable, "-m", f"picosam2_ros.nodes.{executable}", "--ros-args", *ros_args]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from picosam2_ros.bags.convert import coco_to_bag
    from picosam2_ros.evaluation.report import format_summary
    from picosam2_ros.testing.coco import write_scene_dataset
    from picosam2_ros.testing.models import build_colour_match_model

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()

    shipped = resolve_model_paths("", "")["point"]
    if args.model is not None:
        model, model_note = args.model, "given with --model"
    elif shipped.is_file():
        model, model_note = shipped, "the shipped PicoSAM2 point model"
    else:
        model = build_colour_match_model(out / "colour_match_test_model.onnx")
        model_note = (
            "the ONNX TEST model the package builds (segments the region matching the crop "
            "centre's colour): no trained model ships yet"
        )
    print(
        f"picosam2_ros demo: the replay path end to end\n  model: {model}\n         ({model_note})"
    )

    annotations = write_scene_dataset(out / "dataset", images=args.images, seed=0)
    print(f"  sample: {args.images} generated 640x480 images -> {annotations}")
    bag = out / "demo.bag"
    conversion = coco_to_bag(annotations, out / "dataset" / "images", bag, progress=False)
    print(f"  bag:    {bag}\n{_indent(conversion.summary())}")

    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    # Three processes on one machine: a shared-memory segment large enough for a VGA
    # frame keeps reliable delivery fast and lossless (README, "Shared memory").
    env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(config_file("fastdds_shm.xml")))
    report_dir = out / "report"
    shared = ["-r", "clear_prompts:=/clear_prompts", "-r", "remove_object:=/remove_object"]
    commands = {
        "segmenter": _node(
            "segmenter_node",
            "-r",
            "__node:=segmenter",
            "-p",
            f"point_model:={model}",
            "-p",
            "image_qos:=reliable",
            "-p",
            "max_objects:=255",
            "-r",
            "image:=/camera/image_raw",
            "-r",
            "prompts:=/prompts",
            "-r",
            "segmentation:=/segmentation",
            *shared,
        ),
        "evaluator": _node(
            "evaluator_node",
            "-r",
            "__node:=evaluator",
            "-p",
            f"report_dir:={report_dir}",
            "-r",
            "ground_truth:=/ground_truth",
            "-r",
            "segmentation:=/segmentation",
            "-r",
            "image:=/camera/image_raw",
        ),
        "replay": _node(
            "replay_node",
            "-r",
            "__node:=replay",
            "--params-file",
            str(config_file("replay.yaml")),
            "-p",
            f"bag:={bag}",
            "-p",
            "mode:=lockstep",
            "-p",
            "require_subscribers:=['/camera/image_raw', '/ground_truth']",
            "-r",
            "segmentation:=/segmentation",
            *shared,
        ),
    }
    logs = {name: (out / f"{name}.log").open("wb") for name in commands}
    procs = {
        name: subprocess.Popen(cmd, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        for name, cmd in commands.items()
    }
    print("  replaying lock-step through segmenter_node -> evaluator_node ...", flush=True)
    deadline = time.perf_counter() + args.timeout
    try:
        for name in ("replay", "evaluator"):
            procs[name].wait(timeout=max(1.0, deadline - time.perf_counter()))
    except subprocess.TimeoutExpired:
        print(f"  the replay did not finish within {args.timeout:.0f} s; see {out}/*.log")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs.values():
            log.close()

    report_path = report_dir / "report.json"
    if not report_path.is_file():
        print(f"  no report was written; see {out}/evaluator.log and {out}/replay.log")
        return 1
    report = json.loads(report_path.read_text())
    print(_indent(format_summary(report)))
    plots = sorted(str(p) for p in report_dir.glob("*.png"))
    print(f"  report: {report_path}\n  plots:  {', '.join(plots)}")
    print(f"  node logs: {out}/segmenter.log, {out}/replay.log, {out}/evaluator.log")
    print(f"  total {time.perf_counter() - started:.0f} s")
    counts = report["counts"]
    expected = conversion.instances_written
    if counts["instances_evaluated"] != expected:
        print(
            f"  INCOMPLETE: {counts['instances_evaluated']} of the {expected} instances in the "
            f"bag were evaluated ({counts['ground_truth_instances']} ground-truth and "
            f"{counts['result_instances']} result instances reached the evaluator); "
            f"see {out}/evaluator.log"
        )
        return 1
    return 0 if procs["replay"].returncode == 0 else 1


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


if __name__ == "__main__":
    raise SystemExit(main())
