"""The Zalo OA channel end to end: a real aiohttp app on 127.0.0.1 receiving signed webhook
events shaped like the reference's samples (/work/shared/reference/zalo-oa.md §1.3, §1.4), and
answering through a fake Zalo API (tests/fakes/zalo_api.py) that checks tokens like Zalo.

Background work is awaited deterministically: the webhook's ``idle()`` waits for the tasks it
started, and the fake's ``wait_for*`` wait on its records with a timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.app import create_app
from bot.channels.zalo import (
    MAX_TEXT_CHARS,
    ZALO_CHANNEL,
    ZALO_WEBHOOK,
    DeliveryError,
    ZaloChannel,
    ZaloWebhook,
    button_json,
    plain_text,
    split_text,
)
from bot.messages import Button, Reply
from bot.services import Services, open_storage
from bot.settings import DatabaseSettings, Settings, ZaloSettings
from bot.web.keys import SERVICES
from storage.channels import TokenPair
from tests.fakes.zalo_api import FakeZalo, SentMessage

# IDs in the shapes of the reference's samples (§1.3: the a4b production sample).
APP_ID = "2553928453557884079"
OA_ID = "3662729599332560487"
OA_SECRET = "oa-secret-Zk3vQ9pL2"
APP_SECRET = "app-secret-Wm8xT4rB7"
CITIZEN = "6142494823001112223"
Client = TestClient[Any, Any]


def now_ms(offset_seconds: float = 0) -> str:
    return str(int((time.time() + offset_seconds) * 1000))


def text_event(user: str, text: str, *, msg_id: str | None = None, ts: str | None = None) -> Any:
    """§1.3, the real-looking user_send_text sample."""
    return {
        "event_name": "user_send_text",
        "app_id": APP_ID,
        "sender": {"id": user},
        "recipient": {"id": OA_ID},
        "message": {"text": text, "msg_id": msg_id or secrets.token_hex(10)},
        "timestamp": ts or now_ms(),
        "user_id_by_app": "979122185046046317",
    }


def follow_event(user: str, name: str = "follow") -> Any:
    """§1.3, the real follow capture: flat oa_id, follower, source, no sender/recipient."""
    return {
        "oa_id": OA_ID,
        "follower": {"id": user},
        "user_id_by_app": "6655413641204889003",
        "event_name": name,
        "source": "zalo",
        "app_id": APP_ID,
        "timestamp": now_ms(),
    }


# §1.4: the message of each non-text event, verbatim apart from ids.
ATTACHMENTS: dict[str, Any] = {
    "user_send_image": {
        "text": "This is testing message",
        "attachments": [
            {
                "payload": {"thumbnail": "url_to_thumbnail", "url": "url_to_thumbnail"},
                "type": "image",
            }
        ],
    },
    "user_send_gif": {
        "attachments": [{"payload": {"thumbnail": "t", "url": "u"}, "type": "gif"}],
    },
    "user_send_sticker": {
        "attachments": [{"payload": {"id": "sticker_id", "url": "link"}, "type": "sticker"}],
    },
    "user_send_link": {
        "attachments": [
            {
                "payload": {"thumbnail": "t", "description": "description_of_link", "url": "link"},
                "type": "link",
            }
        ],
    },
    "user_send_audio": {
        "attachments": [{"payload": {"url": "url_to_audio_file"}, "type": "audio"}],
    },
    "user_send_video": {
        "attachments": [
            {
                "payload": {"thumbnail": "t", "description": "d", "url": "url_to_video_file"},
                "type": "video",
            }
        ],
    },
    "user_send_file": {
        "attachments": [
            {
                "payload": {
                    "url": "link_to_download_file",
                    "size": "9999",
                    "name": "file_name",
                    "checksum": "checksum",
                    "type": "file_type",
                },
                "type": "file",
            }
        ],
    },
    "user_send_location": {
        "attachments": [
            {
                "type": "location",
                "payload": {"coordinates": {"latitude": "21.27", "longitude": "106.19"}},
            }
        ],
    },
}


def media_event(user: str, name: str) -> Any:
    """§1.4's envelope with one of its messages."""
    return {
        "app_id": APP_ID,
        "user_id_by_app": "2372735685249892743",
        "event_name": name,
        "timestamp": now_ms(),
        "sender": {"id": user},
        "recipient": {"id": OA_ID},
        "message": {"msg_id": secrets.token_hex(10), **ATTACHMENTS[name]},
    }


def echo_event(user: str) -> Any:
    """§1.4: oa_send_text, the echo of a message the OA sent (sender = OA)."""
    return {
        "app_id": APP_ID,
        "user_id_by_app": "2372735685249892743",
        "event_name": "oa_send_text",
        "timestamp": now_ms(),
        "sender": {"id": OA_ID},
        "recipient": {"id": user},
        "message": {"msg_id": secrets.token_hex(10), "text": "Xin chào"},
    }


def encode(event: Any) -> bytes:
    # Zalo's own serialisation: the signature covers these exact bytes, not re-encoded JSON.
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def sign(raw: bytes, timestamp: str, *, secret: str = OA_SECRET, first: str = APP_ID) -> str:
    """§2: mac=sha256(app_id + raw body + timestamp + OA secret key)."""
    return (
        "mac="
        + hashlib.sha256(first.encode() + raw + timestamp.encode() + secret.encode()).hexdigest()
    )


@dataclass
class Bot:
    client: Client
    fake: FakeZalo

    @property
    def services(self) -> Services:
        return self.client.server.app[SERVICES]

    @property
    def webhook(self) -> ZaloWebhook:
        return self.client.server.app[ZALO_WEBHOOK]

    @property
    def channel(self) -> ZaloChannel:
        return self.client.server.app[ZALO_CHANNEL]

    async def post(
        self, event: Any, *, signature: str | None = None, raw: bytes | None = None
    ) -> aiohttp.ClientResponse:
        """POST an event signed correctly, unless ``signature`` says otherwise."""
        body = raw if raw is not None else encode(event)
        if signature is None and isinstance(event, dict):
            signature = sign(body, str(event.get("timestamp", "")))
        headers = {"Content-Type": "application/json"}
        if signature:
            headers["X-ZEvent-Signature"] = signature
        return await self.client.post("/webhook/zalo", data=body, headers=headers)

    async def deliver(self, event: Any) -> list[SentMessage]:
        """Post the event, wait until it is handled and return what the citizen received."""
        user = str((event.get("sender") or event.get("follower") or {}).get("id"))
        before = len(self.fake.to(user))
        response = await self.post(event)
        assert response.status == 200, await response.text()
        await self.idle()
        return self.fake.to(user)[before:]

    async def say(self, user: str, text: str) -> list[SentMessage]:
        return await self.deliver(text_event(user, text))

    async def idle(self) -> None:
        async with asyncio.timeout(10):
            await self.webhook.idle()


def zalo_settings(base: Settings, fake: FakeZalo, **overrides: Any) -> Settings:
    zalo = ZaloSettings(
        app_id=APP_ID,
        oa_secret_key=SecretStr(OA_SECRET),
        app_secret=SecretStr(APP_SECRET),
        access_token=SecretStr(fake.access_token),
        refresh_token=SecretStr(fake.refresh_token),
        api_url=fake.url,
        oauth_url=fake.url,
        **overrides,
    )
    return base.model_copy(update={"zalo": zalo})


@pytest.fixture
async def fake() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(app_id=APP_ID, app_secret=APP_SECRET) as api:
        yield api
        assert api.problems == []


@pytest.fixture
async def bot(settings: Settings, fake: FakeZalo) -> AsyncIterator[Bot]:
    server = TestServer(create_app(zalo_settings(settings, fake)), host="127.0.0.1")
    async with TestClient(server) as client:
        harness = Bot(client, fake)
        yield harness
        webhook = harness.webhook
    # Shutdown waited for (or cancelled) every event task: nothing is left running.
    assert webhook.pending == 0


def our_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the project and aiohttp logged. (aiosqlite's own DEBUG output echoes SQL
    parameters, tokens included: the entry point must keep it above DEBUG.)"""
    ours = ("bot", "handlers", "storage", "content", "aiohttp")
    return "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] in ours)


# --- conversations ---------------------------------------------------------------------------


async def test_a_question_gets_the_right_answer(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sent = await bot.say(CITIZEN, "SIPAS là gì")
    assert len(sent) == 1
    answer = sent[0]
    assert "SIPAS" in answer.text
    assert "Căn cứ:" in answer.text
    assert "**" not in answer.text
    # Few enough buttons for the template; each is a query button carrying its payload.
    assert {"title": "Chủ đề", "type": "oa.query.show", "payload": "topics"} in answer.buttons
    assert answer.attachment is not None
    assert answer.attachment["type"] == "template"
    assert answer.access_token == bot.fake.access_token
    # The interaction is recorded (Zalo's 7-day window is counted from it).
    view = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert view is not None
    assert view.last_interaction_at is not None
    assert "Zalo webhook signature verified with variant: app_id + body" in caplog.text
    # No token or secret ever reaches the log.
    for secret in (bot.fake.access_token, bot.fake.refresh_token, OA_SECRET, APP_SECRET):
        assert secret not in our_log(caplog)


async def test_a_pressed_button_arrives_as_its_payload_and_is_answered(bot: Bot) -> None:
    first = await bot.say(CITIZEN, "SIPAS là gì")
    payloads = [b["payload"] for b in first[0].buttons if b["type"] == "oa.query.show"]
    entry = next(p for p in payloads if p.startswith("faq:"))
    # §1.5: the click comes back as user_send_text whose text is the payload.
    answer = await bot.say(CITIZEN, entry)
    assert "Căn cứ:" in answer[0].text
    turns = await bot.services.conversations.recent(5)
    assert any(t.text == f"[{entry}]" for t in turns)  # handled as a payload, not a question


async def test_follow_subscribes_to_default_topics_and_welcomes(bot: Bot) -> None:
    sent = await bot.deliver(follow_event(CITIZEN))
    assert sent
    assert sent[0].text.startswith("Xin chào")
    view = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert view is not None
    assert view.status == "active"
    assert set(view.topics) == {"thu-tuc-moi", "dich-vu-cong-truc-tuyen", "chinh-quyen-so"}
    assert view.consent_source == "zalo:follow"
    assert view.last_interaction_at is not None


async def test_unfollow_unsubscribes_without_a_reply(bot: Bot) -> None:
    await bot.deliver(follow_event(CITIZEN))
    before = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert before is not None
    assert before.last_interaction_at is not None
    sent = await bot.deliver(follow_event(CITIZEN, "unfollow"))
    assert sent == []
    view = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert view is not None
    assert view.status == "unsubscribed"
    assert view.last_interaction_at is not None
    assert view.last_interaction_at >= before.last_interaction_at
    history = await bot.services.storage.subscribers.history("zalo", CITIZEN)
    assert ("unsubscribe", "zalo:unfollow") in [(a, s) for a, s, _ in history]


async def test_typing_huy_unsubscribes_and_confirms(bot: Bot) -> None:
    await bot.deliver(follow_event(CITIZEN))
    sent = await bot.say(CITIZEN, "hủy")
    assert "Bạn đã ngừng nhận tin" in sent[0].text
    view = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert view is not None
    assert view.status == "unsubscribed"


async def test_typing_follow_does_not_subscribe(bot: Bot) -> None:
    """Consent comes from the real follow event, never from the word typed."""
    await bot.say(CITIZEN, "follow")
    view = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert view is not None
    assert view.status == "unsubscribed"


@pytest.mark.parametrize("name", sorted(ATTACHMENTS))
async def test_non_text_messages_get_a_polite_text_only_reply(bot: Bot, name: str) -> None:
    sent = await bot.deliver(media_event(CITIZEN, name))
    assert len(sent) == 1
    assert "tôi chỉ đọc được câu hỏi bằng chữ" in sent[0].text
    view = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert view is not None
    assert view.last_interaction_at is not None


async def test_opening_the_chat_counts_as_an_interaction(bot: Bot) -> None:
    # §1.4 [?]: user_click_chatnow carries a flat user_id and oa_id.
    event = {
        "event_name": "user_click_chatnow",
        "app_id": APP_ID,
        "oa_id": OA_ID,
        "user_id": CITIZEN,
        "timestamp": now_ms(),
    }
    response = await bot.post(event)
    assert response.status == 200
    await bot.idle()
    assert bot.fake.attempts == []
    view = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert view is not None
    assert view.last_interaction_at is not None


async def test_unknown_events_are_logged_and_ignored(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # §1.3: user_submit_info (doc sample), not something the bot asks for.
    event = {
        "sender": {"id": CITIZEN},
        "recipient": {"id": OA_ID},
        "event_name": "user_submit_info",
        "app_id": APP_ID,
        "timestamp": now_ms(),
        "info": {"name": "Name Example", "phone": "84912345678"},
    }
    response = await bot.post(event)
    assert response.status == 200
    await nothing_happened(bot)
    assert "'user_submit_info' not handled" in caplog.text
    assert "84912345678" not in caplog.text


async def test_more_than_five_buttons_become_a_numbered_list(bot: Bot) -> None:
    # The welcome offers every topic (10) plus "subscribe": too many for Zalo's 5 buttons.
    sent = await bot.say(CITIZEN, "xin chào")
    welcome = sent[-1]
    assert welcome.attachment is None
    assert "1. Cải cách hành chính" in welcome.text
    assert "6. Đất đai và xây dựng" in welcome.text
    assert "Gõ số thứ tự" in welcome.text
    # Typing "6" selects the sixth.
    chosen = await bot.say(CITIZEN, "6")
    assert "Đất đai và xây dựng" in chosen[0].text
    turns = await bot.services.conversations.recent(1)
    assert turns[0].text == "[topic:dat-dai-xay-dung]"
    # A number with no list offered is just text.
    other = await bot.say("9990001112223334445", "6")
    assert other


async def test_a_refused_button_template_falls_back_to_numbers(bot: Bot) -> None:
    bot.fake.reject_templates = True
    sent = await bot.say(CITIZEN, "SIPAS là gì")
    assert sent[-1].attachment is None
    assert "1. " in sent[-1].text
    again = await bot.say(CITIZEN, "1")
    assert again


# --- what is not processed -----------------------------------------------------------------


async def nothing_happened(bot: Bot) -> None:
    await bot.idle()
    assert bot.fake.attempts == []
    assert await bot.services.storage.subscribers.count(channel="zalo") == 0
    assert await bot.services.conversations.recent(5) == []


async def test_echo_of_our_own_message_is_ignored(bot: Bot) -> None:
    response = await bot.post(echo_event(CITIZEN))
    assert response.status == 200
    await nothing_happened(bot)


@pytest.mark.parametrize("body", [b"", b"{}", b"  \n"])
async def test_the_registration_probe_gets_200_and_nothing_else(bot: Bot, body: bytes) -> None:
    response = await bot.post(None, raw=body, signature="")
    assert response.status == 200
    await nothing_happened(bot)


@pytest.mark.parametrize(
    "how", ["missing", "garbage", "wrong secret", "tampered body", "other timestamp"]
)
async def test_a_bad_signature_is_refused_and_nothing_stored(bot: Bot, how: str) -> None:
    event = text_event(CITIZEN, "SIPAS là gì", msg_id="e72c0a55e95fcb00924f")
    raw = encode(event)
    signature = {
        "missing": "",
        "garbage": "mac=not-a-signature",
        "wrong secret": sign(raw, event["timestamp"], secret="guess"),
        "tampered body": sign(raw.replace(b"SIPAS", b"PAPI!"), event["timestamp"]),
        "other timestamp": sign(raw, now_ms(-60)),
    }[how]
    response = await bot.post(event, raw=raw, signature=signature)
    assert response.status in (401, 403)
    await nothing_happened(bot)
    # The event was not even claimed: a genuine delivery would still be handled.
    assert await bot.services.storage.updates.first_time("zalo", "msg:e72c0a55e95fcb00924f")


async def test_signature_variants_are_accepted_and_logged(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # §2: the bare hex, without "mac=".
    event = text_event(CITIZEN, "xin chào")
    raw = encode(event)
    response = await bot.post(event, raw=raw, signature=sign(raw, event["timestamp"])[4:])
    assert response.status == 200
    # §2 [?]: signed with the app secret instead of the OA secret.
    event = text_event(CITIZEN, "trợ giúp")
    raw = encode(event)
    response = await bot.post(
        event, raw=raw, signature=sign(raw, event["timestamp"], secret=APP_SECRET)
    )
    assert response.status == 200
    await bot.idle()
    assert len(bot.fake.to(CITIZEN)) == 2
    assert "variant: app_id + body + body timestamp + app secret" in caplog.text


@pytest.mark.parametrize("offset", [-(26 * 3600 + 60), 10 * 60], ids=["stale", "future"])
async def test_stale_or_future_events_are_ignored(
    bot: Bot, offset: int, caplog: pytest.LogCaptureFixture
) -> None:
    response = await bot.post(text_event(CITIZEN, "SIPAS là gì", ts=now_ms(offset)))
    assert response.status == 200
    await nothing_happened(bot)
    assert "ignored" in caplog.text


async def test_a_redelivered_event_is_answered_once(bot: Bot) -> None:
    event = text_event(CITIZEN, "SIPAS là gì", msg_id="cb31dff1c39642cc1b83")
    responses = await asyncio.gather(*(bot.post(event) for _ in range(3)))
    assert [r.status for r in responses] == [200, 200, 200]
    await bot.idle()
    assert (await bot.post(event)).status == 200  # a later retry
    await bot.idle()
    assert len(bot.fake.to(CITIZEN)) == 1


async def test_a_10_mb_body_is_413(bot: Bot) -> None:
    body = io.BytesIO(b"{" + b" " * (10 * 1024 * 1024) + b"}")  # sent with its Content-Length
    response = await bot.client.post("/webhook/zalo", data=body)
    assert response.status == 413
    await nothing_happened(bot)


async def test_a_large_chunked_body_is_413_without_content_length(bot: Bot) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * (64 * 1024)

    response = await bot.client.post("/webhook/zalo", data=chunks())
    assert response.status == 413


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe{}"])
async def test_malformed_json_is_400(bot: Bot, raw: bytes) -> None:
    response = await bot.post(None, raw=raw, signature="mac=" + "0" * 64)
    assert response.status == 400
    await nothing_happened(bot)


async def test_without_an_app_id_the_route_is_absent(client: Client) -> None:
    response = await client.post("/webhook/zalo", data=b"{}")
    assert response.status == 404


# --- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["invalid", "expired"])
async def test_a_rejected_token_is_refreshed_once_and_the_message_resent(
    bot: Bot, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    old_refresh = bot.fake.refresh_token
    if how == "invalid":
        bot.fake.invalidate_access_token()
    else:
        bot.fake.expire_access_token()
    sent = await bot.say(CITIZEN, "SIPAS là gì")
    assert len(sent) == 1
    assert bot.fake.refresh_calls == [old_refresh]
    assert [a.error for a in bot.fake.attempts] == [-216 if how == "invalid" else -220, 0]
    # The fake saw the new token, and the new pair is what the store holds.
    assert sent[0].access_token == bot.fake.access_token
    stored = await bot.services.storage.tokens.get("zalo")
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == (
        bot.fake.access_token,
        bot.fake.refresh_token,
    )
    assert stored.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(hours=24)
    for secret in (old_refresh, bot.fake.access_token, bot.fake.refresh_token):
        assert secret not in our_log(caplog)


async def test_the_token_is_refreshed_before_it_expires(settings: Settings, fake: FakeZalo) -> None:
    configured = zalo_settings(settings, fake)
    old_access, old_refresh = fake.access_token, fake.refresh_token
    # A pair stored by an earlier run, 30 minutes from expiry (the database wins over the env).
    async with open_storage(configured) as storage:
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
        await storage.tokens.seed("zalo", TokenPair(old_access, old_refresh, soon))
    server = TestServer(create_app(configured), host="127.0.0.1")
    async with TestClient(server) as client:
        bot = Bot(client, fake)
        sent = await bot.say(CITIZEN, "SIPAS là gì")
        assert sent
    assert fake.refresh_calls == [old_refresh]  # by the keeper or before the send: once
    assert [a.error for a in fake.attempts] == [0]  # never sent with the old token
    assert sent[0].access_token == fake.access_token != old_access


async def test_concurrent_refreshes_use_the_refresh_token_once(
    database_url: str, fake: FakeZalo
) -> None:
    """Two workers (two engines, two clients) on one database see the token rejected at the
    same moment; Zalo's single-use refresh token must be spent once."""
    configured = zalo_settings(Settings(database=DatabaseSettings(url=database_url)), fake)
    fake.refresh_delay = 0.2  # the second worker arrives while the first is refreshing
    old_access, old_refresh = fake.access_token, fake.refresh_token
    async with (
        open_storage(configured) as first,
        open_storage(configured, migrate=False) as second,
        aiohttp.ClientSession() as http_a,
        aiohttp.ClientSession() as http_b,
    ):
        channels = [
            ZaloChannel(configured.zalo, http, s.tokens, s.subscribers, s.choices)
            for http, s in ((http_a, first), (http_b, second))
        ]
        await channels[0].seed()
        await channels[1].seed()
        results = await asyncio.gather(*(c.refresh(old_access) for c in channels))
        assert fake.refresh_calls == [old_refresh]
        assert results[0] == results[1]
        assert results[0] is not None
        assert results[0].access_token == fake.access_token
        stored = await second.tokens.get("zalo")
        assert stored == results[0]


async def test_a_failed_refresh_keeps_the_old_pair(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = await bot.services.storage.tokens.get("zalo")
    assert before is not None
    bot.fake.spend_refresh_token()  # -14014 from now on
    assert await bot.channel.refresh(before.access_token) is None
    assert await bot.services.storage.tokens.get("zalo") == before
    assert "Zalo token refresh failed; the old pair is kept" in caplog.text
    assert "-14014" in caplog.text
    # A send that needs the refresh fails cleanly (transient), still with the old pair.
    bot.fake.invalidate_access_token()
    with pytest.raises(DeliveryError) as failure:
        await bot.channel.send(CITIZEN, [Reply("Xin chào")])
    assert not failure.value.permanent
    assert before.access_token not in str(failure.value)
    assert await bot.services.storage.tokens.get("zalo") == before
    for secret in (before.access_token, before.refresh_token, bot.fake.refresh_token):
        assert secret not in our_log(caplog)


# --- delivery errors -----------------------------------------------------------------------


@pytest.mark.parametrize("code", [-213, -230, -232])
async def test_an_unreachable_citizen_is_marked_and_not_retried(bot: Bot, code: int) -> None:
    bot.fake.fail(CITIZEN, code)
    sent = await bot.say(CITIZEN, "SIPAS là gì")
    assert sent == []
    assert [a.error for a in bot.fake.attempts] == [code]  # no retry
    view = await bot.services.storage.subscribers.get("zalo", CITIZEN)
    assert view is not None
    assert view.status == "unreachable"
    history = await bot.services.storage.subscribers.history("zalo", CITIZEN)
    assert ("unreachable", "zalo:send") in [(a, s) for a, s, _ in history]
    # Broadcasts get the neutral error.
    with pytest.raises(DeliveryError) as failure:
        await bot.channel.send(CITIZEN, [Reply("Tin mới")])
    assert failure.value.permanent
    assert failure.value.retry_after is None
    assert failure.value.code == code


async def test_rate_limit_is_retried_a_bounded_number_of_times(bot: Bot) -> None:
    bot.channel.rate_limit_delays = (0.01, 0.01)
    bot.fake.fail(CITIZEN, -32, times=2)
    await bot.channel.send(CITIZEN, [Reply("Xin chào")])
    assert [a.error for a in bot.fake.attempts] == [-32, -32, 0]
    assert bot.fake.to(CITIZEN)[0].text == "Xin chào"
    bot.fake.fail(CITIZEN, -32)
    with pytest.raises(DeliveryError) as failure:
        await bot.channel.send(CITIZEN, [Reply("Xin chào")])
    assert not failure.value.permanent
    assert failure.value.retry_after is not None
    assert len(bot.fake.attempts) == 6  # three more, then the error


async def test_long_text_is_split_at_paragraphs(bot: Bot) -> None:
    paragraphs = [f"Đoạn {i}: " + "thủ tục hành chính " * 60 for i in range(5)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    assert len(text) > 2 * MAX_TEXT_CHARS
    await bot.channel.send(CITIZEN, [Reply(text, (Button("Chủ đề", payload="topics"),))])
    sent = bot.fake.to(CITIZEN)
    assert len(sent) >= 3
    assert all(len(m.text) <= MAX_TEXT_CHARS for m in sent)
    assert all(m.text.startswith("Đoạn ") for m in sent)  # cut between paragraphs
    assert "\n\n".join(m.text for m in sent) == text
    assert [bool(m.buttons) for m in sent] == [False] * (len(sent) - 1) + [True]


async def test_shutdown_cancels_events_still_being_answered(
    settings: Settings, fake: FakeZalo
) -> None:
    server = TestServer(create_app(zalo_settings(settings, fake)), host="127.0.0.1")
    fake.hold()  # Zalo never answers
    async with TestClient(server) as client:
        bot = Bot(client, fake)
        bot.webhook.shutdown_grace = 0.05
        response = await bot.post(text_event(CITIZEN, "SIPAS là gì"))
        assert response.status == 200
        await fake.wait_for_attempts(1)
        webhook = bot.webhook
        assert webhook.pending == 1
    assert webhook.pending == 0
    fake.release()


# --- rendering -----------------------------------------------------------------------------


def test_markdown_lite_becomes_plain_text() -> None:
    text = "**Lưu ý:** xem [Cổng Dịch vụ công](https://dichvucong.gov.vn) ngay.\n- một\n- hai"
    assert plain_text(text) == (
        "Lưu ý: xem Cổng Dịch vụ công: https://dichvucong.gov.vn ngay.\n- một\n- hai"
    )


def test_split_text_falls_back_to_lines_words_and_hard_cuts() -> None:
    lines = "\n".join(" ".join(["dòng"] * 100) for _ in range(10))
    assert all(len(c) <= MAX_TEXT_CHARS for c in split_text(lines))
    assert "\n".join(split_text(lines)) == lines.strip()
    word = "a" * 4500
    assert split_text(word) == ["a" * 2000, "a" * 2000, "a" * 500]
    assert split_text("  ") == []


def test_buttons_map_to_zalo_types() -> None:
    assert button_json(Button("Chủ đề", payload="topics")) == {
        "title": "Chủ đề",
        "type": "oa.query.show",
        "payload": "topics",
    }
    assert button_json(Button("Cổng", url="https://dichvucong.gov.vn")) == {
        "title": "Cổng",
        "type": "oa.open.url",
        "payload": {"url": "https://dichvucong.gov.vn"},
    }
    assert button_json(Button("Gọi", url="tel:18001096")) == {
        "title": "Gọi",
        "type": "oa.open.phone",
        "payload": {"phone_code": "18001096"},
    }


async def test_numbered_list_keeps_links_unnumbered(bot: Bot) -> None:
    buttons = tuple(Button(f"Mục {i}", payload=f"topic:{i}") for i in range(1, 7))
    link = Button("Cổng Dịch vụ công", url="https://dichvucong.gov.vn")
    await bot.channel.send(CITIZEN, [Reply("Chọn:", (*buttons, link))])
    text = bot.fake.to(CITIZEN)[0].text
    assert "6. Mục 6" in text
    assert "- Cổng Dịch vụ công: https://dichvucong.gov.vn" in text
    assert await bot.services.storage.choices.resolve("zalo", CITIZEN, 6) == "topic:6"
    assert await bot.services.storage.choices.resolve("zalo", CITIZEN, 7) is None
