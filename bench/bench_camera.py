"""camera_node's host cost per frame, with the emulated sensor's own time left out.

The node runs with the picamera2 emulator at 1280x960 and 30 frames/s on a generated
scene, with 1 and then 4 standing prompts, and a consumer node in another process
subscribed to camera_info and segmentation, and per case to image_raw, mask and
overlay (the node builds those three only while someone subscribes). The node times
each frame from the moment ``capture_request`` returns: what the emulator does inside
``capture_request`` (scaling the frame, running the model on the ROI, pacing) is the
camera's work on a real AI Camera and is not counted.

Stages: capture (make_array, only for image_raw or overlay, + get_metadata), decode
(KPI + get_outputs + tensor -> logits), paste (mask into the main stream, tracking,
next ROI, union mask), convert (numpy -> messages), publish, overlay (only while
someone subscribes to it). Target: 2 ms per frame with one prompt. Figures only;
nothing is asserted.

    .venv/bin/python bench/bench_camera.py [--frames 150] [--width 1280 --height 960]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_MS = 2.0


def subscriber(overlay: bool, image: bool, mask: bool) -> int:
    """The consumer side, in its own process: subscribes to every output until killed."""
    import rclpy
    from picosam2_ros.msg import Segmentation
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node("bench_camera_consumer")
    for msg_type, topic in (
        *([(Image, "image_raw")] if image else []),
        (CameraInfo, "camera_info"),
        *([(Image, "mask")] if mask else []),
        (Segmentation, "segmentation"),
        *([(Image, "overlay")] if overlay else []),
    ):
        node.create_subscription(msg_type, topic, lambda _m: None, 10)
    with contextlib.suppress(KeyboardInterrupt, ExternalShutdownException):
        rclpy.spin(node)
    return 0


def run(
    frames: int,
    width: int,
    height: int,
    prompts: int,
    overlay: bool,
    image: bool = True,
    mask: bool = True,
) -> dict[str, object]:
    import rclpy
    from geometry_msgs.msg import Point
    from picosam2_ros.msg import Prompt
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from picosam2_ros.nodes.camera_node import STAGES, CameraNode
    from picosam2_ros.testing.models import build_colour_match_model
    from picosam2_ros.testing.scenes import random_scene

    seed, count = 1, 4
    scene_w, scene_h = 4056 // 3, 3040 // 3  # what the emulator's scene source renders
    _, objects, _ = random_scene(scene_w, scene_h, count, seed)
    consumer = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--subscriber",
            *(["--overlay"] if overlay else []),
            *([] if image else ["--no-image"]),
            *([] if mask else ["--no-mask"]),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        network = Path(tmp) / "picosam2.rpk"
        network.write_bytes(b"network package stand-in")
        model = build_colour_match_model(Path(tmp) / "colour.onnx")
        context = Context()
        rclpy.init(context=context)
        params = {
            "network": str(network),
            "emulator_source": f"scene:{seed}:{count}",
            "emulator_model": str(model),
            "emulator_upload_s": 0.0,
            "width": width,
            "height": height,
            "diagnostics_period": 1.0,
        }
        node = CameraNode(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
        )
        client = rclpy.create_node("bench_camera_prompter", context=context)
        prompt_pub = client.create_publisher(Prompt, "prompts", 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(client)
        stop = threading.Event()

        def spin() -> None:
            while not stop.is_set():
                executor.spin_once(timeout_sec=0.1)

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        try:
            wanted = [node._seg_pub] + ([node._image_pub] if image else [])
            wanted += [node._overlay_pub] if overlay else []
            wanted += [node._mask_pub] if mask else []
            while prompt_pub.get_subscription_count() == 0 or any(
                p.get_subscription_count() == 0 for p in wanted
            ):
                time.sleep(0.05)
            sx, sy = width / scene_w, height / scene_h
            for i, obj in enumerate(objects[:prompts]):
                msg = Prompt(object_id=i + 1)
                cx, cy = (obj.x + obj.width / 2) * sx, (obj.y + obj.height / 2) * sy
                msg.points = [Point(x=cx, y=cy)]
                msg.labels = bytes([1])
                prompt_pub.publish(msg)
            while len(node._book) < prompts:
                time.sleep(0.05)
            time.sleep(1.0)  # warm-up: first turns, DDS matching, caches
            timings = node.stage_timings()
            for window in timings.values():
                window._values.clear()
            results_before = node._counts["results"]
            frames_before = node._counts["frames"]
            while timings["total"].count < frames:
                time.sleep(0.1)
            figures: dict[str, object] = {
                name: (timings[name].mean(), timings[name].percentile(50)) for name in STAGES
            }
            figures["total"] = (
                timings["total"].mean(),
                timings["total"].percentile(50),
                timings["total"].percentile(90),
            )
            figures["cpu"] = timings["total_cpu"].mean()
            figures["results"] = node._counts["results"] - results_before
            figures["frames"] = node._counts["frames"] - frames_before
            figures["sensor_s_per_frame"] = node._emulated_camera.sensor_seconds / max(
                node._counts["frames"], 1
            )
        finally:
            stop.set()
            spinner.join(timeout=5)
            executor.shutdown()
            node.destroy_node()
            client.destroy_node()
            rclpy.shutdown(context=context)
            consumer.terminate()
            consumer.wait(timeout=10)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames measured per case")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument(
        "--udp", action="store_true", help="Fast DDS defaults instead of the 10 MB SHM profile"
    )
    parser.add_argument("--subscriber", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--overlay", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-image", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-mask", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber:
        return subscriber(args.overlay, not args.no_image, not args.no_mask)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))
    root = Path(__file__).resolve().parents[1]
    os.environ.setdefault("AMENT_PREFIX_PATH", str(root / ".venv"))
    # A 1280x960 frame (3.7 MB) does not fit Fast DDS's default 512 KB shared-memory
    # segment; without the shipped 10 MB profile it goes over UDP (README, Fast DDS).
    if "--udp" not in sys.argv:
        os.environ.setdefault(
            "FASTRTPS_DEFAULT_PROFILES_FILE", str(root / "config" / "fastdds_shm.xml")
        )
    sys.path.insert(0, str(root))

    print(
        f"camera_node host cost per frame, {args.width}x{args.height} bgr8, emulated IMX500 at "
        f"30 fps, {args.frames} frames per case; emulator sensor time excluded"
    )
    print(
        f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}, Fast DDS profile: "
        f"{os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE', 'default (UDP for large frames)')}"
    )
    # (prompts, overlay, image_raw, mask subscribed). image_raw, mask and overlay are
    # built only while subscribed; the last cases are a robot stack that consumes
    # `segmentation` (every object's mask in its crop) and not the full frames.
    cases = [
        (1, False, True, True),
        (4, False, True, True),
        (1, True, True, True),
        (4, True, True, True),
        (1, False, False, True),
        (1, False, False, False),
        (4, False, False, False),
    ]
    header = "prompts overlay image_raw mask | "
    header += " ".join(f"{s:>8}" for s in ("capture", "decode", "paste"))
    header += " " + " ".join(f"{s:>8}" for s in ("convert", "publish", "overlay"))
    header += " | mean ms  p50 ms  p90 ms  cpu ms | ratio to 2 ms | results/frames"
    # The first node of the process pays one-time costs (imports, first shared-memory
    # segments, page faults): one unreported case first.
    run(30, args.width, args.height, 1, False)
    print(header)
    for prompts, overlay, image, mask in cases:
        f = run(args.frames, args.width, args.height, prompts, overlay, image, mask)
        stages = " ".join(
            f"{f[s][0]:8.3f}"  # type: ignore[index]
            for s in ("capture", "decode", "paste", "convert", "publish", "overlay")
        )
        mean, p50, p90 = f["total"]  # type: ignore[misc]
        cpu = float(f["cpu"])  # type: ignore[arg-type]
        print(
            f"{prompts:7d} {'yes' if overlay else 'no':>7} {'yes' if image else 'no':>9} "
            f"{'yes' if mask else 'no':>4} | "
            f"{stages} | {mean:7.3f} {p50:7.3f} "
            f"{p90:7.3f} {cpu:7.3f} | {mean / TARGET_MS:13.2f} | {f['results']}/{f['frames']}"
            f"   (sensor emulation {1000 * float(f['sensor_s_per_frame']):.1f} ms/frame, excluded)"  # type: ignore[arg-type]
        )
    print(
        "stage columns and mean: wall-clock ms per frame; cpu: the capture thread's CPU ms per "
        "frame; ratio = mean / 2 ms target (< 1 meets it). Subscribers run in another process."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
