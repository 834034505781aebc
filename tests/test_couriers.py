"""The broadcast couriers against the fake platform APIs on 127.0.0.1 (tests/fakes): what one
recipient receives on each channel, the message id handed back, and how every platform error
becomes a DeliveryError the broadcast engine can act on (kind, permanent, retry_after) —
without the courier retrying or waiting on its own. Also the fakes' rate limits."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.app import create_app
from bot.channels.couriers import open_couriers
from bot.channels.delivery import DeliveryError
from bot.channels.telegram.broadcast import TelegramCourier
from bot.channels.zalo.broadcast import ZaloCourier
from bot.channels.zalo.client import BROADCAST_RATE_LIMIT_RETRY_AFTER
from bot.services import Services
from bot.settings import Settings, TelegramSettings, ZaloSettings
from bot.web.keys import SERVICES
from broadcasts.message import BroadcastMessage, Courier, compose
from tests.fakes.telegram_api import FakeTelegram, parse_html
from tests.fakes.zalo_api import FakeZalo

TOKEN = "123456789:AAH-test_token_Zq8xY"
CHAT = "218485655"
OTHER_CHAT = "996202131"
APP_ID = "2553928453557884079"
APP_SECRET = "app-secret-Wm8xT4rB7"
CITIZEN = "6142494823001112223"
OTHER_CITIZEN = "6142494823001114445"
IMAGE = "https://dichvucong.bacninh.gov.vn/anh/thong-bao.jpg"
LINK = "https://dichvucong.gov.vn/p/home/dvc-trang-chu.html?a=1&b=2"
OPT_OUT = 'Để ngừng nhận tin, nhắn "hủy".'
TOPICS = ["thu-tuc-moi"]


def message(text: str = "Thông báo", **kwargs: Any) -> BroadcastMessage:
    return compose(text, OPT_OUT, **kwargs)


def with_telegram(settings: Settings, api: FakeTelegram) -> Settings:
    config = TelegramSettings(
        token=SecretStr(TOKEN), webhook_secret=SecretStr("webhook-Secret_42"), api_url=api.url
    )
    return settings.model_copy(update={"telegram": config})


def with_zalo(settings: Settings, fake: FakeZalo) -> Settings:
    config = ZaloSettings(
        app_id=APP_ID,
        oa_secret_key=SecretStr("oa-secret-Zk3vQ9pL2"),
        app_secret=SecretStr(APP_SECRET),
        access_token=SecretStr(fake.access_token),
        refresh_token=SecretStr(fake.refresh_token),
        api_url=fake.url,
        oauth_url=fake.url,
    )
    return settings.model_copy(update={"zalo": config})


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture
async def telegram(
    settings: Settings, services: Services, api: FakeTelegram
) -> AsyncIterator[Courier]:
    async with open_couriers(with_telegram(settings, api), services) as couriers:
        assert set(couriers) == {"telegram"}
        yield couriers["telegram"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(app_id=APP_ID, app_secret=APP_SECRET) as zalo_api:
        yield zalo_api
        assert zalo_api.problems == []


@pytest.fixture
async def zalo(settings: Settings, services: Services, fake: FakeZalo) -> AsyncIterator[Courier]:
    async with open_couriers(with_zalo(settings, fake), services) as couriers:
        assert set(couriers) == {"zalo"}
        yield couriers["zalo"]


async def subscriber_status(services: Services, channel: str, external_id: str) -> str | None:
    view = await services.storage.subscribers.get(channel, external_id)
    return None if view is None else view.status


async def failure(courier: Courier, external_id: str, sent: BroadcastMessage) -> DeliveryError:
    with pytest.raises(DeliveryError) as raised:
        await courier.deliver(external_id, sent)
    return raised.value


# --- open_couriers -------------------------------------------------------------------------


async def test_only_configured_channels_get_a_courier(
    settings: Settings, services: Services
) -> None:
    async with open_couriers(settings, services) as couriers:
        assert couriers == {}


async def test_couriers_open_without_contacting_the_platforms(
    settings: Settings, services: Services, api: FakeTelegram, fake: FakeZalo
) -> None:
    configured = with_zalo(with_telegram(settings, api), fake)
    async with open_couriers(configured, services) as couriers:
        assert set(couriers) == {"telegram", "zalo"}
        assert isinstance(couriers["telegram"], TelegramCourier)
        assert isinstance(couriers["zalo"], ZaloCourier)
        assert all(courier.channel == name for name, courier in couriers.items())
        assert api.calls == []
        assert fake.attempts == []
        # The Zalo token store is seeded from the environment, as the webhook does.
        stored = await services.storage.tokens.get("zalo")
        assert stored is not None
        assert stored.access_token == fake.access_token


async def test_couriers_work_beside_the_running_webhooks(
    settings: Settings, api: FakeTelegram, fake: FakeZalo
) -> None:
    configured = with_zalo(with_telegram(settings, api), fake)
    # The app's own broadcast senders stay off: this is about the webhooks' contexts.
    quiet = configured.broadcast.model_copy(update={"enabled": False})
    configured = configured.model_copy(update={"broadcast": quiet})
    server = TestServer(create_app(configured), host="127.0.0.1")
    async with TestClient(server) as client:
        services = client.app[SERVICES]
        await api.wait_for(lambda: bool(api.calls_of("getMe")))
        async with open_couriers(configured, services) as couriers:
            assert await couriers["telegram"].deliver(CHAT, message()) is not None
            assert await couriers["zalo"].deliver(CITIZEN, message()) is not None
    assert len(api.sent(CHAT)) == 1
    assert len(fake.to(CITIZEN)) == 1


# --- Telegram ------------------------------------------------------------------------------


async def test_telegram_text_button_and_image_preview(telegram: Courier, api: FakeTelegram) -> None:
    sent = message(
        "Giá < 5.000đ & **miễn phí** cho hồ sơ <b>trực tuyến</b>",
        link_title="Xem chi tiết",
        link_url=LINK,
        image_url=IMAGE,
    )
    message_id = await telegram.deliver(CHAT, sent)
    [params] = api.sent(CHAT)
    assert params["parse_mode"] == "HTML"
    # Escaped like answers: the citizen's < and & survive, only our own tags are markup.
    assert params["text"].startswith(
        "Giá &lt; 5.000đ &amp; <b>miễn phí</b> cho hồ sơ &lt;b&gt;trực tuyến&lt;/b&gt;"
    )
    problem, visible = parse_html(params["text"])
    assert problem is None
    assert visible == "Giá < 5.000đ & miễn phí cho hồ sơ <b>trực tuyến</b>\n\n" + OPT_OUT
    assert params["reply_markup"] == {"inline_keyboard": [[{"text": "Xem chi tiết", "url": LINK}]]}
    assert params["link_preview_options"] == {
        "url": IMAGE,
        "prefer_large_media": True,
        "show_above_text": True,
    }
    assert message_id == str(api.message_ids(CHAT)[-1])


async def test_telegram_without_image_disables_previews_and_ids_increase(
    telegram: Courier, api: FakeTelegram
) -> None:
    first = await telegram.deliver(CHAT, message("Xem https://dichvucong.gov.vn"))
    second = await telegram.deliver(OTHER_CHAT, message())
    assert first is not None
    assert second is not None
    assert int(second) > int(first)
    for params in api.sent():
        assert params["link_preview_options"] == {"is_disabled": True}
        assert "reply_markup" not in params
    assert api.message_ids() == [int(first), int(second)]


async def test_telegram_blocked_chat_is_permanent_and_marked(
    telegram: Courier, api: FakeTelegram, services: Services
) -> None:
    await services.storage.subscribers.subscribe("telegram", CHAT, TOPICS, source="test")
    api.block(CHAT)
    error = await failure(telegram, CHAT, message())
    assert error.permanent
    assert error.kind == "blocked"
    assert error.retry_after is None
    assert TOKEN not in error.reason
    assert await subscriber_status(services, "telegram", CHAT) == "blocked"
    history = await services.storage.subscribers.history("telegram", CHAT)
    assert history[-1][:2] == ("blocked", "telegram:send_forbidden")
    assert len(api.calls_of("sendMessage")) == 1  # no retry


async def test_telegram_unknown_chat_is_not_found(
    telegram: Courier, api: FakeTelegram, services: Services
) -> None:
    await services.storage.subscribers.subscribe("telegram", CHAT, TOPICS, source="test")
    api.forget(CHAT)
    error = await failure(telegram, CHAT, message())
    assert error.permanent
    assert error.kind == "not_found"
    assert await subscriber_status(services, "telegram", CHAT) == "active"


async def test_telegram_flood_control_asks_to_retry_later(
    telegram: Courier, api: FakeTelegram
) -> None:
    api.throttle(1, retry_after=7)
    error = await failure(telegram, CHAT, message())
    assert not error.permanent
    assert error.retry_after == 7.0
    assert error.kind is None
    assert len(api.calls_of("sendMessage")) == 1  # not waited out, not retried
    assert await telegram.deliver(CHAT, message()) is not None


@pytest.mark.parametrize("status", [500, 502])
async def test_telegram_server_errors_are_transient(
    telegram: Courier, api: FakeTelegram, status: int
) -> None:
    api.fail("sendMessage", 1, status)
    error = await failure(telegram, CHAT, message())
    assert not error.permanent
    assert error.retry_after is None
    assert len(api.calls_of("sendMessage")) == 1


async def test_telegram_unreachable_api_is_transient(
    settings: Settings, services: Services
) -> None:
    async with FakeTelegram(TOKEN) as gone:
        configured = with_telegram(settings, gone)
    # Nothing listens there any more.
    async with open_couriers(configured, services) as couriers:
        error = await failure(couriers["telegram"], CHAT, message())
    assert not error.permanent
    assert TOKEN not in error.reason


# --- Zalo ----------------------------------------------------------------------------------


async def test_zalo_text_and_button_return_the_message_id(zalo: Courier, fake: FakeZalo) -> None:
    sent = message("**Thủ tục mới**: cấp đổi CCCD", link_title="Xem", link_url=LINK)
    message_id = await zalo.deliver(CITIZEN, sent)
    [received] = fake.to(CITIZEN)
    assert message_id == received.message_id != ""
    assert received.text == "Thủ tục mới: cấp đổi CCCD\n\n" + OPT_OUT
    assert received.buttons == [{"title": "Xem", "type": "oa.open.url", "payload": {"url": LINK}}]
    assert received.access_token == fake.access_token


async def test_zalo_image_goes_in_one_media_message_with_the_text(
    zalo: Courier, fake: FakeZalo
) -> None:
    sent = message("Lịch tiếp công dân", link_title="Xem", link_url=LINK, image_url=IMAGE)
    message_id = await zalo.deliver(CITIZEN, sent)
    [received] = fake.to(CITIZEN)
    assert message_id == received.message_id
    assert received.media == [{"media_type": "image", "url": IMAGE}]
    # The media template has no buttons: the link is a line of the text.
    assert received.text == f"Lịch tiếp công dân\n\n{OPT_OUT}\n\nXem: {LINK}"


async def test_zalo_long_text_then_the_image(zalo: Courier, fake: FakeZalo) -> None:
    text = "\n\n".join(f"Đoạn {i}: " + "thủ tục hành chính " * 60 for i in range(2))
    message_id = await zalo.deliver(CITIZEN, BroadcastMessage(text, image_url=IMAGE))
    received = fake.to(CITIZEN)
    assert len(received) == 3
    assert all(m.text.startswith("Đoạn ") and not m.media for m in received[:2])
    assert received[2].text == ""
    assert received[2].media == [{"media_type": "image", "url": IMAGE}]
    assert message_id == received[2].message_id


async def test_zalo_refused_templates_fall_back_to_plain_text(
    zalo: Courier, fake: FakeZalo, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reject_templates = True
    sent = message("Tin mới", link_title="Xem", link_url=LINK)
    message_id = await zalo.deliver(CITIZEN, sent)
    [received] = fake.to(CITIZEN)
    assert received.text == f"Tin mới\n\n{OPT_OUT}\n\nXem: {LINK}"
    assert received.attachment is None
    assert message_id == received.message_id
    assert "Zalo refused a message template (error -201)" in caplog.text
    # Remembered: the next recipients get plain text at once.
    await zalo.deliver(OTHER_CITIZEN, message("Tin mới", link_url=LINK, image_url=IMAGE))
    assert [a.error for a in fake.attempts] == [-201, 0, 0]
    assert fake.to(OTHER_CITIZEN)[0].attachment is None


@pytest.mark.parametrize(
    ("code", "kind"),
    [(-213, "not_follower"), (-230, "out_of_window"), (-232, "out_of_window"), (-227, "blocked")],
)
async def test_zalo_unreachable_citizens_are_permanent_with_their_kind(
    zalo: Courier, fake: FakeZalo, services: Services, code: int, kind: str
) -> None:
    await services.storage.subscribers.subscribe("zalo", CITIZEN, TOPICS, source="zalo:follow")
    fake.fail(CITIZEN, code)
    error = await failure(zalo, CITIZEN, message())
    assert error.permanent
    assert error.kind == kind
    assert error.code == code
    assert error.retry_after is None
    assert [a.error for a in fake.attempts] == [code]
    assert await subscriber_status(services, "zalo", CITIZEN) == "unreachable"


async def test_zalo_rate_limit_is_raised_at_once_with_retry_after(
    zalo: Courier, fake: FakeZalo
) -> None:
    fake.fail(CITIZEN, -32, times=1)
    started = time.monotonic()
    error = await failure(zalo, CITIZEN, message())
    assert time.monotonic() - started < 1.0  # not waited out
    assert not error.permanent
    assert error.code == -32
    assert error.retry_after == BROADCAST_RATE_LIMIT_RETRY_AFTER == 60.0
    assert [a.error for a in fake.attempts] == [-32]
    assert await zalo.deliver(CITIZEN, message()) is not None


async def test_zalo_server_errors_are_transient(zalo: Courier, fake: FakeZalo) -> None:
    fake.fail_http(502)
    error = await failure(zalo, CITIZEN, message())
    assert not error.permanent
    assert error.retry_after is None
    assert [a.error for a in fake.attempts] == [502]
    assert fake.sent == []


async def test_zalo_rejected_token_is_refreshed_for_a_delivery(
    zalo: Courier, fake: FakeZalo, services: Services
) -> None:
    old_refresh = fake.refresh_token
    fake.invalidate_access_token()
    message_id = await zalo.deliver(CITIZEN, message())
    assert fake.refresh_calls == [old_refresh]
    assert [a.error for a in fake.attempts] == [-216, 0]
    [received] = fake.to(CITIZEN)
    assert received.access_token == fake.access_token
    assert message_id == received.message_id
    stored = await services.storage.tokens.get("zalo")
    assert stored is not None
    assert stored.access_token == fake.access_token


# --- the fakes' rate limits ----------------------------------------------------------------


async def test_fake_telegram_enforces_its_global_rate_limit(
    settings: Settings, services: Services
) -> None:
    async with (
        FakeTelegram(TOKEN, rate_limit=30) as limited,
        open_couriers(with_telegram(settings, limited), services) as couriers,
    ):
        courier = couriers["telegram"]
        chats = [str(700000000 + i) for i in range(31)]
        results = await asyncio.gather(
            *(courier.deliver(chat, message()) for chat in chats), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, DeliveryError)]
        assert len(errors) == 1
        assert not errors[0].permanent
        assert errors[0].retry_after == 1.0
        assert limited.rejected_429 == 1
        assert len(limited.sent()) == 30
        ids = sorted(int(r) for r in results if isinstance(r, str))
        assert len(set(ids)) == 30
        # The window slides: once the accepted calls are a second old, sending works again.
        limited._admitted = deque(t - 1.0 for t in limited._admitted)
        assert await courier.deliver(chats[0], message()) is not None
        assert limited.rejected_429 == 1


async def test_fake_telegram_latency(settings: Settings, services: Services) -> None:
    async with (
        FakeTelegram(TOKEN, latency=0.2) as slow,
        open_couriers(with_telegram(settings, slow), services) as couriers,
    ):
        started = time.monotonic()
        await asyncio.gather(*(couriers["telegram"].deliver(CHAT, message()) for _ in range(5)))
        elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1.0  # concurrent calls wait side by side


async def test_fake_zalo_enforces_its_rate_limit(
    settings: Settings, services: Services, fake: FakeZalo
) -> None:
    fake.rate_limit = 3
    async with open_couriers(with_zalo(settings, fake), services) as couriers:
        courier = couriers["zalo"]
        results = [
            await courier.deliver(CITIZEN, message()),
            await courier.deliver(CITIZEN, message()),
            await courier.deliver(CITIZEN, message()),
        ]
        error = await failure(courier, CITIZEN, message())
    assert all(results)
    assert len(set(results)) == 3
    assert error.code == -32
    assert error.retry_after == 60.0
    assert fake.rejected_32 == 1
    assert [a.error for a in fake.attempts] == [0, 0, 0, -32]
