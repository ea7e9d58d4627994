"""The demo behind `make demo`: the host replay path end to end on real photographs.

the shipped demo photographs (picosam2_ros/data/coco_demo: 11 COCO val2017 images under
CC BY / CC BY-SA with their COCO annotations) -> picosam2-make-bag -> replay_node
(lock-step) -> segmenter_node -> evaluator_node -> mIoU, the paper's "mAP", latency,
report and plots; then one figure per photograph: the whole-object masks PicoSAM2 returns
for one click per object (the paper's prompt point; segmenter_node ``whole_object``, up
to three windows of the zoom model) next to the COCO ground truth.

The three nodes are the real executables, each in its own process, wired as
launch/replay.launch.py wires them (ros2 launch is not needed). The figures' masks are
computed again offline with the same pipeline and model (``core.pipeline.segment_frame``,
as picosam2-evaluate does); the demo checks that every instance's IoU there equals the
IoU the nodes' report gives. ``--single-crop`` keeps the paper's single 96-px crop instead.
``--synthetic N`` runs on N generated images of flat shapes instead
(picosam2_ros.testing.coco). The point model is the shipped one for the decoding (the
zoom model for the whole object) when the package has it, else the ONNX test model the
package builds (it segments the region whose colour matches the crop centre); the
output says which.
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
from typing import Any

import cv2
import numpy as np

from picosam2_ros.resources import DEMO_ANNOTATIONS, DEMO_IMAGES, config_file, resolve_model_paths

#: Widest figure side by side (two panels); photographs are scaled down to fit.
FIGURE_MAX_WIDTH = 1280
#: How close the offline IoUs must be to the nodes' (float32 scores, same masks).
IOU_AGREEMENT = 1e-9


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="picosam2-demo",
        description="Turn the shipped demo photographs (COCO val2017, CC BY / CC BY-SA) into a "
        "rosbag2, replay it lock-step through segmenter_node and evaluator_node, report mIoU, "
        "the paper's mAP and latency, and draw each photograph's masks from one click per "
        "object next to the ground truth.",
    )
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="run on N generated images of flat shapes instead of the photographs",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="point model (default: the shipped one; for the whole object the zoom model)",
    )
    parser.add_argument(
        "--single-crop",
        action="store_true",
        help="the paper's single 96-px crop around each click instead of the whole object",
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

    if args.synthetic < 0:
        print(f"picosam2-demo: error: --synthetic must be >= 0, got {args.synthetic}")
        return 2

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()

    whole_object = not args.single_crop
    shipped = resolve_model_paths("", "", whole_object)["point"]
    if args.model is not None:
        model, model_note = args.model, "given with --model"
    elif shipped.is_file():
        model, model_note = shipped, f"the shipped PicoSAM2 model {shipped.name}"
    else:
        model = build_colour_match_model(out / "colour_match_test_model.onnx")
        model_note = (
            "the ONNX TEST model the package builds (segments the region matching the crop "
            "centre's colour): no trained model ships yet"
        )
    decoding = (
        "the whole object from one click (up to three zoom-model windows)"
        if whole_object
        else "the paper's single 96-px crop around each click"
    )
    print(
        f"picosam2_ros demo: the replay path end to end\n  model: {model}\n         ({model_note})"
        f"\n  decoding: {decoding}"
    )

    if args.synthetic:
        annotations = write_scene_dataset(out / "dataset", images=args.synthetic, seed=0)
        images = out / "dataset" / "images"
        print(f"  sample: {args.synthetic} generated 640x480 images -> {annotations}")
    else:
        annotations, images = DEMO_ANNOTATIONS, DEMO_IMAGES
        print(
            f"  sample: the shipped photographs {images}\n"
            f"          (COCO val2017, CC BY / CC BY-SA: {annotations.parent / 'ATTRIBUTION.md'})"
        )
    bag = out / "demo.bag"
    conversion = coco_to_bag(annotations, images, bag, progress=False)
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
            "-p",
            f"whole_object:={str(whole_object).lower()}",
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
    figures, disagreeing = draw_figures(bag, model, report, out / "overlays", whole_object)
    print(
        f"  overlays: {len(figures)} figures (one click per object | COCO ground truth) in "
        f"{out / 'overlays'}; offline masks give the nodes' IoU for "
        f"{len(report['instances']) - disagreeing} of {len(report['instances'])} instances"
    )
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
    if disagreeing:
        print(f"  MISMATCH: {disagreeing} instances differ between the nodes and the offline run")
        return 1
    return 0 if procs["replay"].returncode == 0 else 1


def draw_figures(
    bag: Path, model: Path, report: dict[str, Any], out_dir: Path, whole_object: bool
) -> tuple[list[Path], int]:
    """One PNG per image of ``bag``: left, the masks of one click per object (the bag's
    prompts) segmented again offline with ``model`` through ``core.pipeline`` (the whole
    object, or the single crop), labelled
    with each object's full-frame IoU; right, the ground truth, labelled with the
    category. Returns the figures and how many instances' offline IoUs differ from the
    nodes' ``report``."""
    from picosam2_ros.bags.reader import DatasetBag
    from picosam2_ros.core.geometry import MODEL_INPUT_SIZE
    from picosam2_ros.core.overlay import render_overlay
    from picosam2_ros.core.pipeline import (
        CropSettings,
        FrameResult,
        ObjectResult,
        ObjectStatus,
        segment_frame,
    )
    from picosam2_ros.core.whole_object import WholeObjectSettings
    from picosam2_ros.evaluation.evaluator import Evaluator
    from picosam2_ros.evaluation.session import (
        ground_truth_from_frame,
        predictions_from_frame_result,
    )
    from picosam2_ros.tools.evaluate import load_backends, object_prompt

    out_dir.mkdir(parents=True, exist_ok=True)
    nodes_iou = {(i["stamp_ns"], i["object_id"]): i for i in report["instances"]}
    backends = load_backends(model, None, threads=1, whole_object=whole_object)
    settings = CropSettings(
        point_side_px=MODEL_INPUT_SIZE,
        whole_object=WholeObjectSettings() if whole_object else None,
    )
    evaluator = Evaluator()
    figures: list[Path] = []
    disagreeing = 0
    with DatasetBag(bag) as dataset:
        info = dataset.info
        for frame in dataset.frames():
            if frame.rgb is None:
                continue
            prompts = [
                object_prompt(oid, spec) for oid, spec in sorted(frame.prompts.items()) if spec
            ]
            result = segment_frame(frame.rgb, "rgb8", prompts, backends, settings)
            truth = ground_truth_from_frame(frame)
            evaluator.add_ground_truth(frame.stamp_ns, frame.width, frame.height, truth)
            records = evaluator.add_result(
                frame.stamp_ns, frame.width, frame.height, predictions_from_frame_result(result)
            )
            labels = {}
            for record in records:
                ros = nodes_iou.get((record.stamp_ns, record.object_id))
                if ros is None or abs(ros["iou_full"] - record.iou_full) > IOU_AGREEMENT:
                    disagreeing += 1
                labels[record.object_id] = f"{record.iou_full:.2f}"
            names = {
                oid: (info.category_name(oid) or str(oid)) if info else str(oid)
                for oid in frame.ground_truth
            }
            by_id = {obj.object_id: obj for obj in result.objects}
            truth_frame = FrameResult(
                frame.width,
                frame.height,
                [
                    ObjectResult(
                        gt.object_id,
                        ObjectStatus.OK,
                        1.0,
                        gt.mask.roi,
                        gt.mask.mask,
                        gt.mask.roi,
                        by_id[gt.object_id].prompt,
                    )
                    for gt in truth
                    if gt.object_id in by_id
                ],
                0.0,
            )
            miou = np.mean([r.iou_full for r in records]) if records else float("nan")
            image_id = info.image_ids.get(frame.stamp_ns, 0) if info else 0
            left = render_overlay(frame.rgb, "rgb8", result, labels)
            right = render_overlay(frame.rgb, "rgb8", truth_frame, names)
            figure = side_by_side(
                left,
                right,
                f"PicoSAM2, {'the whole object from ' if whole_object else ''}one click per "
                f"object (full-frame IoU; mIoU {miou:.2f})",
                "COCO ground truth",
            )
            path = out_dir / f"{image_id:012d}.png"
            cv2.imwrite(str(path), figure)
            figures.append(path)
    return figures, disagreeing


def side_by_side(
    left: np.ndarray, right: np.ndarray, left_title: str, right_title: str
) -> np.ndarray:
    """Two bgr8 panels next to each other under a title strip, scaled to at most
    ``FIGURE_MAX_WIDTH`` wide."""
    gap = np.full((left.shape[0], 8, 3), 255, dtype=np.uint8)
    body = np.concatenate([left, gap, right], axis=1)
    scale = min(1.0, FIGURE_MAX_WIDTH / body.shape[1])
    if scale < 1.0:
        size = (round(body.shape[1] * scale), round(body.shape[0] * scale))
        body = cv2.resize(body, size, interpolation=cv2.INTER_AREA)
    strip = np.full((28, body.shape[1], 3), 255, dtype=np.uint8)
    half = (body.shape[1] + 8) // 2
    for x, text in ((6, left_title), (half + 6, right_title)):
        cv2.putText(strip, text, (x, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, body], axis=0)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


if __name__ == "__main__":
    raise SystemExit(main())
