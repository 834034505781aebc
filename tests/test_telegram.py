"""The Telegram channel end to end: real python-telegram-bot against a fake Bot API on
127.0.0.1, our real aiohttp app on 127.0.0.1, the bundled content, and the ``bot telegram``
commands in subprocesses. Background processing is awaited by watching the fake's calls
(or the database) with a deadline, never by sleeping."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from telegram import Update

from bot.app import create_app
from bot.channels import telegram as tg
from bot.messages import Button, Inbound, Reply
from bot.services import Services
from bot.settings import Settings, TelegramSettings
from bot.web.keys import SERVICES
from tests.fakes.telegram_api import (
    FakeTelegram,
    callback_update,
    member_update,
    message_update,
    parse_html,
)

TOKEN = "123456789:AAH-test_token_Zq8xY"
SECRET = "webhook-Secret_42"
CHAT = 218485655
OTHER_CHAT = 996202131
Client = TestClient[Any, Any]
_update_ids = itertools.count(892252934)


def next_id() -> int:
    return next(_update_ids)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        yield fake
    # Torn down after the app (which depends on it): nothing may still be running.
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers, f"tasks left running: {leftovers}"


def telegram_settings(settings: Settings, api: FakeTelegram, **changes: Any) -> Settings:
    config = TelegramSettings(
        token=SecretStr(TOKEN), webhook_secret=SecretStr(SECRET), api_url=api.url
    )
    return settings.model_copy(update={"telegram": config.model_copy(update=changes)})


@pytest.fixture
async def client(settings: Settings, api: FakeTelegram) -> AsyncIterator[Client]:
    server = TestServer(create_app(telegram_settings(settings, api)), host="127.0.0.1")
    async with TestClient(server) as test_client:
        yield test_client


def services_of(client: Client) -> Services:
    return client.server.app[SERVICES]


async def turns(client: Client) -> list[tuple[str, str, str]]:
    """(channel, user id, text) of every logged turn, oldest first."""
    rows = await services_of(client).conversations.recent(1000)
    return [(r.channel, r.user_id, r.text) for r in reversed(rows)]


async def post(
    client: Client, update: Any, *, secret: str | None = SECRET, raw: bytes | None = None
) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[tg.SECRET_HEADER] = secret
    body = raw if raw is not None else json.dumps(update).encode()
    # A stream, as aiohttp's client wants for large bodies; it still sends Content-Length.
    response = await client.post(tg.WEBHOOK_PATH, data=io.BytesIO(body), headers=headers)
    return response.status


async def say(client: Client, api: FakeTelegram, text: str, chat: int = CHAT) -> dict[str, Any]:
    """Send ``text`` as the citizen and return the bot's (next) answer."""
    before = len(api.sent(chat))
    assert await post(client, message_update(next_id(), chat, text)) == 200
    return (await api.wait_sent(before + 1, chat))[before]


async def press(client: Client, api: FakeTelegram, data: str, chat: int = CHAT) -> dict[str, Any]:
    before = len(api.sent(chat))
    assert await post(client, callback_update(next_id(), chat, data)) == 200
    return (await api.wait_sent(before + 1, chat))[before]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    assert all(len(row) == 1 for row in rows), "one button per row"
    return [row[0] for row in rows]


def payloads(message: dict[str, Any]) -> list[str]:
    return [b["callback_data"] for b in buttons(message) if "callback_data" in b]


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Poll an asynchronous condition (e.g. a database row) until it holds or time is up."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# --- answering citizens ------------------------------------------------------------------


async def test_question_gets_the_answer_as_escaped_html_with_a_keyboard(
    client: Client, api: FakeTelegram
) -> None:
    message = await say(client, api, "SIPAS là gì")
    assert message["parse_mode"] == "HTML"
    assert message["link_preview_options"] == {"is_disabled": True}
    problem, visible = parse_html(message["text"])
    assert problem is None
    assert "SIPAS" in visible
    assert "Căn cứ:" in visible
    assert {"text": "Chủ đề", "callback_data": "topics"} in buttons(message)
    # The conversation is logged under the chat id, like any channel.
    assert await turns(client) == [("telegram", str(CHAT), "SIPAS là gì")]


async def test_start_shows_the_welcome_with_topics_and_a_subscribe_button(
    client: Client, api: FakeTelegram
) -> None:
    message = await say(client, api, "/start")
    _, visible = parse_html(message["text"])
    assert visible.startswith("Xin chào")
    assert "topic:dinh-danh" in payloads(message)
    assert payloads(message)[-1] == "subscribe"
    record = await services_of(client).storage.subscribers.get("telegram", str(CHAT))
    assert record is not None
    assert record.display_name == "Lan Nguyễn"
    assert record.status == "unsubscribed"  # writing to the bot is not consent to news


async def test_command_menu_is_published_in_vietnamese(client: Client, api: FakeTelegram) -> None:
    (call,) = api.calls_of("setMyCommands")
    assert call.params["commands"] == [
        {"command": "start", "description": "Bắt đầu, giới thiệu"},
        {"command": "help", "description": "Hướng dẫn sử dụng"},
        {"command": "chude", "description": "Chủ đề hỏi đáp"},
        {"command": "subscribe", "description": "Đăng ký nhận tin"},
        {"command": "unsubscribe", "description": "Ngừng nhận tin"},
        {"command": "gopy", "description": "Góp ý, phản ánh"},
    ]
    for command in ("/help", "/chude", "/gopy"):
        assert (await say(client, api, command))["text"]


async def test_button_press_round_trips_and_is_always_answered(
    client: Client, api: FakeTelegram
) -> None:
    update = callback_update(next_id(), CHAT, "topic:ho-tich")
    assert await post(client, update) == 200
    (menu,) = await api.wait_sent(1, CHAT)
    assert [a["callback_query_id"] for a in api.answered()] == [update["callback_query"]["id"]]
    entry = next(p for p in payloads(menu) if p.startswith("faq:"))
    answer = await press(client, api, entry)
    assert "Căn cứ:" in parse_html(answer["text"])[1]
    assert len(api.answered()) == 2


async def test_subscribe_with_a_topic_button_then_stop_with_one_word(
    client: Client, api: FakeTelegram
) -> None:
    choose = await say(client, api, "/subscribe")
    topic = next(p for p in payloads(choose) if p.startswith("subscribe:") and p != "subscribe:all")
    done = await press(client, api, topic)
    assert parse_html(done["text"])[1]
    subscribers = services_of(client).storage.subscribers
    record = await subscribers.get("telegram", str(CHAT))
    assert record is not None
    assert record.status == "active"
    assert record.topics == (topic.partition(":")[2],)
    assert record.consent_source == "telegram:topic"

    await say(client, api, "hủy")
    record = await subscribers.get("telegram", str(CHAT))
    assert record is not None
    assert record.status == "unsubscribed"
    history = [
        (action, source) for action, source, _ in await subscribers.history("telegram", str(CHAT))
    ]
    assert history == [("subscribe", "telegram:topic"), ("unsubscribe", "telegram:stop")]


async def test_citizen_markup_is_never_sent_as_markup(client: Client, api: FakeTelegram) -> None:
    # The fake parses HTML like Telegram does: unescaped markup would be a 400, not a message.
    message = await say(client, api, "<script>alert(1)</script> căn cước <b>")
    assert "<script>" not in message["text"]
    assert parse_html(message["text"])[0] is None
    assert all(c.status == 200 for c in api.calls_of("sendMessage"))


async def test_photo_without_caption_gets_the_text_only_reply(
    client: Client, api: FakeTelegram
) -> None:
    update = message_update(next_id(), CHAT, "x")
    del update["message"]["text"]
    update["message"]["photo"] = [
        {"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 90}
    ]
    assert await post(client, update) == 200
    (message,) = await api.wait_sent(1, CHAT)
    assert "chỉ đọc được câu hỏi bằng chữ" in parse_html(message["text"])[1]


async def test_updates_without_a_private_message_are_ignored(
    client: Client, api: FakeTelegram
) -> None:
    edited = message_update(next_id(), CHAT, "sửa lại")
    edited["edited_message"] = edited.pop("message")
    group = message_update(next_id(), -100123, "chào cả nhóm")
    group["message"]["chat"] = {"id": -100123, "title": "Nhóm", "type": "supergroup"}
    channel_post = message_update(next_id(), -100456, "tin kênh")
    channel_post["channel_post"] = channel_post.pop("message")
    for update in (edited, group, channel_post, {"update_id": next_id()}):
        assert await post(client, update) == 200
    await say(client, api, "xin chào")  # processed after the others (same queue)
    assert [c.params["chat_id"] for c in api.calls_of("sendMessage")] == [str(CHAT)]


async def test_redelivered_update_is_answered_once(client: Client, api: FakeTelegram) -> None:
    update = message_update(next_id(), CHAT, "PCI là gì")
    for _ in range(3):
        assert await post(client, update) == 200
    # Updates of one chat are handled in order, so this one is answered after the copies.
    assert await post(client, message_update(next_id(), CHAT, "SIPAS là gì")) == 200
    await api.wait_sent(2, CHAT)
    texts = [parse_html(m["text"])[1] for m in api.sent(CHAT)]
    assert len(texts) == 2
    assert "SIPAS" in texts[1]
    assert [text for _, _, text in await turns(client)] == ["PCI là gì", "SIPAS là gì"]


# --- the webhook's defences --------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1], SECRET.upper()])
async def test_wrong_or_missing_secret_is_403_and_nothing_is_processed(
    client: Client, api: FakeTelegram, secret: str | None
) -> None:
    assert await post(client, message_update(next_id(), OTHER_CHAT, "/start"), secret=secret) == 403
    assert (
        await post(client, member_update(next_id(), OTHER_CHAT, "member", "kicked"), secret=secret)
        == 403
    )
    await say(client, api, "xin chào")  # a genuine update, processed after anything queued
    assert api.sent(OTHER_CHAT) == []
    storage = services_of(client).storage
    assert await storage.subscribers.get("telegram", str(OTHER_CHAT)) is None
    assert await turns(client) == [("telegram", str(CHAT), "xin chào")]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'"update"',
        b'{"message": {"text": "hi"}}',
        b'{"update_id": "5"}',
        b'{"update_id": true}',
        b'{"update_id": 5, "message": "hello"}',
        b'{"update_id": 5, "message": {"text": "no chat, no date"}}',
        b"[" * 200_000 + b"]" * 200_000,
    ],
)
async def test_malformed_json_or_not_an_update_is_400(
    client: Client, api: FakeTelegram, body: bytes
) -> None:
    assert await post(client, None, raw=body) == 400
    await say(client, api, "xin chào")
    assert len(api.calls_of("sendMessage")) == 1


async def test_body_over_1_mib_is_413_but_a_large_update_is_fine(
    client: Client, api: FakeTelegram
) -> None:
    ten_mb = b'{"update_id": 1, "x": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    assert await post(client, None, raw=ten_mb) == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        yield b'{"update_id": 2, "x": "'
        for _ in range(40):
            yield b"a" * 64 * 1024
        yield b'"}'

    response = await client.post(
        tg.WEBHOOK_PATH,
        data=chunks(),
        headers={tg.SECRET_HEADER: SECRET, "Content-Type": "application/json"},
    )
    assert response.status == 413
    # Above the web chat's 64 KiB, below 1 MiB: still an update (unknown fields are kept aside).
    big = message_update(next_id(), CHAT, "xin chào")
    big["message"]["padding"] = "b" * 300_000
    assert await post(client, big) == 200
    await api.wait_sent(1, CHAT)


async def test_without_a_token_the_route_is_absent(settings: Settings) -> None:
    server = TestServer(create_app(settings), host="127.0.0.1")
    async with TestClient(server) as plain_client:
        response = await plain_client.post(tg.WEBHOOK_PATH, json={"update_id": 1})
        assert response.status == 404
        assert (await plain_client.get("/healthz")).status == 200


@pytest.mark.parametrize("secret", [None, "has spaces", "x" * 257, "bí-mật"])
async def test_without_a_usable_secret_the_route_is_refused(
    settings: Settings, api: FakeTelegram, secret: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    configured = telegram_settings(
        settings, api, webhook_secret=SecretStr(secret) if secret is not None else None
    )
    with caplog.at_level(logging.ERROR, logger="bot.channels.telegram"):
        app = create_app(configured)
    assert "BOT_TELEGRAM_WEBHOOK_SECRET" in caplog.text
    async with TestClient(TestServer(app, host="127.0.0.1")) as refused:
        response = await refused.post(
            tg.WEBHOOK_PATH, json={"update_id": 1}, headers={tg.SECRET_HEADER: secret or ""}
        )
        assert response.status == 404
    assert api.calls == []  # not even getMe: the channel did not start


async def test_telegram_unreachable_at_start_does_not_stop_the_app(
    settings: Settings, api: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tg.application, "START_RETRY_DELAYS", (0.05,))
    api.fail("getMe", calls=1_000_000, status=502)
    server = TestServer(create_app(telegram_settings(settings, api)), host="127.0.0.1")
    async with TestClient(server) as late:
        assert (await late.get("/healthz")).status == 200  # the web chat is not held hostage
        # Until the bot is up, Telegram is told to come back later: it keeps the update.
        assert await post(late, message_update(next_id(), CHAT, "xin chào")) == 503
        await api.wait_for(lambda: len(api.calls_of("getMe")) >= 3)  # it keeps trying
        api.fail("getMe", calls=0)
        await api.wait_for(lambda: bool(api.calls_of("setMyCommands")))
        assert api.calls_of("getMe")[-1].status == 200
        await say(late, api, "xin chào")


async def test_updates_accepted_before_shutdown_are_still_answered(
    settings: Settings, api: FakeTelegram
) -> None:
    server = TestServer(create_app(telegram_settings(settings, api)), host="127.0.0.1")
    async with TestClient(server) as closing:
        for text in ("SIPAS là gì", "PCI là gì"):
            assert await post(closing, message_update(next_id(), CHAT, text)) == 200
    # Telegram got 200 for both, so shutting down must answer them, not drop them.
    assert len(api.sent(CHAT)) == 2


async def test_a_failing_handler_still_gets_the_citizen_an_apology(
    client: Client, api: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(_inbound: Inbound) -> list[Reply]:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services_of(client).dispatcher, "dispatch", broken)
    message = await say(client, api, "SIPAS là gì")
    assert "hệ thống đang gặp sự cố" in parse_html(message["text"])[1]


async def test_token_never_reaches_the_logs(
    client: Client, api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.block(CHAT)
    assert await post(client, message_update(next_id(), CHAT, "xin chào")) == 200
    await api.wait_for(lambda: any(c.status == 403 for c in api.calls_of("sendMessage")))
    await say(client, api, "xin chào", chat=OTHER_CHAT)
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text


# --- blocked citizens --------------------------------------------------------------------


async def test_blocking_the_bot_marks_blocked_and_start_restores(
    client: Client, api: FakeTelegram
) -> None:
    subscribers = services_of(client).storage.subscribers
    await say(client, api, "/subscribe")
    await press(client, api, "subscribe:all")
    assert await post(client, member_update(next_id(), CHAT, "member", "kicked")) == 200

    async def blocked() -> bool:
        record = await subscribers.get("telegram", str(CHAT))
        return record is not None and record.status == "blocked"

    await eventually(blocked)
    history = await subscribers.history("telegram", str(CHAT))
    assert history[-1][:2] == ("blocked", "telegram:my_chat_member")

    # Unblocking and pressing Start sends /start: the citizen is back, with their consent.
    assert await post(client, member_update(next_id(), CHAT, "kicked", "member")) == 200
    welcome = await say(client, api, "/start")
    assert parse_html(welcome["text"])[1].startswith("Xin chào")
    record = await subscribers.get("telegram", str(CHAT))
    assert record is not None
    assert record.status == "active"


async def test_forbidden_on_send_marks_blocked(client: Client, api: FakeTelegram) -> None:
    subscribers = services_of(client).storage.subscribers
    await say(client, api, "/subscribe")
    await press(client, api, "subscribe:all")
    api.block(CHAT)
    channel = client.server.app[tg.TELEGRAM].channel
    with pytest.raises(tg.DeliveryError) as raised:
        await channel.send(str(CHAT), [Reply("Tin mới về cải cách hành chính.")])
    assert raised.value.permanent
    assert "blocked" in raised.value.reason
    record = await subscribers.get("telegram", str(CHAT))
    assert record is not None
    assert record.status == "blocked"
    assert (await subscribers.history("telegram", str(CHAT)))[-1][:2] == (
        "blocked",
        "telegram:send_forbidden",
    )


async def test_forbidden_while_answering_marks_blocked(client: Client, api: FakeTelegram) -> None:
    subscribers = services_of(client).storage.subscribers
    api.block(OTHER_CHAT)
    assert await post(client, message_update(next_id(), OTHER_CHAT, "PCI là gì")) == 200

    async def blocked() -> bool:
        record = await subscribers.get("telegram", str(OTHER_CHAT))
        return record is not None and record.status == "blocked"

    await eventually(blocked)


# --- flood control and long replies ------------------------------------------------------


async def test_flood_control_is_reported_to_senders_and_waited_out_for_answers(
    client: Client, api: FakeTelegram
) -> None:
    channel = client.server.app[tg.TELEGRAM].channel
    api.throttle(1, retry_after=3)
    with pytest.raises(tg.DeliveryError) as raised:
        await channel.send(str(CHAT), [Reply("Tin mới.")])
    assert not raised.value.permanent
    assert raised.value.retry_after == 3.0

    api.throttle(1, retry_after=1)
    started = time.monotonic()
    message = await say(client, api, "SIPAS là gì")
    assert "SIPAS" in parse_html(message["text"])[1]
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in api.calls_of("sendMessage")] == [429, 429, 200]


async def test_long_reply_is_split_at_paragraphs_with_buttons_last(
    client: Client, api: FakeTelegram
) -> None:
    paragraphs = [f"Đoạn {i}: " + "thủ tục hành chính " * 40 for i in range(12)]
    reply = Reply("\n\n".join(paragraphs), (Button("Chủ đề", payload="topics"),))
    await client.server.app[tg.TELEGRAM].channel.send(str(CHAT), [reply])
    messages = api.sent(CHAT)
    assert len(messages) >= 2
    assert all("reply_markup" not in m for m in messages[:-1])
    assert payloads(messages[-1]) == ["topics"]
    visible = [parse_html(m["text"])[1] for m in messages]
    assert all(len(v) <= 4096 for v in visible)
    assert "\n\n".join(visible) == reply.text  # cut only between paragraphs


# --- rendering (pure) --------------------------------------------------------------------


def test_html_rendering_escapes_first_then_formats() -> None:
    source = (
        '**Lưu ý** <script>alert("x")</script> & co\n'
        '- Nộp tại [Cổng DVC](https://dichvucong.gov.vn/p?a=1&b="2")\n'
        "  - **[in đậm](https://x.vn)** và [**nhãn**](https://y.vn)\n"
        "[javascript](javascript:alert(1)) https://bacninh.gov.vn"
    )
    assert tg.to_html(source) == (
        "<b>Lưu ý</b> &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co\n"
        '• Nộp tại <a href="https://dichvucong.gov.vn/p?a=1&amp;b=&quot;2&quot;">Cổng DVC</a>\n'
        '  • <b><a href="https://x.vn">in đậm</a></b> và <a href="https://y.vn"><b>nhãn</b></a>\n'
        "[javascript](javascript:alert(1)) https://bacninh.gov.vn"
    )
    assert parse_html(tg.to_html(source))[0] is None
    # Bold that would straddle a link is left as text rather than producing broken tags.
    straddling = tg.to_html("**a [b** c](https://z.vn)")
    assert parse_html(straddling)[0] is None


def test_split_text_handles_huge_lines_and_words() -> None:
    line = " ".join(["căn cước"] * 2000)
    word = "&" * 10_000
    for text in (line, word, f"mở đầu\n\n{line}\n\n{word}"):
        parts = tg.split_text(text)
        assert len(parts) > 1
        for part in parts:
            html_part = tg.to_html(part)
            assert parse_html(html_part)[0] is None
            assert len(html_part) <= tg.MAX_MESSAGE_CHARS
    assert tg.split_text("ngắn") == ["ngắn"]


def test_keyboard_drops_buttons_telegram_would_refuse(caplog: pytest.LogCaptureFixture) -> None:
    markup = tg.keyboard(
        [
            Button("Chủ đề", payload="topics"),
            Button("Quá dài", payload="faq:" + "đ" * 40),
            Button("Cổng", url="https://dichvucong.gov.vn"),
            Button("Lạ", url="ftp://x"),
        ]
    )
    assert markup is not None
    assert [row[0].text for row in markup.inline_keyboard] == ["Chủ đề", "Cổng"]
    assert "Quá dài" in caplog.text
    assert tg.keyboard([]) is None


async def test_every_button_of_the_bundled_content_fits_in_callback_data(
    services: Services,
) -> None:
    """Walk everything a Telegram citizen can reach: commands, the topic menu, every topic,
    every entry, the subscription choices, and every payload those replies offer."""
    start = ["start", "topics", "help", "feedback", "fallback", "subscribe", "unsubscribe"]
    start += [f"topic:{t.id}" for t in services.kb.topics]
    start += [f"faq:{e.id}" for e in services.kb.entries]
    queue = deque(start)
    seen = set(queue)
    inbounds = [Inbound("telegram", "42", text=c) for c, _ in tg.COMMANDS]
    checked = 0
    while queue or inbounds:
        inbound = inbounds.pop() if inbounds else Inbound("telegram", "42", payload=queue.popleft())
        for reply in await services.dispatcher.dispatch(inbound):
            markup = tg.keyboard(reply.buttons)
            assert len(markup.inline_keyboard if markup else ()) == len(reply.buttons)
            for button in reply.buttons:
                if button.payload is None:
                    continue
                checked += 1
                assert 1 <= len(button.payload.encode()) <= 64, button.payload
                if button.payload not in seen:
                    seen.add(button.payload)
                    queue.append(button.payload)
            for part in tg.render(reply):
                assert parse_html(part.html)[0] is None
    assert len(seen) > len(services.kb.entries)
    assert checked > 300


async def test_one_chat_at_a_time_but_chats_in_parallel() -> None:
    processor = tg._PerChatProcessor(8)
    first_may_finish = asyncio.Event()
    order: list[str] = []

    def update_in(chat: int) -> Update:
        return Update.de_json(message_update(next_id(), chat, "x"), None)

    async def work(name: str, wait: asyncio.Event | None = None) -> None:
        order.append(f"{name} start")
        if wait is not None:
            await wait.wait()
        order.append(f"{name} end")

    first = asyncio.create_task(
        processor.process_update(update_in(CHAT), work("a1", first_may_finish))
    )
    second = asyncio.create_task(processor.process_update(update_in(CHAT), work("a2")))
    other = asyncio.create_task(processor.process_update(update_in(OTHER_CHAT), work("b")))
    await other
    assert order == ["a1 start", "b start", "b end"]
    first_may_finish.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["a1 end", "a2 start", "a2 end"]
    assert processor._chats == {}


# --- the `bot telegram` commands ---------------------------------------------------------


async def run_bot(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def cli_env(api: FakeTelegram, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "BOT_TELEGRAM_TOKEN": TOKEN,
        "BOT_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "BOT_TELEGRAM_API_URL": api.url,
        "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "BOT_LOG_LEVEL": "DEBUG",
        **extra,
    }


@pytest.mark.parametrize(
    "args",
    [
        ("set-webhook", "--url", "https://bot.example.vn/webhook/telegram"),
        ("delete-webhook",),
        ("info",),
        ("poll",),
    ],
)
async def test_commands_without_a_token_fail_in_vietnamese(args: tuple[str, ...]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_TELEGRAM")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "telegram",
        *args,
        env={**env, "PYTHONIOENCODING": "utf-8"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "Chưa cấu hình token Telegram" in err.decode()


async def test_set_webhook_info_and_delete(api: FakeTelegram, tmp_path: Path) -> None:
    env = cli_env(api, tmp_path)
    url = "https://cchc.bacninh.gov.vn/webhook/telegram"
    code, out, err = await run_bot("telegram", "set-webhook", "--url", url, env=env)
    assert code == 0, err
    assert url in out
    assert api.webhook == {
        "url": url,
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query", "my_chat_member"],
        "drop_pending_updates": "false",
    }
    code, out, err = await run_bot("telegram", "info", env=env)
    assert code == 0, err
    info = json.loads(out)
    assert info["url"] == url
    assert info["allowed_updates"] == ["message", "callback_query", "my_chat_member"]
    assert TOKEN not in out + err
    assert TOKEN.split(":")[1] not in out + err

    code, out, err = await run_bot("telegram", "delete-webhook", env=env)
    assert code == 0, err
    assert "Đã gỡ webhook" in out
    assert api.webhook == {"url": ""}


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("http://bot.example.vn/webhook/telegram", False),
        ("ftp://bot.example.vn/", False),
        ("bot.example.vn/webhook/telegram", False),
        ("http://127.0.0.1:8081/webhook/telegram", True),
        ("http://localhost/webhook/telegram", True),
    ],
)
async def test_set_webhook_refuses_plain_http_except_locally(
    api: FakeTelegram, tmp_path: Path, url: str, accepted: bool
) -> None:
    code, _, err = await run_bot(
        "telegram", "set-webhook", "--url", url, env=cli_env(api, tmp_path)
    )
    if accepted:
        assert code == 0, err
        assert api.webhook["url"] == url
    else:
        assert code == 2
        assert "https://" in err
        assert api.calls == []


async def test_set_webhook_needs_the_secret(api: FakeTelegram, tmp_path: Path) -> None:
    env = cli_env(api, tmp_path, BOT_TELEGRAM_WEBHOOK_SECRET="")
    code, _, err = await run_bot(
        "telegram", "set-webhook", "--url", "https://x.vn/webhook/telegram", env=env
    )
    assert code == 2
    assert "BOT_TELEGRAM_WEBHOOK_SECRET" in err
    assert api.calls == []


async def test_rejected_token_is_a_clear_error(api: FakeTelegram, tmp_path: Path) -> None:
    env = cli_env(api, tmp_path, BOT_TELEGRAM_TOKEN="999:not-the-token")
    code, out, err = await run_bot("telegram", "info", env=env)
    assert code == 2
    assert "Telegram từ chối token" in err
    assert "not-the-token" not in out + err


async def test_poll_answers_through_the_same_path_and_stops_on_ctrl_c(
    api: FakeTelegram, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "telegram",
        "poll",
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **cli_env(api, tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    assert process.stdout is not None
    lines: list[str] = []
    ready = asyncio.Event()

    async def read_stderr() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            lines.append(raw.decode())
            if "long polling" in lines[-1]:
                ready.set()

    reader = asyncio.create_task(read_stderr())
    try:
        await asyncio.wait_for(ready.wait(), 60)
        await api.queue_update(message_update(next_id(), CHAT, "/start"))
        await api.queue_update(callback_update(next_id(), CHAT, "topic:ho-tich"))
        welcome, topic = await api.wait_sent(2, CHAT)
        assert parse_html(welcome["text"])[1].startswith("Xin chào")
        assert any(p.startswith("faq:") for p in payloads(topic))
        assert len(api.answered()) == 1
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader
        await process.stdout.read()
    output = "".join(lines)
    assert "Đã dừng." in output
    assert "Traceback" not in output
    assert TOKEN not in output
    assert TOKEN.split(":")[1] not in output


async def test_poll_refuses_while_a_webhook_is_set(api: FakeTelegram, tmp_path: Path) -> None:
    env = cli_env(api, tmp_path)
    code, _, err = await run_bot(
        "telegram", "set-webhook", "--url", "https://x.vn/webhook/telegram", env=env
    )
    assert code == 0, err
    code, _, err = await run_bot("telegram", "poll", env=env)
    assert code == 2
    assert "delete-webhook" in err
    assert api.webhook["url"] == "https://x.vn/webhook/telegram"  # left as it was
