"""The web chat channel: JSON in, JSON out. The template the other channels follow:
parse-and-validate a request into an Inbound, and render neutral replies for the channel."""

from __future__ import annotations

import re
from typing import Any

from bot.messages import Inbound, Reply

CHANNEL = "web"
MAX_TEXT_CHARS = 10_000
_USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_:.-]{1,100}$")
# Control characters (binary junk) are dropped; newlines and tabs become spaces.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


class InvalidRequest(ValueError):
    """The request is well-formed JSON but does not say what the API needs (→ 422)."""


def parse(body: Any) -> Inbound:
    if not isinstance(body, dict):
        raise InvalidRequest("Nội dung yêu cầu phải là một đối tượng JSON.")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not _USER_ID_RE.match(user_id):
        raise InvalidRequest("Thiếu 'user_id' hợp lệ (8–128 ký tự chữ, số, '-' hoặc '_').")
    text, payload = body.get("text"), body.get("payload")
    if payload is not None:
        if not isinstance(payload, str) or not _PAYLOAD_RE.match(payload):
            raise InvalidRequest("'payload' không hợp lệ.")
        return Inbound(CHANNEL, user_id, payload=payload)
    if not isinstance(text, str):
        raise InvalidRequest("Cần 'text' (chuỗi) hoặc 'payload'.")
    cleaned = _CONTROL_RE.sub(" ", text)[:MAX_TEXT_CHARS]
    return Inbound(CHANNEL, user_id, text=cleaned)


def render(replies: list[Reply]) -> dict[str, Any]:
    """The neutral replies as the web chat's JSON; the page escapes everything it shows."""
    return {
        "replies": [
            {
                "text": reply.text,
                "buttons": [
                    {"title": b.title, "payload": b.payload}
                    if b.payload is not None
                    else {"title": b.title, "url": b.url}
                    for b in reply.buttons
                ],
            }
            for reply in replies
        ]
    }
