"""launch/camera.launch.py and config/camera.yaml, checked from the files themselves
(`launch` and `launch_ros` do not install from PyPI, so the launch file is read as an AST)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from picosam2_ros.nodes.camera_node import PARAMS

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch" / "camera.launch.py"


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) == name
    ]


def first_arg(call: ast.Call) -> object:
    return call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else None


def test_launch_file_declares_its_arguments_and_starts_the_installed_camera_node() -> None:
    text = LAUNCH.read_text()
    tree = ast.parse(text)
    declared = {first_arg(c) for c in calls(tree, "DeclareLaunchArgument")}
    for call in calls(tree, "DeclareLaunchArgument"):
        assert any(k.arg == "description" for k in call.keywords), first_arg(call)
    assert {"namespace", "network", "params_file", "emulator_source"} <= declared
    used = {first_arg(c) for c in calls(tree, "LaunchConfiguration")}
    assert used <= declared, f"undeclared launch arguments: {used - declared}"
    [node] = calls(tree, "Node")
    keywords = {k.arg: k.value for k in node.keywords}
    assert ast.literal_eval(keywords["package"]) == "picosam2_ros"
    assert ast.literal_eval(keywords["executable"]) == "camera_node"
    # The parameter overrides it passes are parameters the node declares.
    names = {spec.name for spec in PARAMS}
    overrides = [
        ast.literal_eval(k)
        for d in ast.walk(keywords["parameters"])
        if isinstance(d, ast.Dict)
        for k in d.keys
        if k is not None
    ]
    assert overrides and set(overrides) <= names
    cmake = (ROOT / "CMakeLists.txt").read_text()
    block = re.search(r"install\(PROGRAMS(.*?)DESTINATION", cmake, re.S)
    assert block and "scripts/camera_node" in block.group(1).split()
    script = ROOT / "scripts" / "camera_node"
    assert script.stat().st_mode & 0o111 and script.read_text().startswith("#!/usr/bin/env python3")
    assert '"camera_node = picosam2_ros.nodes.entry:camera_node"' in (ROOT / "setup.py").read_text()
    for ref in re.findall(r'"config"\s*/\s*"([\w.]+)"', text):
        assert (ROOT / "config" / ref).is_file(), ref
    compile(text, str(LAUNCH), "exec")


def test_config_file_sets_exactly_the_declared_parameters_with_their_types() -> None:
    data = yaml.safe_load((ROOT / "config" / "camera.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    known = {spec.name: spec.default for spec in PARAMS}
    assert set(params) == set(known)
    for name, value in params.items():
        assert type(value) is type(known[name]), name
        assert value == known[name], f"{name}: config and declared default differ"
