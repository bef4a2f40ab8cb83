"""Settings: every option resolved once, CLI > ini > env > default, into a frozen object.

Each setting has one name in four spellings: the CLI option (``--certload-duration``), the
dest and ini key (``certload_duration``) and the environment variable
(``CERTLOAD_DURATION``). The certctl connection options follow the spelling the issue
tracker and certctl users know (``--certctl-url``) but keep the ``certload_`` dest, ini key
and ``CERTLOAD_`` environment variable, so they never collide with certctl's own
``CERTCTL_*`` variables.

This module imports no pytest: the plugin feeds it raw values and their sources.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .baseline.model import NAME_RE as BASELINE_NAME_RE
from .certctl.defects import DOCS as DEFECTS_DOCS
from .certctl.defects import MODES as DEFECT_MODES
from .distributed.tx import TX_GRAMMAR, parse_tx
from .engine.health import HEALTH_GRAMMAR, HealthLimits
from .errors import ConfigError, ImagesSyntaxError, OptionValueError, TxSyntaxError
from .http import BACKENDS, DEFAULT_BACKEND, DEFAULT_HTTP_VERSION, HTTP_VERSIONS
from .http.tls import client_context
from .record import DEFAULT_OUTPUT_DIR
from .redaction import redact_dsn, redact_environment, redact_url
from .stack import TARGET_TYPES
from .stack.certctl import HARNESS_VARIABLES
from .stack.images import IMAGES_GRAMMAR, parse_images
from .stack.session import StackRequest
from .units import DURATION_GRAMMAR, NS_PER_MS, NS_PER_S, parse_duration_ns

__all__ = [
    "CERTCTL_ENV_GRAMMAR",
    "ENV_NAME_RE",
    "OPTIONS",
    "PROFILES",
    "PROVIDERS",
    "Option",
    "Settings",
    "check_settings",
    "resolve",
]

PROFILES = ("smoke", "canonical")
PROVIDERS = ("local", "containers", "external")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise OptionValueError("choice", f"one of {', '.join(choices)}")
        return value

    return parse


def _duration(raw: str) -> int:
    try:
        return parse_duration_ns(raw, allow_zero=False)
    except ConfigError:
        raise OptionValueError("duration", DURATION_GRAMMAR) from None


def _warmup(raw: str) -> int:
    try:
        return parse_duration_ns(raw, allow_zero=True)
    except ConfigError:
        raise OptionValueError("warm-up", f"0s for none, or {DURATION_GRAMMAR}") from None


def _fraction(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise OptionValueError("fraction", "a number between 0 and 1, e.g. '0.1' for 10 %")
    return value


def _capacity_max(raw: str) -> str:
    text = raw.strip().lower()
    try:
        value = float(text[:-1]) if text.endswith("x") else float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or not math.isfinite(value):
        raise OptionValueError(
            "rate ceiling",
            "a multiple of the contract rate such as '20x', or iterations per second such "
            "as '2000'",
        )
    return text


def _off(raw: str) -> bool:
    """Whether an interval option's value turns the feature off."""
    return raw.strip().lower() in ("off", "0", "no", "false")


def _progress(raw: str) -> int:
    if _off(raw):
        return 0
    try:
        return parse_duration_ns(raw, allow_zero=False)
    except ConfigError:
        raise OptionValueError("progress interval", f"'off' or {DURATION_GRAMMAR}") from None


def _telemetry(raw: str) -> int:
    if _off(raw):
        return 0
    try:
        value = parse_duration_ns(raw, allow_zero=False)
    except ConfigError:
        value = 0
    if value < 100 * NS_PER_MS:
        raise OptionValueError(
            "telemetry interval", f"'off' or a duration of at least 100ms ({DURATION_GRAMMAR})"
        )
    return value


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise OptionValueError("count", "a whole number, 1 or more, e.g. '1'")
    return value


def _switch(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise OptionValueError("switch", "true or false (also 1/0, yes/no, on/off)")


def _path(raw: str) -> Path:
    if not raw.strip():
        raise OptionValueError("path", "a file or directory path")
    return Path(raw).expanduser()


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise OptionValueError("URL", "an http:// or https:// URL, e.g. 'https://127.0.0.1:8443'")
    return value


def _text(raw: str) -> str:
    return raw.strip()


def _health(raw: str) -> HealthLimits:
    try:
        return HealthLimits.parse(raw)
    except ConfigError:
        raise OptionValueError("health limit", HEALTH_GRAMMAR) from None


def _ca(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise OptionValueError("CA setting", "a CA bundle path or 'insecure'")
    return value


def _targets(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.replace("\n", ",").split(","))):
        kind, sep, url = part.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in TARGET_TYPES:
            raise OptionValueError(
                "target list",
                f"TYPE=URL pairs separated by commas, TYPE one of {', '.join(TARGET_TYPES)}, "
                "e.g. 'nginx=https://127.0.0.1:8441'",
            )
        out[kind] = _url(url)
    return out


#: a variable name --certctl-env accepts
ENV_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")
#: what a value holding several settings joined by ',' looks like: ``true,CERTCTL_X=1``
_JOINED = re.compile(r",\s*[A-Z][A-Z0-9_]*=")
CERTCTL_ENV_GRAMMAR = (
    "KEY=VALUE with KEY in upper case (letters, digits and '_', starting with a letter), "
    "e.g. 'CERTCTL_RATE_LIMIT_ENABLED=true'; one setting per --certctl-env, or one per "
    "line in the ini key and the environment variable"
)


def _certctl_env(raw: str) -> dict[str, str]:
    """``KEY=VALUE`` settings, one per line (a command-line value is one line). No error
    repeats a value: it may be a secret."""
    out: dict[str, str] = {}
    lines = raw.splitlines() or [raw]
    for number, line in enumerate(lines, 1):
        item = line.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep and not ENV_NAME_RE.fullmatch(key):
            where = f"line {number}" if len(lines) > 1 else "the value"
            raise OptionValueError(
                "certctl setting",
                CERTCTL_ENV_GRAMMAR,
                shown=f"{where} (not repeated here: it may hold a secret)",
            )
        if not sep:
            raise OptionValueError(
                "certctl setting (it has no '=VALUE')", CERTCTL_ENV_GRAMMAR, shown=repr(key)
            )
        if not ENV_NAME_RE.fullmatch(key):
            raise OptionValueError("certctl variable name", CERTCTL_ENV_GRAMMAR, shown=repr(key))
        shown = f"'{key}=…'"
        if key in HARNESS_VARIABLES:
            raise OptionValueError(
                "certctl setting",
                "a variable pytest-certload does not set itself to reach the certctl it "
                f"starts (not {', '.join(sorted(HARNESS_VARIABLES))})",
                shown=shown,
            )
        if key in out:
            raise OptionValueError(
                "certctl setting", f"each KEY once ({key} is given twice)", shown=shown
            )
        if _JOINED.search(value):
            raise OptionValueError(
                "certctl setting",
                f"one setting per line in the ini key and the environment variable, or one "
                f"per --certctl-env: a ',' does not separate settings (the value of {key} "
                "holds another KEY=VALUE after a ',')",
                shown=shown,
            )
        out[key] = value.strip()
    return out


def _merge_certctl_env(items: list[dict[str, str]]) -> dict[str, str]:
    """The settings of every ``--certctl-env``, in order; a KEY given twice is an error."""
    merged: dict[str, str] = {}
    for item in items:
        for key, value in item.items():
            if key in merged:
                raise OptionValueError(
                    "certctl setting", f"each KEY once ({key} is given twice)", shown=f"'{key}=…'"
                )
            merged[key] = value
    return merged


def _images(raw: str) -> dict[str, str]:
    try:
        return parse_images(raw)
    except ImagesSyntaxError as exc:
        raise OptionValueError(f"image list ({exc.problem})", IMAGES_GRAMMAR) from None


def _tx(raw: str) -> tuple[str, ...]:
    try:
        return parse_tx(raw)
    except TxSyntaxError as exc:
        raise OptionValueError(f"gateway spec list ({exc.problem})", TX_GRAMMAR) from None


def _baseline(raw: str) -> str:
    value = raw.strip()
    if not BASELINE_NAME_RE.match(value) and not value.endswith(".json"):
        raise OptionValueError(
            "baseline", "a baseline name (letters, digits, '_', '-', '.') or a path ending in .json"
        )
    return value


@dataclass(frozen=True)
class Option:
    """One setting in its four spellings, its parser, default and help."""

    cli: str
    dest: str
    parse: Callable[[str], Any]
    default: Any
    metavar: str
    help: str
    shown_default: str = ""
    #: the :class:`Settings` attribute, when it is not ``dest`` without ``certload_``
    attr: str = ""
    #: a command-line switch taking no value (ini and environment take true/false)
    flag: bool = False
    #: given once per item on the command line, one item per line in the ini file and
    #: the environment; ``merge`` combines the command line's parsed items
    repeat: bool = False
    merge: Callable[[list[Any]], Any] | None = None

    @property
    def env(self) -> str:
        return self.dest.upper()

    @property
    def field(self) -> str:
        return self.attr or self.dest.removeprefix("certload_")

    @property
    def default_text(self) -> str:
        if self.shown_default:
            return self.shown_default
        return "unset" if self.default is None else str(self.default)


OPTIONS: tuple[Option, ...] = (
    Option(
        "--certload-profile",
        "certload_profile",
        _choice(*PROFILES),
        "smoke",
        "PROFILE",
        "run profile: 'smoke' shortens every scenario's duration (and nothing else) so "
        "a full run takes minutes; 'canonical' keeps the contract's durations and rates",
    ),
    Option(
        "--certload-duration",
        "certload_duration",
        _duration,
        None,
        "DURATION",
        "override every scenario's duration, e.g. '30s' or '2m' (ramps are scaled)",
        attr="duration_ns",
    ),
    Option(
        "--certload-warmup",
        "certload_warmup",
        _warmup,
        None,
        "DURATION",
        "leave each scenario's first DURATION out of the verdict (recorded and reported "
        "apart, never dropped), overriding a scenario's own warmup; '0s' judges "
        "everything; default: each scenario's own (none unless it sets one, as in k6)",
        attr="warmup_ns",
        shown_default="each scenario's own",
    ),
    Option(
        "--certload-output-dir",
        "certload_output_dir",
        _path,
        DEFAULT_OUTPUT_DIR,
        "DIR",
        "where the JSON summary, per-test results and reports are written",
    ),
    Option(
        "--certload-http-backend",
        "certload_http_backend",
        _choice(*BACKENDS),
        DEFAULT_BACKEND,
        "BACKEND",
        "HTTP client of the virtual users: 'fast' (HTTP/1.1 on httptools, HTTP/2 on h2) or 'httpx'",
    ),
    Option(
        "--certload-http-version",
        "certload_http_version",
        _choice(*HTTP_VERSIONS),
        DEFAULT_HTTP_VERSION,
        "VERSION",
        "HTTP version of the virtual users: 'auto' speaks what TLS ALPN negotiates "
        "(HTTP/2 when the server offers h2, as k6; plain http:// is HTTP/1.1), '1.1' "
        "HTTP/1.1 only, '2' HTTP/2 only (prior knowledge on http://); the connector "
        "tier's handshake scenarios keep HTTP/1.1",
    ),
    Option(
        "--certload-provider",
        "certload_provider",
        _choice(*PROVIDERS),
        "local",
        "PROVIDER",
        "how the system under test is provided: 'local' native processes, "
        "'containers' via testcontainers, or 'external' (give --certctl-url); "
        "--certctl-url alone implies 'external'",
    ),
    Option(
        "--certload-health",
        "certload_health",
        _health,
        HealthLimits(),
        "LIMITS",
        "generator-health limits: minimum started/scheduled ratio, maximum dropped "
        "ratio, maximum schedule-lag p99, maximum generator-delay p99 (how long "
        "responses waited for our event loop), maximum ratio of iterations that raised, "
        "longest stall of the generator's event loop before an interval counts as "
        "stalled; any subset, e.g. 'lag_p99=100ms,delay_p99=20ms'",
        shown_default=HealthLimits().spec(),
    ),
    Option(
        "--certload-min-tail-samples",
        "certload_min_tail_samples",
        _positive_int,
        1,
        "N",
        "a percentile p(q) is judged only when at least N samples lie beyond it "
        "(n*(1-q/100) >= N); otherwise it is a breach",
    ),
    Option(
        "--certload-known-defects",
        "certload_known_defects",
        _choice(*DEFECT_MODES),
        "xfail",
        "MODE",
        "what a failure whose evidence matches a known certctl defect becomes: 'xfail' "
        "(reported xfailed, naming the defect and certctl's file and function; a test "
        "marked certload(known_defects=[...]) whose defect no longer shows fails as "
        f"XPASS(strict)) or 'fail' (a plain failure, as any other; see {DEFECTS_DOCS})",
    ),
    Option(
        "--certload-progress",
        "certload_progress",
        _progress,
        10 * NS_PER_S,
        "EVERY",
        "print a progress line this often during a run ('off' to disable)",
        shown_default="10s",
        attr="progress_ns",
    ),
    Option(
        "--certload-telemetry",
        "certload_telemetry",
        _telemetry,
        NS_PER_S,
        "EVERY",
        "sample the stack's processes (CPU, RSS, threads, fds), PostgreSQL's statistics "
        "and the generator's CPU this often during each run, and certctl's metrics at its "
        "start and end ('off' to disable)",
        shown_default="1s",
        attr="telemetry_ns",
    ),
    Option(
        "--certload-ca",
        "certload_ca",
        _ca,
        None,
        "PATH",
        "CA bundle that signs the targets' certificates, or 'insecure' to skip "
        "verification (default: the CA the stack makes)",
    ),
    Option(
        "--certctl-url",
        "certload_certctl_url",
        _url,
        None,
        "URL",
        "base URL of a certctl someone already runs, e.g. https://127.0.0.1:8443",
    ),
    Option(
        "--certctl-token",
        "certload_certctl_token",
        _text,
        None,
        "TOKEN",
        "API key for --certctl-url (an :admin named key for bulk-revoke); prefer the "
        "environment variable: a command line is visible to every local user",
    ),
    Option(
        "--certctl-dsn",
        "certload_certctl_dsn",
        _text,
        None,
        "DSN",
        "PostgreSQL DSN of that certctl's database, for seeding the scale tier; prefer "
        "the environment variable when it holds a password",
    ),
    Option(
        "--certctl-bin",
        "certload_certctl_bin",
        _path,
        None,
        "PATH",
        "run this certctl server binary instead of the reference double (local provider)",
    ),
    Option(
        "--certctl-migrations",
        "certload_certctl_migrations",
        _path,
        None,
        "DIR",
        "certctl's migrations directory, required with --certctl-bin",
    ),
    Option(
        "--certctl-env",
        "certload_certctl_env",
        _certctl_env,
        None,
        "KEY=VALUE",
        "set a variable of the certctl the local or containers provider starts (the "
        "reference double or --certctl-bin), e.g. 'CERTCTL_RATE_LIMIT_ENABLED=true' for "
        "certctl's default rate limiter; repeat the option for several (one per line in the "
        "ini key and the environment variable); overrides the stack's own settings "
        "(docs/stack.md), not where certctl listens, its database or its keys; refused with "
        "an external certctl",
        repeat=True,
        merge=_merge_certctl_env,
    ),
    Option(
        "--certload-targets",
        "certload_targets",
        _targets,
        None,
        "TYPE=URL,...",
        "connector-tier target URLs of an external stack, e.g. "
        "'nginx=https://h:8441,apache=https://h:8442,haproxy=https://h:8443,f5=https://h:8444'",
    ),
    Option(
        "--certload-images",
        "certload_images",
        _images,
        None,
        "ROLE=IMAGE,...",
        "container images of the containers provider by role (postgres, certctl, nginx, "
        "apache, haproxy, f5), replacing the public defaults (pinned by tag; see "
        "docs/stack.md), e.g. the ones scripts/container-images.sh builds",
        shown_default="the public images",
    ),
    Option(
        "--certload-tx",
        "certload_tx",
        _tx,
        None,
        "SPECS",
        "split each run's load across execnet gateways (pytest-xdist's --tx syntax), e.g. "
        "'2*popen' or 'popen,ssh=host//python=python3', or 'auto' for one local worker "
        "per usable core; the results are merged exactly and judged once (see "
        "docs/distributed.md)",
    ),
    Option(
        "--certload-isolate",
        "certload_isolate",
        _switch,
        False,
        "",
        "run each scenario of a shared run alone (certctl's k6 runs the API pair and the "
        "four connector targets at the same time, and so do the shipped tests): for "
        "diagnosing which scenario a breach belongs to",
        shown_default="off",
        flag=True,
    ),
    Option(
        "--certload-capacity",
        "certload_capacity",
        _switch,
        False,
        "",
        "search, for each open-model scenario whose contract rate passes, the highest "
        "arrival rate at which its thresholds still hold (x2 steps, then bisection; see "
        "docs/operator/scale.md); ini and env take true/false",
        shown_default="off",
        flag=True,
    ),
    Option(
        "--certload-capacity-precision",
        "certload_capacity_precision",
        _fraction,
        0.1,
        "FRACTION",
        "stop the capacity search when the first failing rate is within this fraction of "
        "the last passing one",
    ),
    Option(
        "--certload-capacity-step",
        "certload_capacity_step",
        _duration,
        None,
        "DURATION",
        "how long each capacity step dwells at its rate, after a 2 s ramp (default: the "
        "scenario's smoke duration)",
        attr="capacity_step_ns",
        shown_default="the smoke duration",
    ),
    Option(
        "--certload-capacity-max",
        "certload_capacity_max",
        _capacity_max,
        "20x",
        "RATE",
        "highest rate the capacity search may offer: a multiple of the contract rate "
        "('20x') or iterations per second ('2000')",
    ),
    Option(
        "--certload-capacity-time",
        "certload_capacity_time",
        _duration,
        4 * 60 * NS_PER_S,
        "DURATION",
        "longest a capacity search may take per scenario (it reports what it found)",
        attr="capacity_time_ns",
        shown_default="4m",
    ),
    Option(
        "--certload-baseline",
        "certload_baseline",
        _baseline,
        None,
        "NAME",
        "compare this session's latency distributions with a saved baseline "
        "(baselines/NAME.json under the rootdir, or a path ending in .json) and fail the "
        "session on a regression (see docs/reports-and-baselines.md)",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Every option resolved (CLI > ini > env > default); ``sources`` says where each
    value came from. :func:`resolve` makes one; :meth:`defaults` has every default."""

    profile: str
    duration_ns: int | None
    warmup_ns: int | None
    output_dir: Path
    http_backend: str
    http_version: str
    provider: str
    health: HealthLimits
    min_tail_samples: int
    known_defects: str
    progress_ns: int
    telemetry_ns: int
    ca: str | None
    certctl_url: str | None
    certctl_token: str | None = field(repr=False)
    certctl_dsn: str | None = field(repr=False)
    certctl_bin: Path | None
    certctl_migrations: Path | None
    certctl_env: Mapping[str, str] | None
    targets: Mapping[str, str] | None
    images: Mapping[str, str] | None
    tx: tuple[str, ...] | None
    isolate: bool
    capacity: bool
    capacity_precision: float
    capacity_step_ns: int | None
    capacity_max: str
    capacity_time_ns: int
    baseline: str | None
    sources: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        """Every setting but the secrets (a password inside the URL is masked too)."""
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.repr:
                value = "***" if value else value
            elif f.name == "certctl_url" and value:
                value = redact_url(value)
            elif f.name == "certctl_env" and value:
                value = redact_environment(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def defaults(cls) -> Settings:
        """Every setting at its default (what no CLI, ini or environment gives)."""
        return resolve({}, {}, environ={})

    def stack_request(self) -> StackRequest:
        """What the ``certload_stack`` fixture asks the stack for."""
        return StackRequest(
            provider=self.provider,
            certctl_url=self.certctl_url,
            certctl_token=self.certctl_token,
            certctl_dsn=self.certctl_dsn,
            ca=self.ca,
            certctl_bin=self.certctl_bin,
            certctl_migrations=self.certctl_migrations,
            targets=dict(self.targets or {}),
            certctl_env=dict(self.certctl_env or {}),
            images=dict(self.images or {}),
        )

    def target_types(self) -> tuple[str, ...]:
        """The connector target types this session's stack has: every one for the local
        and containers providers, those --certload-targets names for an external one."""
        if self.provider != "external":
            return TARGET_TYPES
        return tuple(kind for kind in TARGET_TYPES if kind in (self.targets or {}))

    def missing_target(self, kind: str) -> str:
        """Why a test of connector target ``kind`` is skipped: its URL was not given."""
        have = self.target_types()
        given = (
            f"({', '.join(have)}, from {self.sources.get('certload_targets', 'the settings')})"
            if have
            else "(none was given)"
        )
        return (
            f"no {kind} target to measure: an external stack has only the connector targets "
            f"--certload-targets names {given}; add {kind}=https://HOST:PORT to "
            "--certload-targets (ini certload_targets, env CERTLOAD_TARGETS) to measure it"
        )


def error_for(option: Option, raw: str, exc: OptionValueError, source: str) -> ConfigError:
    return ConfigError(
        f"{exc.value_text(raw)} is not a valid {exc.kind} for {option.dest} (from {source}); "
        f"use {exc.grammar}."
    )


def resolve(
    cli: Mapping[str, Any],
    ini: Mapping[str, str | None],
    *,
    ini_source: str = "the ini file",
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every option: CLI (already parsed), then ini, then env, then default.

    ``cli`` maps dest -> parsed value or None; ``ini`` maps dest -> raw string or None.
    Raises :class:`ConfigError` naming the value, its source and what is valid.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        value = cli.get(opt.dest)
        if value is not None:
            if opt.merge is not None and isinstance(value, list):
                try:
                    value = opt.merge(value)
                except OptionValueError as exc:
                    raise error_for(opt, "", exc, f"command line {opt.cli}") from None
            values[opt.dest], sources[opt.dest] = value, f"command line {opt.cli}"
            continue
        for raw, source in (
            (ini.get(opt.dest), ini_source),
            (environ.get(opt.env), f"environment variable {opt.env}"),
        ):
            if raw is None or raw == "":
                continue
            try:
                values[opt.dest] = opt.parse(raw)
            except OptionValueError as exc:
                raise error_for(opt, raw, exc, source) from None
            sources[opt.dest] = source
            break
        else:
            values[opt.dest], sources[opt.dest] = opt.default, "default"
    provider = values["certload_provider"]
    if values["certload_certctl_url"] and sources["certload_provider"] == "default":
        provider = "external"
        sources["certload_provider"] = f"implied by {sources['certload_certctl_url']}"
    if provider == "external" and not values["certload_certctl_url"]:
        raise ConfigError(
            f"the external provider (from {sources['certload_provider']}) needs certctl's URL; "
            "give --certctl-url URL (ini certload_certctl_url, env CERTLOAD_CERTCTL_URL), "
            "or use --certload-provider local to boot the embedded stack."
        )
    if provider == "external" and values["certload_certctl_env"]:
        url = redact_url(values["certload_certctl_url"])
        raise ConfigError(
            f"--certctl-env (from {sources['certload_certctl_env']}) sets "
            f"{', '.join(values['certload_certctl_env'])} for the certctl pytest-certload "
            f"starts, but the external provider (from {sources['certload_provider']}) measures "
            f"the certctl at {url}, which someone else runs; set these where that certctl "
            "runs (its environment) and restart it, or drop --certctl-env, or let the local "
            "provider start certctl (--certctl-bin PATH --certctl-migrations DIR, without "
            "--certctl-url)."
        )
    if values["certload_certctl_bin"] is not None and values["certload_certctl_migrations"] is None:
        raise ConfigError(
            f"--certctl-bin (from {sources['certload_certctl_bin']}) needs certctl's "
            "migrations directory: give --certctl-migrations DIR (the migrations/ folder of "
            "the same certctl checkout)."
        )
    fields = {opt.field: values[opt.dest] for opt in OPTIONS}
    fields["provider"] = provider
    return Settings(**fields, sources=sources)


def check_settings(settings: Settings, *, rootpath: Path) -> None:
    """What the settings name must exist and be usable; checked before any test runs.

    Raises :class:`ConfigError` listing every problem: the value, where it came from,
    what is wrong and what to give instead. Secrets are never repeated.
    """
    problems = [
        p
        for p in (
            _check_ca(settings),
            _check_output_dir(settings, rootpath),
            _check_dsn(settings),
            _check_binary(settings),
        )
        if p
    ]
    if problems:
        raise ConfigError("\n".join(problems))


def _where(settings: Settings, dest: str) -> str:
    return settings.sources.get(dest, "the settings")


def _check_ca(settings: Settings) -> str:
    ca = settings.ca
    if ca is None or ca == "insecure":
        return ""
    path = Path(ca).expanduser()  # used as given, relative to the working directory
    where = f"for certload_ca (from {_where(settings, 'certload_ca')})"
    fix = (
        "give the PEM file of the CA that signed the servers' certificates, or 'insecure' "
        "to skip verification knowingly"
    )
    if not path.exists():
        return f"the CA bundle {ca!r} {where} does not exist; {fix}."
    if not path.is_file():
        return f"the CA bundle {ca!r} {where} is not a file; {fix}."
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"the CA bundle {ca!r} {where} cannot be read ({exc.strerror}); {fix}."
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return f"the CA bundle {ca!r} {where} holds no PEM certificate; {fix}."
    try:
        client_context(str(path))
    except ConfigError:
        return f"the CA bundle {ca!r} {where} cannot be loaded as PEM certificates; {fix}."
    return ""


def _check_output_dir(settings: Settings, rootpath: Path) -> str:
    path = (
        settings.output_dir if settings.output_dir.is_absolute() else rootpath / settings.output_dir
    )
    where = (
        f"--certload-output-dir {str(settings.output_dir)!r} "
        f"(from {_where(settings, 'certload_output_dir')})"
    )
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == path and not path.is_dir():
        return f"{where} is not a directory; give a directory the results can be written to."
    if not os.access(existing, os.W_OK | os.X_OK):
        return (
            f"{where} cannot be written: {existing} is not writable by this user; give "
            "a writable directory."
        )
    return ""


def _check_dsn(settings: Settings) -> str:
    dsn = settings.certctl_dsn
    if not dsn:
        return ""
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(dsn)
    except Exception:
        # psycopg's message quotes the DSN, password included: say what is valid instead
        return (
            f"{redact_dsn(dsn)!r}, the value of certload_certctl_dsn (from "
            f"{_where(settings, 'certload_certctl_dsn')}), is not a PostgreSQL DSN; use "
            "postgresql://USER:PASSWORD@HOST:PORT/DBNAME or "
            "'host=... port=... dbname=... user=... password=...'."
        )
    return ""


def _check_binary(settings: Settings) -> str:
    problems = []
    binary = settings.certctl_bin
    if binary is not None:
        path = binary
        where = f"--certctl-bin {str(binary)!r} (from {_where(settings, 'certload_certctl_bin')})"
        if not path.is_file():
            problems.append(f"{where} is not a file; give the path of a built certctl server.")
        elif not os.access(path, os.X_OK):
            problems.append(f"{where} is not executable; chmod +x it or give another build.")
    migrations = settings.certctl_migrations
    if migrations is not None:
        path = migrations
        if not path.is_dir():
            where = _where(settings, "certload_certctl_migrations")
            problems.append(
                f"--certctl-migrations {str(migrations)!r} (from {where}) is not a directory; "
                "give the migrations/ folder of the same certctl checkout."
            )
    return "\n".join(problems)
