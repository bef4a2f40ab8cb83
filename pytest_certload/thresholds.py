"""k6 thresholds: parse them, judge them against a :class:`~.metrics.MetricStore`.

The grammar is k6's, so certctl's k6 thresholds carry over verbatim::

    {
        "http_req_duration{scenario:issuance}": ["p(95)<2000", "p(99)<5000"],
        "http_req_failed": ["rate<0.01"],
        "checks": [{"threshold": "rate>0.99", "abortOnFail": True, "delayAbortEval": "10s"}],
    }

Selector: ``METRIC`` or ``METRIC{TAG:VALUE,...}``; a value is anything but ``,``, ``{``
and ``}``, or quoted (``name:"/certs/{id}"``, ``name:'a,b'``) to hold those too.

Expression: ``AGG OP VALUE``.

* ``AGG`` by metric type: trend ``avg min max med p(N) count``; rate ``rate``; counter
  ``count rate`` (per second over the run); gauge ``value``. The metric's type is only
  known when judging, so a mismatch is not a syntax error but a failed result whose
  reason says what applies (the run still reports every other threshold).
* ``OP``: ``< <= > >= == !=``.
* ``VALUE``: a finite number; for time trends a bare number is milliseconds (k6) and a
  unit ``ns us µs ms s m h`` may be given; ``%`` is allowed with ``rate`` (``rate<1%``).
  ``inf``, ``nan`` and numbers too large for a float (``1e999``) are syntax errors.

Everything that can be wrong with a threshold is found when it is parsed, before any
load; judging never raises: a value it cannot compare makes the threshold unjudged, with
the reason, and the run's data is kept.

Judgement is exact and conservative: comparisons use exact fractions in the metric's own
unit (integer ns for time trends); percentiles follow the one nearest-rank definition of
:mod:`.metrics` (reported at their bucket's highest value, never lower than the samples
support). A threshold is *not* met, with a reason instead of an observed value, when it
cannot be judged: unknown metric, wrong aggregation, no samples, or too few samples for
a percentile — ``p(q)`` needs ``n * (1 - q/100) >= min_tail_samples`` (``p(100)``, the
maximum, needs one sample).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from math import ceil
from typing import Any

from .errors import ConfigError, ThresholdSyntaxError
from .metrics import (
    METRIC_NAME_RE,
    CounterSink,
    MetricStore,
    MetricType,
    RateSink,
    Sink,
    TagSet,
    TrendSink,
    tagset,
)
from .units import NS_PER_S, NS_PER_UNIT, format_offset, parse_duration_ns

__all__ = [
    "EXPRESSION_GRAMMAR",
    "NO_SAMPLES",
    "SELECTOR_GRAMMAR",
    "Threshold",
    "ThresholdResult",
    "WindowResult",
    "abort_check",
    "evaluate",
    "format_selector",
    "judge_sink",
    "parse_thresholds",
    "threshold_list",
]

#: how an unjudged threshold's reason starts when nothing matched its selector
NO_SAMPLES = "no samples recorded for"

EXPRESSION_GRAMMAR = (
    "use AGG OP VALUE, e.g. 'p(95)<2000' or 'rate<0.01' "
    "(AGG: avg min max med p(N) count rate value; OP: < <= > >= == !=)"
)
SELECTOR_GRAMMAR = (
    "use METRIC or METRIC{TAG:VALUE,...}, e.g. 'http_req_duration{scenario:issuance}'"
)
_UNIT_GRAMMAR = (
    "VALUE is a number (ms for time trends), optionally with a unit ns us µs ms s m h, "
    "or % for rate"
)
_FINITE_GRAMMAR = (
    "VALUE must be a finite number that fits a float (up to about 1.8e308, in ms for a "
    "time trend), e.g. 'p(95)<2000' or 'max<1e6'; there is no infinite or NaN limit: to "
    "put no limit on a metric, leave the threshold out"
)
_OBJECT_KEYS = ("threshold", "abortOnFail", "delayAbortEval", "window", "windowsToAbort")

_OPS: dict[str, Callable[[Fraction, Fraction], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_AGGREGATIONS = ("avg", "min", "max", "med", "p", "count", "rate", "value")
_TIME_AGGREGATIONS = frozenset({"avg", "min", "max", "med", "p"})
_VALID_FOR: dict[MetricType, tuple[str, ...]] = {
    MetricType.TREND: ("avg", "min", "max", "med", "p(N)", "count"),
    MetricType.RATE: ("rate",),
    MetricType.COUNTER: ("count", "rate"),
    MetricType.GAUGE: ("value",),
}
_EXPRESSION_RE = re.compile(
    r"""^\s*(?P<agg>[A-Za-z]+)\s*(?:\(\s*(?P<arg>[^()]*?)\s*\))?
    \s*(?P<op><=|>=|==|!=|<|>)
    \s*(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
    \s*(?P<unit>[A-Za-zµμ%]+)?\s*$""",
    re.VERBOSE,
)
_PERCENTILE_RE = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)$")
_TAG_RE = re.compile(
    r"""\s*(?P<key>[^\s:,{}"']+)\s*:\s*
    (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s,{}"'][^,{}]*?))
    \s*(?:,|\Z)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold expression on one metric selector."""

    metric: str
    tags: Mapping[str, str] = field(hash=False)
    selector: str  # normalised, e.g. "http_req_duration{scenario:x}"
    expression: str  # as written, stripped
    aggregation: str  # avg min max med count rate value, or p(N) normalised: "p(99.9)"
    percentile: float | None  # N of p(N); 50 for med
    op: str
    limit: float  # metric's user unit: ms for time trends, a fraction for % rates
    abort_on_fail: bool = False
    delay_abort_eval_ns: int = 0
    source: str = ""
    unit: str = ""  # unit written after the value, "" if none (Greek μ stored as µ)
    window_ns: int = 0  # judged in every window of this length; 0: over the whole run
    windows_to_abort: int = 1  # with abort_on_fail and a window: consecutive breaches

    @property
    def windowed(self) -> bool:
        return self.window_ns > 0

    def describe(self) -> str:
        """The expression, with its window when it has one: ``p(95)<500 per 10s window``."""
        if not self.window_ns:
            return self.expression
        return f"{self.expression} per {format_offset(self.window_ns)} window"

    def __post_init__(self) -> None:
        # parse_thresholds never makes one; a Threshold built by hand must not either, or
        # it would only fail when judged, after the load
        if not isinstance(self.limit, int | float) or not math.isfinite(self.limit):
            raise ThresholdSyntaxError(
                f"the limit {self.limit!r} of {self.selector} {self.expression!r} is not a "
                f"finite number; {_FINITE_GRAMMAR}"
            )
        if self.op not in _OPS:
            raise ThresholdSyntaxError(
                f"{self.op!r} is not a comparison (threshold {self.selector} "
                f"{self.expression!r}); use one of {' '.join(_OPS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """What it takes to rebuild this threshold (:meth:`from_dict` parses it again)."""
        return {
            "selector": self.selector,
            "expression": self.expression,
            "abort_on_fail": self.abort_on_fail,
            "delay_abort_eval_ns": self.delay_abort_eval_ns,
            "source": self.source,
            "window_ns": self.window_ns,
            "windows_to_abort": self.windows_to_abort,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Threshold:
        (parsed,) = parse_thresholds(
            {str(data["selector"]): [str(data["expression"])]}, source=str(data["source"])
        )
        return replace(
            parsed,
            abort_on_fail=bool(data["abort_on_fail"]),
            delay_abort_eval_ns=int(data["delay_abort_eval_ns"]),
            # absent from run files written before windows existed: whole-run thresholds
            window_ns=int(data.get("window_ns", 0)),
            windows_to_abort=int(data.get("windows_to_abort", 1)),
        )


@dataclass(frozen=True)
class WindowResult:
    """A windowed threshold in one window: ``[start_ns, end_ns)`` from the origin of its
    windows (the scenario's start, after its warm-up), in ns.

    ``observed`` is None when the window could not be judged (``reason`` says why);
    ``partial`` marks the last window when the run ended inside it; ``hiccup_ns`` is the
    longest stall of the generator in it, and ``stalled`` says it was beyond the health
    limit, which makes what the window measured untrustworthy.
    """

    start_ns: int
    end_ns: int
    ok: bool
    observed: float | None
    count: int
    reason: str
    partial: bool = False
    hiccup_ns: int = 0
    stalled: bool = False

    @property
    def breached(self) -> bool:
        return self.observed is not None and not self.ok

    def span(self) -> str:
        return f"{format_offset(self.start_ns)}–{format_offset(self.end_ns)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "ok": self.ok,
            "observed": self.observed,
            "count": self.count,
            "reason": self.reason,
            "partial": self.partial,
            "hiccup_ns": self.hiccup_ns,
            "stalled": self.stalled,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowResult:
        observed = data["observed"]
        return cls(
            start_ns=int(data["start_ns"]),
            end_ns=int(data["end_ns"]),
            ok=bool(data["ok"]),
            observed=None if observed is None else float(observed),
            count=int(data["count"]),
            reason=str(data["reason"]),
            partial=bool(data.get("partial", False)),
            hiccup_ns=int(data.get("hiccup_ns", 0)),
            stalled=bool(data.get("stalled", False)),
        )


@dataclass(frozen=True)
class ThresholdResult:
    """The verdict on one threshold.

    ``observed`` is ``None`` when the threshold could not be judged; ``reason`` then
    says why (and ``ok`` is False). Otherwise ``reason`` describes the observation.
    """

    threshold: Threshold
    ok: bool
    observed: float | None  # user unit: ms for time trends, per second for counter rates
    count: int  # samples behind the observation
    reason: str
    #: a windowed threshold's verdict in each window (empty for a whole-run threshold)
    windows: tuple[WindowResult, ...] = ()
    #: set when the breach falls only where the generator stalled: why the verdict is
    #: untrustworthy rather than a failure of the server
    stalled: str = ""

    @property
    def judged(self) -> bool:
        return self.observed is not None

    @property
    def breached(self) -> bool:
        """Judged and not met (unlike a threshold that could not be judged)."""
        return self.observed is not None and not self.ok

    @property
    def breached_windows(self) -> list[WindowResult]:
        return [w for w in self.windows if w.breached]

    def worst_window(self) -> WindowResult | None:
        """The breached window furthest beyond the limit (None when none breached); one
        where the generator kept time is preferred to a stalled one, since only such a
        breach is the server's."""
        breached = [w for w in self.breached_windows if not w.stalled] or self.breached_windows
        if not breached:
            return None
        if self.threshold.op in ("<", "<="):
            return max(breached, key=lambda w: (w.observed or 0.0, -w.start_ns))
        if self.threshold.op in (">", ">="):
            return min(breached, key=lambda w: (w.observed or 0.0, w.start_ns))
        return breached[0]

    def message(self) -> str:
        t = self.threshold
        where = f" — declared at {t.source}" if t.source else ""
        return f"{t.selector} {t.describe()}: {self.reason}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold.to_dict(),
            "ok": self.ok,
            "observed": self.observed,
            "count": self.count,
            "reason": self.reason,
            "windows": [w.to_dict() for w in self.windows],
            "stalled": self.stalled,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ThresholdResult:
        observed = data["observed"]
        return cls(
            threshold=Threshold.from_dict(data["threshold"]),
            ok=bool(data["ok"]),
            observed=None if observed is None else float(observed),
            count=int(data["count"]),
            reason=str(data["reason"]),
            windows=tuple(WindowResult.from_dict(w) for w in data.get("windows", ())),
            stalled=str(data.get("stalled", "")),
        )


# -- parsing ---------------------------------------------------------------------------


def parse_thresholds(
    spec: Mapping[str, Sequence[str | Mapping[str, Any]]], *, source: str
) -> list[Threshold]:
    """Parse a k6 ``thresholds`` mapping; ``source`` says where it was declared.

    Raises :class:`ThresholdSyntaxError` naming the expression, selector and source.
    """
    where = f" (declared at {source})" if source else ""
    if not isinstance(spec, Mapping):
        raise ThresholdSyntaxError(
            f"thresholds{where} must be a mapping of metric selector to a list of "
            f"expressions, e.g. {{'http_req_duration': ['p(95)<2000']}}; got {spec!r}"
        )
    result: list[Threshold] = []
    for key, entries in spec.items():
        metric, tags, selector = _parse_selector(key, where)
        if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
            raise ThresholdSyntaxError(
                f"thresholds for {selector}{where} must be a list of expressions, "
                f"e.g. ['p(95)<2000']; got {entries!r}"
            )
        for entry in entries:
            result.append(_parse_entry(entry, metric, tags, selector, source, where))
    return result


def _parse_selector(key: object, where: str) -> tuple[str, dict[str, str], str]:
    def fail(detail: str) -> ThresholdSyntaxError:
        return ThresholdSyntaxError(
            f"{key!r} is not a valid metric selector{where}: {detail}; {SELECTOR_GRAMMAR}"
        )

    if not isinstance(key, str):
        raise fail("it must be a string")
    name, brace, rest = key.strip().partition("{")
    name = name.strip()
    if not METRIC_NAME_RE.match(name):
        raise fail(
            f"{name!r} is not a metric name (letters, digits, '_', '.', '-'; "
            f"starting with a letter or '_')"
            if name
            else "the metric name is missing"
        )
    tags: dict[str, str] = {}
    if brace:
        if not rest.endswith("}"):
            raise fail("the tag filter has no closing '}'")
        inner = rest[:-1]
        if not inner.strip():
            raise fail("the tag filter '{}' is empty")
        pos = 0
        while pos < len(inner):
            match = _TAG_RE.match(inner, pos)
            if match is None:
                raise fail(_tag_problem(inner[pos:]))
            value = next(v for v in match.group("dq", "sq", "bare") if v is not None)
            if match["key"] in tags:
                raise fail(f"tag {match['key']!r} is given twice")
            tags[match["key"]] = value
            pos = match.end()
            if inner[pos - 1] == "," and not inner[pos:].strip():
                raise fail("the tag filter ends with ','")
    return name, tags, format_selector(name, tags)


def _tag_problem(rest: str) -> str:
    """Why ``rest`` (the unread part of a tag filter) does not start with TAG:VALUE."""
    key, colon, value = rest.partition(",")[0].partition(":")
    if not key.strip():
        return "a tag name is missing before ':'" if colon else "an empty TAG:VALUE pair"
    if not colon:
        return f"tag {key.strip()!r} has no value"
    if not value.strip():
        return f"tag {key.strip()!r} has an empty value (quote it, {key.strip()}:\"\", to mean '')"
    if set(value) & set("{}") and value.strip()[0] not in "\"'":
        return (
            f"tag {key.strip()!r} has '{{' or '}}' in its unquoted value; quote the value, "
            f'e.g. {key.strip()}:"/api/v1/certificates/{{id}}"'
        )
    return f"cannot read a TAG:VALUE pair at {rest!r}"


def format_selector(name: str, tags: Mapping[str, str]) -> str:
    """The one spelling of a sub-metric: ``name{tag:value,...}`` (values quoted when they
    hold ``,`` ``}`` or quotes), as thresholds and the JSON summary key it."""
    if not tags:
        return name

    def show(value: str) -> str:
        if value and value.strip() == value and not set(value) & set(",}\"'"):
            return value
        return f"'{value}'" if '"' in value else f'"{value}"'

    return name + "{" + ",".join(f"{k}:{show(v)}" for k, v in tags.items()) + "}"


def _parse_entry(
    entry: object,
    metric: str,
    tags: dict[str, str],
    selector: str,
    source: str,
    where: str,
) -> Threshold:
    abort_on_fail = False
    delay_ns = 0
    window_ns = 0
    windows_to_abort = 1
    if isinstance(entry, Mapping):
        unknown = [k for k in entry if k not in _OBJECT_KEYS]
        if unknown:
            raise ThresholdSyntaxError(
                f"threshold {dict(entry)!r} for {selector}{where} has unknown "
                f"key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"the keys are threshold, abortOnFail, delayAbortEval, window and "
                f"windowsToAbort"
            )
        expression = entry.get("threshold")
        if not isinstance(expression, str):
            raise ThresholdSyntaxError(
                f"threshold {dict(entry)!r} for {selector}{where} needs 'threshold': an "
                f"expression string such as 'p(95)<2000'"
            )
        abort_on_fail = entry.get("abortOnFail", False)
        if not isinstance(abort_on_fail, bool):
            raise ThresholdSyntaxError(
                f"abortOnFail of {selector} {expression!r}{where} must be true or false, "
                f"not {abort_on_fail!r}"
            )
        delay = entry.get("delayAbortEval", 0)
        if delay != 0:
            try:
                delay_ns = parse_duration_ns(
                    delay, what=f"delayAbortEval of {selector} {expression!r}", source=source
                )
            except ConfigError as exc:
                raise ThresholdSyntaxError(str(exc)) from exc
        window_ns, windows_to_abort = _parse_window(entry, expression, selector, source, where)
        if window_ns and abort_on_fail is False and "windowsToAbort" in entry:
            raise ThresholdSyntaxError(
                f"windowsToAbort of {selector} {expression!r}{where} applies only with "
                f"abortOnFail: true; add it, or drop windowsToAbort"
            )
    elif isinstance(entry, str):
        expression = entry
    else:
        raise ThresholdSyntaxError(
            f"{entry!r} is not a valid threshold for {selector}{where}: use an expression "
            f"string or {{'threshold': ..., 'abortOnFail': ..., 'delayAbortEval': ..., "
            f"'window': ..., 'windowsToAbort': ...}}"
        )
    aggregation, percentile, op, limit, unit = _parse_expression(expression, selector, where)
    return Threshold(
        metric=metric,
        tags=tags,
        selector=selector,
        expression=expression.strip(),
        aggregation=aggregation,
        percentile=percentile,
        op=op,
        limit=limit,
        abort_on_fail=abort_on_fail,
        delay_abort_eval_ns=delay_ns,
        source=source,
        unit=unit,
        window_ns=window_ns,
        windows_to_abort=windows_to_abort,
    )


def _parse_window(
    entry: Mapping[str, Any], expression: str, selector: str, source: str, where: str
) -> tuple[int, int]:
    """``window`` and ``windowsToAbort`` of an object-form threshold (0 and 1 if absent)."""
    window_ns = 0
    if "window" in entry:
        raw = entry["window"]
        try:
            window_ns = parse_duration_ns(
                raw, what=f"window of {selector} {expression!r}", source=source
            )
        except ConfigError as exc:
            raise ThresholdSyntaxError(
                f"{exc} A window is a duration such as '10s' or '1m': the threshold is "
                f"judged in every window of that length."
            ) from exc
        if window_ns <= 0:
            raise ThresholdSyntaxError(
                f"the window {raw!r} of {selector} {expression!r}{where} must be longer "
                f"than zero, e.g. '10s'; leave 'window' out to judge the whole run"
            )
    count = entry.get("windowsToAbort", 1)
    if "windowsToAbort" in entry:
        if not window_ns:
            raise ThresholdSyntaxError(
                f"windowsToAbort of {selector} {expression!r}{where} needs a window, e.g. "
                f"{{'threshold': {expression!r}, 'window': '10s', 'abortOnFail': True, "
                f"'windowsToAbort': 2}}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ThresholdSyntaxError(
                f"windowsToAbort of {selector} {expression!r}{where} must be a whole number "
                f"of consecutive breached windows, 1 or more; got {count!r}"
            )
    return window_ns, int(count)


def _parse_expression(
    expression: str, selector: str, where: str
) -> tuple[str, float | None, str, float, str]:
    def fail(detail: str = "", grammar: str = EXPRESSION_GRAMMAR) -> ThresholdSyntaxError:
        why = f": {detail}" if detail else ""
        return ThresholdSyntaxError(
            f"{expression!r} is not a valid threshold for {selector}{where}{why}; {grammar}"
        )

    match = _EXPRESSION_RE.match(expression)
    if match is None:
        if re.search(r"(?i)\b(?:[-+]?inf(?:inity)?|nan)\s*[A-Za-zµμ%]*\s*$", expression):
            raise fail("the limit is not a number", _FINITE_GRAMMAR)
        raise fail()
    agg, arg, op, num = match["agg"], match["arg"], match["op"], match["num"]
    unit = (match["unit"] or "").replace("μ", "µ")  # Greek mu -> micro sign
    if agg not in _AGGREGATIONS:
        raise fail(f"unknown aggregation {agg!r}")
    percentile: float | None = None
    if agg == "p":
        if arg is None or not _PERCENTILE_RE.match(arg) or not 0 <= float(arg) <= 100:
            raise fail("p(N) needs a number N from 0 to 100, e.g. p(95) or p(99.9)")
        percentile = float(arg)
        agg = f"p({_plain(Decimal(arg))})"
    elif arg is not None:
        raise fail(f"only p(N) takes an argument, not {agg}")
    elif agg == "med":
        percentile = 50.0
    value = Decimal(num)
    if value.adjusted() > 400:  # beyond any float, and beyond Decimal's own arithmetic
        raise fail(f"the limit {num} is too large for a float", _FINITE_GRAMMAR)
    if unit == "%":
        if agg != "rate":
            raise fail("'%' applies only to rate, e.g. 'rate<1%'", _UNIT_GRAMMAR)
        value /= 100
    elif unit in NS_PER_UNIT:
        if percentile is None and agg not in _TIME_AGGREGATIONS:
            raise fail(
                f"unit {unit!r} applies only to avg min max med p(N) of a time trend",
                _UNIT_GRAMMAR,
            )
        value = value * NS_PER_UNIT[unit] / NS_PER_UNIT["ms"]
    elif unit:
        raise fail(f"unknown unit {unit!r}", _UNIT_GRAMMAR)
    limit = float(value)
    if not math.isfinite(limit):
        raise fail(f"the limit {num}{unit} is too large for a float", _FINITE_GRAMMAR)
    return agg, percentile, op, limit, unit


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 95.0 -> '95', 99.90 -> '99.9'."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def threshold_list(
    thresholds: Sequence[Threshold] | Mapping[str, Any] | None, *, source: str
) -> list[Threshold]:
    """Thresholds as every run takes them: a k6 mapping (parsed, declared at ``source``),
    already parsed ones, or None."""
    if thresholds is None:
        return []
    if isinstance(thresholds, Mapping):
        return parse_thresholds(thresholds, source=source)
    return list(thresholds)


# -- evaluation ------------------------------------------------------------------------


def evaluate(
    thresholds: Sequence[Threshold],
    store: MetricStore,
    *,
    min_tail_samples: int = 1,
    duration_ns: int | None = None,
) -> list[ThresholdResult]:
    """Judge every threshold against ``store``, in order.

    ``duration_ns`` is the run's duration, for counter ``rate`` (without it, the span
    from the counter's first to last sample). ``min_tail_samples`` is how many samples
    must lie at or above a percentile for it to be judged.
    """
    if min_tail_samples < 1:
        raise ValueError(f"min_tail_samples must be >= 1, got {min_tail_samples!r}")
    selected: dict[tuple[str, TagSet], Sink | None] = {}
    results = []
    for threshold in thresholds:
        key = (threshold.metric, tagset(threshold.tags))
        try:
            if key not in selected:
                selected[key] = store.select(threshold.metric, threshold.tags)
            result = _judge(threshold, store, selected[key], min_tail_samples, duration_ns)
        except Exception as exc:  # judging comes after the load: never lose the run's data
            result = ThresholdResult(
                threshold,
                ok=False,
                observed=None,
                count=0,
                reason=f"could not be judged ({type(exc).__name__}: {exc}); the run's data "
                "is kept in the run file",
            )
        results.append(result)
    return results


def abort_check(
    thresholds: Sequence[Threshold],
    store: MetricStore,
    *,
    elapsed_ns: int,
    min_tail_samples: int = 1,
) -> list[ThresholdResult]:
    """The ``abortOnFail`` thresholds breached now, ``elapsed_ns`` into the run.

    Only thresholds past their ``delayAbortEval`` are judged, counter rates over
    ``elapsed_ns``; only real breaches count (too few samples never aborts a run).
    """
    due = [
        t
        for t in thresholds
        if t.abort_on_fail and not t.windowed and elapsed_ns >= t.delay_abort_eval_ns
    ]
    results = evaluate(due, store, min_tail_samples=min_tail_samples, duration_ns=elapsed_ns)
    return [r for r in results if r.breached]


def _judge(
    t: Threshold,
    store: MetricStore,
    sink: Sink | None,
    min_tail_samples: int,
    duration_ns: int | None,
) -> ThresholdResult:
    kind = store.type_of(t.metric)
    if kind is None:
        close = difflib.get_close_matches(t.metric, store.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return ThresholdResult(
            t,
            ok=False,
            observed=None,
            count=0,
            reason=f"no metric named {t.metric!r} is recorded{hint}; check the selector",
        )
    if t.windowed:
        return ThresholdResult(
            t,
            ok=False,
            observed=None,
            count=0,
            reason="a windowed threshold is judged on the run's intervals "
            "(engine.judge_run), not on a whole-run store",
        )
    return judge_sink(
        t,
        kind,
        store.is_time(t.metric),
        sink,
        min_tail_samples=min_tail_samples,
        duration_ns=duration_ns,
    )


def judge_sink(
    t: Threshold,
    kind: MetricType,
    time: bool,
    sink: Sink | None,
    *,
    min_tail_samples: int,
    duration_ns: int | None,
) -> ThresholdResult:
    """Judge ``t`` on ``sink``, the samples of its selector (None: nothing matched) of a
    metric of type ``kind`` (``time``: a trend of ns); ``duration_ns`` is the span a
    counter rate divides by. Never raises."""

    def unjudged(reason: str, count: int = 0) -> ThresholdResult:
        return ThresholdResult(t, ok=False, observed=None, count=count, reason=reason)

    what = "a time trend" if time else f"a {kind.value}"
    agg = "p(N)" if t.percentile is not None and t.aggregation != "med" else t.aggregation
    if agg not in _VALID_FOR[kind]:
        return unjudged(
            f"{t.aggregation} does not apply to {t.metric}, {what}; "
            f"use {' '.join(_VALID_FOR[kind])}"
        )
    if t.unit in NS_PER_UNIT and not time:
        return unjudged(f"unit {t.unit!r} applies only to time trends; {t.metric} is {what}")
    if (sink is None or not sink.samples) and kind is MetricType.COUNTER:
        # a declared counter that nothing incremented has counted zero things (as in
        # k6): `count==0` on a "bad things" counter must pass when none happened
        sink = CounterSink()
    if sink is None or (not sink.samples and kind is not MetricType.COUNTER):
        return unjudged(
            f"{NO_SAMPLES} {t.selector}; check the scenario ran and the tag filter matches"
        )
    n = sink.samples
    observed = _observe(t, sink, min_tail_samples, duration_ns)
    if isinstance(observed, str):
        return unjudged(observed, n)
    scale = 1_000_000 if time and t.aggregation != "count" else 1  # ns per ms
    if scale != 1:
        suffix = " ms"
    elif isinstance(sink, CounterSink) and t.aggregation == "rate":
        suffix = "/s"
    else:
        suffix = ""
    limit = Fraction(repr(t.limit))
    ok = _OPS[t.op](observed, limit * scale)
    shown = observed / scale
    limit_text = f"{_number(limit * 100)}%" if t.unit == "%" else _number(limit)
    if isinstance(sink, RateSink):
        value = f"{_number(shown * 100)}%" if t.unit == "%" else _number(shown)
        seen = f"{value} = {sink.trues:,} of {n:,} samples"
    else:
        seen = f"{_number(shown)}{suffix} over {n:,} samples"
    return ThresholdResult(
        t,
        ok=ok,
        observed=float(shown),
        count=n,
        reason=f"observed {seen} (limit {limit_text}{suffix})",
    )


def _observe(
    t: Threshold, sink: Sink, min_tail_samples: int, duration_ns: int | None
) -> Fraction | str:
    """The observed value in the metric's own unit (ns for time trends), or why not."""
    if isinstance(sink, TrendSink):
        n = sink.count
        if t.percentile is not None:
            needed = _samples_needed(t.percentile, min_tail_samples)
            if n < needed:
                return (
                    f"insufficient samples: {t.aggregation} needs at least {needed:,} samples "
                    f"(got {n:,}); run longer or at a higher rate"
                )
            return Fraction(sink.quantile(t.percentile))
        if t.aggregation == "count":
            return Fraction(n)
        if t.aggregation == "avg":
            return Fraction(sink.sum, n)
        return Fraction(sink.min() if t.aggregation == "min" else sink.max())
    if isinstance(sink, RateSink):
        return Fraction(sink.trues, sink.total)
    raw = sink.count if isinstance(sink, CounterSink) else sink.value
    if not math.isfinite(raw):
        return (
            f"{t.metric} holds {raw!r}, not a finite number: an iteration added or set a "
            "non-finite value (inf or NaN), so there is nothing to compare with the limit"
        )
    if isinstance(sink, CounterSink):
        if t.aggregation == "count":
            return Fraction(sink.count)
        span = duration_ns
        if span is None and sink.first_ns is not None and sink.last_ns is not None:
            span = sink.last_ns - sink.first_ns
        if not span:
            return (
                f"a counter rate needs the run duration and none is known for "
                f"{t.selector}; pass duration_ns to evaluate()"
            )
        return Fraction(sink.count) * NS_PER_S / span
    return Fraction(sink.value)


def _samples_needed(percentile: float, min_tail_samples: int) -> int:
    """Least n with ``n * (1 - q/100) >= min_tail_samples``; 1 for p(100), the maximum."""
    tail = 100 - Fraction(repr(percentile))
    return 1 if tail == 0 else ceil(min_tail_samples * 100 / tail)


def _number(value: Fraction) -> str:
    """Readable and precise enough to compare with a limit: 912.384, 2,000, 0.01234."""
    x = float(value)
    if x != 0 and abs(x) < 1:
        return f"{x:.4g}"
    text = f"{x:,.3f}".rstrip("0").rstrip(".")
    return text
