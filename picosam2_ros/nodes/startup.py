"""Start-up and shutdown shared by the package's executables."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import TypeVar

import rclpy
from rclpy.context import Context
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

NodeT = TypeVar("NodeT")
ServedT = TypeVar("ServedT", bound=Node)

#: What a node constructor raises for bad start-up parameters.
STARTUP_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    InvalidParameterValueException,
    InvalidParameterTypeException,
)

#: Longest a signal waits to be noticed while the executor has nothing to do.
SIGNAL_POLL_S = 0.1


class StopSignals:
    """SIGINT and SIGTERM as a request to stop, noticed by the serving loop.

    rclpy's own handlers shut the context down from inside the signal, while worker
    threads may still be publishing (they then fail with "context is invalid"), and a
    second Ctrl-C lands as a KeyboardInterrupt in the middle of the teardown. Here the
    first signal only asks the loop to end; the node then stops its threads while the
    context is still valid, and later signals are ignored so the teardown runs to its
    end and the process exits 0.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name


def make_executor(context: Context | None = None) -> MultiThreadedExecutor:
    """The executor every node of the package is served by.

    Two threads: a node's default callback group still runs its callbacks one at a time,
    while a callback put in a group of its own (a segment-everything call that takes a
    second or more) runs beside them instead of stalling images and prompts.
    """
    return MultiThreadedExecutor(num_threads=2, context=context)


def wait_for_callbacks(executor: MultiThreadedExecutor) -> None:
    """Wait until the callbacks the executor's threads are running have returned; call
    it before ``executor.shutdown()``.

    This rclpy's ``Executor.shutdown`` neither waits for them nor stops its thread pool
    (later releases do: ros2/rclpy#1309): it destroys the executor's guard condition,
    which a callback still running then triggers on its way out, failing with "cannot
    use Destroyable because destruction was requested".
    """
    pool = getattr(executor, "_executor", None)
    if isinstance(pool, ThreadPoolExecutor):
        pool.shutdown(wait=True)


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
    factory: Callable[[], ServedT],
    program: str,
    args: list[str] | None = None,
    errors: tuple[type[Exception], ...] = STARTUP_ERRORS,
    *,
    serving: Callable[[ServedT], None] | None = None,
    finished: Callable[[ServedT], bool] | None = None,
) -> ServedT:
    """The ``main`` of a node: init, build it (bad start-up parameters exit with code 2),
    call ``serving(node)`` once its executor is set up, serve until SIGINT/SIGTERM, an
    external shutdown or ``finished(node)``, then tear down in order: the node's own
    threads first (``destroy_node``), then the context. Returns the destroyed node so
    that ``main`` can read what it ended with."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignals()
    node = create_or_exit(factory, program, errors)
    executor = make_executor()
    executor.add_node(node)
    try:
        if serving is not None:
            serving(node)
        while stop.received is None and rclpy.ok():
            if finished is not None and finished(node):
                break
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
        if stop.received is not None:
            node.get_logger().info(f"{stop.received}: shutting down")
    finally:
        wait_for_callbacks(executor)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return node
