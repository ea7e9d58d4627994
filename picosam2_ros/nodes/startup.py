"""Start-up shared by the package's executables."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.exceptions import InvalidParameterValueException

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
