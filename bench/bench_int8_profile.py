"""Where the time goes in the shipped fp32 and int8 ONNX models: onnxruntime's profiler,
batch 1, 1 thread, after warm-up; time per op type (ms per crop and share) and the
slowest nodes, then interleaved latency (median) and the int8 speed-up. The int8 model
is also profiled with its nearest upsamples rewritten as uint8 copies
(training.export.upsample_as_copies, bit-identical output), which is what
training.export.quantize_int8 now writes. Figures only; nothing asserted.

    .venv/bin/python bench/bench_int8_profile.py [--runs 300] [--seconds 3] [--extra M.onnx]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from picosam2_ros.resources import MODELS_DIR

WARMUP = 30
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_summary() -> str:
    flags: set[str] = set()
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    have = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in CPU_FLAGS)
    return f"{name}, {os.cpu_count()} CPUs; {have}"


def layer_class(node: str, op: str) -> str:
    """PicoSAM2 layer kind of a profiled node (fp32 nodes are named by their output)."""
    if op in ("Resize", "Upsample", "Expand") or "Resize" in node:
        return "nearest x2 upsample"
    if op in ("Add", "QLinearAdd"):
        return "skip Add"
    if "/down." in node:
        return "stride-2 3x3 conv"
    if "/dw/" in node or re.search(r"/(enc0|enc\.\d|dec\.\d)/Relu_output", node):
        return "depthwise 3x3 conv"
    if re.search(r"Relu_1_output|/pw/|/proj\.|/head/|logits", node):
        return "pointwise 1x1 conv"
    return "layout, Reshape, Q/DQ"


def session(path: Path, threads: int, profile_prefix: str | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def profiles(
    paths: dict[str, Path], runs: int, tmp: str
) -> dict[str, tuple[dict[str, float], dict[str, tuple[str, float]]]]:
    """For each model: (ms by op type, (op type, ms) by node) at batch 1, 1 thread. The
    models run in turns of 10 so that background load falls on all alike, and each
    node's figure is its median over the profiled runs (robust to load spikes)."""
    sessions = {}
    for i, (name, path) in enumerate(paths.items()):
        sessions[name] = session(path, 1, str(Path(tmp) / f"model{i}"))
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    for sess in sessions.values():
        for _ in range(WARMUP):
            sess.run(None, {"image": x})
    for _ in range(max(1, runs // 10)):
        for sess in sessions.values():
            for _ in range(10):
                sess.run(None, {"image": x})
    result = {}
    for name, sess in sessions.items():
        events = json.loads(Path(sess.end_profiling()).read_text())
        model_runs = [e for e in events if e.get("name") == "model_run"]
        first = model_runs[WARMUP]["ts"] if len(model_runs) > WARMUP else 0
        durations: dict[str, list[float]] = defaultdict(list)
        ops: dict[str, str] = {}
        for e in events:
            if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
                continue
            if e["ts"] >= first:
                node = e["name"][: -len("_kernel_time")]
                durations[node].append(e["dur"] / 1000.0)
                ops[node] = e["args"]["op_name"]
        by_node = {n: (ops[n], float(np.median(d))) for n, d in durations.items()}
        by_type: dict[str, float] = defaultdict(float)
        for op, ms in by_node.values():
            by_type[op] += ms
        result[name] = (dict(by_type), by_node)
    return result


def interleaved_ms(paths: list[Path], threads: int, seconds: float) -> list[float]:
    """Median ms per crop at batch 1, the models run in turns of 10 so that background
    load falls on all of them alike."""
    sessions = [session(p, threads) for p in paths]
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    times: list[list[float]] = [[] for _ in sessions]
    for s in sessions:
        for _ in range(10):
            s.run(None, {"image": x})
    end = time.perf_counter() + seconds * len(sessions)
    while time.perf_counter() < end:
        for s, t in zip(sessions, times, strict=True):
            for _ in range(10):
                start = time.perf_counter()
                s.run(None, {"image": x})
                t.append(time.perf_counter() - start)
    return [float(np.median(t)) * 1000.0 for t in times]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300, help="profiled runs per model")
    ap.add_argument("--seconds", type=float, default=3.0, help="latency time per model")
    ap.add_argument("--top", type=int, default=8, help="slowest nodes listed per model")
    ap.add_argument("--extra", type=Path, nargs="*", default=[], help="more ONNX models")
    args = ap.parse_args(argv)

    from training.export import upsample_as_copies

    print(f"CPU: {cpu_summary()}")
    print(f"onnxruntime {ort.__version__}; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        rewritten = Path(tmp) / "int8_upsample_copies.onnx"
        shutil.copy(MODELS_DIR / "picosam2_point_int8.onnx", rewritten)
        upsample_as_copies(rewritten)
        models = {
            "fp32": MODELS_DIR / "picosam2_point.onnx",
            "int8": MODELS_DIR / "picosam2_point_int8.onnx",
            "int8 + upsample copies": rewritten,
            **{p.name: p for p in args.extra},
        }
        found = profiles(models, args.runs, tmp)
        for name, (by_type, by_node) in found.items():
            total = sum(by_type.values())
            print(f"\n{name}: kernels {total:.2f} ms per run (sum of node medians)")
            print("| op type | ms | share | nodes |")
            print("| --- | --- | --- | --- |")
            for op, ms in sorted(by_type.items(), key=lambda kv: -kv[1]):
                n = sum(1 for o, _ in by_node.values() if o == op)
                print(f"| {op} | {ms:.3f} | {100 * ms / total:.1f}% | {n} |")
            print(f"slowest {args.top} nodes:")
            for node, (op, ms) in sorted(by_node.items(), key=lambda kv: -kv[1][1])[: args.top]:
                print(f"  {node:<44} {op:<14} {ms:.3f} ms")
        classes: dict[str, dict[str, float]] = {}
        for name, (_, by_node) in found.items():
            for node, (op, ms) in by_node.items():
                per = classes.setdefault(layer_class(node, op), {})
                per[name] = per.get(name, 0.0) + ms
        names = list(found)
        print("\nby layer kind, ms per run (speed-up over fp32):")
        print("| layer kind | " + " | ".join(names) + " |")
        print("| --- " * (len(names) + 1) + "|")
        for kind, per in sorted(classes.items(), key=lambda kv: -kv[1].get("fp32", 0.0)):
            ref = per.get("fp32", 0.0)
            cells = [f"{per.get(n, 0.0):.2f}" for n in names[:1]] + [
                f"{per.get(n, 0.0):.2f} ({ref / per[n]:.2f}x)" if per.get(n) else "0"
                for n in names[1:]
            ]
            print(f"| {kind} | " + " | ".join(cells) + " |")
        fp32_kernels = sum(found["fp32"][0].values())
        print("\nspeed-up over fp32 from the profiles (kernel time):")
        for name, (by_type, _) in found.items():
            if name != "fp32":
                print(f"  {name}: {fp32_kernels / sum(by_type.values()):.2f}x")
        print("\ninterleaved latency, batch 1, median ms per crop (speed-up over fp32):")
        by_threads = {t: interleaved_ms(list(models.values()), t, args.seconds) for t in (1, 2)}
        print("| model | 1 thread | 2 threads |")
        print("| --- | --- | --- |")
        for i, name in enumerate(models):
            cells = [
                f"{ms[i]:.2f} ({ms[0] / ms[i]:.2f}x)" if i else f"{ms[i]:.2f}"
                for ms in by_threads.values()
            ]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print("\ntarget: int8 >= 1.5x faster than fp32 at batch 1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
