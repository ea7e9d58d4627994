"""Start-up shared by the package's executables."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.exceptions import InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

NodeT = TypeVar("NodeT")

#: What a node constructor raises for bad start-up parameters.
STARTUP_ERRORS: tuple[type[Exception], ...] = (ValueError, InvalidParameterValueException)


def create_or_exit(
    factory: Callable[[], NodeT],
    program: str,
    errors: tuple[type[Exception], ...] = STARTUP_ERRORS,
) -> NodeT:
    """Build the node; on a start-up error print one line naming it and exit with code 2."""
    try:
        return factory()
    except errors as err:
        print(f"{program}: error: {err}", file=sys.stderr)
        rclpy.try_shutdown()
        raise SystemExit(2) from None


def spin_until_shutdown(
    factory: Callable[[], Node],
    program: str,
    args: list[str] | None = None,
    errors: tuple[type[Exception], ...] = STARTUP_ERRORS,
) -> None:
    """The ``main`` of a node that serves until Ctrl-C or shutdown: init, build it (bad
    start-up parameters exit with code 2), spin, then tear down in order."""
    rclpy.init(args=args)
    node = create_or_exit(factory, program, errors)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
