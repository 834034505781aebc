"""Routing in one place: commands, button payloads and free text go to handlers in order.

Each handler module exposes a :class:`Router`; the composition root lists them in order and the
first route that matches wins, so the FAQ and the fallback come last.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.messages import Inbound, Reply

if TYPE_CHECKING:
    from handlers.context import HandlerContext
    from storage.sessions import SessionState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """Replies plus what the conversation log records about the turn."""

    replies: tuple[Reply, ...]
    outcome: str | None = None
    entry_id: str | None = None
    score: float | None = None
    # The citizen's words belong to a feedback item: the log keeps a placeholder instead.
    private_text: bool = False
    # False when the turn must leave no trace (the citizen just had their data deleted).
    record: bool = True


Handler = Callable[[Inbound, "HandlerContext"], Awaitable[HandlerResult]]
# A guided flow's step handler: gets every message while its flow is active, with the saved
# state; returns None to let go (the message is then routed as usual, the flow abandoned).
FlowHandler = Callable[[Inbound, "HandlerContext", "SessionState"], Awaitable[HandlerResult | None]]
TextPredicate = Callable[[str], bool]


@dataclass(slots=True)
class Router:
    """Routes of one handler module, in the order they were declared."""

    commands: dict[str, Handler] = field(default_factory=dict)
    payloads: list[tuple[str, Handler]] = field(default_factory=list)
    texts: list[tuple[TextPredicate, Handler]] = field(default_factory=list)
    flows: dict[str, FlowHandler] = field(default_factory=dict)

    def command(self, *names: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for name in names:
                self.commands[name.lower()] = handler
            return handler

        return register

    def payload(self, prefix: str) -> Callable[[Handler], Handler]:
        """Match a payload equal to ``prefix`` or starting with ``prefix + ':'``."""

        def register(handler: Handler) -> Handler:
            self.payloads.append((prefix, handler))
            return handler

        return register

    def flow(self, name: str) -> Callable[[FlowHandler], FlowHandler]:
        """The handler of flow ``name`` (the ``flow`` saved in the citizen's session)."""

        def register(handler: FlowHandler) -> FlowHandler:
            self.flows[name] = handler
            return handler

        return register

    def text(self, predicate: TextPredicate) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.texts.append((predicate, handler))
            return handler

        return register


def parse_command(text: str) -> tuple[str, str] | None:
    """Split "/start@MyBot args" into ("start", "args"); None when text is not a command."""
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) < 2:
        return None
    head, _, rest = stripped[1:].partition(" ")
    return head.split("@", 1)[0].lower(), rest.strip()


def payload_matches(prefix: str, payload: str) -> bool:
    return payload == prefix or payload.startswith(prefix + ":")


class Dispatcher:
    """Finds the handler for an incoming message, runs it and logs the turn.

    Before routing it reads the citizen's session (one primary-key lookup): answers from
    staff that wait for this citizen go out first, and a guided flow in progress (a survey,
    a complaint) gets the message before the ordinary routes."""

    def __init__(self, routers: Sequence[Router], context: HandlerContext) -> None:
        self.routers = tuple(routers)
        self.context = context
        self.flows: dict[str, FlowHandler] = {}
        for router in self.routers:
            self.flows.update(router.flows)

    def knows_payload(self, value: str) -> bool:
        """True when ``value`` is a payload some route answers (Zalo delivers a pressed
        button as the text of a message, so its adapter must tell the two apart)."""
        return any(
            payload_matches(prefix, value)
            for router in self.routers
            for prefix, _ in router.payloads
        )

    def _find(self, inbound: Inbound) -> Handler | None:
        if inbound.payload:
            for router in self.routers:
                for prefix, handler in router.payloads:
                    if payload_matches(prefix, inbound.payload):
                        return handler
            return None
        command = parse_command(inbound.text)
        if command is not None:
            for router in self.routers:
                if command[0] in router.commands:
                    return router.commands[command[0]]
        for router in self.routers:
            for predicate, handler in router.texts:
                if predicate(inbound.text):
                    return handler
        return None

    async def dispatch(self, inbound: Inbound) -> list[Reply]:
        context = self.context
        await context.touch(inbound)
        state = await context.sessions.get(inbound.channel, inbound.user_id)
        waiting: list[Reply] = []
        if state is not None and state.has_notice:
            waiting = await context.take_notices(inbound)
        result: HandlerResult | None = None
        if state is not None and state.flow is not None:
            flow = self.flows.get(state.flow)
            if flow is not None:
                result = await flow(inbound, context, state)
            if result is None:
                # The citizen went elsewhere (a menu button, a command): the flow ends here.
                await context.sessions.end_flow(inbound.channel, inbound.user_id)
        if result is None:
            handler = self._find(inbound)
            if handler is None:
                # An unknown payload (an old button, a crafted request) gets the menu.
                handler = self._find(Inbound(inbound.channel, inbound.user_id, payload="topics"))
            if handler is None:
                return waiting
            result = await handler(inbound, context)
        await context.record_turn(inbound, result)
        return [*waiting, *result.replies]
