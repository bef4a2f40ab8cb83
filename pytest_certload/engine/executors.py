"""Executors with k6's names and semantics, and their pure schedules.

Open model (``constant-arrival-rate``, ``ramping-arrival-rate``): iteration *k* is due at a
fixed offset from the scenario start whether or not earlier iterations finished.
Closed model (``constant-vus``, ``ramping-vus``): a number of virtual users loop over the
iteration function; the next iteration starts when the previous one ends.

The schedule functions here are pure (no clock, no I/O) so they can be checked exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..errors import ConfigError
from ..units import NS_PER_S, DurationLike, as_ns, exact_ns

__all__ = [
    "EXECUTORS",
    "K6_SCENARIO_KEYS",
    "ConstantArrivalRate",
    "ConstantVUs",
    "Executor",
    "RampingArrivalRate",
    "RampingVUs",
    "Stage",
    "arrival_offsets_ns",
    "executor_from_dict",
    "vu_steps",
]


def _positive_int(value: object, what: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        floor = "0 or more" if allow_zero else "1 or more"
        raise ConfigError(f"{value!r} is not a valid {what}; use a whole number, {floor}.")
    return value


def _rate(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{value!r} is not a valid {what}; use a number, 0 or more.")
    return float(value)


@dataclass(frozen=True)
class Stage:
    """One ramp: move linearly to ``target`` over ``duration``.

    ``duration`` is a string with a unit (``"30s"``) or integer nanoseconds; ``target`` is
    iterations per ``time_unit`` (arrival-rate executors) or a number of VUs (ramping-vus).
    """

    duration: DurationLike
    target: float

    @property
    def duration_ns(self) -> int:
        return as_ns(self.duration, "stage duration", allow_zero=True)


def _stages(stages: Sequence[Stage | Mapping[str, Any]], what: str) -> tuple[Stage, ...]:
    out: list[Stage] = []
    for i, st in enumerate(stages):
        if isinstance(st, Mapping):
            unknown = set(st) - {"duration", "target"}
            if unknown or "duration" not in st or "target" not in st:
                raise ConfigError(
                    f"stage {i} of {what} is {dict(st)!r}; a stage needs exactly "
                    "'duration' and 'target', e.g. {'duration': '30s', 'target': 50}."
                )
            st = Stage(st["duration"], st["target"])
        _rate(st.target, f"target of stage {i} of {what}")
        st.duration_ns  # noqa: B018 - validates
        out.append(st)
    if not out:
        raise ConfigError(f"{what} needs at least one stage.")
    return tuple(out)


@dataclass(frozen=True)
class ConstantArrivalRate:
    """``rate`` iterations per ``time_unit`` for ``duration`` (k6 constant-arrival-rate).

    Durations (``duration``, ``time_unit``) are strings with a unit, as k6 writes them
    (``"5m"``, ``"1s"``), or integer **nanoseconds**: ``ConstantArrivalRate(50, 300)`` is
    refused, since 300 ns is surely ``"300s"`` without its unit (see
    :func:`pytest_certload.units.as_ns`). ``pre_allocated_vus`` VUs are made before the
    start; a due iteration with no idle VU gets a new one up to ``max_vus`` (default
    ``pre_allocated_vus``), else it is dropped (``dropped_iterations``).
    """

    rate: float
    duration: DurationLike
    time_unit: DurationLike = "1s"
    pre_allocated_vus: int = 10
    max_vus: int | None = None
    kind = "constant-arrival-rate"

    def __post_init__(self) -> None:
        _rate(self.rate, "rate of constant-arrival-rate")
        as_ns(self.duration, "duration of constant-arrival-rate")
        as_ns(self.time_unit, "time_unit of constant-arrival-rate")
        _positive_int(self.pre_allocated_vus, "pre_allocated_vus")
        if self.max_vus is not None:
            _positive_int(self.max_vus, "max_vus")
            if self.max_vus < self.pre_allocated_vus:
                raise ConfigError(
                    f"max_vus ({self.max_vus}) is below pre_allocated_vus "
                    f"({self.pre_allocated_vus}); raise max_vus or leave it unset."
                )

    @property
    def duration_ns(self) -> int:
        return as_ns(self.duration, "duration")

    @property
    def time_unit_ns(self) -> int:
        return as_ns(self.time_unit, "time_unit")

    @property
    def vus_limit(self) -> int:
        return self.max_vus if self.max_vus is not None else self.pre_allocated_vus

    @property
    def target_rate_per_s(self) -> float:
        return self.rate * NS_PER_S / self.time_unit_ns

    def with_duration(self, duration_ns: int) -> ConstantArrivalRate:
        return ConstantArrivalRate(
            self.rate, exact_ns(duration_ns), self.time_unit, self.pre_allocated_vus, self.max_vus
        )

    def describe(self) -> dict[str, Any]:
        return {
            "executor": self.kind,
            "rate": self.rate,
            "time_unit_ns": self.time_unit_ns,
            "duration_ns": self.duration_ns,
            "pre_allocated_vus": self.pre_allocated_vus,
            "max_vus": self.vus_limit,
        }


@dataclass(frozen=True)
class RampingArrivalRate:
    """Arrival rate ramped linearly through ``stages`` (k6 ramping-arrival-rate).

    ``start_rate`` and each stage's ``target`` are iterations per ``time_unit``; durations
    (``time_unit``, each stage's) are strings with a unit or integer nanoseconds.
    """

    stages: Sequence[Stage | Mapping[str, Any]]
    start_rate: float = 0
    time_unit: DurationLike = "1s"
    pre_allocated_vus: int = 10
    max_vus: int | None = None
    kind = "ramping-arrival-rate"

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", _stages(self.stages, self.kind))
        _rate(self.start_rate, "start_rate of ramping-arrival-rate")
        as_ns(self.time_unit, "time_unit of ramping-arrival-rate")
        _positive_int(self.pre_allocated_vus, "pre_allocated_vus")
        if self.max_vus is not None:
            _positive_int(self.max_vus, "max_vus")
            if self.max_vus < self.pre_allocated_vus:
                raise ConfigError(
                    f"max_vus ({self.max_vus}) is below pre_allocated_vus "
                    f"({self.pre_allocated_vus}); raise max_vus or leave it unset."
                )

    @property
    def duration_ns(self) -> int:
        return sum(_stage_ns(s) for s in self.stages)

    @property
    def time_unit_ns(self) -> int:
        return as_ns(self.time_unit, "time_unit")

    @property
    def vus_limit(self) -> int:
        return self.max_vus if self.max_vus is not None else self.pre_allocated_vus

    @property
    def target_rate_per_s(self) -> float:
        """Mean scheduled rate over the whole ramp."""
        total = sum(1 for _ in arrival_offsets_ns(self))
        return total * NS_PER_S / self.duration_ns if self.duration_ns else 0.0

    def with_duration(self, duration_ns: int) -> RampingArrivalRate:
        return RampingArrivalRate(
            _scale_stages(self.stages, duration_ns),
            self.start_rate,
            self.time_unit,
            self.pre_allocated_vus,
            self.max_vus,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "executor": self.kind,
            "start_rate": self.start_rate,
            "stages": [
                {"duration_ns": _stage_ns(s), "target": _stage_target(s)} for s in self.stages
            ],
            "time_unit_ns": self.time_unit_ns,
            "duration_ns": self.duration_ns,
            "pre_allocated_vus": self.pre_allocated_vus,
            "max_vus": self.vus_limit,
        }


def _spread_ns(executor: ConstantVUs | RampingVUs) -> int:
    spread = as_ns(executor.start_spread, f"start_spread of {executor.kind}", allow_zero=True)
    if spread > executor.duration_ns:
        raise ConfigError(
            f"start_spread ({executor.start_spread!r}) of {executor.kind} is longer than its "
            f"duration ({executor.duration_ns / NS_PER_S:g}s): some VUs would never start; "
            "use a start_spread of at most the duration, e.g. '1s'."
        )
    return spread


@dataclass(frozen=True)
class ConstantVUs:
    """``vus`` virtual users looping for ``duration`` (k6 constant-vus).

    Durations (``duration``, ``start_spread``) are strings with a unit (``"30s"``) or
    integer nanoseconds.

    ``start_spread`` (ours, not k6's; default 0, all at once as k6): the VUs' first
    iterations start evenly spread over this time, VU ``i`` of ``n`` at
    ``i * start_spread / n``, so that they do not stampede the server (and the
    generator's own event loop) together. Later iterations follow back to back as usual.
    """

    vus: int
    duration: DurationLike
    start_spread: DurationLike = 0
    kind = "constant-vus"

    def __post_init__(self) -> None:
        _positive_int(self.vus, "vus of constant-vus")
        as_ns(self.duration, "duration of constant-vus")
        _spread_ns(self)

    @property
    def duration_ns(self) -> int:
        return as_ns(self.duration, "duration")

    @property
    def start_spread_ns(self) -> int:
        return as_ns(self.start_spread, "start_spread", allow_zero=True)

    @property
    def vus_limit(self) -> int:
        return self.vus

    def with_duration(self, duration_ns: int) -> ConstantVUs:
        spread = exact_ns(min(self.start_spread_ns, duration_ns))
        return ConstantVUs(self.vus, exact_ns(duration_ns), spread)

    def describe(self) -> dict[str, Any]:
        return {
            "executor": self.kind,
            "vus": self.vus,
            "duration_ns": self.duration_ns,
            "start_spread_ns": self.start_spread_ns,
        }


@dataclass(frozen=True)
class RampingVUs:
    """Virtual users ramped through ``stages`` (k6 ramping-vus).

    Each stage's ``target`` is a number of VUs; durations (each stage's,
    ``graceful_ramp_down``, ``start_spread``) are strings with a unit (``"30s"``) or
    integer nanoseconds.

    ``start_spread`` (ours, not k6's; default 0): VUs that start at the same instant (the
    ``start_vus``, or a stage of duration 0) start their first iterations evenly spread
    over this time, as in :class:`ConstantVUs`; a VU that a ramp adds on its own starts at
    once.
    """

    stages: Sequence[Stage | Mapping[str, Any]]
    start_vus: int = 1
    graceful_ramp_down: DurationLike = "30s"
    start_spread: DurationLike = 0
    kind = "ramping-vus"

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", _stages(self.stages, self.kind))
        _positive_int(self.start_vus, "start_vus of ramping-vus", allow_zero=True)
        for i, st in enumerate(self.stages):
            if _stage_target(st) != int(_stage_target(st)):
                raise ConfigError(
                    f"target {_stage_target(st)!r} of stage {i} of ramping-vus is not a whole "
                    "number of VUs."
                )
        as_ns(self.graceful_ramp_down, "graceful_ramp_down", allow_zero=True)
        _spread_ns(self)

    @property
    def duration_ns(self) -> int:
        return sum(_stage_ns(s) for s in self.stages)

    @property
    def graceful_ramp_down_ns(self) -> int:
        return as_ns(self.graceful_ramp_down, "graceful_ramp_down", allow_zero=True)

    @property
    def start_spread_ns(self) -> int:
        return as_ns(self.start_spread, "start_spread", allow_zero=True)

    @property
    def vus_limit(self) -> int:
        return max([self.start_vus, *(int(_stage_target(s)) for s in self.stages)])

    def with_duration(self, duration_ns: int) -> RampingVUs:
        return RampingVUs(
            _scale_stages(self.stages, duration_ns),
            self.start_vus,
            self.graceful_ramp_down,
            exact_ns(min(self.start_spread_ns, duration_ns)),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "executor": self.kind,
            "start_vus": self.start_vus,
            "stages": [
                {"duration_ns": _stage_ns(s), "target": _stage_target(s)} for s in self.stages
            ],
            "duration_ns": self.duration_ns,
            "graceful_ramp_down_ns": self.graceful_ramp_down_ns,
            "start_spread_ns": self.start_spread_ns,
        }


Executor: TypeAlias = ConstantArrivalRate | RampingArrivalRate | ConstantVUs | RampingVUs
EXECUTORS: dict[str, type[Executor]] = {
    "constant-arrival-rate": ConstantArrivalRate,
    "ramping-arrival-rate": RampingArrivalRate,
    "constant-vus": ConstantVUs,
    "ramping-vus": RampingVUs,
}
_K6_KEYS = {
    "preAllocatedVUs": "pre_allocated_vus",
    "maxVUs": "max_vus",
    "timeUnit": "time_unit",
    "startRate": "start_rate",
    "startVUs": "start_vus",
    "gracefulRampDown": "graceful_ramp_down",
    "startSpread": "start_spread",
}
_SNAKE_TO_K6 = {snake: k6 for k6, snake in _K6_KEYS.items()}
#: :meth:`describe`'s integer-nanosecond keys, back to the constructors' arguments
_DESCRIBED_KEYS = {
    "duration_ns": "duration",
    "time_unit_ns": "time_unit",
    "graceful_ramp_down_ns": "graceful_ramp_down",
    "start_spread_ns": "start_spread",
}
#: keys of a k6 scenario object that belong to the scenario, not to its executor
#: (:func:`pytest_certload.engine.options.scenario_from_k6` takes them)
K6_SCENARIO_KEYS = ("startTime", "gracefulStop", "exec", "tags", "env", "options")
_SCENARIO_SPELLINGS = {
    **{k: k for k in K6_SCENARIO_KEYS},
    "start_time": "startTime",
    "graceful_stop": "gracefulStop",
}


def _k6_name(field_name: str) -> str:
    """An executor argument as k6 spells it, with our spelling beside it when it differs."""
    k6 = _SNAKE_TO_K6.get(field_name)
    return f"{k6} ({field_name})" if k6 else field_name


def executor_from_dict(options: Mapping[str, Any], *, source: str = "") -> Executor:
    """Build an executor from k6's executor options (``{"executor": ..., ...}``).

    k6's camelCase keys (``timeUnit``, ``preAllocatedVUs``, ...) and our snake_case are
    both accepted, and so is an executor's own :meth:`describe` (integer nanoseconds):
    ``executor_from_dict(ex.describe())`` behaves as ``ex``. Durations are strings with a
    unit (``"5m"``, as k6 writes them) or integer nanoseconds. The keys of a k6 *scenario*
    (``startTime``, ``gracefulStop``, ``exec``, ``tags``, ``env``) belong to the scenario
    and are refused here with a pointer to :func:`~pytest_certload.scenario_from_k6`,
    which takes the whole scenario object; any other unknown key is refused too.
    """
    where = f" (at {source})" if source else ""
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"{options!r}{where} is not a k6 executor object; give a mapping such as "
            "{'executor': 'constant-arrival-rate', 'rate': 50, 'duration': '5m'}."
        )
    scenario_keys = [k for k in options if k in _SCENARIO_SPELLINGS]
    if scenario_keys:
        raise ConfigError(
            f"{', '.join(map(repr, scenario_keys))}{where}: "
            f"{'keys' if len(scenario_keys) > 1 else 'a key'} of the k6 scenario, not of its "
            "executor's options; pass the whole k6 scenario object to "
            "scenario_from_k6(name, options, fn), or keep only the executor's options here "
            "and give Scenario(start_time=..., graceful_stop=..., tags=...)."
        )
    # each argument under the constructor's name, remembering how the user spelled it
    spelled: dict[str, str] = {}
    opts: dict[str, Any] = {}
    for key, value in options.items():
        name = _K6_KEYS.get(key, key)
        if name in _DESCRIBED_KEYS:
            name = _DESCRIBED_KEYS[name]
            if isinstance(value, int) and not isinstance(value, bool):
                value = exact_ns(value)
        spelled[name] = key
        opts[name] = value
    kind = opts.pop("executor", None)
    if kind not in EXECUTORS:
        raise ConfigError(
            f"{kind!r} is not a supported executor{where}; use one of {', '.join(EXECUTORS)}."
        )
    if "stages" in opts:
        opts.pop("duration", None)  # describe() gives it, derived from the stages
        stages = opts["stages"]
        if isinstance(stages, Sequence) and not isinstance(stages, str):
            opts["stages"] = [
                {"duration": exact_ns(st["duration_ns"]), "target": st.get("target")}
                if isinstance(st, Mapping) and set(st) == {"duration_ns", "target"}
                else st
                for st in stages
            ]
    cls = EXECUTORS[kind]
    valid = list(cls.__dataclass_fields__)
    unknown = [spelled[name] for name in opts if name not in valid]
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"of {kind}{where}; its options are {', '.join(_k6_name(f) for f in valid)} "
            "(a k6 scenario's startTime, gracefulStop, exec and tags go to scenario_from_k6())."
        )
    try:
        return cls(**opts)
    except TypeError as exc:  # a required option is missing
        raise ConfigError(
            f"bad options for {kind}{where}: {exc}; its options are "
            f"{', '.join(_k6_name(f) for f in valid)}."
        ) from exc


def _stage_ns(st: Stage | Mapping[str, Any]) -> int:
    assert isinstance(st, Stage)  # normalised in __post_init__
    return st.duration_ns


def _stage_target(st: Stage | Mapping[str, Any]) -> float:
    assert isinstance(st, Stage)
    return float(st.target)


def _scale_stages(stages: Sequence[Stage | Mapping[str, Any]], duration_ns: int) -> list[Stage]:
    """Stretch or shrink stage durations proportionally to a new total."""
    total = sum(_stage_ns(s) for s in stages)
    out = [
        Stage(exact_ns(max(0, round(_stage_ns(s) * duration_ns / total))), _stage_target(s))
        for s in stages
    ]
    return out


def arrival_offsets_ns(executor: ConstantArrivalRate | RampingArrivalRate) -> Iterator[int]:
    """Offsets (ns from the scenario start) at which open-model iterations are due.

    Iteration *k* is due at the time the cumulative scheduled arrivals reach *k*:
    constant rate gives ``k * time_unit / rate``; a linear ramp between rates
    ``r0`` and ``r1`` over ``D`` solves ``r0*t + (r1-r0)*t**2/(2*D) = k`` within the
    stage. The first iteration is due at 0. Generated lazily: memory does not grow.
    """
    unit = executor.time_unit_ns
    if isinstance(executor, ConstantArrivalRate):
        if executor.rate <= 0:
            return
        interval = unit / executor.rate
        duration = executor.duration_ns
        k = 0
        while True:
            t = round(k * interval)
            if t >= duration:
                return
            yield t
            k += 1
    k = 0
    done = 0.0  # arrivals scheduled before the current stage
    stage_start = 0
    r0 = float(executor.start_rate) / unit  # per ns
    for st in executor.stages:
        d = _stage_ns(st)
        r1 = _stage_target(st) / unit
        if d == 0:
            r0 = r1
            continue
        in_stage = (r0 + r1) * d / 2
        a = (r1 - r0) / (2 * d)
        while k < done + in_stage - 1e-9:
            c = k - done
            if abs(a) < 1e-30:
                at = c / r0
            else:
                at = (-r0 + math.sqrt(max(0.0, r0 * r0 + 4 * a * c))) / (2 * a)
            yield stage_start + round(at)
            k += 1
        done += in_stage
        stage_start += d
        r0 = r1


@dataclass(frozen=True)
class VUStep:
    """From ``at_ns`` on, ``vus`` virtual users should be running."""

    at_ns: int
    vus: int


def vu_steps(executor: ConstantVUs | RampingVUs) -> list[VUStep]:
    """The closed model's VU count over time, as the instants where it changes.

    A ramp from ``v0`` to ``v1`` over ``D`` changes the count by one at
    ``D * j / |v1 - v0|`` for ``j = 1 .. |v1 - v0|``, in both directions, so the stage's
    target is reached exactly at its end. The last step is the end of the scenario with
    0 VUs.
    """
    if isinstance(executor, ConstantVUs):
        return [VUStep(0, executor.vus), VUStep(executor.duration_ns, 0)]
    steps = [VUStep(0, executor.start_vus)]
    current = executor.start_vus
    t0 = 0
    for st in executor.stages:
        d = _stage_ns(st)
        target = int(_stage_target(st))
        diff = target - current
        if diff > 0:
            for j in range(1, diff + 1):
                steps.append(VUStep(t0 + (d * j) // diff if d else t0, current + j))
        elif diff < 0:
            n = -diff
            for j in range(1, n + 1):
                steps.append(VUStep(t0 + (d * j) // n if d else t0, current - j))
        current = target
        t0 += d
    steps.append(VUStep(t0, 0))
    # collapse steps at the same instant, keeping the last value
    collapsed: list[VUStep] = []
    for s in steps:
        if collapsed and collapsed[-1].at_ns == s.at_ns:
            collapsed[-1] = s
        else:
            collapsed.append(s)
    return collapsed
