"""The container images of the containers provider: one per role, the defaults, and the
grammar of ``--certload-images``.

Every default is a public image pinned by tag (never ``latest``): a run is repeatable
until somebody changes the tag here. ``--certload-images`` replaces any of them, e.g.
with images built locally from Debian packages by ``scripts/container-images.sh`` (no
registry needed). Imports no pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..errors import ImagesSyntaxError

__all__ = [
    "DEFAULT_IMAGES",
    "IMAGES_GRAMMAR",
    "IMAGE_ROLES",
    "parse_images",
    "resolve_images",
]

#: the roles an image is chosen for: the database, certctl, then the connector targets
#: (named as :data:`~pytest_certload.stack.info.TARGET_TYPES` names them)
IMAGE_ROLES: tuple[str, ...] = ("postgres", "certctl", "nginx", "apache", "haproxy", "f5")

#: the public images, pinned by tag; certctl's release workflow pushes ``v<version>`` tags
#: of ``ghcr.io/certctl-io/certctl-server`` (certctl's ``.github/workflows/release.yml``)
DEFAULT_IMAGES: Mapping[str, str] = MappingProxyType(
    {
        "postgres": "postgres:16-alpine",
        "certctl": "ghcr.io/certctl-io/certctl-server:v2.1.0",
        "nginx": "nginx:1.27-alpine",
        "apache": "httpd:2.4-alpine",
        "haproxy": "haproxy:2.9-alpine",
        # runs pytest_certload/stack/f5mock.py (standard library only)
        "f5": "python:3.12-alpine",
    }
)

IMAGES_GRAMMAR = (
    f"ROLE=IMAGE pairs separated by commas, ROLE one of {', '.join(IMAGE_ROLES)} (the roles "
    "not given keep their default image), e.g. "
    "'certctl=ghcr.io/certctl-io/certctl-server:v2.1.0,postgres=postgres:16-alpine'; "
    "scripts/container-images.sh prints a value for images built from Debian packages"
)


def parse_images(raw: str) -> dict[str, str]:
    """``ROLE=IMAGE,...`` -> {role: image}; raises :class:`ImagesSyntaxError` naming the
    offending pair."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.replace("\n", ",").split(","))):
        role, sep, image = (s.strip() for s in part.partition("="))
        if not sep:
            raise ImagesSyntaxError(f"{part!r} is not ROLE=IMAGE")
        if role not in IMAGE_ROLES:
            raise ImagesSyntaxError(f"unknown role {role!r} in {part!r}")
        if not image or any(c.isspace() for c in image):
            raise ImagesSyntaxError(f"{image!r} is not an image name for {role!r}")
        if role in out:
            raise ImagesSyntaxError(f"{role!r} given twice")
        out[role] = image
    if not out:
        raise ImagesSyntaxError("no ROLE=IMAGE pair")
    return out


def resolve_images(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every role's image: the defaults with ``overrides`` applied."""
    images = dict(DEFAULT_IMAGES)
    for role, image in (overrides or {}).items():
        if role not in IMAGE_ROLES:
            raise ImagesSyntaxError(
                f"unknown role {role!r}; the roles are {', '.join(IMAGE_ROLES)}"
            )
        images[role] = image
    return images
