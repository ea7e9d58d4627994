"""Declared, described and validated node parameters, shared by the package's nodes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data, qos_profile_system_default

#: Image subscription QoS choices: "sensor_data" (best effort, depth 5: drops instead
#: of queuing, matches any camera) or "reliable" (system default: matches reliable-only
#: publishers such as a bag replayer that must not lose frames).
IMAGE_QOS = {"sensor_data": qos_profile_sensor_data, "reliable": qos_profile_system_default}


def image_qos_profile(name: str) -> QoSProfile:
    return IMAGE_QOS[name]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default, description, numeric range or allowed strings."""

    name: str
    default: Any
    description: str
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: Sequence[str] = ()
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        desc = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.int_range is not None:
            desc.integer_range = [
                IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1], step=1)
            ]
        if self.float_range is not None:
            desc.floating_point_range = [
                FloatingPointRange(
                    from_value=self.float_range[0], to_value=self.float_range[1], step=0.0
                )
            ]
        if self.choices:
            desc.additional_constraints = "one of: " + ", ".join(self.choices)
        return desc

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None. rclpy enforces the numeric ranges."""
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}"
        return None


def _declare(node: Node, spec: ParamSpec) -> Any:
    """Declare one parameter and return its start-up value.

    Command lines and launch files write whole numbers for float parameters
    (``rate:=2``); rclpy types that override INTEGER and refuses it for a DOUBLE
    parameter. It means the float, so it is taken as one. Any other type mismatch
    still raises InvalidParameterTypeException, which names the parameter.
    """
    try:
        return node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
    except InvalidParameterTypeException:
        # rclpy keeps the command line's overrides only in this attribute.
        given = node._parameter_overrides.get(spec.name)
        if (
            given is None
            or given.type_ != Parameter.Type.INTEGER
            or not isinstance(spec.default, float)
        ):
            raise
        return node.declare_parameter(
            spec.name, float(given.value), spec.descriptor(), ignore_override=True
        ).value


def declare_all(
    node: Node,
    specs: Sequence[ParamSpec],
    extra_check: Callable[[Parameter], str | None] | None = None,
) -> dict[str, Any]:
    """Declare every spec, validate start-up values, and install a runtime validator.

    Raises ValueError naming the parameter when a start-up value is invalid.
    """
    by_name = {s.name: s for s in specs}
    values: dict[str, Any] = {}
    for spec in specs:
        value = _declare(node, spec)
        problem = spec.check(value)
        if problem:
            raise ValueError(problem)
        values[spec.name] = value

    def on_set(params: list[Parameter]) -> SetParametersResult:
        for param in params:
            spec = by_name.get(param.name)
            problem = spec.check(param.value) if spec else None
            if problem is None and extra_check is not None:
                problem = extra_check(param)
            if problem:
                node.get_logger().warning(f"rejected parameter change: {problem}")
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


#: Every node's diagnostics rate, declared the same way everywhere.
DIAGNOSTICS_PERIOD = ParamSpec(
    "diagnostics_period",
    1.0,
    "seconds between /diagnostics messages",
    float_range=(0.1, 60.0),
    read_only=True,
)
