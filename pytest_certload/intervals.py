"""A run's samples interval by interval: what windowed thresholds, warm-up and the HDR
interval log are made of.

The engine rotates its live :class:`~.metrics.MetricStore` once per timeline interval
(``RunOptions.interval``, 1 s by default) and keeps each rotated part here in its
serialised form (HDR histograms encoded and compressed, a few hundred bytes to a few KB
per series), so a run's memory grows with its duration and its series, never with its
request count. Nothing is approximated: any range of intervals merges back exactly.

An :class:`Interval` is nominal interval ``index`` of the run: ``[index * interval,
(index + 1) * interval)`` from the run start, the last one cut short at the run's end.
``start_ns``/``end_ns`` are when it was actually cut. In a run merged from
``--certload-tx`` workers an interval holds one part per worker (merging is keeping both:
exact, and nothing is decoded until it is read).

The HDR interval log (:func:`write_hdr_log`) is HdrHistogram's own text format, one
histogram of ``http_req_duration`` per scenario and interval (values in ns) plus the
generator's hiccups, readable by HdrHistogram's ``HistogramLogProcessor`` and the
``hdrh`` package's ``HistogramLogReader``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics import (
    FORMAT_VERSION,
    GENERATOR_HICCUP,
    HTTP_REQ_DURATION,
    PROCESS_METRICS,
    MetricStore,
    MetricType,
    Sink,
    TagSet,
    TrendSink,
    tagset,
)

__all__ = ["Interval", "SeriesFilter", "merge_intervals", "select_span", "write_hdr_log"]

SeriesFilter = Callable[[TagSet], bool]
"""Which series of a metric to read: true for the tag sets to keep."""


@dataclass
class Interval:
    """Interval ``index`` of a run and every sample recorded in it."""

    index: int
    start_ns: int  # offsets from the run start, as cut
    end_ns: int
    parts: list[dict[str, Any]] = field(default_factory=list)  # MetricStore.to_dict() each
    _hiccup: int | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def cut(cls, index: int, start_ns: int, end_ns: int, store: MetricStore) -> Interval:
        """The interval holding ``store``'s samples (a store :meth:`MetricStore.rotate`
        handed over: it holds only series that got a sample; metrics without one are
        left out)."""
        iv = cls(index, start_ns, end_ns, [{"format": FORMAT_VERSION, "metrics": {}}])
        for name in store.names():
            iv.add_metric(store, name)
        return iv

    def add_metric(self, store: MetricStore, name: str) -> None:
        """Keep metric ``name`` of ``store`` in this interval (one part of one process),
        unless it has no series: how the engine cuts an interval a metric at a time."""
        entry = store.metric_dict(name)
        if entry["series"]:
            self.parts[0]["metrics"][name] = entry
            self._hiccup = None

    def select(
        self, name: str, tag_filter: Mapping[str, str], *, keep: SeriesFilter | None = None
    ) -> Sink | None:
        """``name`` over the series whose tags include ``tag_filter`` (and pass ``keep``),
        merged, as :meth:`MetricStore.select` does; None when nothing matches."""
        wanted = set(tag_filter.items())
        merged: Sink | None = None
        for part in self.parts:
            metric = part["metrics"].get(name)
            if metric is None:
                continue
            for entry in metric["series"]:
                tags = tagset(entry["tags"])
                if not wanted.issubset(tags) or (keep is not None and not keep(tags)):
                    continue
                one = MetricStore.from_dict(
                    {
                        "format": part["format"],
                        "metrics": {name: {**metric, "series": [entry]}},
                    }
                ).series(name)[tags]
                if merged is None:
                    merged = one
                else:
                    merged.merge(one)  # type: ignore[arg-type]  # one metric, one sink class
        return merged

    def subset(self, tag_filter: Mapping[str, str]) -> Interval:
        """The same interval with only the series whose tags include ``tag_filter`` (and
        the process's own metrics, as :meth:`MetricStore.subset` keeps them)."""
        wanted = set(tag_filter.items())
        parts = []
        for part in self.parts:
            metrics = {
                name: {
                    **metric,
                    "series": [
                        s
                        for s in metric["series"]
                        if name in PROCESS_METRICS or wanted.issubset(s["tags"].items())
                    ],
                }
                for name, metric in part["metrics"].items()
            }
            parts.append({**part, "metrics": metrics})
        return Interval(self.index, self.start_ns, self.end_ns, parts)

    def type_of(self, name: str) -> tuple[MetricType, bool] | None:
        """``(type, time)`` of ``name`` as recorded here, None if no part declares it."""
        for part in self.parts:
            metric = part["metrics"].get(name)
            if metric is not None:
                return MetricType(metric["type"]), bool(metric["time"])
        return None

    def hiccup_max_ns(self) -> int:
        """The longest the generator's event loop was late in this interval (0: not
        measured). See :mod:`pytest_certload.engine.hiccups`."""
        if self._hiccup is None:
            sink = self.select(GENERATOR_HICCUP, {})
            self._hiccup = sink.max() if isinstance(sink, TrendSink) and sink.count else 0
        return self._hiccup

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "parts": self.parts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interval:
        return cls(
            index=int(data["index"]),
            start_ns=int(data["start_ns"]),
            end_ns=int(data["end_ns"]),
            parts=[dict(p) for p in data["parts"]],
        )


def merge_intervals(runs: Sequence[Sequence[Interval]]) -> list[Interval]:
    """Intervals of several workers' runs, index by index (each worker ticks on its own
    clock from its own start; the controller starts them together)."""
    by_index: dict[int, Interval] = {}
    for intervals in runs:
        for iv in intervals:
            known = by_index.get(iv.index)
            if known is None:
                by_index[iv.index] = Interval(iv.index, iv.start_ns, iv.end_ns, list(iv.parts))
            else:
                known.start_ns = min(known.start_ns, iv.start_ns)
                known.end_ns = max(known.end_ns, iv.end_ns)
                known.parts.extend(iv.parts)
                known._hiccup = None
    return [by_index[i] for i in sorted(by_index)]


def select_span(
    intervals: Iterable[Interval],
    name: str,
    tag_filter: Mapping[str, str],
    *,
    keep: Callable[[int], SeriesFilter | None] | None = None,
) -> Sink | None:
    """``name`` over several intervals, merged exactly (None when nothing matches);
    ``keep(index)`` gives each interval's series filter."""
    merged: Sink | None = None
    for iv in intervals:
        sink = iv.select(name, tag_filter, keep=None if keep is None else keep(iv.index))
        if sink is None:
            continue
        if merged is None:
            merged = sink
        else:
            merged.merge(sink)  # type: ignore[arg-type]  # one metric, one sink class
    return merged


def write_hdr_log(
    path: Path,
    intervals: Sequence[Interval],
    scenarios: Iterable[str],
    *,
    started_at_s: float,
    comment: str = "",
) -> None:
    """Write the run's latency histograms per interval in HdrHistogram's log format.

    One line per interval and tag: ``http_req_duration.<scenario>`` (every request of
    the scenario), and ``generator_hiccup`` (the event loop's oversleep). Values are
    nanoseconds, so ``HistogramLogProcessor -outputValueUnitRatio 1000000`` reads them in
    ms. Timestamps are seconds since the run start; ``#[StartTime: ...]`` holds the
    absolute start. Intervals without samples of a tag have no line for it.
    """
    names = list(scenarios)
    out = io.StringIO()
    out.write("#[Histogram log format version 1.3]\n")
    if comment:
        out.write(f"#[{comment}]\n")
    out.write(f"#[StartTime: {started_at_s:.3f} (seconds since epoch)]\n")
    out.write(f"#[BaseTime: {started_at_s:.3f} (seconds since epoch)]\n")
    out.write('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n')
    for iv in intervals:
        tags: list[tuple[str, Sink | None]] = [
            (f"{HTTP_REQ_DURATION}.{_tag(name)}", iv.select(HTTP_REQ_DURATION, {"scenario": name}))
            for name in names
        ]
        tags.append((GENERATOR_HICCUP, iv.select(GENERATOR_HICCUP, {})))
        for tag, sink in tags:
            if not isinstance(sink, TrendSink) or not sink.count:
                continue
            start = iv.start_ns / 1e9
            length = max(iv.end_ns - iv.start_ns, 0) / 1e9
            out.write(
                f"Tag={tag},{start:.3f},{length:.3f},{sink.max() / 1e6:.3f},"
                f"{sink.to_dict()['hdr']}\n"
            )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(out.getvalue(), encoding="utf-8")
    tmp.replace(path)


def _tag(name: str) -> str:
    """A scenario name as a log tag: the format forbids ',' and whitespace in tags."""
    return "".join("_" if ch == "," or ch.isspace() else ch for ch in name)
