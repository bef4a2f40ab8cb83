"""The junit view of a run: ``certload.*`` properties of the test that ran it.

pytest writes a test's ``user_properties`` into junit XML (``<property>`` elements,
both junit families); CI systems show them beside the test case.

Besides the figures and verdicts: ``certload.<scenario>.warmup`` when a warm-up was left
out of the verdict (how long, and what it measured). A windowed threshold is named with
its window (``certload.threshold.http_req_duration.p(95)<500 per 10s window``) and has
two more: ``<that>.windows`` (``breached 2/10``) and, when one breached,
``<that>.worst_window`` (``3s–4s: 900 ms over 20 samples``). ``certload.generator_stalled``
says when the generator's event loop was late beyond the health limit. A run that went
wrong has its diagnoses (:mod:`.diagnoses`): ``certload.diagnosis.<id>.<scenario>`` and
the failed requests' per-status breakdown ``certload.<scenario>.statuses``. An ordinary
run has none of these.

What makes the run comparable (:func:`context_properties`): ``certload.profile`` (a smoke
run says ``smoke (indicative: ...)``), ``certload.target`` (with certctl's version and
commit), ``certload.database`` (PostgreSQL's settings) and ``certload.database_warning``
when commits did not wait for the disk, and ``certload.rows_before`` (the rows of the
tables the test declared, before the run).
"""

from __future__ import annotations

from ..engine import RunResult
from ..record import RunRecord, SessionRecord
from .diagnoses import diagnose
from .meta import hiccup_text, profile_text, warmup_text, window_text, windows_tally
from .stats import hiccup_stats, scenario_stats, warmup_stats

__all__ = ["STAT_KEYS", "context_properties", "diagnosis_properties", "run_properties"]

#: the per-scenario figures published, as ``certload.<scenario>.<key>``
STAT_KEYS = (
    "requests",
    "rps",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "error_rate",
    "lag_p99_ms",
)


def run_properties(result: RunResult) -> list[tuple[str, str]]:
    """Per-scenario figures, every threshold's verdict and the run's verdict."""
    props: list[tuple[str, str]] = []
    for name in result.scenarios:
        stats = scenario_stats(result, name)
        for key in STAT_KEYS:
            value = stats.get(key)
            if value is not None:
                props.append((f"certload.{name}.{key}", _text(value)))
        warmup = warmup_stats(result, name)
        if warmup is not None:
            props.append((f"certload.{name}.warmup", warmup_text(warmup).removeprefix("warm-up ")))
    for r in result.thresholds:
        verdict = "ok" if r.ok else "breached"
        # a windowed threshold is named with its window: ``p(95)<500 per 10s window`` is
        # another threshold than ``p(95)<500`` over the whole run
        key = f"certload.threshold.{r.threshold.selector}.{r.threshold.describe()}"
        props.append((key, f"{verdict}: {r.message()}"))
        if r.windows:
            props.append((f"{key}.windows", windows_tally(r)))
            worst = r.worst_window()
            if worst is not None:
                props.append((f"{key}.worst_window", window_text(result, r, worst)))
    hiccups = hiccup_stats(result)
    if hiccups is not None and hiccups["stalled"]:
        text = hiccup_text(hiccups).removeprefix("generator stalled: ")
        props.append(("certload.generator_stalled", text))
    props += diagnosis_properties(result)
    props.append(("certload.verdict", result.verdict))
    return props


def diagnosis_properties(result: RunResult) -> list[tuple[str, str]]:
    """``certload.diagnosis.<id>.<scenario>``: each diagnosis, its summary then its
    details (one line each); ``certload.<scenario>.statuses``: the failed requests'
    per-status breakdown (``429: 915 of 2,000; 500: 12``)."""
    props: list[tuple[str, str]] = []
    for d in diagnose(result):
        if d.kind == "failed-requests":
            props.append((f"certload.{d.scenario}.statuses", d.breakdown()))
        props.append((f"certload.diagnosis.{d.id}.{d.scenario}", "\n".join(d.lines())))
    return props


def context_properties(session: SessionRecord, record: RunRecord) -> list[tuple[str, str]]:
    """The profile, the target, the database's settings and the rows before the run."""
    props = [("certload.profile", profile_text(session.profile))]
    if session.target:
        props.append(("certload.target", session.target))
    if session.database is not None:
        props.append(("certload.database", session.database.text()))
        if warning := session.database.warning():
            props.append(("certload.database_warning", warning))
    if record.database is not None:
        props.append(("certload.rows_before", record.database.text()))
    return props


def _text(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
