"""What colcon, `ros2 run` and `ros2 launch` rely on, checked from the files themselves.

`launch` and `launch_ros` do not install from PyPI, so the launch files are checked by
reading them: every LaunchConfiguration they use is declared, every executable they
start is installed, every config file they name exists.
"""

from __future__ import annotations

import ast
import re
import sys
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


#: rosdep key of each third-party module the package imports. ROS packages are their own
#: key; the -pip keys install from PyPI (rosdep.yaml defines those rosdistro lacks).
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "onnxruntime": "python3-onnxruntime-pip",
    "onnx": "python3-onnx-pip",
    "rosbags": "python3-rosbags-pip",
    "pycocotools": "python3-pycocotools-pip",
}
ROS_PACKAGES = {
    "rclpy",
    "rcl_interfaces",
    "ament_index_python",
    "builtin_interfaces",
    "std_msgs",
    "std_srvs",
    "sensor_msgs",
    "geometry_msgs",
    "diagnostic_msgs",
    "rosgraph_msgs",
    "launch",
    "launch_ros",
}


def third_party_imports(files: list[Path]) -> dict[str, Path]:
    """Top-level modules imported anywhere in ``files`` (also inside functions), outside
    the standard library and this package, each with one file importing it."""
    found: dict[str, Path] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "picosam2_ros":
                    found.setdefault(top, path)
    return found


def test_package_xml_declares_every_module_the_package_and_launch_files_import() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "picosam2_ros"
    runtime = {e.text for e in root if e.tag in ("depend", "exec_depend")}
    files = [*sorted((ROOT / "picosam2_ros").rglob("*.py")), *LAUNCH_FILES]
    imported = third_party_imports(files)
    assert {"rclpy", "numpy", "onnxruntime", "rosbags", "launch_ros"} <= set(imported)
    for module, path in sorted(imported.items()):
        key = module if module in ROS_PACKAGES else ROSDEP_KEYS.get(module)
        where = path.relative_to(ROOT)
        assert key, f"{where} imports {module}: give it a rosdep key here and in package.xml"
        assert key in runtime, f"{where} imports {module}: package.xml lacks {key}"
    assert {"rosidl_default_generators", "ament_cmake"} <= {e.text for e in root}
    assert root.find("export/build_type").text == "ament_cmake"
    groups = [e.text for e in root.findall("member_of_group")]
    assert "rosidl_interface_packages" in groups


def test_pip_keys_missing_from_rosdistro_are_defined_in_rosdep_yaml_and_pinned() -> None:
    import yaml

    defined = yaml.safe_load((ROOT / "rosdep.yaml").read_text())
    pinned = (ROOT / "requirements" / "dev.txt").read_text().split()
    rosdistro_keys = {"python3-onnxruntime-pip"}
    for key in sorted(set(ROSDEP_KEYS.values()) - rosdistro_keys):
        if not key.endswith("-pip"):
            continue
        assert key in defined, f"rosdep.yaml does not define {key}"
        for distro in ("debian", "ubuntu"):
            [package] = defined[key][distro]["pip"]["packages"]
            assert any(line.startswith(f"{package}==") for line in pinned), package


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
