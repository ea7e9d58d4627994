"""IMX500 export CLI in the development environment, which lacks the Sony tools: --help
works and a run stops at once with a clear message and a non-zero exit. The export
itself needs .venv-imx500 (scripts/setup_imx500_env.sh) and is not run here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from training import export_imx500

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training.export_imx500", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_runs_without_the_tools() -> None:
    proc = _run("--help")
    assert proc.returncode == 0, proc.stderr
    for flag in ("--checkpoint", "--out", "--calib-data", "--protocol", "--calib-samples"):
        assert flag in proc.stdout


def test_zoom_share_out_of_range_is_refused() -> None:
    proc = _run("--checkpoint", "c.pt", "--out", "x", "--calib-data", "d", "--zoom", "1.5")
    assert proc.returncode == 2
    assert "--zoom is a share of the crops, from 0 to 1; got 1.5" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_required_arguments() -> None:
    proc = _run("--out", "x")
    assert proc.returncode == 2
    assert "--checkpoint" in proc.stderr and "--calib-data" in proc.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("model_compression_toolkit") is not None,
    reason="this environment has the IMX500 tools",
)
def test_missing_tools_exit_clearly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run("--checkpoint", "missing.pt", "--out", str(out), "--calib-data", "none")
    assert proc.returncode != 0
    assert "missing tools" in proc.stderr
    assert "model-compression-toolkit" in proc.stderr
    assert "setup_imx500_env.sh" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists(), "nothing is written before the tools are found"


def test_missing_converter_and_java_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_imx500, "find_converter", lambda: None)
    monkeypatch.setattr(export_imx500, "java_version", lambda: None)
    missing = export_imx500.missing_tools(need_converter=True)
    assert any("imxconv-pt" in m for m in missing)
    assert any("Java" in m for m in missing)
    assert not any("imxconv-pt" in m for m in export_imx500.missing_tools(need_converter=False))
    with pytest.raises(SystemExit, match="imxconv-pt"):
        export_imx500.require_tools(need_converter=True)


def test_dnn_params_summary(tmp_path: Path) -> None:
    xml = tmp_path / "dnnParams.xml"
    xml.write_text(
        '<dnnParams><networks><network name="m"><outputTensors>'
        '<outputTensor name="out:0" bitsPerElement="8" shift="0" scale="0.125" '
        'format="signed"><dimensions>'
        '<dimension size="1" serializationOrder="0" ordinal="0"/>'
        '<dimension size="96" serializationOrder="1" ordinal="1"/>'
        '<dimension size="96" serializationOrder="2" ordinal="2"/>'
        "</dimensions></outputTensor></outputTensors></network></networks></dnnParams>"
    )
    params = export_imx500.read_dnn_params(xml)
    assert params["inputs"] == []
    (out,) = params["outputs"]
    assert out["dims"] == [1, 96, 96] and out["scale"] == 0.125 and out["bits"] == 8
    assert "range [-16, 15.875]" in export_imx500._describe_tensor(out)
