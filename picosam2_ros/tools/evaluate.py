"""``picosam2-evaluate``: the PicoSAM2 benchmark on a COCO-derived bag, offline.

Reads the bag (``picosam2-make-bag``) with ``DatasetBag``, segments every frame with
that frame's prompts through ``core.pipeline.segment_frame`` and onnxruntime (the same
code and settings the segmenter node runs: point crops of 96 px, box prompts through
the box model with margin 1.1), and scores the results with the same
``picosam2_ros.evaluation`` code the evaluator node uses, so the per-instance IoUs of
this tool and of the ROS path (replay -> segmenter -> evaluator) are identical.
No ROS graph is involved.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from picosam2_ros.backends.base import InferenceBackend, ModelLoadError
from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.bags.layout import TOPIC_GROUND_TRUTH, PromptSpec
from picosam2_ros.bags.reader import BagError, DatasetBag
from picosam2_ros.bags.typestore import MessageDefinitionsNotFoundError
from picosam2_ros.core.geometry import MODEL_INPUT_SIZE
from picosam2_ros.core.pipeline import CropSettings, segment_frame
from picosam2_ros.core.prompts import LABEL_FOREGROUND, ObjectPrompt
from picosam2_ros.core.whole_object import WholeObjectSettings
from picosam2_ros.evaluation.protocol import CropProtocol
from picosam2_ros.evaluation.report import format_summary
from picosam2_ros.evaluation.session import EvaluationSession
from picosam2_ros.resources import resolve_model_paths
from picosam2_ros.tools.arguments import non_negative_int, positive_int

#: Exit codes.
EXIT_OK = 0
EXIT_NOTHING_EVALUATED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

EPILOG = """\
Metrics, on the paper's protocol (IoU inside the 96-pixel crop around each point
prompt, or a box prompt's square crop) and on full frames: mIoU and paper_map, the
PicoSAM2 paper's "mAP@[.5:.95]" (the share of instances with IoU >= t, averaged over
t = 0.50:0.05:0.95; NOT COCO AP); per category, per object size (small < 32^2,
medium < 96^2 px, large), missing instances, latency percentiles and throughput.
The report (report.json) and plots (iou_histogram.png, category_miou.png,
overlays.png) go to --report.

exit status: 0 evaluated; 1 nothing could be evaluated; 2 bad input (bag missing,
unreadable, empty or without the expected topics; model missing or not loadable; bad
option); 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="picosam2-evaluate",
        description="Evaluate PicoSAM2 on a COCO-derived bag (picosam2-make-bag) offline: "
        "segment every prompt with onnxruntime and report mIoU and the paper's mAP on the "
        "paper's crop protocol and on full frames.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bag", required=True, type=Path, metavar="BAG", help="bag folder, .mcap or .db3"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="M",
        help="ONNX model for point prompts (default: the shipped point model; with "
        "--whole-object the shipped zoom model)",
    )
    parser.add_argument(
        "--box-model",
        type=Path,
        default=None,
        metavar="M",
        help="ONNX model for box prompts (default: the shipped box model, else --model)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path("evaluation_report"),
        metavar="DIR",
        help="folder for report.json and the plots (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="onnxruntime intra-op threads (default: %(default)s)",
    )
    parser.add_argument(
        "--max-images",
        type=positive_int,
        default=None,
        metavar="N",
        help="evaluate only the first N images of the bag",
    )
    parser.add_argument(
        "--overlays",
        type=non_negative_int,
        default=8,
        metavar="K",
        help="best and worst instances shown in overlays.png (0 = no grid; default: %(default)s)",
    )
    parser.add_argument(
        "--whole-object",
        action="store_true",
        help="point prompts return the whole object (the segmenter's whole_object "
        "parameter: two point-model windows find its extent, the box model segments it); "
        "default: the paper's single 96-px crop",
    )
    parser.add_argument("--no-plots", action="store_true", help="write report.json only")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    return parser


def _fail(code: int, message: str) -> int:
    print(f"picosam2-evaluate: error: {message}", file=sys.stderr)
    return code


def object_prompt(object_id: int, spec: PromptSpec) -> ObjectPrompt:
    """A bag prompt as the segmenter node builds it from the ``Prompt`` message."""
    if spec.point is not None:
        points = np.array([spec.point], dtype=np.float64)
        labels = np.array([LABEL_FOREGROUND], dtype=np.uint8)
        return ObjectPrompt(object_id, points, labels)
    return ObjectPrompt(object_id, np.empty((0, 2)), np.empty((0,), dtype=np.uint8), box=spec.box)


def load_backends(
    model: Path | None, box_model: Path | None, threads: int, whole_object: bool = False
) -> dict[str, InferenceBackend]:
    """Point and box backends (one shared when both paths are the same file); the
    default point model depends on ``whole_object`` (resources.resolve_model_paths).

    Raises ModelLoadError with a message naming the file and what to do.
    """
    paths = resolve_model_paths(str(model or ""), str(box_model or ""), whole_object)
    for kind, path in paths.items():
        if not path.is_file():
            default = (kind == "point" and model is None) or (
                kind == "box" and box_model is None and model is None
            )
            hint = (
                " (the default model is not shipped in this installation; pass --model)"
                if default
                else ""
            )
            raise ModelLoadError(f"{kind} model not found: {path}{hint}")
    point = OnnxBackend(paths["point"], threads=threads)
    box = point if paths["box"] == paths["point"] else OnnxBackend(paths["box"], threads=threads)
    return {"point": point, "box": box}


def run(args: argparse.Namespace) -> int:
    try:
        backends = load_backends(args.model, args.box_model, args.threads, args.whole_object)
    except ModelLoadError as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    settings = CropSettings(
        point_side_px=MODEL_INPUT_SIZE,
        whole_object=WholeObjectSettings() if args.whole_object else None,
    )
    session = EvaluationSession(
        CropProtocol(point_side=settings.point_side_px, box_margin=settings.box_margin),
        overlay_count=0 if args.no_plots else args.overlays,
    )
    started = time.perf_counter()
    segment_s = 0.0
    frames_done = 0
    prompts_without_point = 0
    try:
        with DatasetBag(args.bag) as bag:
            if bag.info is not None:
                session.evaluator.set_dataset_info(bag.info)
            total = len(bag.info.image_ids) if bag.info is not None else None
            if total is None:
                total = bag.bag.topics[TOPIC_GROUND_TRUTH].count
            if args.max_images is not None:
                total = min(total, args.max_images)
            bar = tqdm(
                total=total,
                desc="frames",
                unit="frame",
                disable=True if args.no_progress else None,
            )
            for frame in bag.frames():
                if args.max_images is not None and frames_done >= args.max_images:
                    break
                frames_done += 1
                bar.update(1)
                if frame.has_ground_truth:
                    session.add_dataset_frame(frame)
                if frame.rgb is None or not frame.has_ground_truth:
                    continue  # counted: its ground truth stays without a result
                prompts = []
                for oid, spec in sorted(frame.prompts.items()):
                    if spec is None:
                        prompts_without_point += 1
                        continue
                    prompts.append(object_prompt(oid, spec))
                t0 = time.perf_counter()
                result = segment_frame(frame.rgb, "rgb8", prompts, backends, settings)
                elapsed = time.perf_counter() - t0
                segment_s += elapsed
                session.add_frame_result(
                    frame.stamp_ns, result, image=frame.rgb, processing_ms=elapsed * 1000.0
                )
                bar.set_postfix(instances=len(session.evaluator.records))
            bar.close()
            stats = bag.stats
            info = bag.info
            describe = bag.bag.describe()
    except (BagError, MessageDefinitionsNotFoundError) as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    wall_s = time.perf_counter() - started
    instances = len(session.evaluator.records)
    source: dict[str, Any] = {
        "tool": "picosam2-evaluate",
        "bag": str(Path(args.bag).resolve()),
        "bag_topics": describe,
        "models": {kind: dict(getattr(b, "info", {})) for kind, b in backends.items()},
        "crop_settings": {
            "point_side_px": settings.point_side_px,
            "box_margin": settings.box_margin,
            "threshold": settings.threshold,
            "whole_object": (
                None if settings.whole_object is None else asdict(settings.whole_object)
            ),
        },
        "threads": args.threads,
        "max_images": args.max_images,
        "frames_read": frames_done,
        "bag_reading": {
            "incomplete_frames": stats.incomplete_frames,
            "frames_without_image": stats.frames_without_image,
            "prompts_without_ground_truth": stats.prompts_without_ground_truth,
            "ground_truth_without_prompt": stats.ground_truth_without_prompt,
            "duplicate_messages": stats.duplicate_messages,
            "prompts_without_foreground_point_or_box": prompts_without_point,
        },
        "dataset_counts": info.raw.get("counts") if info is not None else None,
        "segment_s": segment_s,
        "instances_per_s_segmentation_only": instances / segment_s if segment_s > 0 else None,
    }
    try:
        report, files = session.write(
            args.report, source=source, wall_s=wall_s, plots=not args.no_plots
        )
    except OSError as exc:
        return _fail(EXIT_BAD_INPUT, f"cannot write the report to {args.report}: {exc}")
    print(format_summary(report))
    print("wrote " + ", ".join(str(f) for f in files))
    if instances == 0:
        return _fail(EXIT_NOTHING_EVALUATED, "no instance could be evaluated")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted; no report written")


if __name__ == "__main__":
    sys.exit(main())
