#!/usr/bin/env bash
# Installs ROS 2 Jazzy's launch tooling (launch, launch_ros, launch_testing, the ros2
# command with its launch/run/pkg/node/topic/param/service verbs) into the virtualenv,
# from their unmodified sources in ROS2_VENDOR (default ../shared/vendor/ros2-jazzy).
# They are not on PyPI; on a ROS 2 install they come with the distribution. Without the
# sources nothing is installed and the tests that need `ros2 launch` are skipped.
set -euo pipefail
VENV=${VENV:-.venv}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
vendor=${ROS2_VENDOR:-$root/../shared/vendor/ros2-jazzy}
if [ ! -d "$vendor/launch_ros" ]; then
  echo "== launch tooling: no sources at $vendor; ros2 launch is not installed" \
    "(its tests will be skipped)"
  exit 0
fi
venv=$(cd "$VENV" && pwd)
py="$venv/bin/python"
pip=("$py" -m pip install --quiet --disable-pip-version-check)
# pip knows the ament_index_python that launch_ros requires by its wheel's name
# (ros-ament-index-python) and says so; the module is there.
quiet_pip() {
  "${pip[@]}" "$@" 2>&1 | { grep -vE "is ignored: it is neither a file nor a directory|\
dependency resolver does not currently take into account|requires ament_index_python, which is not installed" || true; }
}

echo "== installing ROS 2 launch tooling from $vendor"
# pip builds a source folder in place; copies keep the vendor folder untouched.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python_pkgs=(launch launch_xml launch_yaml launch_testing launch_ros launch_testing_ros
             ros2cli ros2launch ros2pkg ros2run ros2node ros2topic ros2param ros2service)
for pkg in "${python_pkgs[@]}"; do
  cp -r "$vendor/$pkg" "$work/$pkg"
done
quiet_pip --no-deps "${python_pkgs[@]/#/$work/}"

# rosidl_runtime_py (for ros2 topic/param/service) comes as its bare module folder.
site=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf "$site/rosidl_runtime_py"
cp -r "$vendor/rosidl_runtime_py" "$site/rosidl_runtime_py"

# composition_interfaces (launch_ros imports it) is a rosidl package: built like this
# package's own messages, into the virtualenv.
export AMENT_PREFIX_PATH="$venv"
build="$work/composition_interfaces-build"
log="$root/build/composition_interfaces.log"
mkdir -p "$root/build"
{ cmake -S "$vendor/composition_interfaces" -B "$build" -DCMAKE_PREFIX_PATH="$venv" \
    -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF \
  && cmake --build "$build" -j2 && cmake --install "$build"; } >"$log" 2>&1 \
  || { tail -40 "$log"; exit 1; }

# Last: lark 1.x replaces the lark/ folder that lark-parser 0.12 wrote.
quiet_pip -r requirements/launch.txt -c requirements/constraints.txt

"$venv/bin/ros2" launch --help >/dev/null
echo "== launch tooling OK: $("$venv/bin/ros2" --help | head -1)"
