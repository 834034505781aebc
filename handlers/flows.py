"""What the guided flows (survey, complaint, deleting one's data) share: the words that cancel
or skip a step, saving the step, and picking a service point in two taps or by name.

A flow's state (its step and answers so far) lives in the citizen's session in the database,
with an expiry, so a restart or another worker carries on from the last message. Every step
has a "Hủy" button, and the word "hủy" there cancels the flow (not the news subscription);
steps that are optional have "Bỏ qua". A message that is not for the flow (a menu button, a
command such as /start) ends it and is answered as usual.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, process

from bot.messages import Button, Inbound, Reply
from content.models import ServicePoint
from content.normalize import fold
from handlers.answers import topics_button
from handlers.context import HandlerContext
from handlers.router import HandlerResult, parse_command
from storage.models import utcnow

_CANCEL = frozenset({"huy", "huy bo", "thoat", "dung", "dung lai", "cancel", "exit", "thoi"})
_SKIP = frozenset({"bo qua", "skip", "qua", "khong co", "ko co", "k co", "khong"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# How sure a typed name must be to count as a service point (rapidfuzz, 0–100).
_POINT_CUTOFF = 80


def is_cancel(inbound: Inbound) -> bool:
    command = parse_command(inbound.text)
    if command is not None:
        return command[0] in {"huy", "cancel"}
    return fold(inbound.text) in _CANCEL


def is_skip(inbound: Inbound) -> bool:
    return inbound.payload is None and fold(inbound.text) in _SKIP


def lets_go(inbound: Inbound, prefixes: tuple[str, ...]) -> bool:
    """True when the message is not for the flow: another route's button, or a command."""
    if inbound.payload is not None:
        head = inbound.payload.partition(":")[0]
        return head not in prefixes
    command = parse_command(inbound.text)
    return command is not None and command[0] not in {"huy", "cancel"}


def clean_text(text: str) -> str:
    """What a citizen wrote, as stored: NFC-safe, control characters dropped, trimmed."""
    return _CONTROL.sub(" ", text).strip()


def ttl(ctx: HandlerContext) -> dt.timedelta:
    return dt.timedelta(minutes=ctx.feedback_settings.flow_minutes)


async def save(
    ctx: HandlerContext, inbound: Inbound, flow: str, step: str, data: dict[str, Any]
) -> None:
    await ctx.sessions.set_flow(inbound.channel, inbound.user_id, flow, step, data, ttl=ttl(ctx))


async def ask(
    ctx: HandlerContext,
    inbound: Inbound,
    flow: str,
    step: str,
    data: dict[str, Any],
    reply: Reply,
    *,
    private: bool = False,
) -> HandlerResult:
    """Save the flow at ``step`` with its answers so far and ask ``reply`` (``private``: the
    citizen's message belongs to a feedback item, not the conversation log)."""
    await save(ctx, inbound, flow, step, data)
    return HandlerResult((reply,), outcome=flow, private_text=private)


def local_date(ctx: HandlerContext, moment: dt.datetime) -> str:
    """A date as citizens read it: dd/mm/yyyy in the feedback time zone."""
    return moment.astimezone(ZoneInfo(ctx.feedback_settings.timezone)).strftime("%d/%m/%Y")


async def over_limit(ctx: HandlerContext, inbound: Inbound, kind: str) -> HandlerResult | None:
    """The polite refusal (ending any flow in progress) when the citizen already sent
    ``daily_limit`` items of ``kind`` in the last 24 hours; None when they may go on."""
    limit = ctx.feedback_settings.daily_limit
    since = utcnow() - dt.timedelta(hours=24)
    if await ctx.feedback.count_since(inbound.channel, inbound.user_id, kind, since) < limit:
        return None
    await ctx.sessions.end_flow(inbound.channel, inbound.user_id)
    reply = Reply(ctx.say("feedback_limit", limit=limit), (topics_button(ctx),))
    return HandlerResult((reply,), outcome=kind)


async def cancelled(ctx: HandlerContext, inbound: Inbound, outcome: str) -> HandlerResult:
    await ctx.sessions.end_flow(inbound.channel, inbound.user_id)
    reply = Reply(ctx.say("flow_cancelled"), (topics_button(ctx),))
    return HandlerResult((reply,), outcome=outcome)


def step_buttons(
    ctx: HandlerContext, prefix: str, *, skip: bool = True, extra: tuple[Button, ...] = ()
) -> tuple[Button, ...]:
    """The buttons every step ends with: its own choices, then "Bỏ qua" and "Hủy"."""
    tail = [Button(ctx.say("button_cancel"), payload=f"{prefix}:cancel")]
    if skip:
        tail.insert(0, Button(ctx.say("button_skip"), payload=f"{prefix}:skip"))
    return (*extra, *tail)


def group_buttons(ctx: HandlerContext, prefix: str) -> tuple[Button, ...]:
    return tuple(Button(g.title, payload=f"{prefix}:group:{g.id}") for g in ctx.kb.service_groups)


def point_buttons(ctx: HandlerContext, prefix: str, group_id: str) -> tuple[Button, ...]:
    group = ctx.kb.service_group(group_id)
    if group is None:
        return ()
    points = tuple(Button(p.name, payload=f"{prefix}:point:{p.id}") for p in group.points)
    return (*points, Button(ctx.say("button_back_groups"), payload=f"{prefix}:groups"))


def find_point(ctx: HandlerContext, text: str) -> ServicePoint | None:
    """The service point a citizen named ("phuong vo cuong", "cong an", "bhxh"), when one
    name stands out; None when nothing or several match about equally."""
    query = fold(text)
    if len(query) < 3:
        return None
    points = {p.id: p for g in ctx.kb.service_groups for p in g.points}
    choices = {pid: fold(p.name) for pid, p in points.items()}
    hits = process.extract(query, choices, scorer=fuzz.WRatio, limit=2)
    if not hits or hits[0][1] < _POINT_CUTOFF:
        return None
    if len(hits) > 1 and hits[1][1] >= hits[0][1] - 3:
        return None
    return points[str(hits[0][2])]


@dataclass(frozen=True, slots=True)
class PointStep:
    """What a message at the service-point steps led to: the next question (``reply``, with
    ``step`` "group" or "point"), or the end of the choice (``reply`` None; ``point_id`` None
    when the citizen skipped it)."""

    step: str
    reply: Reply | None = None
    point_id: str | None = None


def groups_reply(ctx: HandlerContext, prefix: str, prompt: str, lead: str | None = None) -> Reply:
    text = f"{lead}\n\n{prompt}" if lead else prompt
    return Reply(text, step_buttons(ctx, prefix, extra=group_buttons(ctx, prefix)))


def points_reply(ctx: HandlerContext, prefix: str, group_id: str, lead: str | None = None) -> Reply:
    group = ctx.kb.service_group(group_id)
    text = ctx.say("survey_point", group=group.title if group else "")
    if lead:
        text = f"{lead}\n\n{text}"
    return Reply(text, step_buttons(ctx, prefix, extra=point_buttons(ctx, prefix, group_id)))


def choose_point(
    ctx: HandlerContext,
    inbound: Inbound,
    data: dict[str, Any],
    *,
    step: str,
    prefix: str,
    prompt: str,
    skip: bool,
) -> PointStep:
    """The service point in two taps (a group, then a point), by its typed name, or skipped.
    ``data["group"]`` remembers the group between the taps. Shared by the survey and the
    complaint flow (``prompt``: the group question of the flow)."""
    action, _, value = (inbound.payload or "").partition(":")[2].partition(":")
    if skip:
        return PointStep("done")
    if action == "point" and ctx.kb.service_point(value) is not None:
        return PointStep("done", point_id=value)
    if action == "group" and ctx.kb.service_group(value) is not None:
        data["group"] = value
        return PointStep("point", points_reply(ctx, prefix, value))
    if action == "groups":
        return PointStep("group", groups_reply(ctx, prefix, prompt))
    if inbound.payload is None:
        group_id = find_group(ctx, inbound.text)
        if group_id is not None:
            data["group"] = group_id
            return PointStep("point", points_reply(ctx, prefix, group_id))
        point = find_point(ctx, inbound.text)
        if point is not None:
            return PointStep("done", point_id=point.id)
    lead = ctx.say("point_not_found")
    if step == "point" and data.get("group"):
        return PointStep("point", points_reply(ctx, prefix, data["group"], lead))
    return PointStep("group", groups_reply(ctx, prefix, prompt, lead))


def find_group(ctx: HandlerContext, text: str) -> str | None:
    query = fold(text)
    for group in ctx.kb.service_groups:
        if query and query == fold(group.title):
            return group.id
    return None
