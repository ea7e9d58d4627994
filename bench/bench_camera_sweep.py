"""Segment everything on the sensor: frames and time per sweep.

The camera's state machine (picosam2_ros.camera.machine) sweeps the grid ROIs over the
picamera2 emulator, paced at ``--rate`` frames/s (30: the IMX500's inference rate), on a
generated 640x480 scene of separated flat objects, with the colour-match model standing
in for the network (or ``--model``). Per grid: the frames from the sweep's first ROI to
the frame that completes it, the grid points run (hierarchical: first + second pass),
the wall time, that time at exactly ``--rate`` (frames / rate), and the objects found.
Each point costs ``settle_frames`` + 1 frames (2 + 1 by default); a standing prompt
takes its turn between two points (``turn_frames`` 2 + settling). Figures only; nothing
is asserted.

    .venv/bin/python bench/bench_camera_sweep.py [--rate 30] [--cases 12:dense,24:hier]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from picosam2_ros.camera import emulator
from picosam2_ros.camera.api import load_camera_api, open_camera
from picosam2_ros.camera.machine import CameraStateMachine, DecodeSettings
from picosam2_ros.camera.scheduler import RoiScheduler
from picosam2_ros.core.everything import EverythingSettings
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.testing.models import build_colour_match_model
from picosam2_ros.testing.scenes import PALETTE, SceneObject, render_scene

W, H = 640, 480
DEFAULT_CASES = "12:dense,12:hier,24:hier,24:dense,12:dense:prompt"
# Separated objects no larger than half a 96 px ROI, each holding a point of the 12 and
# of the 24 points-per-side grid (as in test/camera/test_sweep.py): every grid finds
# each of them once.
OBJECTS = [
    SceneObject("rect", PALETTE[0], 60, 60, 44, 24),
    SceneObject("ellipse", PALETTE[1], 220, 110, 36, 46),
    SceneObject("L", PALETTE[2], 400, 180, 44, 44),
    SceneObject("rect", PALETTE[3], 500, 330, 22, 44),
    SceneObject("ellipse", PALETTE[4], 120, 385, 46, 30),
]


def run_case(
    files: dict[str, Path], rate: float, points: int, hierarchical: bool, prompt: bool
) -> dict[str, float]:
    camera = emulator.attach_camera(
        emulator.EmulatorSettings(
            source=str(files["still"]),
            model=str(files["model"]),
            frame_rate=rate,
            roi_lag_frames=2,
            upload_s=0.0,
        )
    )
    api = load_camera_api(emulated=True)
    imx500, picam2, raw_size = open_camera(
        api, files["network"], camera.camera_id, (W, H), rate, 4, lambda _imx500: None
    )
    machine = CameraStateMachine(
        (W, H),
        PromptBook(8),
        RoiScheduler(2, 2),
        DecodeSettings(),
        ros_now_ns=time.time_ns,
        report=lambda _key, text: print(f"  problem: {text}"),
    )
    machine.camera_opened(imx500, raw_size)
    if prompt:
        with machine.lock:
            machine.book.set(ObjectPrompt.from_point(1, W / 2, H / 2))
            machine.prompt_changed(1)
    machine.configure_sweep(EverythingSettings(points_per_side=points, hierarchical=hierarchical))
    started = time.perf_counter()
    try:
        while True:
            request = picam2.capture_request()
            try:
                outcome = machine.step(machine.read(request.get_metadata()))
            finally:
                request.release()
            if outcome.everything is not None:
                break
    finally:
        picam2.stop()
        picam2.close()
        emulator.detach_camera(camera)
    swept = outcome.everything
    return {
        "frames": swept.frames,
        "points": swept.points_run,
        "first": swept.first_pass_points,
        "second": swept.second_pass_points,
        "wall_s": time.perf_counter() - started,
        "objects": len(swept.result.objects),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=30.0, help="emulator frames per second")
    parser.add_argument(
        "--cases",
        default=DEFAULT_CASES,
        help="POINTS:dense|hier[:prompt], comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="ONNX model (default: colour match)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        network = root / "network.rpk"
        network.write_bytes(b"network package stand-in" * 64)
        image, _masks = render_scene(W, H, OBJECTS)
        still = root / "still"
        still.mkdir()
        cv2.imwrite(str(still / "0000.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        model = args.model or build_colour_match_model(root / "colour.onnx")
        files = {"network": network, "still": still, "model": model}
        print(
            f"{W}x{H}, {len(OBJECTS)} objects, emulator at {args.rate:g} frames/s, "
            "settle_frames 2, turn_frames 2"
        )
        print(
            f"{'grid':>6} {'pass':>6} {'prompt':>6} {'points':>12} {'frames':>7} "
            f"{'at rate s':>9} {'wall s':>7} {'objects':>7}"
        )
        for case in args.cases.split(","):
            parts = case.split(":")
            points, hierarchical, prompt = int(parts[0]), parts[1] == "hier", "prompt" in parts
            r = run_case(files, args.rate, points, hierarchical, prompt)
            split = f"{r['first']:.0f}+{r['second']:.0f}" if hierarchical else f"{r['points']:.0f}"
            print(
                f"{points:>6} {parts[1]:>6} {'yes' if prompt else 'no':>6} {split:>12} "
                f"{r['frames']:>7.0f} {r['frames'] / args.rate:>9.1f} {r['wall_s']:>7.1f} "
                f"{r['objects']:>7.0f}"
            )


if __name__ == "__main__":
    main()
