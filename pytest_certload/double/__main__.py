"""``python -m pytest_certload.double``: run the certctl reference double.

Reads certctl's environment variables; a few flags override them. Exits 2 with a
message on stderr when the configuration is invalid or the database is unusable.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, ServiceError
from ._ca import LocalCA, make_ephemeral_ca_pem
from ._config import LOG_LEVELS, load_config
from ._db import prepare_database
from ._worker import EPHEMERAL_CA_CERT_ENV, EPHEMERAL_CA_KEY_ENV

__all__ = ["main"]


class _HideFaultDrops(logging.Filter):
    """granian logs an application exception for every connection a fault drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_text:
            text += record.exc_text
        return "DroppedByFault" not in text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_certload.double",
        description="certctl reference double: reads certctl's CERTCTL_* environment; "
        "these flags override it.",
    )
    parser.add_argument("--host", help="listen address (CERTCTL_SERVER_HOST; default 127.0.0.1)")
    parser.add_argument("--port", help="listen port (CERTCTL_SERVER_PORT; default 8080)")
    parser.add_argument("--database-url", help="PostgreSQL URL (CERTCTL_DATABASE_URL)")
    parser.add_argument("--workers", help="worker processes (CERTLOAD_DOUBLE_WORKERS; default 1)")
    parser.add_argument("--faults", help="fault spec JSON (CERTLOAD_DOUBLE_FAULTS)")
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="uvloop",
        help="event loop of the workers (default uvloop)",
    )
    parser.add_argument(
        "--runtime-threads",
        type=int,
        default=1,
        help="granian Rust runtime threads per worker (default 1)",
    )
    return parser


def _log_config(level: str) -> dict[str, object]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"drops": {"()": _HideFaultDrops}},
        "formatters": {
            "generic": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "generic",
                "filters": ["drops"],
            },
            "access": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "generic",
            },
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level.upper(), "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "WARNING", "propagate": False},
            "certctl_double": {
                "handlers": ["console"],
                "level": level.upper(),
                "propagate": False,
            },
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {
        "CERTCTL_SERVER_HOST": args.host,
        "CERTCTL_SERVER_PORT": args.port,
        "CERTCTL_DATABASE_URL": args.database_url,
        "CERTLOAD_DOUBLE_WORKERS": args.workers,
        "CERTLOAD_DOUBLE_FAULTS": args.faults,
    }
    for name, value in overrides.items():
        if value is not None:
            os.environ[name] = value
    try:
        config = load_config(os.environ)
        level = LOG_LEVELS[config.log_level]
        logging.config.dictConfig(_log_config(level))
        if config.ca_cert_path:
            LocalCA.from_files(config.ca_cert_path, config.ca_key_path)
        else:
            cert_pem, key_pem = make_ephemeral_ca_pem()
            os.environ[EPHEMERAL_CA_CERT_ENV] = cert_pem.decode()
            os.environ[EPHEMERAL_CA_KEY_ENV] = key_pem.decode()
        prepare_database(config)
    except (ConfigError, ServiceError) as exc:
        print(f"certctl double: {exc}", file=sys.stderr)
        return 2
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, SSLProtocols
    from granian.log import LogLevels

    logging.getLogger("certctl_double").info(
        "certctl reference double listening on https://%s:%d (workers=%d, auth=%s, "
        "rate_limit=%s, demo_seed=%s)",
        config.host,
        config.port,
        config.workers,
        config.auth_type,
        config.rate_limit_enabled,
        config.demo_seed,
    )
    server = Granian(
        "pytest_certload.double._worker:create_app",
        address=config.host,
        port=config.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=config.workers,
        loop=Loops(args.loop),
        runtime_threads=args.runtime_threads,
        http=HTTPModes.auto,
        websockets=False,
        ssl_cert=Path(config.tls_cert_path),
        ssl_key=Path(config.tls_key_path),
        ssl_protocol_min=SSLProtocols.tls13,
        log_level=LogLevels(level),
        log_dictconfig=_log_config(level),
        log_access=False,
    )
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
