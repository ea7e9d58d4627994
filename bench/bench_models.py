"""Per-prompt latency of the shipped models: fp32 and int8 ONNX through onnxruntime, with
1 and 2 threads, batch 1 and 8, next to PyTorch eager (fp32, same architecture).
Target: int8 at least 1.5x faster than fp32 at batch 1. Figures only; nothing asserted.

    .venv/bin/python bench/bench_models.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from picosam2_ros.resources import MODELS_DIR

REPEATS = 60


def median_ms(fn: Callable[[], object]) -> float:
    """Lowest of three medians: the figure least disturbed by other load."""
    for _ in range(10):
        fn()
    medians = []
    for _ in range(3):
        times = []
        for _ in range(REPEATS // 3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        medians.append(float(np.median(times)))
    return min(medians) * 1000.0


def onnx_ms(path: str, threads: int, batch: np.ndarray) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return median_ms(lambda: sess.run(None, {name: batch}))


def torch_ms(threads: int, batch: np.ndarray) -> float | None:
    try:
        import torch

        from training.model import PicoSAM2
    except ImportError:
        return None
    torch.set_num_threads(threads)
    model = PicoSAM2().eval()
    tensor = torch.from_numpy(batch)
    with torch.inference_mode():
        return median_ms(lambda: model(tensor))


def main() -> None:
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores)")
    rng = np.random.default_rng(0)
    fp32, int8 = (
        str(MODELS_DIR / "picosam2_point.onnx"),
        str(MODELS_DIR / "picosam2_point_int8.onnx"),
    )
    print(
        "\n| batch | threads | fp32 ONNX ms/prompt | int8 ONNX ms/prompt | int8 speed-up "
        "| PyTorch eager ms/prompt |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for batch_size in (1, 8):
        batch = rng.standard_normal((batch_size, 3, 96, 96)).astype(np.float32)
        for threads in (1, 2):
            a = onnx_ms(fp32, threads, batch) / batch_size
            b = onnx_ms(int8, threads, batch) / batch_size
            t = torch_ms(threads, batch)
            eager = f"{t / batch_size:.2f}" if t is not None else "torch not installed"
            print(f"| {batch_size} | {threads} | {a:.2f} | {b:.2f} | {a / b:.2f}x | {eager} |")
    print("\ntarget: int8 >= 1.5x faster than fp32 at batch 1")


if __name__ == "__main__":
    main()
