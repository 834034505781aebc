"""The ``bot`` command: serve, ask, chat, content check|gaps|import-tthc, db upgrade|current|purge,
telegram set-webhook|delete-webhook|info|poll, and the staff's subscribers, campaign,
feedback and users commands.

One module (or package) per command group, each with its ``add_parser`` and ``run``:

- ``entry``: the parser made of the groups' and the dispatch (``main``);
- ``core``: serve, ask, chat, db and telegram;
- ``content``: content check, gaps and import-tthc (the procedure catalogue);
- ``subscribers``, ``campaigns``, ``feedback``, ``users``: the staff's commands;
- ``text``: safe text for the terminal, JSON and CSV, shared by the commands (and by the
  feedback reports and the console, which import it without the rest of the CLI).

Importing this package loads nothing else: ``main`` imports the parser when it runs.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run ``bot`` with ``argv`` (default: the command line) and return the exit code."""
    from bot.cli.entry import main as run

    return run(argv)
