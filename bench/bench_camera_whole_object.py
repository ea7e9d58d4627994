"""Point -> whole object on the emulated camera, against the host's decoding.

Replays still photographs through the emulated IMX500 (picosam2_ros.camera.emulator,
picamera2's API) and the camera's state machine (picosam2_ros.camera.machine): each
image of ``--data`` (a COCO-format folder, by default coco-val2017-sample) less the
demo photographs (``--exclude-images``, as picosam2-make-bag and picosam2-evaluate take
it) is shown to the camera as its scene, and each non-crowd instance's centre point
(the paper's prompt, ``picosam2-make-bag --prompt center``) is clicked on its own:
the click is set, frames run until its first result, the click is removed. Per click:
the full-frame IoU with the ground truth, the frames from the click to its result, the
network runs taken.

Rows (full-frame mIoU overall and by COCO size: small < 32^2, medium < 96^2 px):

- camera, whole object, ``--fits`` (``centred`` / ``translated``: how a search window
  becomes a sensor ROI, camera.whole_object);
- camera, whole_object off: the ROI around the click (the camera today);
- host, whole object, the camera's one network for every run (a box run, under settings
  that end with one, decoded with the box, weight from the model's metadata): what the
  sensor's constraints cost;
- host, whole object, the zoom model + the box model: ``picosam2-evaluate --whole-object``
  on the same instances (MODEL_CARD.md, "Zoom model"); the same search as the row above
  under the defaults, which end on a point window.

The sensor has a 4:3 field of view; a photograph of another shape is placed at the
top-left of the smallest 4:3 canvas holding it, the rest filled with the ImageNet mean
(the host's fill outside the frame), so neither axis is stretched and image coordinates
stay the same; the camera's IoU is taken on that canvas (the ground truth is empty in
the fill). Figures only; nothing is asserted. Emulated frames are not paced.

    .venv/bin/python bench/bench_camera_whole_object.py [--limit-images N] [--fits centred]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.bags.coco import CocoDataset, PromptMode, load_image
from picosam2_ros.camera import emulator
from picosam2_ros.camera.api import load_camera_api, open_camera
from picosam2_ros.camera.machine import CameraStateMachine, DecodeSettings
from picosam2_ros.camera.scheduler import RoiScheduler
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.core.pipeline import CropSettings, FrameResult, segment_frame, union_mask
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.core.window import MEAN_RGB
from picosam2_ros.evaluation.protocol import SIZE_CLASSES, size_class
from picosam2_ros.resources import MODELS_DIR, demo_image_ids, resolve_model_paths

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "coco-val2017-sample"


@dataclass
class Click:
    image_id: int
    object_id: int
    point: tuple[float, float]
    mask: np.ndarray  # ground truth, at the photograph's size
    size: str


@dataclass
class Score:
    iou: float
    size: str
    frames: int = 0
    runs: int = 0


def canvas_4_3(rgb: np.ndarray) -> np.ndarray:
    """The photograph at the top-left of the smallest 4:3 canvas holding it."""
    h, w = rgb.shape[:2]
    ch = max(h, math.ceil(w * 3 / 4))
    cw = max(w, math.ceil(ch * 4 / 3))
    canvas = np.empty((ch, cw, 3), np.uint8)
    canvas[:] = MEAN_RGB
    canvas[:h, :w] = rgb
    return canvas


def load_clicks(
    data: Path, excluded: frozenset[int], limit: int
) -> list[tuple[np.ndarray, list[Click]]]:
    dataset = CocoDataset.load(data / "annotations.json")
    cats = dataset.category_ids(None)
    images = []
    for image_id in dataset.image_ids():
        if image_id in excluded:
            continue
        record = dataset.images[image_id]
        loaded = load_image(data / "images" / record.file_name, record.width, record.height)
        if not hasattr(loaded, "rgb"):
            continue
        clicks = []
        for inst in dataset.instances(record, category_ids=cats, prompt=PromptMode.CENTER):
            assert inst.prompt.point is not None
            clicks.append(
                Click(image_id, inst.object_id, inst.prompt.point, inst.mask, size_class(inst.area))
            )
        images.append((loaded.rgb, clicks))
        if limit and len(images) >= limit:
            break
    return images


def camera_scores(
    images: list[tuple[np.ndarray, list[Click]]],
    model: Path,
    whole_object: bool,
    fit: str,
    settle: int,
    max_frames: int,
) -> list[Score]:
    weight = OnnxBackend(model).box_prior_weight
    with tempfile.TemporaryDirectory() as tmp:
        network = Path(tmp) / "network.rpk"
        network.write_bytes(b"network package stand-in")
        camera = emulator.attach_camera(
            emulator.EmulatorSettings(
                source="scene:0:1", model=str(model), frame_rate=1e6, roi_lag_frames=settle,
                upload_s=0.0,
            )
        )  # fmt: skip
        scores: list[Score] = []
        try:
            for rgb, clicks in images:
                canvas = canvas_4_3(rgb)
                camera.show(emulator.still_source(canvas))
                scores.extend(
                    _clicks_on_camera(
                        camera, network, canvas, clicks, weight, whole_object, fit, settle,
                        max_frames,
                    )
                )  # fmt: skip
        finally:
            emulator.detach_camera(camera)
    return scores


def _clicks_on_camera(
    camera: emulator.EmulatedCamera,
    network: Path,
    canvas: np.ndarray,
    clicks: list[Click],
    weight: float,
    whole_object: bool,
    fit: str,
    settle: int,
    max_frames: int,
) -> list[Score]:
    height, width = canvas.shape[:2]
    imx500, picam2, raw_size = open_camera(
        load_camera_api(emulated=True), network, camera.camera_id, (width, height), 0.0, 4,
        lambda _imx500: None,
    )  # fmt: skip
    settings = DecodeSettings(
        box_prior_weight=weight, whole_object=whole_object, whole_object_fit=fit
    )
    machine = CameraStateMachine(
        (width, height), PromptBook(8, 1000), RoiScheduler(2, settle), settings,
        ros_now_ns=lambda: 1, report=lambda key, text: None,
    )  # fmt: skip
    machine.camera_opened(imx500, raw_size)
    scores = []
    try:
        for click in clicks:
            with machine.lock:
                machine.book.set(ObjectPrompt.from_point(click.object_id, *click.point))
                machine.prompt_changed(click.object_id)
            runs_before = machine.searches.runs
            got = None
            frames = 0
            while frames < max_frames:
                frames += 1
                request = picam2.capture_request()
                try:
                    outcome = machine.step(machine.read(request.get_metadata()))
                finally:
                    request.release()
                if outcome.fresh:
                    got = outcome.objects[0].result
                    break
            truth = np.zeros((height, width), bool)
            truth[: click.mask.shape[0], : click.mask.shape[1]] = click.mask
            pred = union_mask(FrameResult(width, height, [got], 0.0)) > 0 if got else truth & False
            runs = machine.searches.runs - runs_before if whole_object else 1
            scores.append(Score(mask_iou(pred, truth), click.size, frames, runs))
            with machine.lock:
                machine.book.remove(click.object_id)
                machine.prompt_changed(click.object_id)
    finally:
        picam2.stop()
        picam2.close()
    return scores


def host_scores(
    images: list[tuple[np.ndarray, list[Click]]], point: Path, box: Path
) -> list[Score]:
    point_backend = OnnxBackend(point)
    box_backend = point_backend if box == point else OnnxBackend(box)
    backends = {"point": point_backend, "box": box_backend}
    settings = CropSettings(whole_object=WholeObjectSettings())
    scores = []
    for rgb, clicks in images:
        prompts = [ObjectPrompt.from_point(c.object_id, *c.point) for c in clicks]
        result = segment_frame(rgb, "rgb8", prompts, backends, settings)
        by_id = {o.object_id: o for o in result.objects}
        h, w = rgb.shape[:2]
        for c in clicks:
            pred = union_mask(FrameResult(w, h, [by_id[c.object_id]], 0.0)) > 0
            scores.append(Score(mask_iou(pred, c.mask), c.size))
    return scores


def report(name: str, scores: list[Score], seconds: float, camera: bool) -> None:
    by_size: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        by_size[s.size].append(s.iou)
    sizes = "  ".join(
        f"{k} {statistics.fmean(by_size[k]):.3f} ({len(by_size[k])})"
        for k in SIZE_CLASSES
        if by_size[k]
    )
    line = f"{name:<44} mIoU {statistics.fmean(s.iou for s in scores):.3f}  {sizes}"
    if camera:
        frames = [s.frames for s in scores]
        runs = [s.runs for s in scores]
        line += (
            f"  frames/click {statistics.fmean(frames):.2f} (max {max(frames)})"
            f"  runs/click {statistics.fmean(runs):.2f}"
        )
    print(f"{line}  [{seconds:.0f} s]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="COCO-format folder")
    parser.add_argument(
        "--model",
        type=Path,
        default=resolve_model_paths("", "", whole_object=True)["point"],
        help="the network on the sensor (default: the shipped zoom model)",
    )
    parser.add_argument(
        "--box-model",
        type=Path,
        default=MODELS_DIR / "picosam2_box.onnx",
        help="the host's box model (its whole-object row)",
    )
    parser.add_argument("--fits", default="centred,translated", help="window -> ROI rules")
    parser.add_argument("--settle", type=int, default=2, help="settle frames = ROI lag")
    parser.add_argument("--max-frames", type=int, default=60, help="frames a click may take")
    parser.add_argument("--limit-images", type=int, default=0, help="first N images (0: all)")
    parser.add_argument("--include-demo", action="store_true", help="keep the 11 demo photographs")
    parser.add_argument("--skip-host", action="store_true", help="camera rows only")
    args = parser.parse_args()

    excluded = frozenset() if args.include_demo else demo_image_ids()
    images = load_clicks(args.data, excluded, args.limit_images)
    count = sum(len(c) for _, c in images)
    print(f"{len(images)} images, {count} instances, centre-point clicks; model {args.model.name}")
    rows = [(f"camera whole object, fit {fit}", True, fit) for fit in args.fits.split(",")]
    rows.append(("camera whole_object off (ROI around the click)", False, "centred"))
    for name, whole, fit in rows:
        start = time.perf_counter()
        scores = camera_scores(images, args.model, whole, fit, args.settle, args.max_frames)
        report(name, scores, time.perf_counter() - start, camera=True)
    if args.skip_host:
        return
    for name, box in (
        (f"host whole object, {args.model.name} for every run", args.model),
        (f"host whole object, + {args.box_model.name}", args.box_model),
    ):
        start = time.perf_counter()
        report(name, host_scores(images, args.model, box), time.perf_counter() - start, False)


if __name__ == "__main__":
    main()
