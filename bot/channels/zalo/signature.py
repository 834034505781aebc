"""The signatures Zalo may put on a webhook event (§2)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from bot.settings import ZaloSettings


def signature_variants(
    raw: bytes,
    event: dict[str, Any],
    settings: ZaloSettings,
    header_timestamp: str | None,
) -> Iterator[tuple[str, str]]:
    """(name, hex digest) of every signature Zalo might send, the documented one first (§2):
    sha256(app_id + raw body + body timestamp + OA secret key), plain SHA-256, not HMAC.
    The [?] alternatives of §2 follow: the app secret instead of the OA secret, the OA id
    instead of the app id, the X-ZEvent-Timestamp header instead of the body's timestamp.
    Each needs one of our secrets, so accepting them does not weaken the check."""
    keys: list[tuple[str, str]] = []
    if settings.oa_secret_key is not None:
        keys.append(("OA secret key", settings.oa_secret_key.get_secret_value()))
    if settings.app_secret is not None:
        keys.append(("app secret", settings.app_secret.get_secret_value()))
    firsts = [("app_id", settings.app_id or "")]
    for label, value in (
        ("oa_id", event.get("oa_id")),
        ("recipient.id", _nested_id(event, "recipient")),
        ("sender.id", _nested_id(event, "sender")),
    ):
        if isinstance(value, str | int) and str(value) not in {v for _, v in firsts}:
            firsts.append((label, str(value)))
    body_timestamp = str(event.get("timestamp", ""))
    timestamps = [("body timestamp", body_timestamp)]
    if header_timestamp and header_timestamp != body_timestamp:
        timestamps.append(("X-ZEvent-Timestamp", header_timestamp))
    for secret_name, secret in keys:
        for first_name, first in firsts:
            for ts_name, ts in timestamps:
                digest = hashlib.sha256(
                    first.encode() + raw + ts.encode() + secret.encode()
                ).hexdigest()
                yield f"{first_name} + body + {ts_name} + {secret_name}", digest


DOCUMENTED_VARIANT = "app_id + body + body timestamp + OA secret key"


def _nested_id(event: dict[str, Any], key: str) -> Any:
    value = event.get(key)
    return value.get("id") if isinstance(value, dict) else None
