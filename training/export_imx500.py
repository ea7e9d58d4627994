"""Export a trained PicoSAM2 for the Sony IMX500 (Raspberry Pi AI Camera).

    .venv-imx500/bin/python -m training.export_imx500 --checkpoint RUN/final.pt \\
        --out DIR --calib-data TRAIN_DIR [TRAIN_DIR ...] [--protocol point|box]

Runs in its own environment (``bash scripts/setup_imx500_env.sh`` creates
``.venv-imx500``; the Sony tools pin onnx and onnxruntime older than ``.venv``'s):

1. post-training quantization with Sony's model-compression-toolkit (MCT) for the
   IMX500 target platform capabilities (edge-mdt-tpc), calibrated on training crops
   (the same crops ``training.export`` calibrates its int8 ONNX on);
2. export of the quantized model with MCT's exporter to ONNX with MCT quantizer
   nodes (``DIR/NAME.onnx``), the format ``imxconv-pt`` reads;
3. parity of the MCT-quantized model (PyTorch, and the exported ONNX through
   onnxruntime with the MCT custom ops) against the float model on held-back crops:
   mean and worst mask IoU, pixel agreement, logit error; with ``--val``, also the
   mIoU of both against ground truth as ``training.evaluate`` measures it;
4. ``imxconv-pt -i DIR/NAME.onnx -o DIR --overwrite-output``: ``DIR/packerOut.zip``,
   ``DIR/dnnParams.xml`` (the on-sensor input and output tensors) and
   ``DIR/NAME_MemoryReport.json`` (whether the network fits the sensor's memory).

Writes ``DIR/NAME_export.json`` with the tool versions, the commands, the wall times,
the parity figures and the converter's report. What remains runs only on a Raspberry
Pi: ``imx500-package -i DIR/packerOut.zip -o OUT`` (Debian package ``imx500-tools``)
makes ``OUT/network.rpk``, which picamera2's ``IMX500`` class loads onto the sensor.

Missing tools (MCT, the TPC package, ``imxconv-pt``, Java) end the run at once with a
message naming them and a non-zero exit; ``--no-convert`` stops after step 3 and needs
neither ``imxconv-pt`` nor Java. ``--check-tools`` only checks the tools.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    import torch

    from training.model import PicoSAM2

CONVERTER = "imxconv-pt"
#: Python modules the chain imports, with the distributions that provide them.
TOOL_MODULES = {
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "model_compression_toolkit": "model-compression-toolkit",
    "mct_quantizers": "mct-quantizers",
    "edgemdt_tpc": "edge-mdt-tpc",
}
#: Distributions whose versions go into the report.
REPORTED_DISTRIBUTIONS = (
    "model-compression-toolkit",
    "mct-quantizers",
    "edge-mdt-tpc",
    "edge-mdt-cl",
    "imx500-converter",
    "uni-pytorch",
    "sdspconv",
    "torch",
    "torchvision",
    "onnx",
    "onnxruntime",
    "numpy",
)
SETUP_HINT = (
    "create the IMX500 environment with `bash scripts/setup_imx500_env.sh` and run "
    "`.venv-imx500/bin/python -m training.export_imx500 ...`"
)
DEVICE = "imx500"
#: TPC 1.0 is the IMX500 description edge-mdt-tpc lists as supported by every converter.
DEFAULT_TPC_VERSION = "1.0"
#: MCT's default opset for torch >= 2.4; Edge-MDT supports opsets 15 to 20.
ONNX_OPSET = 20
CALIB_BATCH = 16

# Kept alive for the whole process: see _make_torchvision_importable.
_TORCHVISION_SCHEMAS: list[Any] = []


def find_converter() -> Path | None:
    """``imxconv-pt`` next to this interpreter (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / CONVERTER
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(CONVERTER)
    return Path(found) if found else None


def java_version() -> str | None:
    """First line of ``java -version``, or None without a Java runtime on PATH."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[0] if proc.returncode == 0 and lines else None


def missing_tools(need_converter: bool) -> list[str]:
    """What the chain needs and this environment lacks (empty when complete)."""
    missing = [
        f"Python module {mod!r} (pip package {dist})"
        for mod, dist in TOOL_MODULES.items()
        if importlib.util.find_spec(mod) is None
    ]
    if need_converter:
        if find_converter() is None:
            missing.append(f"{CONVERTER} (pip package imx500-converter[pt])")
        if java_version() is None:
            missing.append("a Java 17 runtime on PATH (imxconv-pt's back end runs on the JVM)")
    return missing


def require_tools(need_converter: bool) -> None:
    """SystemExit naming every missing tool and how to get them."""
    missing = missing_tools(need_converter)
    if missing:
        lines = "\n".join(f"  - {m}" for m in missing)
        raise SystemExit(f"IMX500 export: missing tools:\n{lines}\nTo fix: {SETUP_HINT}.")


def tool_versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in REPORTED_DISTRIBUTIONS:
        with contextlib.suppress(PackageNotFoundError):
            found[dist] = version(dist)
    found["java"] = java_version() or "absent"
    return found


def _make_torchvision_importable() -> str:
    """Let ``import torchvision`` succeed when its compiled ops do not load.

    MCT imports edge-mdt-cl, which refuses to load unless torchvision imports. The only
    torchvision for torch 2.13 on PyPI is a CUDA build whose compiled ops cannot load
    with the CPU torch, and torchvision 0.28 then fails on import while registering
    fake kernels for ``torchvision::nms`` and ``torchvision::qnms``. Defining those two
    schemas (no kernels) lets the import through; nothing in this chain calls them.
    Returns what was done, for the report.
    """
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return "not installed"
    for lib in sorted(Path(spec.origin).parent.glob("_C*.so")):
        try:
            torch.ops.load_library(str(lib))  # type: ignore[no-untyped-call]
        except (OSError, ImportError):
            continue
        return "compiled ops loaded"
    if not _TORCHVISION_SCHEMAS:
        schemas = torch.library.Library("torchvision", "DEF")  # type: ignore[no-untyped-call]
        for op in ("nms", "qnms"):
            schema = f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
            schemas.define(schema)  # type: ignore[no-untyped-call]
        _TORCHVISION_SCHEMAS.append(schemas)
    return "compiled ops do not load with this torch; nms/qnms schemas defined without kernels"


def import_mct() -> Any:
    """``model_compression_toolkit``, imported after the torchvision workaround."""
    _make_torchvision_importable()
    import model_compression_toolkit as mct

    return mct


@contextlib.contextmanager
def _torchscript_onnx_exporter() -> Iterator[None]:
    """Make ``torch.onnx.export`` default to the TorchScript exporter.

    MCT 2.5 (written for torch <= 2.6) calls ``torch.onnx.export`` without ``dynamo=``;
    torch 2.13 then takes the dynamo exporter, which needs onnxscript (not installed) and
    is not what MCT's quantizer-node export was made for.
    """
    import torch.onnx

    original = torch.onnx.export
    torch.onnx.export = functools.partial(original, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = original


def _batches(x: torch.Tensor) -> Iterator[list[torch.Tensor]]:
    for i in range(0, len(x), CALIB_BATCH):
        yield [x[i : i + CALIB_BATCH]]


def quantize(model: PicoSAM2, calib: np.ndarray, tpc_version: str) -> torch.nn.Module:
    """MCT post-training quantization for the IMX500, calibrated on ``calib``."""
    import torch

    mct = import_mct()  # before anything that imports MCT
    from edgemdt_tpc import get_target_platform_capabilities

    tpc = get_target_platform_capabilities(tpc_version=tpc_version, device_type=DEVICE)
    x = torch.from_numpy(np.ascontiguousarray(calib))
    quantized, _info = mct.ptq.pytorch_post_training_quantization(
        copy.deepcopy(model).eval(),
        lambda: _batches(x),
        target_platform_capabilities=tpc,
    )
    return cast("torch.nn.Module", quantized.eval())


def export_mct_onnx(quantized: torch.nn.Module, path: Path, sample: np.ndarray) -> Path:
    """MCT's exporter: ONNX with MCT quantizer nodes (what imxconv-pt converts)."""
    import torch

    mct = import_mct()  # before anything that imports MCT
    from model_compression_toolkit.exporter import (
        PytorchExportSerializationFormat,
        QuantizationFormat,
    )

    x = torch.from_numpy(np.ascontiguousarray(sample[:CALIB_BATCH]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with _torchscript_onnx_exporter():
        mct.exporter.pytorch_export_model(
            quantized,
            save_model_path=str(path),
            repr_dataset=lambda: _batches(x),
            serialization_format=PytorchExportSerializationFormat.ONNX,
            quantization_format=QuantizationFormat.MCTQ,
            onnx_opset_version=ONNX_OPSET,
        )
    if not path.is_file():
        raise SystemExit(f"MCT's exporter wrote no model to {path}")
    return path


def run_torch(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(x), 64):
            out = model(torch.from_numpy(np.ascontiguousarray(x[i : i + 64])))
            outs.append(out.detach().float().numpy())
    return np.concatenate(outs)


def run_mct_onnx(path: Path, x: np.ndarray, threads: int) -> np.ndarray:
    """The exported ONNX through onnxruntime with MCT's quantizer ops registered."""
    import onnxruntime as ort
    from mct_quantizers import get_ort_session_options

    opts = get_ort_session_options()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 64]})[0] for i in range(0, len(x), 64)])


def parity(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """Masks (logit > 0) and logits of ``got`` against the float ``ref``."""
    pa = (ref > 0).reshape(len(ref), -1)
    pb = (got > 0).reshape(len(got), -1)
    inter, union = (pa & pb).sum(1), (pa | pb).sum(1)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    diff = np.abs(ref - got)
    return {
        "mask_iou_mean": float(iou.mean()),
        "mask_iou_min": float(iou.min()),
        "pixel_agreement": float((pa == pb).mean()),
        "logit_abs_err_mean": float(diff.mean()),
        "logit_abs_err_max": float(diff.max()),
    }


def validate(
    model: PicoSAM2, onnx_path: Path, folders: list[str], protocol: str, threads: int
) -> dict[str, Any]:
    """mIoU against ground truth, as ``training.evaluate`` measures it, of the float model
    and of the exported MCT model (plain logits: no box-prior decoding for either)."""
    from training.data import load_coco_folders
    from training.evaluate import (
        build_eval_set,
        evaluate_predictor,
        format_report,
        torch_predictor,
    )

    es = build_eval_set(load_coco_folders([*folders], min_area=1), protocol)
    print(f"{protocol} protocol, {len(es)} instances")
    results: dict[str, Any] = {"data": list(folders), "protocol": protocol, "n": len(es)}
    for label, predict in (
        ("float", torch_predictor(model, threads)),
        ("mct_onnx", lambda x: run_mct_onnx(onnx_path, x, threads)),
    ):
        res = evaluate_predictor(predict, es)
        res.pop("by_category", None)
        results[label] = res
        print(format_report(label, res))
    return results


def run_converter(onnx_path: Path, out_dir: Path, log_path: Path) -> list[str]:
    """``imxconv-pt -i ONNX -o DIR --overwrite-output``, echoed and logged; returns the
    command. SystemExit with the log's tail when the converter fails."""
    converter = find_converter()
    if converter is None:
        raise SystemExit(f"{CONVERTER} not found. To fix: {SETUP_HINT}.")
    cmd = [str(converter), "-i", str(onnx_path), "-o", str(out_dir), "--overwrite-output"]
    print("$ " + " ".join([CONVERTER, *cmd[1:]]), flush=True)
    lines: list[str] = []
    with (
        log_path.open("w") as log,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            lines.append(line.rstrip())
            print("  " + line.rstrip(), flush=True)
        rc = proc.wait()
    if rc != 0:
        tail = "\n".join(lines[-25:])
        raise SystemExit(f"{CONVERTER} failed (exit {rc}); log {log_path}:\n{tail}")
    if not (out_dir / "packerOut.zip").is_file():
        raise SystemExit(f"{CONVERTER} exited 0 but wrote no {out_dir / 'packerOut.zip'}")
    return [CONVERTER, *cmd[1:]]


def read_dnn_params(path: Path) -> dict[str, Any]:
    """Input and output tensors of the converted network from ``dnnParams.xml``."""
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()

    def tensors(tag: str) -> list[dict[str, Any]]:
        found = []
        for t in root.iter(tag):
            dims = sorted(t.iter("dimension"), key=lambda d: int(d.get("ordinal", 0)))
            found.append(
                {
                    "name": t.get("name"),
                    "dims": [int(d.get("size", 0)) for d in dims],
                    "serialization_order": [int(d.get("serializationOrder", 0)) for d in dims],
                    "bits": int(t.get("bitsPerElement", 0)),
                    "format": t.get("format"),
                    "scale": float(t.get("scale", 0)),
                    "shift": int(t.get("shift", 0)),
                }
            )
        return found

    return {"inputs": tensors("inputTensor"), "outputs": tensors("outputTensor")}


def _describe_tensor(t: dict[str, Any]) -> str:
    levels = 2 ** (t["bits"] - 1) if t["format"] == "signed" else 0
    span = ""
    if levels and t["scale"]:
        span = f", range [{-levels * t['scale']:g}, {(levels - 1) * t['scale']:g}]"
    return (
        f"{t['name']} dims {t['dims']} (serialization order {t['serialization_order']}), "
        f"{t['bits']}-bit {t['format']} scale {t['scale']:g}{span}"
    )


def _file_sizes(out_dir: Path, skip: str) -> dict[str, int]:
    return {
        p.name: p.stat().st_size
        for p in sorted(out_dir.iterdir())
        if p.is_file() and p.name != skip
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m training.export_imx500",
        description=(
            "Quantize a PicoSAM2 checkpoint for the IMX500 with Sony's model-compression-"
            "toolkit, export it to ONNX and convert it with imxconv-pt to packerOut.zip "
            "(then, on a Raspberry Pi: imx500-package -> network.rpk). Runs in "
            ".venv-imx500 (bash scripts/setup_imx500_env.sh)."
        ),
    )
    ap.add_argument("--checkpoint", help="final.pt or last.pt of a training run")
    ap.add_argument("--out", type=Path, help="output folder (packerOut.zip and reports)")
    ap.add_argument("--calib-data", nargs="+", metavar="FOLDER", help="TRAINING folder(s)")
    ap.add_argument("--protocol", default="point", help="crop protocol: point or box")
    ap.add_argument("--calib-samples", type=int, default=256, help="calibration crops")
    ap.add_argument(
        "--check-samples", type=int, default=128, help="held-back crops for the parity check"
    )
    ap.add_argument(
        "--val",
        nargs="+",
        metavar="FOLDER",
        help="also report mIoU on these VALIDATION folders (float and MCT model)",
    )
    ap.add_argument(
        "--zoom",
        type=float,
        default=0.0,
        help="share of calibration and check crops cut as zoom windows (the training run's "
        "--zoom): a zoom model runs on windows of any scale on the sensor, so its "
        "quantization is calibrated and checked on them",
    )
    ap.add_argument("--name", help="ONNX / network name (default picosam2_PROTOCOL_imx500)")
    ap.add_argument("--tpc-version", default=DEFAULT_TPC_VERSION, help="edge-mdt-tpc version")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch/onnxruntime")
    ap.add_argument(
        "--no-convert", action="store_true", help="stop after the MCT export and parity check"
    )
    ap.add_argument(
        "--check-tools", action="store_true", help="only check that the tools run; print versions"
    )
    args = ap.parse_args(argv)
    if not 0.0 <= args.zoom <= 1.0:
        ap.error(f"--zoom is a share of the crops, from 0 to 1; got {args.zoom}")
    if not args.check_tools:
        missing = [
            flag
            for flag, value in (
                ("--checkpoint", args.checkpoint),
                ("--out", args.out),
                ("--calib-data", args.calib_data),
            )
            if not value
        ]
        if missing:
            ap.error("the following arguments are required: " + ", ".join(missing))
    return args


def check_tools() -> int:
    """--check-tools: every tool present and importable, versions printed."""
    require_tools(need_converter=True)
    import_mct()
    import edgemdt_tpc  # noqa: F401
    import mct_quantizers  # noqa: F401

    for dist, ver in tool_versions().items():
        print(f"{dist}: {ver}")
    print(f"{CONVERTER}: {find_converter()}")
    print(f"torchvision: {_make_torchvision_importable()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # MCT's progress bars flood logs; tqdm reads this when it is first imported.
    os.environ.setdefault("TQDM_DISABLE", "1")
    if args.check_tools:
        return check_tools()
    require_tools(need_converter=not args.no_convert)

    import torch

    from training.crops import check_protocol
    from training.export import INT8_MIN_MASK_IOU, training_crops
    from training.model import load_weights

    check_protocol(args.protocol)
    name = args.name or f"picosam2_{args.protocol}_imx500"
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    print(f"== loading {args.checkpoint} and {args.calib_samples}+{args.check_samples} crops")
    t = time.perf_counter()
    model = load_weights(args.checkpoint)
    n_crops = args.calib_samples + args.check_samples
    crops = training_crops(args.calib_data, args.protocol, n_crops, args.seed, args.zoom)
    calib, check = crops[: args.calib_samples], crops[args.calib_samples :]
    if len(check) == 0:
        check = calib
    timings["load_s"] = time.perf_counter() - t

    print(f"== MCT post-training quantization, {DEVICE} TPC {args.tpc_version}, {len(calib)} crops")
    t = time.perf_counter()
    quantized = quantize(model, calib, args.tpc_version)
    timings["mct_ptq_s"] = time.perf_counter() - t

    onnx_path = out / f"{name}.onnx"
    print(f"== MCT export to {onnx_path} (ONNX opset {ONNX_OPSET}, MCTQ quantizer nodes)")
    t = time.perf_counter()
    export_mct_onnx(quantized, onnx_path, calib)
    timings["mct_export_s"] = time.perf_counter() - t

    print(f"== parity against the float model on {len(check)} held-back crops")
    t = time.perf_counter()
    ref = run_torch(model, check)
    checks = {
        "mct_pytorch": parity(ref, run_torch(quantized, check)),
        "mct_onnx": parity(ref, run_mct_onnx(onnx_path, check, args.threads)),
    }
    for what, p in checks.items():
        print(
            f"{what}: mask IoU vs float mean {p['mask_iou_mean']:.4f} "
            f"(worst crop {p['mask_iou_min']:.3f}), pixel agreement {p['pixel_agreement']:.4f}, "
            f"|logit error| mean {p['logit_abs_err_mean']:.3f} max {p['logit_abs_err_max']:.3f}"
        )
    timings["parity_s"] = time.perf_counter() - t
    report_path = out / f"{name}_export.json"
    report: dict[str, Any] = {
        "tools": tool_versions(),
        "torchvision": _make_torchvision_importable(),
        "command": [
            "python",
            "-m",
            "training.export_imx500",
            *(argv if argv is not None else sys.argv[1:]),
        ],
        "checkpoint": str(args.checkpoint),
        "calibration": {
            "folders": list(args.calib_data),
            "protocol": args.protocol,
            "calibration_crops": len(calib),
            "check_crops": len(check),
            "zoom_share": args.zoom,
            "seed": args.seed,
        },
        "mct": {"target": DEVICE, "tpc_version": args.tpc_version, "onnx_opset": ONNX_OPSET},
        "parity_vs_float": checks,
        "timings_s": timings,
    }
    if args.val:
        print(f"== mIoU against ground truth on {' '.join(args.val)}")
        t = time.perf_counter()
        report["validation"] = validate(model, onnx_path, args.val, args.protocol, args.threads)
        timings["validation_s"] = time.perf_counter() - t
    agree = checks["mct_onnx"]["mask_iou_mean"]
    if agree < INT8_MIN_MASK_IOU:
        report_path.write_text(json.dumps(report, indent=1))
        raise SystemExit(
            f"the MCT-quantized model disagrees with the float model: mean mask IoU "
            f"{agree:.3f} < {INT8_MIN_MASK_IOU}; not converting"
        )

    if not args.no_convert:
        print(f"== converting with {CONVERTER} (Java back end; minutes)")
        t = time.perf_counter()
        report["converter_command"] = run_converter(onnx_path, out, out / f"{name}_imxconv.log")
        timings["imxconv_s"] = time.perf_counter() - t
        memory_path = out / f"{name}_MemoryReport.json"
        if memory_path.is_file():
            report["memory_report"] = json.loads(memory_path.read_text())
            mem = report["memory_report"].get("Memory Report", {})
            print(
                f"memory: {mem.get('Memory Usage')} of {mem.get('Total Memory Available On Chip')}"
                f" ({mem.get('Memory Utilization')}), fits in chip: {mem.get('Fit In Chip')}"
            )
        report["dnn_params"] = read_dnn_params(out / "dnnParams.xml")
        for kind in ("inputs", "outputs"):
            for tensor in report["dnn_params"].get(kind, []):
                print(f"{kind[:-1]} tensor: {_describe_tensor(tensor)}")

    timings["total_s"] = time.perf_counter() - t_all
    report["files"] = _file_sizes(out, skip=report_path.name)
    report_path.write_text(json.dumps(report, indent=1))
    for fname, size in report["files"].items():
        print(f"  {out / fname}: {size} bytes")
    print(f"== done in {timings['total_s']:.0f} s; report {report_path}")
    if args.no_convert:
        return 0
    if report.get("memory_report", {}).get("Memory Report", {}).get("Fit In Chip") is False:
        raise SystemExit("imxconv-pt reports that the network does not fit the IMX500's memory")
    print(
        "On the Raspberry Pi (imx500-tools): imx500-package -i packerOut.zip -o OUT "
        "-> OUT/network.rpk for picamera2's IMX500(...)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
