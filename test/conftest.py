"""Test-wide setup: every test process gets its own ROS 2 graph.

Two test runs on one ROS_DOMAIN_ID see each other's traffic, so each process picks a
domain from its pid before anything imports rclpy, and discovery stays on localhost.
"""

from __future__ import annotations

import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)
