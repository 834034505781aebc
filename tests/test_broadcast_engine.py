"""The broadcast engine with in-memory couriers, on SQLite and PostgreSQL: audience,
ledger, retries, permanent errors, error-rate pause, pause/resume/cancel, quiet hours,
retry_after, and the crash policy for rows a dead sender had claimed."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from bot.channels.delivery import DeliveryError
from bot.services import Storage, open_storage
from bot.settings import BroadcastSettings, DatabaseSettings, Settings
from broadcasts.engine import BroadcastEngine
from broadcasts.message import BroadcastMessage
from broadcasts.workflow import Campaigns, CampaignSpec
from storage.campaigns import RUN_DONE

OPT_OUT = "Gõ HỦY để ngừng nhận tin."


@dataclass
class MemoryCourier:
    channel: str
    sent: list[tuple[str, BroadcastMessage, float]] = field(default_factory=list)
    # external id -> errors to raise, one per attempt, before succeeding
    script: dict[str, list[DeliveryError]] = field(default_factory=dict)
    always: Callable[[str], DeliveryError | None] | None = None
    delay: float = 0.0

    async def deliver(self, external_id: str, message: BroadcastMessage) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.always is not None:
            error = self.always(external_id)
            if error is not None:
                raise error
        queue = self.script.get(external_id)
        if queue:
            raise queue.pop(0)
        self.sent.append((external_id, message, time.monotonic()))
        return f"m{len(self.sent)}"

    def recipients(self) -> Counter[str]:
        return Counter(e for e, _, _ in self.sent)


def _settings(url: str, **broadcast: object) -> Settings:
    values: dict[str, object] = {
        "quiet_start": "00:00",
        "quiet_end": "00:00",
        "telegram_rate": 0,
        "zalo_rate": 0,
        "telegram_per_chat_seconds": 0,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "claim_lease_seconds": 30,
    }
    values.update(broadcast)
    return Settings(
        database=DatabaseSettings(url=url),
        broadcast=BroadcastSettings.model_validate(values),
    )


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    async with open_storage(_settings(database_url)) as opened:
        yield opened


async def _people(
    storage: Storage, channel: str, n: int, topics: list[str], prefix: str = ""
) -> list[str]:
    ids = []
    for i in range(n):
        external = f"{prefix}{channel}-{i}"
        await storage.subscribers.subscribe(channel, external, topics, source="test")
        await storage.subscribers.touch(channel, external)
        ids.append(external)
    return ids


def _campaigns(storage: Storage, settings: Settings) -> Campaigns:
    return Campaigns(storage.campaigns, settings.broadcast, topics={"tthc", "dvc", "vneid"})


async def _approved(
    campaigns: Campaigns, spec: CampaignSpec | None = None, *, author: str = "Lan"
) -> int:
    spec = spec or CampaignSpec(name="Tin thử", text="Dịch vụ công **trực tuyến** mới.")
    campaign = await campaigns.create(spec, author=author)
    await campaigns.submit(campaign.id, actor=author)
    await campaigns.approve(campaign.id, by="Minh")
    return campaign.id


def _engine(
    storage: Storage, settings: Settings, *couriers: MemoryCourier, worker: str | None = None
) -> BroadcastEngine:
    return BroadcastEngine(
        _campaigns(storage, settings),
        storage.rate_buckets,
        {c.channel: c for c in couriers},
        settings.broadcast,
        opt_out_line=OPT_OUT,
        worker=worker,
        supervise_interval=0.05,
    )


async def test_run_reaches_each_subscriber_once_with_opt_out_line(
    storage: Storage, database_url: str
) -> None:
    settings = _settings(database_url)
    tg = await _people(storage, "telegram", 12, ["tthc"])
    await _people(storage, "telegram", 3, ["vneid"], prefix="v")  # other topic: not in the audience
    zalo = await _people(storage, "zalo", 5, ["tthc", "dvc"])
    # Two Zalo followers last wrote 8 days ago: outside the 7-day window.
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    for external in zalo[:2]:
        await storage.subscribers.touch("zalo", external, at=old)
    await storage.subscribers.unsubscribe("telegram", tg[0], source="test")
    campaigns = _campaigns(storage, settings)
    spec = CampaignSpec(
        name="DVC",
        text="Nộp hồ sơ trực tuyến tại dichvucong.gov.vn",
        topics=("tthc",),
        link_url="https://dichvucong.gov.vn",
    )
    cid = await _approved(campaigns, spec)
    telegram, zalo_courier = MemoryCourier("telegram"), MemoryCourier("zalo")
    async with _engine(storage, settings, telegram, zalo_courier) as engine:
        run = await campaigns.send_now(cid, actor="Lan")
        final = await asyncio.wait_for(engine.wait(run.id, poll=0.05), 20)
    assert final.status == RUN_DONE
    assert telegram.recipients() == Counter(tg[1:])
    assert zalo_courier.recipients() == Counter(zalo[2:])
    message = telegram.sent[0][1]
    assert message.text.endswith(OPT_OUT)
    assert message.button is not None
    assert message.button.url == "https://dichvucong.gov.vn"
    counts = await storage.campaigns.counts([run.id])
    assert counts == {("telegram", "sent"): 11, ("zalo", "sent"): 3, ("zalo", "out_of_window"): 2}
    sent = await storage.campaigns.deliveries(run.id, status="sent")
    assert all(row["message_id"] and row["sent_at"] for row in sent)
    assert (await campaigns.get(cid)).status == "done"


async def test_permanent_and_transient_errors(storage: Storage, database_url: str) -> None:
    settings = _settings(database_url, max_attempts=3)
    people = await _people(storage, "telegram", 6, ["tthc"])
    courier = MemoryCourier("telegram")
    courier.script = {
        people[0]: [DeliveryError("Forbidden: bot was blocked", permanent=True, kind="blocked")],
        people[1]: [DeliveryError("Bad Gateway", permanent=False)] * 2,  # then succeeds
        people[2]: [DeliveryError("Bad Gateway", permanent=False)] * 5,  # gives up at 3
    }
    campaigns = _campaigns(storage, settings)
    cid = await _approved(campaigns)
    async with _engine(storage, settings, courier) as engine:
        run = await campaigns.send_now(cid, actor="Lan")
        await asyncio.wait_for(engine.wait(run.id, poll=0.05), 20)
    assert courier.recipients() == Counter([people[1], *people[3:]])
    rows = {r["external_id"]: r for r in await storage.campaigns.deliveries(run.id)}
    assert rows[people[0]]["status"] == "failed"
    assert rows[people[0]]["last_error"] == "blocked"
    assert rows[people[1]]["status"] == "sent"
    assert rows[people[1]]["attempts"] == 3
    assert rows[people[2]]["status"] == "failed"
    assert rows[people[2]]["attempts"] == 3
    assert "gave up after 3 attempts" in rows[people[2]]["last_error"]


async def test_error_rate_pauses_the_campaign_and_says_why(
    storage: Storage, database_url: str
) -> None:
    settings = _settings(database_url, error_window=10, error_rate_threshold=0.5, claim_batch=5)
    await _people(storage, "telegram", 40, ["tthc"])
    courier = MemoryCourier(
        "telegram", always=lambda _e: DeliveryError("token rejected", permanent=True)
    )
    campaigns = _campaigns(storage, settings)
    cid = await _approved(campaigns)
    async with _engine(storage, settings, courier) as engine:
        run = await campaigns.send_now(cid, actor="Lan")
        final = await asyncio.wait_for(engine.wait(run.id, poll=0.05), 20)
    assert final.status == "paused"
    campaign = await campaigns.get(cid)
    assert campaign.status == "paused"
    events = await storage.campaigns.events(cid)
    assert events[-1].to_status == "paused"
    assert "tạm dừng tự động" in (events[-1].note or "")
    counts = await storage.campaigns.counts([run.id])
    assert counts.get(("telegram", "pending"), 0) > 0  # the rest waits for a human


async def test_pause_resume_and_cancel_take_effect_within_a_second(
    storage: Storage, database_url: str
) -> None:
    settings = _settings(database_url, telegram_rate=20)
    people = await _people(storage, "telegram", 60, ["tthc"])
    courier = MemoryCourier("telegram")
    campaigns = _campaigns(storage, settings)
    cid = await _approved(campaigns)
    async with _engine(storage, settings, courier):
        await campaigns.send_now(cid, actor="Lan")
        await _until(lambda: len(courier.sent) >= 5)
        await campaigns.pause(cid, actor="Lan")
        paused_at = time.monotonic()
        await asyncio.sleep(1.5)
        late = [t for _, _, t in courier.sent if t > paused_at + 1.0]
        assert late == []
        before = len(courier.sent)
        assert before < len(people)
        await campaigns.resume(cid, actor="Lan")
        await _until(lambda: len(courier.sent) >= before + 5)
        await campaigns.cancel(cid, actor="Lan")
        cancelled_at = time.monotonic()
        await asyncio.sleep(1.2)
        assert [t for _, _, t in courier.sent if t > cancelled_at + 1.0] == []
    assert max(courier.recipients().values()) == 1
    run = (await storage.campaigns.runs(cid))[-1]
    counts = await storage.campaigns.counts([run.id])
    assert counts[("telegram", "sent")] == len(courier.sent)
    assert counts[("telegram", "cancelled")] == len(people) - len(courier.sent)
    assert (await campaigns.get(cid)).status == "cancelled"


async def test_quiet_hours_hold_ordinary_campaigns_but_not_urgent_ones(
    storage: Storage, database_url: str
) -> None:
    # Quiet all day except one minute long past: "now" is inside.
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=7)))
    start = (now - dt.timedelta(hours=1)).strftime("%H:%M")
    end = (now + dt.timedelta(hours=1)).strftime("%H:%M")
    settings = _settings(database_url, quiet_start=start, quiet_end=end)
    await _people(storage, "telegram", 3, ["tthc"])
    courier = MemoryCourier("telegram")
    campaigns = _campaigns(storage, settings)
    ordinary = await _approved(campaigns)
    urgent = await _approved(
        campaigns, CampaignSpec(name="Khẩn", text="Thông báo khẩn về bão.", urgent=True)
    )
    async with _engine(storage, settings, courier) as engine:
        held = await campaigns.send_now(ordinary, actor="Lan")
        run = await campaigns.send_now(urgent, actor="Lan")
        await asyncio.wait_for(engine.wait(run.id, poll=0.05), 20)
        await asyncio.sleep(0.5)
    assert len(courier.sent) == 3
    assert all("bão" in m.text for _, m, _ in courier.sent)
    assert (await storage.campaigns.counts([held.id])) == {("telegram", "pending"): 3}


async def test_retry_after_holds_the_channel(storage: Storage, database_url: str) -> None:
    settings = _settings(database_url, telegram_rate=100)
    people = await _people(storage, "telegram", 4, ["tthc"])
    courier = MemoryCourier("telegram")
    courier.script = {
        people[0]: [DeliveryError("Too Many Requests", permanent=False, retry_after=1.0)]
    }
    campaigns = _campaigns(storage, settings)
    cid = await _approved(campaigns)
    async with _engine(storage, settings, courier) as engine:
        started = time.monotonic()
        run = await campaigns.send_now(cid, actor="Lan")
        await asyncio.wait_for(engine.wait(run.id, poll=0.05), 20)
    assert courier.recipients() == Counter(people)
    first_retry = next(t for e, _, t in courier.sent if e == people[0])
    assert first_retry - started >= 0.9


async def test_rows_claimed_by_a_dead_sender_become_uncertain_not_resent(
    storage: Storage, database_url: str
) -> None:
    settings = _settings(database_url, claim_lease_seconds=0.5)
    people = await _people(storage, "telegram", 10, ["tthc"])
    campaigns = _campaigns(storage, settings)
    cid = await _approved(campaigns)
    run = await campaigns.send_now(cid, actor="Lan")
    # Expand the audience, then let a "sender" claim three rows and die.
    courier = MemoryCourier("telegram")
    engine = _engine(storage, settings, courier)
    await engine.supervise_once()
    claimed = await storage.campaigns.claim("telegram", worker="dead:1", limit=3)
    assert len(claimed) == 3
    await asyncio.sleep(0.6)
    async with engine:
        await asyncio.wait_for(engine.wait(run.id, poll=0.05), 20)
    lost = {c.external_id for c in claimed}
    assert courier.recipients() == Counter(p for p in people if p not in lost)
    counts = await storage.campaigns.counts([run.id])
    assert counts == {("telegram", "sent"): 7, ("telegram", "uncertain"): 3}


async def test_audience_is_evaluated_at_send_time(storage: Storage, database_url: str) -> None:
    settings = _settings(database_url)
    people = await _people(storage, "telegram", 3, ["tthc"])
    campaigns = _campaigns(storage, settings)
    cid = await _approved(campaigns)
    # Subscribes after the campaign was approved, before it is sent.
    late = await _people(storage, "telegram", 1, ["dvc"], prefix="late")
    await storage.subscribers.unsubscribe("telegram", people[0], source="test")
    courier = MemoryCourier("telegram")
    async with _engine(storage, settings, courier) as engine:
        run = await campaigns.send_now(cid, actor="Lan")
        await asyncio.wait_for(engine.wait(run.id, poll=0.05), 20)
    assert courier.recipients() == Counter([*people[1:], *late])


async def _until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_ledger_of_finished_runs_is_purged_after_retention(
    storage: Storage, database_url: str
) -> None:
    settings = _settings(database_url)
    await _people(storage, "telegram", 3, ["tthc"])
    campaigns = _campaigns(storage, settings)
    cid = await _approved(campaigns)
    courier = MemoryCourier("telegram")
    async with _engine(storage, settings, courier) as engine:
        run = await campaigns.send_now(cid, actor="Lan")
        await asyncio.wait_for(engine.wait(run.id, poll=0.05), 20)
    now = dt.datetime.now(dt.UTC)
    assert await storage.campaigns.purge_deliveries(now - dt.timedelta(days=1)) == 0
    assert await storage.campaigns.purge_deliveries(now + dt.timedelta(seconds=1)) == 3
    assert await storage.campaigns.deliveries(run.id) == []
    kept = await storage.campaigns.run(run.id)
    assert kept is not None
    assert kept.total == 3
