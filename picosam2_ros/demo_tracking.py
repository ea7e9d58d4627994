"""`make demo-tracking`: segmenter_node on a generated moving scene, end to end over DDS.

It starts the real segmenter_node executable in its own process, publishes a generated
640x480 sequence of moving, asymmetric objects, prompts each object once (with
tracking on), and checks every returned mask against the ground truth. It writes overlay
PNGs and a JSON summary, and prints IoU and latency.

The model is the ONNX test model the package builds (picosam2_ros.testing.models: it
segments the region whose colour matches the crop centre), not trained PicoSAM2
weights; the demo exercises the ROS path, not the network's quality.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="picosam2-demo-tracking",
        description="Run segmenter_node on a generated moving scene and report IoU and latency.",
    )
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument("--frames", type=int, default=40, help="frames to publish (default 40)")
    parser.add_argument("--rate", type=float, default=15.0, help="publish rate in Hz (default 15)")
    parser.add_argument("--save-every", type=int, default=8, help="save every Nth overlay")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    from picosam2_ros.resources import config_file

    # Both processes of the demo share this machine: a shared-memory segment large
    # enough for a VGA frame keeps reliable delivery fast and lossless (README).
    shm_profile = config_file("fastdds_shm.xml")
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(shm_profile))

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_system_default
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from picosam2_ros.core.metrics import mask_iou
    from picosam2_ros.core.postprocess import recentre_point
    from picosam2_ros.io.image import array_to_image, image_to_array
    from picosam2_ros.msg import Prompt, Segmentation
    from picosam2_ros.testing.models import build_colour_match_model
    from picosam2_ros.testing.scenes import SceneObject, render_scene

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    (out / "overlays").mkdir(parents=True)
    model = build_colour_match_model(out / "colour_match_test_model.onnx")
    print(
        "picosam2_ros demo: segmenter_node on a generated 640x480 scene.\n"
        f"  model: {model} (the ONNX TEST model the package builds: it segments the region\n"
        "  whose colour matches the crop centre; trained PicoSAM2 weights are not used here)\n"
        f"  Fast DDS profile: {os.environ['FASTRTPS_DEFAULT_PROFILES_FILE']}"
    )

    # Three asymmetric objects moving across the frame.
    def objects_at(t: int) -> list[SceneObject]:
        return [
            SceneObject("rect", (230, 60, 50), x=60 + 5 * t, y=120, width=70, height=24),
            SceneObject("ellipse", (60, 200, 90), x=420, y=60 + 4 * t, width=30, height=56),
            SceneObject("L", (70, 110, 240), x=300 - 3 * t, y=330, width=44, height=60),
        ]

    node_cmd = [
        sys.executable,
        "-m",
        "picosam2_ros.nodes.segmenter_node",
        "--ros-args",
        "-p",
        f"point_model:={model}",
        "-p",
        "image_qos:=reliable",
        "-r",
        "image:=/demo/image",
        "-r",
        "prompts:=/demo/prompts",
        "-r",
        "segmentation:=/demo/segmentation",
        "-r",
        "overlay:=/demo/overlay",
    ]
    segmenter = subprocess.Popen(node_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("picosam2_demo")
    results: dict[int, Segmentation] = {}
    overlays: dict[int, Image] = {}
    received_at: dict[int, float] = {}

    def stamp_key(header: Header) -> int:
        return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)

    def on_result(msg: Segmentation) -> None:
        results[stamp_key(msg.header)] = msg
        received_at[stamp_key(msg.header)] = time.perf_counter()

    def on_overlay(msg: Image) -> None:
        overlays[stamp_key(msg.header)] = msg

    qos = qos_profile_system_default
    image_pub = node.create_publisher(Image, "/demo/image", qos)
    prompt_pub = node.create_publisher(Prompt, "/demo/prompts", 10)
    node.create_subscription(Segmentation, "/demo/segmentation", on_result, 50)
    node.create_subscription(Image, "/demo/overlay", on_overlay, 50)
    diagnostics: dict[str, str] = {}

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("segmentation"):
                diagnostics.clear()
                diagnostics.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin_for(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            executor.spin_once(timeout_sec=0.005)

    try:
        deadline = time.perf_counter() + 20.0
        while image_pub.get_subscription_count() == 0 or prompt_pub.get_subscription_count() == 0:
            if segmenter.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError("segmenter_node did not start")
            spin_for(0.05)
        while node.count_publishers("/demo/overlay") == 0:
            spin_for(0.05)

        # One round trip before the sequence: the first inference and the result
        # topic's discovery must not cost the sequence its first frames.
        warm = Header(frame_id="demo_camera")
        blank = np.zeros((480, 640, 3), np.uint8)
        while not results:
            image_pub.publish(array_to_image(blank, "bgr8", warm))
            spin_for(0.2)
            if segmenter.poll() is not None:
                raise RuntimeError("segmenter_node exited")
        results.clear()

        _, first_masks = render_scene(640, 480, objects_at(0))
        for object_id, mask in enumerate(first_masks, start=1):
            # The most interior pixel: the crop centre stays on the object as it moves.
            x, y = recentre_point(mask) or (0.0, 0.0)
            prompt = Prompt(object_id=object_id, track=True)
            prompt.points = [_point(x, y)]
            prompt.labels = bytes([1])
            prompt_pub.publish(prompt)
        spin_for(0.5)

        published_at: dict[int, float] = {}
        truths: dict[int, list[np.ndarray]] = {}
        period = 1.0 / args.rate
        for t in range(args.frames):
            rgb, masks = render_scene(640, 480, objects_at(t), noise=4.0, seed=t)
            header = Header(frame_id="demo_camera")
            key = 1_000_000_000 + t * int(period * 1e9)
            header.stamp.sec, header.stamp.nanosec = divmod(key, 1_000_000_000)
            truths[key] = masks
            published_at[key] = time.perf_counter()
            image_pub.publish(array_to_image(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", header))
            spin_for(period)
        wait_end = time.perf_counter() + 5.0
        while len(results) < len(truths) and time.perf_counter() < wait_end:
            spin_for(0.05)
        spin_for(1.2)  # one more diagnostics period, with the final counts
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        segmenter.send_signal(signal.SIGINT)
        try:
            log, _ = segmenter.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            segmenter.kill()
            log, _ = segmenter.communicate()
        (out / "segmenter_node.log").write_bytes(log or b"")

    ious: dict[int, list[float]] = {1: [], 2: [], 3: []}
    latencies = []
    saved = []
    for index, (key, masks) in enumerate(sorted(truths.items())):
        res = results.get(key)
        if res is None:
            continue
        latencies.append((received_at[key] - published_at[key]) * 1000.0)
        for obj in res.objects:
            full = np.zeros((480, 640), bool)
            c = obj.crop
            if c.width:
                full[c.y_offset : c.y_offset + c.height, c.x_offset : c.x_offset + c.width] = (
                    image_to_array(obj.mask) > 0
                )
            ious[obj.object_id].append(mask_iou(full, masks[obj.object_id - 1]))
        if key in overlays and index % args.save_every == 0:
            path = out / "overlays" / f"frame_{index:03d}.png"
            cv2.imwrite(str(path), image_to_array(overlays[key]))
            saved.append(str(path))

    summary = {
        "model": "colour-match ONNX test model (not PicoSAM2 weights)",
        "frames_published": len(truths),
        "results_received": len(results),
        "mean_iou_per_object": {k: float(np.mean(v)) if v else None for k, v in ious.items()},
        "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_ms_p99": float(np.percentile(latencies, 99)) if latencies else None,
        "overlays": saved,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"\n  frames published {len(truths)}, results received {len(results)}; node: "
        f"frames in {diagnostics.get('frames_in', '?')} (with 1 warm-up), "
        f"dropped while busy {diagnostics.get('frames_dropped', '?')}"
    )
    for object_id, values in ious.items():
        if values:
            print(
                f"  object {object_id}: mean IoU {np.mean(values):.3f} over {len(values)} "
                f"frames (tracking on; min {np.min(values):.3f})"
            )
    if latencies:
        print(
            f"  image -> result latency over DDS: p50 {summary['latency_ms_p50']:.1f} ms, "
            f"p99 {summary['latency_ms_p99']:.1f} ms"
        )
    print(f"  overlays: {', '.join(saved)}")
    print(f"  summary: {out / 'summary.json'}; node log: {out / 'segmenter_node.log'}")
    return 0 if len(results) == len(truths) else 1


def _point(x: float, y: float):  # type: ignore[no-untyped-def]
    from geometry_msgs.msg import Point

    return Point(x=float(x), y=float(y))


if __name__ == "__main__":
    raise SystemExit(main())
