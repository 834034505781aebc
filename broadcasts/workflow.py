"""The campaign workflow: what a communicator may do to a campaign, and when.

draft → submitted → approved → scheduled → sending → done, plus paused, cancelled and
failed. Approval is four-eyes unless turned off (``BOT_BROADCAST_FOUR_EYES``); editing a
submitted, approved or scheduled campaign sends it back to draft. Every transition is
recorded with who and when (``campaign_events``). Errors carry a Vietnamese message meant
for the communicator.

Runs: a one-off campaign has one run, a recurring one a run per occurrence (``fire_at``),
unique per campaign, so an occurrence fired twice is sent once. A run is created
"expanding" (its audience is written to the ledger in batches while sending already
starts), becomes "sending" when the audience is complete and "done" when no row is left
pending; ``BroadcastEngine`` drives those steps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.settings import BroadcastSettings
from broadcasts.message import MAX_TEXT
from storage import audit
from storage.audit import Actor, actor_of
from storage.campaigns import (
    RUN_ACTIVE,
    RUN_CANCELLED,
    RUN_DONE,
    RUN_EXPANDING,
    RUN_PAUSED,
    CampaignRepository,
    CampaignView,
    RunView,
    StaleCampaign,
)
from storage.models import utcnow

DRAFT = "draft"
SUBMITTED = "submitted"
APPROVED = "approved"
SCHEDULED = "scheduled"
SENDING = "sending"
DONE = "done"
PAUSED = "paused"
CANCELLED = "cancelled"
FAILED = "failed"
FINAL = frozenset({DONE, CANCELLED, FAILED})
EDITABLE_IN = frozenset({DRAFT, SUBMITTED, APPROVED, SCHEDULED})
CHANNELS = ("telegram", "zalo")
# The scheduler and the senders act as the bot itself.
SYSTEM = Actor("hệ thống", via=audit.SYSTEM)

STATUS_LABELS = {
    DRAFT: "Nháp",
    SUBMITTED: "Chờ duyệt",
    APPROVED: "Đã duyệt",
    SCHEDULED: "Đã lên lịch",
    SENDING: "Đang gửi",
    DONE: "Hoàn thành",
    PAUSED: "Tạm dừng",
    CANCELLED: "Đã hủy",
    FAILED: "Thất bại",
}


class WorkflowError(Exception):
    """An action the workflow does not allow; the message says why, in Vietnamese."""


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """What a communicator writes. ``at`` and ``cron_end`` are aware datetimes; naive ones
    are read in the broadcast time zone."""

    name: str
    text: str
    channels: tuple[str, ...] = CHANNELS
    topics: tuple[str, ...] = ()
    link_title: str | None = None
    link_url: str | None = None
    image_url: str | None = None
    at: dt.datetime | None = None
    cron: str | None = None
    cron_end: dt.datetime | None = None
    urgent: bool = False


def parse_local(value: str, zone: ZoneInfo) -> dt.datetime:
    """'2026-12-01 08:00' (or ISO with an offset) → an aware UTC datetime."""
    text = value.strip().replace("T", " ")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        for fmt in ("%d/%m/%Y %H:%M", "%d/%m/%Y"):
            try:
                parsed = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise WorkflowError(
                f"Không hiểu thời điểm {value!r}: dùng dạng 2026-12-01 08:00 hoặc 01/12/2026 08:00."
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)


def cron_trigger(expression: str, zone: ZoneInfo, end: dt.datetime | None) -> CronTrigger:
    """A crontab line ('0 8 * * mon': every Monday 08:00) in the broadcast time zone.

    Days of the week follow crontab (0 or 7 = Sunday, 1 = Monday), not APScheduler's own
    numbering (0 = Monday): numbers are translated to day names first."""
    values = expression.split()
    try:
        if len(values) != 5:
            raise ValueError(f"cần 5 trường, có {len(values)}")
        minute, hour, day, month, dow = values
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_DOW_NUMBER.sub(lambda m: _DOW_NAMES[int(m.group(0))], dow),
            timezone=zone,
            end_date=end,
        )
    except (ValueError, IndexError) as exc:
        raise WorkflowError(
            f"Lịch lặp {expression!r} không hợp lệ ({exc}). Dạng crontab 5 trường, "
            "ví dụ '0 8 * * mon' là 8:00 sáng thứ Hai hằng tuần."
        ) from None


_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A day number, but not a step ("*/2").
_DOW_NUMBER = re.compile(r"(?<![/\d])[0-7](?!\d)")


class Campaigns:
    """The workflow service used by the CLI, the scheduler and the engine."""

    def __init__(
        self,
        repo: CampaignRepository,
        settings: BroadcastSettings,
        *,
        topics: Collection[str] = (),
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self._topics = frozenset(topics)
        self._clock = clock

    # authoring

    def _values(self, spec: CampaignSpec) -> dict[str, Any]:
        name, text = spec.name.strip(), spec.text.strip()
        if not name:
            raise WorkflowError("Chiến dịch cần có tên.")
        if not text:
            raise WorkflowError("Nội dung tin nhắn không được để trống.")
        if len(text) > MAX_TEXT:
            raise WorkflowError(
                f"Nội dung dài {len(text)} ký tự; tối đa {MAX_TEXT} để gửi được trên mọi kênh."
            )
        channels = tuple(dict.fromkeys(spec.channels))
        if not channels or set(channels) - set(CHANNELS):
            raise WorkflowError("Kênh gửi phải là telegram, zalo hoặc cả hai.")
        unknown = set(spec.topics) - self._topics if self._topics else set()
        if unknown:
            raise WorkflowError(
                f"Không có chủ đề {', '.join(sorted(unknown))}. "
                f"Các chủ đề: {', '.join(sorted(self._topics))}."
            )
        for label, url in (("Liên kết", spec.link_url), ("Ảnh", spec.image_url)):
            if url and not url.startswith("https://"):
                raise WorkflowError(f"{label} phải là địa chỉ https://.")
        if spec.at and spec.cron:
            raise WorkflowError("Chọn một trong hai: gửi vào một thời điểm, hoặc gửi lặp lại.")
        if spec.cron:
            cron_trigger(spec.cron, self.zone, spec.cron_end)
        if spec.cron_end and not spec.cron:
            raise WorkflowError("Ngày kết thúc chỉ dùng cho lịch gửi lặp lại.")
        kind = "cron" if spec.cron else "at" if spec.at else "now"
        return {
            "name": name[:200],
            "text": text,
            "channels": list(channels),
            "topics": list(dict.fromkeys(spec.topics)),
            "link_title": (spec.link_title or "").strip()[:100] or None,
            "link_url": spec.link_url,
            "image_url": spec.image_url,
            "schedule_kind": kind,
            "send_at": self._aware(spec.at),
            "cron": spec.cron,
            "cron_end": self._aware(spec.cron_end),
            "urgent": spec.urgent,
        }

    def _aware(self, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(dt.UTC)

    async def create(self, spec: CampaignSpec, *, author: Actor | str) -> CampaignView:
        return await self.repo.create(author=_actor(author), **self._values(spec))

    async def edit(
        self, campaign_id: int, spec: CampaignSpec, *, actor: Actor | str
    ) -> CampaignView:
        """Replace the campaign's content and schedule; back to draft (it must be approved
        again)."""
        campaign = await self.get(campaign_id)
        if campaign.status not in EDITABLE_IN:
            raise WorkflowError(
                f"Không sửa được chiến dịch đang ở trạng thái "
                f"{STATUS_LABELS[campaign.status].lower()}."
            )
        return await self._move(
            campaign,
            EDITABLE_IN,
            DRAFT,
            actor,
            note="sửa nội dung",
            changes={**self._values(spec), "approved_by": None},
        )

    async def get(self, campaign_id: int) -> CampaignView:
        campaign = await self.repo.get(campaign_id)
        if campaign is None:
            raise WorkflowError(f"Không có chiến dịch số {campaign_id}.")
        return campaign

    async def _move(
        self,
        campaign: CampaignView,
        expected: Collection[str],
        to: str,
        actor: Actor | str,
        *,
        note: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> CampaignView:
        if campaign.status not in expected:
            raise WorkflowError(
                f"Chiến dịch số {campaign.id} đang ở trạng thái "
                f"{STATUS_LABELS.get(campaign.status, campaign.status).lower()}, "
                f"không chuyển sang {STATUS_LABELS[to].lower()} được."
            )
        try:
            return await self.repo.transition(
                campaign.id,
                expected=expected,
                to=to,
                actor=_actor(actor),
                note=note,
                changes=changes,
            )
        except StaleCampaign:
            raise WorkflowError(
                f"Chiến dịch số {campaign.id} vừa được người khác thay đổi; hãy xem lại."
            ) from None

    async def submit(self, campaign_id: int, *, actor: Actor | str) -> CampaignView:
        return await self._move(await self.get(campaign_id), {DRAFT}, SUBMITTED, actor)

    async def approve(self, campaign_id: int, *, by: Actor | str) -> CampaignView:
        """Four eyes: the approver must not be the author, compared by console account
        when both have one, else by name (see ``Actor.is_same_person``)."""
        campaign = await self.get(campaign_id)
        approver = _actor(by)
        if self.settings.four_eyes and approver.is_same_person(
            campaign.author, campaign.author_account_id
        ):
            raise WorkflowError(
                "Người duyệt phải khác người soạn (nguyên tắc bốn mắt). "
                "Nhờ một đồng nghiệp duyệt chiến dịch này."
            )
        return await self._move(
            campaign, {SUBMITTED}, APPROVED, approver, changes={"approved_by": approver.name}
        )

    async def reject(self, campaign_id: int, *, by: Actor | str, reason: str) -> CampaignView:
        return await self._move(
            await self.get(campaign_id), {SUBMITTED}, DRAFT, by, note=reason or "trả lại"
        )

    async def schedule(self, campaign_id: int, *, actor: Actor | str) -> CampaignView:
        """Approved → scheduled: the scheduler fires it at its time (at once for "now")."""
        campaign = await self.get(campaign_id)
        now = self._clock()
        if campaign.schedule_kind == "at" and campaign.send_at and campaign.send_at < now:
            raise WorkflowError("Thời điểm gửi đã qua; hãy sửa lại thời điểm.")
        if campaign.schedule_kind == "cron" and self.next_fire(campaign, after=now) is None:
            raise WorkflowError("Lịch lặp không còn lần gửi nào (đã quá ngày kết thúc).")
        return await self._move(campaign, {APPROVED}, SCHEDULED, actor)

    def next_fire(self, campaign: CampaignView, *, after: dt.datetime) -> dt.datetime | None:
        """The next occurrence strictly after ``after`` (UTC), or None when there is none."""
        if campaign.schedule_kind == "cron" and campaign.cron:
            trigger = cron_trigger(campaign.cron, self.zone, campaign.cron_end)
            nxt = trigger.get_next_fire_time(None, after + dt.timedelta(seconds=1))
            return nxt.astimezone(dt.UTC) if nxt else None
        if campaign.schedule_kind == "at" and campaign.send_at:
            return campaign.send_at if campaign.send_at > after else None
        return None

    def upcoming(self, campaign: CampaignView, count: int = 5) -> list[dt.datetime]:
        result: list[dt.datetime] = []
        after = self._clock()
        while len(result) < count:
            nxt = self.next_fire(campaign, after=after)
            if nxt is None:
                break
            result.append(nxt)
            after = nxt
        return result

    # sending

    async def send_now(self, campaign_id: int, *, actor: Actor | str) -> RunView:
        """Approved or scheduled → sending, with a run starting now."""
        campaign = await self.get(campaign_id)
        await self._move(campaign, {APPROVED, SCHEDULED}, SENDING, actor, note="gửi ngay")
        run, _ = await self.repo.start_run(campaign.id, self._clock())
        return run

    async def fire(self, campaign_id: int, fire_at: dt.datetime) -> RunView | None:
        """An occurrence is due (called by the scheduler). Creates its run once, whoever
        calls and however often; None when the campaign is no longer scheduled."""
        campaign = await self.repo.get(campaign_id)
        if campaign is None or campaign.status != SCHEDULED:
            return None
        run, created = await self.repo.start_run(campaign.id, fire_at)
        # Also when the run exists but is still active: a process died between creating it
        # and moving the campaign on.
        if created or run.status in RUN_ACTIVE:
            try:
                await self.repo.transition(
                    campaign.id,
                    expected={SCHEDULED},
                    to=SENDING,
                    actor=SYSTEM,
                    note=f"lần gửi {self.local(fire_at)}",
                )
            except StaleCampaign:
                now = await self.repo.get(campaign.id)
                if now is not None and now.status == SENDING:
                    return run  # another fire of this occurrence moved it first
                # Paused or cancelled in the same instant: so is the run.
                await self.repo.set_run_status(run.id, RUN_CANCELLED, expected=RUN_ACTIVE)
                return None
        return run

    async def test_send(
        self, campaign_id: int, subscriber_ids: Sequence[int], *, actor: Actor | str
    ) -> RunView:
        """A preview to named subscribers (any status), before approval; it does not change
        the campaign's status, ignores quiet hours and is left out of the campaign's report."""
        campaign = await self.get(campaign_id)
        if campaign.status in FINAL:
            raise WorkflowError("Chiến dịch đã kết thúc.")
        if not subscriber_ids:
            raise WorkflowError("Cần ít nhất một người nhận thử (mã người đăng ký).")
        run, _ = await self.repo.start_run(campaign.id, self._clock(), test=True)
        added = await self.repo.add_test_recipients(run.id, subscriber_ids)
        if added == 0:
            await self.repo.set_run_status(run.id, RUN_DONE, reason="no such subscribers")
            raise WorkflowError("Không tìm thấy người đăng ký nào với các mã đã cho.")
        await self.repo.set_run_status(run.id, "sending", expected={RUN_EXPANDING})
        return await self._run(run.id)

    async def _run(self, run_id: int) -> RunView:
        run = await self.repo.run(run_id)
        assert run is not None
        return run

    async def active_run(self, campaign_id: int) -> RunView | None:
        runs = await self.repo.runs(campaign_id, include_tests=False)
        active = [r for r in runs if r.status in RUN_ACTIVE]
        return active[-1] if active else None

    async def pause(
        self, campaign_id: int, *, actor: Actor | str, reason: str | None = None
    ) -> CampaignView:
        campaign = await self.get(campaign_id)
        moved = await self._move(campaign, {SCHEDULED, SENDING}, PAUSED, actor, note=reason)
        run = await self.active_run(campaign_id)
        if run is not None:
            await self.repo.set_run_status(
                run.id, RUN_PAUSED, expected={RUN_EXPANDING, "sending"}, reason=reason
            )
        return moved

    async def resume(self, campaign_id: int, *, actor: Actor | str) -> CampaignView:
        campaign = await self.get(campaign_id)
        run = await self.active_run(campaign_id)
        target = SENDING if run is not None else SCHEDULED
        moved = await self._move(campaign, {PAUSED}, target, actor, note="tiếp tục")
        if run is not None:
            # Back to expanding: the engine finishes the audience if it was cut short, then
            # marks it sending.
            await self.repo.set_run_status(run.id, RUN_EXPANDING, expected={RUN_PAUSED})
        return moved

    async def cancel(self, campaign_id: int, *, actor: Actor | str) -> CampaignView:
        campaign = await self.get(campaign_id)
        allowed = set(STATUS_LABELS) - FINAL
        moved = await self._move(campaign, allowed, CANCELLED, actor)
        for run in await self.repo.runs(campaign_id):
            if run.status in RUN_ACTIVE:
                await self.repo.set_run_status(run.id, RUN_CANCELLED, expected=RUN_ACTIVE)
                await self.repo.cancel_pending(run.id)
        return moved

    async def finish_run(self, run: RunView) -> None:
        """The run has nothing left to send: mark it done, and the campaign done (one-off,
        or recurring past its end) or scheduled again (recurring)."""
        if not await self.repo.set_run_status(run.id, RUN_DONE, expected={"sending"}):
            return
        if run.test:
            return
        campaign = await self.repo.get(run.campaign_id)
        if campaign is None or campaign.status != SENDING:
            return
        more = self.next_fire(campaign, after=max(self._clock(), run.fire_at))
        target = SCHEDULED if campaign.schedule_kind == "cron" and more else DONE
        with contextlib.suppress(StaleCampaign):  # paused or cancelled meanwhile
            await self.repo.transition(
                campaign.id, expected={SENDING}, to=target, actor=SYSTEM, note="gửi xong"
            )

    async def fail(self, campaign_id: int, reason: str) -> None:
        try:
            await self.repo.transition(
                campaign_id,
                expected=set(STATUS_LABELS) - FINAL,
                to=FAILED,
                actor=SYSTEM,
                note=reason,
                changes={"status_reason": reason},
            )
        except StaleCampaign:
            return
        for run in await self.repo.runs(campaign_id):
            if run.status in RUN_ACTIVE:
                await self.repo.set_run_status(run.id, "failed", expected=RUN_ACTIVE, reason=reason)
                await self.repo.cancel_pending(run.id)

    def local(self, value: dt.datetime) -> str:
        return value.astimezone(self.zone).strftime("%d/%m/%Y %H:%M")


def _actor(value: Actor | str) -> Actor:
    actor = actor_of(value)
    if not actor.name.strip():
        raise WorkflowError("Cần ghi rõ người thực hiện (--by TÊN).")
    return actor
