"""Entry point granian imports in each worker process (``factory=True``)."""

from __future__ import annotations

import os

from ._app import DoubleApp
from ._ca import LocalCA
from ._config import load_config

__all__ = ["EPHEMERAL_CA_CERT_ENV", "EPHEMERAL_CA_KEY_ENV", "create_app"]

#: The launcher passes an ephemeral CA to its workers through these (never set them).
EPHEMERAL_CA_CERT_ENV = "CERTLOAD_DOUBLE_EPHEMERAL_CA_CERT_PEM"
EPHEMERAL_CA_KEY_ENV = "CERTLOAD_DOUBLE_EPHEMERAL_CA_KEY_PEM"


def load_ca() -> LocalCA:
    config = load_config(os.environ, check_files=False)
    if config.ca_cert_path:
        return LocalCA.from_files(config.ca_cert_path, config.ca_key_path)
    return LocalCA(
        os.environ[EPHEMERAL_CA_CERT_ENV].encode(), os.environ[EPHEMERAL_CA_KEY_ENV].encode()
    )


def create_app() -> DoubleApp:
    """Build the ASGI app from the environment the launcher validated."""
    return DoubleApp(load_config(os.environ, check_files=False), load_ca())
