"""``bot campaign create`` and ``edit``: a campaign's text, audience and schedule, from the
options."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.campaigns.common import Action, Context, UsageError, campaign_json, print_json

if TYPE_CHECKING:
    from broadcasts.workflow import CampaignSpec
    from storage.campaigns import CampaignView


def _split(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip().lower() for p in value.split(",") if p.strip()))


def _read_text(args: argparse.Namespace) -> str | None:
    if args.text is not None:
        return str(args.text)
    if args.text_file is None:
        return None
    if str(args.text_file) == "-":
        return sys.stdin.read()
    try:
        return Path(args.text_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        raise UsageError(f"Không đọc được tệp nội dung {args.text_file}: {detail}") from None


def _until(value: str, context: Context) -> dt.datetime:
    """A last day ('2027-03-31') includes that whole day; a time is taken as given."""
    from broadcasts.workflow import parse_local

    moment = parse_local(value, context.campaigns.zone)
    if ":" not in value:
        moment += dt.timedelta(days=1, seconds=-1)
    return moment


def _optional(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def _new_spec(args: argparse.Namespace, context: Context) -> CampaignSpec:
    from broadcasts.workflow import CHANNELS, CampaignSpec, parse_local

    zone = context.campaigns.zone
    return CampaignSpec(
        name=args.name,
        text=_read_text(args) or "",
        channels=_split(args.channels) if args.channels is not None else CHANNELS,
        topics=_split(args.topics) if args.topics is not None else (),
        link_title=_optional(args.link_title),
        link_url=_optional(args.link_url),
        image_url=_optional(args.image_url),
        at=parse_local(args.at, zone) if args.at else None,
        cron=args.cron.strip() if args.cron else None,
        cron_end=_until(args.until, context) if args.until else None,
        urgent=bool(args.urgent),
    )


def _edited_spec(args: argparse.Namespace, current: CampaignView, context: Context) -> CampaignSpec:
    """The campaign as it is, with what the options change."""
    from broadcasts.workflow import CampaignSpec, parse_local

    given = [
        args.name,
        args.text,
        args.text_file,
        args.channels,
        args.topics,
        args.link_title,
        args.link_url,
        args.image_url,
        args.at,
        args.cron,
        args.until,
        args.urgent,
    ]
    if all(value is None for value in given) and not args.now:
        raise UsageError("Không có gì để sửa: hãy cho biết điều cần thay đổi (--text, --at …).")
    if args.now and (args.at or args.cron or args.until):
        raise UsageError("--now không đi cùng --at, --cron hay --until.")
    at, cron, end = current.send_at, current.cron, current.cron_end
    if current.schedule_kind != "at":
        at = None
    if current.schedule_kind != "cron":
        cron, end = None, None
    zone = context.campaigns.zone
    if args.now:
        at, cron, end = None, None, None
    elif args.at:
        at, cron, end = parse_local(args.at, zone), None, None
    elif args.cron:
        at, cron = None, args.cron.strip()
    if args.until:
        end = _until(args.until, context)
    text = _read_text(args)

    def pick(option: str | None, value: str | None) -> str | None:
        return value if option is None else _optional(option)

    return CampaignSpec(
        name=args.name if args.name is not None else current.name,
        text=text if text is not None else current.text,
        channels=_split(args.channels) if args.channels is not None else current.channels,
        topics=_split(args.topics) if args.topics is not None else current.topics,
        link_title=pick(args.link_title, current.link_title),
        link_url=pick(args.link_url, current.link_url),
        image_url=pick(args.image_url, current.image_url),
        at=at,
        cron=cron,
        cron_end=end,
        urgent=current.urgent if args.urgent is None else bool(args.urgent),
    )


async def _create(args: argparse.Namespace, context: Context) -> int:
    campaign = await context.campaigns.create(_new_spec(args, context), author=args.by)
    if args.json:
        print_json(campaign_json(campaign, context))
        return 0
    print(f"Đã tạo chiến dịch số {campaign.id} «{campaign.name}» (Nháp).")
    print(f"Bước tiếp theo: bot campaign submit {campaign.id} --by TÊN (gửi duyệt).")
    return 0


async def _edit(args: argparse.Namespace, context: Context) -> int:
    current = await context.campaigns.get(args.id)
    spec = _edited_spec(args, current, context)
    campaign = await context.campaigns.edit(args.id, spec, actor=args.by)
    if args.json:
        print_json(campaign_json(campaign, context))
        return 0
    print(f"Đã sửa chiến dịch số {campaign.id} «{campaign.name}».")
    if current.status != "draft":
        print("Chiến dịch trở về trạng thái Nháp: cần gửi duyệt và được duyệt lại trước khi gửi.")
    return 0


ACTIONS: dict[str, Action] = {"create": _create, "edit": _edit}
