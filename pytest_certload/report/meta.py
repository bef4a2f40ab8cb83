"""What every report says about a session besides its figures: the target, in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TLS_OFF", "target_text"]

#: what every report says when the session did not verify TLS (``--certload-ca insecure``)
TLS_OFF = "TLS verification was off (--certload-ca insecure): no server certificate was checked"


def target_text(target: Mapping[str, Any], *, unrecorded: str) -> str:
    """``the certctl reference double 0.1.0``, ``certctl v2.1`` or the recorded label.

    ``target`` is a target record (``{"label": ..., "kind": ..., "version": ...}``);
    the reference double is never called certctl. ``unrecorded`` is said when nothing
    was recorded.
    """
    kind = target.get("kind")
    version = target.get("version")
    shown = version.get("version") if isinstance(version, Mapping) else version
    if kind == "double":
        return f"the certctl reference double {str(shown or '').removeprefix('double-')}".rstrip()
    if kind == "certctl":
        return f"certctl {shown or '(version unknown)'}"
    return str(target.get("label") or unrecorded)
