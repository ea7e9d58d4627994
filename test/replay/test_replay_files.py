"""config/replay.yaml and launch/replay.launch.py, checked from the files (launch and
launch_ros do not install from PyPI)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from rclpy.parameter import Parameter

from picosam2_ros.nodes.replay_node import PARAMS

ROOT = Path(__file__).resolve().parents[2]


def test_replay_yaml_sets_known_parameters_with_their_types() -> None:
    data = yaml.safe_load((ROOT / "config" / "replay.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    specs = {spec.name: spec for spec in PARAMS}
    assert set(params) <= set(specs)
    # Everything but the string lists (which YAML cannot leave unset) is written down.
    scalars = {n for n, s in specs.items() if not isinstance(s.default, Parameter.Type)}
    assert set(params) == scalars
    for name, value in params.items():
        assert type(value) is type(specs[name].default), name
        assert specs[name].check(value) is None, name
    assert params["mode"] == "lockstep"


def test_launch_declares_what_it_uses_and_wires_the_topics() -> None:
    text = (ROOT / "launch" / "replay.launch.py").read_text()
    tree = ast.parse(text)
    declared: dict[str, bool] = {}
    used: set[str] = set()
    nodes: dict[str, dict[str, ast.expr]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        first = node.args[0] if node.args else None
        if name == "DeclareLaunchArgument" and isinstance(first, ast.Constant):
            declared[first.value] = any(k.arg == "description" for k in node.keywords)
        elif name == "LaunchConfiguration" and isinstance(first, ast.Constant):
            used.add(first.value)
        elif name == "Node":
            kws = {str(k.arg): k.value for k in node.keywords}
            nodes[ast.literal_eval(kws["executable"])] = kws
    assert all(declared.values()), declared
    assert used <= set(declared)
    for arg in ("bag", "point_model", "box_model", "mode", "rate", "report_dir"):
        assert arg in declared, arg
    assert set(nodes) == {"replay_node", "segmenter_node", "evaluator_node"}

    def remaps(executable: str) -> dict[str, str]:
        pairs = {}
        for elt in nodes[executable]["remappings"].elts:  # type: ignore[attr-defined]
            src, dst = elt.elts
            pairs[src.value] = dst.value if isinstance(dst, ast.Constant) else ast.unparse(dst)
        return pairs

    seg = remaps("segmenter_node")
    assert seg["image"] == "LaunchConfiguration('image_topic')" and seg["prompts"] == "/prompts"
    evaluator = remaps("evaluator_node")
    assert evaluator["ground_truth"] == "/ground_truth"
    assert evaluator["segmentation"] == seg["segmentation"] == "/segmentation"
    assert remaps("replay_node")["segmentation"] == "/segmentation"
    compile(text, "replay.launch.py", "exec")
