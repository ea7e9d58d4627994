"""The nodes' executables: a stop signal during start-up ends the process quietly, even
when it lands inside a C extension's initialisation and comes out as an ImportError."""

from __future__ import annotations

import pytest

from picosam2_ros.nodes import entry


@pytest.fixture(autouse=True)
def _no_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test process keeps its own signal handlers and a fresh start-up state.
    monkeypatch.setattr(entry.signal, "signal", lambda *_: None)
    monkeypatch.setattr(entry, "_stopped_during_startup", False)


def test_a_stop_inside_an_extensions_import_exits_with_code_0(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def import_interrupted(_name: str) -> None:
        try:
            entry._exit_quietly(2, None)
        except SystemExit as stop:
            raise ImportError("initialization failed") from stop

    monkeypatch.setattr(entry.importlib, "import_module", import_interrupted)
    with pytest.raises(SystemExit) as ended:
        entry.evaluator_node()
    assert ended.value.code == 0
    assert ended.value.__cause__ is None


def test_an_import_error_without_a_stop_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_name: str) -> None:
        raise ImportError("no module named onnxruntime")

    monkeypatch.setattr(entry.importlib, "import_module", broken)
    with pytest.raises(ImportError, match="onnxruntime"):
        entry.segmenter_node()
