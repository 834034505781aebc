"""What every channel raises when a message cannot be delivered."""

from __future__ import annotations


class DeliveryError(Exception):
    """A message could not be delivered. Channel-neutral, so broadcasts can decide:
    ``permanent`` — retrying will not help (blocked, unreachable, chat gone, message refused);
    otherwise retry, after ``retry_after`` seconds if given (the platform asked to slow down).
    ``code`` is the platform's error code when it gave one. ``reason`` never holds a token or
    a citizen's text."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        code: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.code = code
        # For permanent failures, what the ledger records: "blocked", "not_follower",
        # "out_of_window", "not_found" or None (refused for another reason).
        self.kind = kind
