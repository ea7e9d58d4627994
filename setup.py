"""Python packaging for the development environment (pip install -e .).

In a ROS 2 workspace colcon builds the package with CMakeLists.txt (ament_cmake):
messages, the Python package and the executables under lib/picosam2_ros.
"""

from setuptools import find_packages, setup

setup(
    name="picosam2_ros",
    version="0.1.0",
    description="Promptable segmentation with PicoSAM2 for ROS 2",
    license="Apache-2.0",
    packages=find_packages(include=["picosam2_ros", "picosam2_ros.*"]),
    package_data={
        "picosam2_ros": [
            "models/*.onnx",
            "models/*.md",
            "models/*.json",
            "models/*.zip",
            "models/*.png",
            "data/coco_demo/*.json",
            "data/coco_demo/*.md",
            "data/coco_demo/images/*.jpg",
        ]
    },
    python_requires=">=3.10",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "segmenter_node = picosam2_ros.nodes.entry:segmenter_node",
            "camera_node = picosam2_ros.nodes.entry:camera_node",
            "replay_node = picosam2_ros.nodes.entry:replay_node",
            "evaluator_node = picosam2_ros.nodes.entry:evaluator_node",
            "picosam2-make-bag = picosam2_ros.tools.make_bag:main",
            "picosam2-evaluate = picosam2_ros.tools.evaluate:main",
        ],
    },
)
