"""Quiet hours: the local evening-to-morning span in which non-urgent campaigns wait.

Bounds are local wall-clock times "HH:MM" in the broadcast time zone. The span is
half-open, [start, end): at 21:00 sending stops, at 07:00 it resumes. A start later than
the end spans midnight (21:00–07:00); equal bounds mean there are no quiet hours.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.settings import BroadcastSettings


def parse_hhmm(value: str) -> dt.time:
    """'21:00' → 21:00. Raises ValueError for anything else."""
    text = value.strip()
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"not a HH:MM time: {value!r}")
    return dt.time(int(hours), int(minutes))


def in_quiet_hours(local_time: dt.time, start: str, end: str) -> bool:
    """Whether ``local_time`` (a naive local wall-clock time) falls in [start, end)."""
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    moment = local_time.replace(tzinfo=None)
    if begin == finish:
        return False
    if begin < finish:
        return begin <= moment < finish
    return moment >= begin or moment < finish


def quiet_resume_at(now_utc: dt.datetime, settings: BroadcastSettings) -> dt.datetime | None:
    """When the current quiet hours end (UTC), or None when ``now_utc`` is outside them."""
    if now_utc.tzinfo is None:
        now_utc = now_utc.replace(tzinfo=dt.UTC)
    zone = ZoneInfo(settings.timezone)
    local = now_utc.astimezone(zone)
    if not in_quiet_hours(local.time(), settings.quiet_start, settings.quiet_end):
        return None
    end = parse_hhmm(settings.quiet_end)
    resume = dt.datetime.combine(local.date(), end, tzinfo=zone)
    if resume <= local:
        resume = dt.datetime.combine(local.date() + dt.timedelta(days=1), end, tzinfo=zone)
    return resume.astimezone(dt.UTC)
