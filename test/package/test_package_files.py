"""What colcon, `ros2 run` and `ros2 launch` rely on, checked from the files themselves.

`launch` and `launch_ros` do not install from PyPI, so the launch files are checked by
reading them: every LaunchConfiguration they use is declared, every executable they
start is installed, every config file they name exists.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


def installed_programs() -> set[str]:
    cmake = (ROOT / "CMakeLists.txt").read_text()
    block = re.search(r"install\(PROGRAMS(.*?)DESTINATION lib/\$\{PROJECT_NAME\}", cmake, re.S)
    assert block, "CMakeLists.txt installs no programs under lib/picosam2_ros"
    return {Path(p).name for p in block.group(1).split()}


def console_scripts() -> set[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = " in node.value:
            scripts.add(node.value.split(" = ")[0].strip())
    return scripts


def test_every_ros2_run_executable_is_installed_by_cmake_and_on_the_dev_path() -> None:
    programs = installed_programs()
    assert "segmenter_node" in programs
    for name in programs:
        script = ROOT / "scripts" / name
        assert script.is_file(), f"{name} is installed but scripts/{name} is missing"
        assert script.stat().st_mode & 0o111, f"scripts/{name} is not executable"
        assert script.read_text().startswith("#!/usr/bin/env python3")
    assert programs <= console_scripts(), "every ros2 run executable is also a console script"


def test_messages_listed_in_cmake_are_the_msg_and_srv_files() -> None:
    cmake = (ROOT / "CMakeLists.txt").read_text()
    listed = set(re.findall(r'"((?:msg|srv)/\w+\.(?:msg|srv))"', cmake))
    on_disk = {str(p.relative_to(ROOT)) for p in [*ROOT.glob("msg/*.msg"), *ROOT.glob("srv/*.srv")]}
    assert listed == on_disk


def test_package_xml_declares_what_the_code_imports() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "picosam2_ros"
    deps = {e.text for e in root if e.tag.endswith("depend")}
    for needed in (
        "rclpy",
        "sensor_msgs",
        "geometry_msgs",
        "std_msgs",
        "std_srvs",
        "diagnostic_msgs",
        "rosidl_default_generators",
        "rosidl_default_runtime",
        "launch_ros",
    ):
        assert needed in deps, needed
    assert root.find("export/build_type").text == "ament_cmake"
    groups = [e.text for e in root.findall("member_of_group")]
    assert "rosidl_interface_packages" in groups


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_arguments_executables_and_config_exist(launch_file: Path) -> None:
    tree = ast.parse(launch_file.read_text())
    declared: set[str] = set()
    used: set[str] = set()
    executables: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        first = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if name == "DeclareLaunchArgument":
            declared.add(first)
            assert any(k.arg == "description" for k in node.keywords), first
        elif name == "LaunchConfiguration":
            used.add(first)
        elif name == "Node":
            for kw in node.keywords:
                if kw.arg == "executable":
                    executables.add(kw.value.value)
                if kw.arg == "package":
                    assert kw.value.value == "picosam2_ros"
    assert used <= declared, f"undeclared launch arguments: {used - declared}"
    assert executables and executables <= installed_programs()
    for ref in re.findall(r'"config"\s*/\s*"([\w.]+)"', launch_file.read_text()):
        assert (ROOT / "config" / ref).is_file(), ref
    compile(launch_file.read_text(), str(launch_file), "exec")


def test_config_files_use_ros_parameter_layout_and_known_parameters() -> None:
    import yaml

    from picosam2_ros.nodes.everything import EVERYTHING_PARAMS
    from picosam2_ros.nodes.segmenter_node import PARAMS

    data = yaml.safe_load((ROOT / "config" / "segmenter.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    known = {spec.name: spec.default for spec in (*PARAMS, *EVERYTHING_PARAMS)}
    assert set(params) == set(known)
    for name, value in params.items():
        assert type(value) is type(known[name]), name
