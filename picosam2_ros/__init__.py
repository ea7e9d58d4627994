"""Promptable segmentation with PicoSAM2 for ROS 2."""

from pkgutil import extend_path

# The generated messages (picosam2_ros.msg, picosam2_ros.srv) may be installed in a
# different site directory than this source tree (development environment), so the
# package spans every `picosam2_ros` directory on sys.path.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
