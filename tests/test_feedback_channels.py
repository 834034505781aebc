"""Citizen feedback end to end on every channel: complaints and surveys filed through the web
chat API, the Telegram webhook (real python-telegram-bot against the fake Bot API) and the
Zalo webhook (signed events, the fake Zalo API); staff answering with ``FeedbackDesk`` on the
running app's database; and the ``AnswerNotifier`` inside the app pushing the answer, or
leaving it to wait for the citizen's next message.

Everything runs on real aiohttp servers on 127.0.0.1. Background work (the notifier's rounds,
webhook processing) is awaited by polling the fakes or the database with a deadline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.app import create_app
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from bot.channels.zalo import ZALO_WEBHOOK
from bot.feedback_desk import FeedbackDesk
from bot.services import Services
from bot.settings import FeedbackSettings, Settings, TelegramSettings, ZaloSettings
from bot.web.keys import SERVICES
from storage.feedback import CODE_ALPHABET, CODE_LENGTH, FeedbackView
from tests.fakes.telegram_api import FakeTelegram, callback_update, message_update, parse_html
from tests.fakes.zalo_api import FakeZalo, SentMessage

Client = TestClient[web.Request, web.Application]
CODE_RE = re.compile(rf"PA-[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
SURVEY_CODE_RE = re.compile(rf"DG-[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
WEB_CITIZEN = "web-citizen-3f9a1c7e"
WEB_STRANGER = "web-stranger-8b2d4e6f"
ZALO_RECENT = "6142494823001112223"
ZALO_AWAY = "7253505934112223334"
STAFF = "cv.tran.thi.hoa"
PLACEHOLDER = "[nội dung góp ý]"


def services_of(client: Client) -> Services:
    return client.app[SERVICES]


def fast(settings: Settings) -> Settings:
    """The notifier looks for answers to push every 0.2 s instead of every 5 s."""
    return settings.model_copy(update={"feedback": FeedbackSettings(notify_interval_seconds=0.2)})


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def item_of(services: Services, code: str) -> FeedbackView:
    item = await services.storage.feedback.get(code)
    assert item is not None, code
    return item


async def wait_notice(services: Services, code: str, status: str) -> FeedbackView:
    async def reached() -> bool:
        return (await item_of(services, code)).notify_status == status

    await eventually(reached)
    return await item_of(services, code)


def code_in(text: str) -> str:
    match = CODE_RE.search(text)
    assert match is not None, text
    return match.group(0)


# --- web chat ----------------------------------------------------------------------------


@pytest.fixture
async def webchat(settings: Settings) -> AsyncIterator[Client]:
    server = TestServer(create_app(fast(settings)), host="127.0.0.1")
    async with TestClient(server) as client:
        yield client


async def chat(client: Client, user: str, **body: str) -> list[dict[str, Any]]:
    response = await client.post("/api/chat", json={"user_id": user, **body})
    assert response.status == 200, await response.text()
    replies: list[dict[str, Any]] = (await response.json())["replies"]
    assert replies
    return replies


def web_payloads(reply: dict[str, Any]) -> list[str]:
    return [b["payload"] for b in reply["buttons"] if b.get("payload")]


async def test_web_complaint_with_contact_tracked_answered_and_handed_over_once(
    webchat: Client,
) -> None:
    services = services_of(webchat)
    description = "Hồ sơ đăng ký đất nộp ngày 10/11 đã quá hẹn mà chưa có kết quả."
    (ask,) = await chat(webchat, WEB_CITIZEN, text="phản ánh")
    assert "mô tả sự việc" in ask["text"]
    (groups,) = await chat(webchat, WEB_CITIZEN, text=description)
    assert "pa:group:xa-phuong" in web_payloads(groups)
    assert description not in groups["text"]
    (points,) = await chat(webchat, WEB_CITIZEN, payload="pa:group:xa-phuong")
    assert "pa:point:phuong-vo-cuong" in web_payloads(points)
    (dossier,) = await chat(webchat, WEB_CITIZEN, payload="pa:point:phuong-vo-cuong")
    assert "mã hồ sơ" in dossier["text"]
    (consent,) = await chat(webchat, WEB_CITIZEN, text="H05.22-251110-0012")
    assert web_payloads(consent)[:2] == ["pa:consent:yes", "pa:consent:no"]
    (phone,) = await chat(webchat, WEB_CITIZEN, payload="pa:consent:yes")
    assert "số điện thoại" in phone["text"]
    (done,) = await chat(webchat, WEB_CITIZEN, text="0912 345 678")
    code = code_in(done["text"])
    assert "Thời hạn xử lý dự kiến: 10 ngày" in done["text"]
    assert f"track:{code}" in web_payloads(done)

    item = await item_of(services, code)
    assert (item.kind, item.status, item.channel) == ("complaint", "new", "web")
    assert item.external_id == WEB_CITIZEN
    assert item.description == description
    assert (item.point_id, item.dossier_code) == ("phuong-vo-cuong", "H05.22-251110-0012")
    assert item.phone == "0912345678"
    assert item.contact_consent_at is not None
    assert item.deadline_at - item.created_at == pytest.approx(
        dt.timedelta(days=10), abs=dt.timedelta(minutes=1)
    )
    # The description and the phone number live in the item only, not in the log.
    texts = [t.text for t in reversed(await services.conversations.recent(50))]
    assert texts[:2] == ["phản ánh", PLACEHOLDER]
    assert texts[-1] == PLACEHOLDER
    assert all(description not in text for text in texts)

    (status,) = await chat(webchat, WEB_CITIZEN, text=f"tra cứu {code}")
    assert f"Mã {code}: đã tiếp nhận, đang chờ xử lý." in status["text"]
    (stranger,) = await chat(webchat, WEB_STRANGER, text=f"tra cứu {code}")
    assert f"Không tìm thấy mã {code}" in stranger["text"]
    assert "đang chờ xử lý" not in stranger["text"]
    assert "Ngày gửi" not in stranger["text"]

    answer = (
        "Văn phòng Đăng ký đất đai đã trả kết quả ngày 20/11; mời bạn đến nhận tại bộ phận một cửa."
    )
    answered = await FeedbackDesk(services.storage.feedback).answer(code, text=answer, actor=STAFF)
    assert answered.status == "answered"
    # Web chat cannot push: the notifier leaves the answer for the citizen's next message.
    await wait_notice(services, code, "waiting")

    (stranger,) = await chat(webchat, WEB_STRANGER, text=f"tra cứu {code}")
    assert "Không tìm thấy mã" in stranger["text"]
    assert answer not in stranger["text"]
    assert "đã có trả lời" not in stranger["text"]

    notice, greeting = await chat(webchat, WEB_CITIZEN, text="xin chào")
    assert notice["text"] == f"Trả lời cho phản ánh, góp ý {code} của bạn:\n\n{answer}"
    assert web_payloads(notice) == [f"track:{code}"]
    assert greeting["text"].startswith("Xin chào")
    delivered = await item_of(services, code)
    assert delivered.notify_status == "delivered"
    assert delivered.notified_at is not None

    again = await chat(webchat, WEB_CITIZEN, text="xin chào")
    assert len(again) == 1
    assert all(answer not in r["text"] for r in again)
    (status,) = await chat(webchat, WEB_CITIZEN, text=f"tra cứu {code}")
    assert f"Mã {code}: đã có trả lời." in status["text"]
    assert answer in status["text"]


async def test_web_survey_with_typed_answers_only(webchat: Client) -> None:
    services = services_of(webchat)
    (groups,) = await chat(webchat, WEB_CITIZEN, text="góp ý")
    assert "Có 5 câu hỏi" in groups["text"]
    (procedure,) = await chat(webchat, WEB_CITIZEN, text="phường Võ Cường")
    assert "Bạn đã làm thủ tục gì?" in procedure["text"]
    (first,) = await chat(webchat, WEB_CITIZEN, text="bỏ qua")
    assert first["text"].startswith("Câu 1/5 – Tiếp cận dịch vụ")
    assert "từ 1 đến 5" not in first["text"]
    # An invalid rating is asked again, for the same question, and stores nothing.
    for wrong in ("7", "abc", "0"):
        (again,) = await chat(webchat, WEB_CITIZEN, text=wrong)
        assert "từ 1 đến 5" in again["text"]
        assert "Câu 1/5 – Tiếp cận dịch vụ" in again["text"]
    prompts = []
    for typed in ("5", "4 sao", "3", "hài lòng"):
        (prompt,) = await chat(webchat, WEB_CITIZEN, text=typed)
        prompts.append(prompt["text"])
    assert [p.split(" – ")[0] for p in prompts] == ["Câu 2/5", "Câu 3/5", "Câu 4/5", "Câu 5/5"]
    (comment,) = await chat(webchat, WEB_CITIZEN, text="2")
    assert "ý kiến gì thêm" in comment["text"]
    (done,) = await chat(webchat, WEB_CITIZEN, text="Cán bộ nhiệt tình")
    match = SURVEY_CODE_RE.search(done["text"])
    assert match is not None, done["text"]

    item = await item_of(services, match.group(0))
    assert (item.kind, item.status, item.channel) == ("survey", "new", "web")
    assert item.point_id == "phuong-vo-cuong"
    assert item.procedure_id is None
    assert item.ratings == (5, 4, 3, 4, 2)
    assert item.comment == "Cán bộ nhiệt tình"
    assert item.completed_at is not None
    turns = await services.conversations.recent(50)
    assert turns[0].text == PLACEHOLDER  # the comment is kept in the item only


# --- Telegram (configured as in tests/test_telegram.py) ----------------------------------

TOKEN = "123456789:AAH-test_token_Zq8xY"
SECRET = "webhook-Secret_42"
CHAT = 218485655
_update_ids = itertools.count(731150001)


def next_id() -> int:
    return next(_update_ids)


async def post(client: Client, update: dict[str, Any]) -> int:
    headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
    response = await client.post(WEBHOOK_PATH, data=json.dumps(update), headers=headers)
    return response.status


@pytest.fixture
async def tg_api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        yield fake
    # Torn down after the app: its notifier and webhook tasks have all stopped.
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers, f"tasks left running: {leftovers}"


@pytest.fixture
async def telegram(settings: Settings, tg_api: FakeTelegram) -> AsyncIterator[Client]:
    config = TelegramSettings(
        token=SecretStr(TOKEN), webhook_secret=SecretStr(SECRET), api_url=tg_api.url
    )
    configured = fast(settings).model_copy(update={"telegram": config})
    server = TestServer(create_app(configured), host="127.0.0.1")
    async with TestClient(server) as client:
        yield client


async def tg_send(client: Client, api: FakeTelegram, update: dict[str, Any]) -> dict[str, Any]:
    """Post ``update`` to the webhook and return the bot's one answer to it."""
    before = len(api.sent(CHAT))
    assert await post(client, update) == 200
    return (await api.wait_sent(before + 1, CHAT))[before]


async def tg_say(client: Client, api: FakeTelegram, text: str) -> dict[str, Any]:
    return await tg_send(client, api, message_update(next_id(), CHAT, text))


async def tg_press(client: Client, api: FakeTelegram, data: str) -> dict[str, Any]:
    return await tg_send(client, api, callback_update(next_id(), CHAT, data))


def visible(message: dict[str, Any]) -> str:
    problem, text = parse_html(message["text"])
    assert problem is None, problem
    return text


def tg_payloads(message: dict[str, Any]) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [row[0]["callback_data"] for row in rows if "callback_data" in row[0]]


async def tg_complaint(client: Client, api: FakeTelegram, description: str) -> str:
    """File a complaint by typing and pressing buttons; its code."""
    assert "mô tả sự việc" in visible(await tg_say(client, api, "phản ánh"))
    groups = await tg_say(client, api, description)
    assert "pa:group:so-nganh" in tg_payloads(groups)
    points = await tg_press(client, api, "pa:group:so-nganh")
    assert "pa:point:van-phong-dang-ky-dat-dai" in tg_payloads(points)
    dossier = await tg_press(client, api, "pa:point:van-phong-dang-ky-dat-dai")
    assert tg_payloads(dossier) == ["pa:skip", "pa:cancel"]
    consent = await tg_press(client, api, "pa:skip")
    assert "pa:consent:yes" in tg_payloads(consent)
    phone = await tg_press(client, api, "pa:consent:yes")
    assert "số điện thoại" in visible(phone)
    done = await tg_say(client, api, "+84 912 345 678")
    text = visible(done)
    assert "Đã nhận phản ánh" in text
    return code_in(text)


async def test_telegram_complaint_answer_is_pushed_as_escaped_text(
    telegram: Client, tg_api: FakeTelegram
) -> None:
    services = services_of(telegram)
    code = await tg_complaint(
        telegram, tg_api, "Cán bộ một cửa hẹn trả kết quả ba lần vẫn chưa có."
    )
    # Every button press was acknowledged, so the citizen's spinner stops.
    assert len(tg_api.answered()) == 4
    item = await item_of(services, code)
    assert (item.channel, item.external_id) == ("telegram", str(CHAT))
    assert item.point_id == "van-phong-dang-ky-dat-dai"
    assert item.dossier_code is None
    assert item.phone == "0912345678"

    before = len(tg_api.sent(CHAT))
    answer = 'Hồ sơ <b>đã</b> xử lý & trả "kết quả" <script>alert(1)</script>'
    await FeedbackDesk(services.storage.feedback).answer(code, text=answer, actor=STAFF)
    pushed = (await tg_api.wait_sent(before + 1, CHAT, seconds=5))[before]
    # Sent as Telegram HTML with the staff's text escaped: shown literally, never as markup.
    assert pushed["parse_mode"] == "HTML"
    assert "&lt;b&gt;đã&lt;/b&gt; xử lý &amp; trả &quot;kết quả&quot;" in pushed["text"]
    assert "<b>đã</b>" not in pushed["text"]
    assert "<script>" not in pushed["text"]
    assert visible(pushed) == f"Trả lời cho phản ánh, góp ý {code} của bạn:\n\n{answer}"
    delivered = await wait_notice(services, code, "delivered")
    assert delivered.notified_at is not None
    assert all(c.status == 200 for c in tg_api.calls_of("sendMessage"))

    # Delivered once: the citizen's next message is answered without it.
    reply = await tg_say(telegram, tg_api, "xin chào")
    assert visible(reply).startswith("Xin chào")
    await asyncio.sleep(0.3)  # a notifier round or two: nothing more is pushed
    assert len(tg_api.sent(CHAT)) == before + 2


async def test_telegram_complaint_markup_is_never_echoed_nor_logged(
    telegram: Client, tg_api: FakeTelegram
) -> None:
    services = services_of(telegram)
    description = "<script>alert(1)</script> **bold** hồ sơ trễ hẹn & không ai trả lời"
    code = await tg_complaint(telegram, tg_api, description)
    status = await tg_say(telegram, tg_api, f"tra cứu {code}")
    assert f"Mã {code}: đã tiếp nhận, đang chờ xử lý." in visible(status)

    sent = tg_api.calls_of("sendMessage")
    assert all(c.status == 200 for c in sent)  # no message Telegram could not parse
    for call in sent:
        text = call.params["text"]
        assert "script" not in text
        assert "bold" not in text
        assert "trễ hẹn" not in text
    # Stored as the citizen wrote it, as data.
    assert (await item_of(services, code)).description == description
    turns = [t for t in await services.conversations.recent(50) if t.channel == "telegram"]
    texts = [t.text for t in reversed(turns)]
    assert texts[:2] == ["phản ánh", PLACEHOLDER]
    assert all("script" not in t and "bold" not in t and "912" not in t for t in texts)


# --- Zalo (configured and signed as in tests/test_zalo.py) -------------------------------

APP_ID = "2553928453557884079"
OA_ID = "3662729599332560487"
OA_SECRET = "oa-secret-Zk3vQ9pL2"
APP_SECRET = "app-secret-Wm8xT4rB7"


def text_event(user: str, text: str) -> dict[str, Any]:
    """A ``user_send_text`` event shaped like Zalo's (reference §1.3)."""
    return {
        "event_name": "user_send_text",
        "app_id": APP_ID,
        "sender": {"id": user},
        "recipient": {"id": OA_ID},
        "message": {"text": text, "msg_id": secrets.token_hex(10)},
        "timestamp": str(int(time.time() * 1000)),
        "user_id_by_app": "979122185046046317",
    }


@dataclass
class Bot:
    client: Client
    fake: FakeZalo

    @property
    def services(self) -> Services:
        return services_of(self.client)

    async def say(self, user: str, text: str) -> list[SentMessage]:
        """Post the citizen's signed message, wait until it is handled and return what the
        citizen received."""
        event = text_event(user, text)
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        mac = hashlib.sha256(
            APP_ID.encode() + body + event["timestamp"].encode() + OA_SECRET.encode()
        ).hexdigest()
        before = len(self.fake.to(user))
        response = await self.client.post(
            "/webhook/zalo",
            data=body,
            headers={"Content-Type": "application/json", "X-ZEvent-Signature": f"mac={mac}"},
        )
        assert response.status == 200, await response.text()
        async with asyncio.timeout(10):
            await self.client.app[ZALO_WEBHOOK].idle()
        return self.fake.to(user)[before:]


@pytest.fixture
async def zalo_api() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(app_id=APP_ID, app_secret=APP_SECRET) as api:
        yield api
        assert api.problems == []


@pytest.fixture
async def bot_zalo(settings: Settings, zalo_api: FakeZalo) -> AsyncIterator[Bot]:
    config = ZaloSettings(
        app_id=APP_ID,
        oa_secret_key=SecretStr(OA_SECRET),
        app_secret=SecretStr(APP_SECRET),
        access_token=SecretStr(zalo_api.access_token),
        refresh_token=SecretStr(zalo_api.refresh_token),
        api_url=zalo_api.url,
        oauth_url=zalo_api.url,
    )
    configured = fast(settings).model_copy(update={"zalo": config})
    server = TestServer(create_app(configured), host="127.0.0.1")
    async with TestClient(server) as client:
        yield Bot(client, zalo_api)
        webhook = client.app[ZALO_WEBHOOK]
    assert webhook.pending == 0


async def zalo_complaint(bot: Bot, user: str, *, contact: bool) -> str:
    """File a complaint with typed answers only; its code."""
    (ask,) = await bot.say(user, "phan anh")
    assert "mô tả sự việc" in ask.text
    (groups,) = await bot.say(user, "Thái độ cán bộ tiếp nhận hồ sơ không đúng mực.")
    assert "Sự việc xảy ra ở đâu?" in groups.text
    (dossier,) = await bot.say(user, "phường Võ Cường")
    assert "mã hồ sơ" in dossier.text
    (consent,) = await bot.say(user, "bỏ qua")
    assert "để lại số điện thoại" in consent.text
    if contact:
        (phone,) = await bot.say(user, "đồng ý")
        assert "số điện thoại" in phone.text
        (done,) = await bot.say(user, "0912345678")
    else:
        (done,) = await bot.say(user, "không")
    assert "Đã nhận phản ánh" in done.text
    assert "**" not in done.text
    return code_in(done.text)


async def test_zalo_answer_is_pushed_to_a_citizen_who_wrote_recently(bot_zalo: Bot) -> None:
    bot = bot_zalo
    code = await zalo_complaint(bot, ZALO_RECENT, contact=True)
    item = await item_of(bot.services, code)
    assert (item.channel, item.external_id) == ("zalo", ZALO_RECENT)
    assert (item.point_id, item.phone) == ("phuong-vo-cuong", "0912345678")

    before = len(bot.fake.to(ZALO_RECENT))
    answer = "UBND phường đã nhắc nhở cán bộ và xin lỗi bạn. Cảm ơn bạn đã phản ánh."
    await FeedbackDesk(bot.services.storage.feedback).answer(code, text=answer, actor=STAFF)
    pushed = (await bot.fake.wait_for(before + 1, user_id=ZALO_RECENT, within=5))[before:]
    assert [m.text for m in pushed] == [f"Trả lời cho phản ánh, góp ý {code} của bạn:\n\n{answer}"]
    assert pushed[0].access_token == bot.fake.access_token
    await wait_notice(bot.services, code, "delivered")

    # Not handed over a second time with the next reply.
    (reply,) = await bot.say(ZALO_RECENT, "SIPAS là gì")
    assert answer not in reply.text
    assert "SIPAS" in reply.text


async def test_zalo_answer_waits_outside_the_window_and_comes_with_the_next_reply(
    bot_zalo: Bot,
) -> None:
    bot = bot_zalo
    subscribers = bot.services.storage.subscribers
    code = await zalo_complaint(bot, ZALO_AWAY, contact=False)
    item = await item_of(bot.services, code)
    assert (item.phone, item.contact_consent_at) == (None, None)

    # The citizen's last message is now 8 days old: Zalo would refuse a message (-230).
    assert await subscribers.get("zalo", ZALO_AWAY) is not None  # writes pending touches
    eight_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    await subscribers.touch("zalo", ZALO_AWAY, at=eight_days_ago)
    aged = await subscribers.get("zalo", ZALO_AWAY)
    assert aged is not None
    assert aged.last_interaction_at == pytest.approx(eight_days_ago, abs=dt.timedelta(seconds=1))

    attempts = len(bot.fake.attempts)
    answer = "Hồ sơ của bạn đã được chuyển lại bộ phận một cửa để trả kết quả."
    await FeedbackDesk(bot.services.storage.feedback).answer(code, text=answer, actor=STAFF)
    waiting = await wait_notice(bot.services, code, "waiting")
    assert waiting.notified_at is None
    await asyncio.sleep(0.5)  # more notifier rounds: still nothing is sent
    assert len(bot.fake.attempts) == attempts
    assert (await item_of(bot.services, code)).notify_status == "waiting"

    sent = await bot.say(ZALO_AWAY, "xin chào")
    assert sent[0].text == f"Trả lời cho phản ánh, góp ý {code} của bạn:\n\n{answer}"
    assert sent[0].buttons == [
        {"title": "Tra cứu phản ánh", "type": "oa.query.show", "payload": f"track:{code}"}
    ]
    assert sent[1].text.startswith("Xin chào")
    delivered = await item_of(bot.services, code)
    assert delivered.notify_status == "delivered"
    assert delivered.notified_at is not None
    # The interaction window is open again.
    back = await subscribers.get("zalo", ZALO_AWAY)
    assert back is not None
    assert back.last_interaction_at is not None
    assert back.last_interaction_at > eight_days_ago + dt.timedelta(days=7)
    again = await bot.say(ZALO_AWAY, "xin chào")
    assert all(answer not in m.text for m in again)


async def test_zalo_numbered_list_is_forgotten_once_a_later_reply_has_plain_buttons(
    bot_zalo: Bot,
) -> None:
    """A "1" typed at the consent question (shown with ordinary buttons) is not read as the
    first entry of the numbered list shown two questions earlier."""
    user = "5550001112223334444"
    await bot_zalo.say(user, "phan anh")
    await bot_zalo.say(user, "Hồ sơ nộp từ tháng trước vẫn chưa có kết quả giải quyết.")
    (groups,) = await bot_zalo.say(user, "Xã, phường (bộ phận một cửa)")
    # Nine wards and three more buttons: shown as a numbered list.
    assert "1. Phường Kinh Bắc" in groups.text
    (dossier,) = await bot_zalo.say(user, "2")
    assert "mã hồ sơ" in dossier.text
    (consent,) = await bot_zalo.say(user, "bỏ qua")
    assert "để lại số điện thoại" in consent.text
    (again,) = await bot_zalo.say(user, "1")
    assert again.text.startswith('Bạn chọn "Đồng ý, để lại số"')
    (phone,) = await bot_zalo.say(user, "đồng ý")
    assert "Mời bạn gõ số điện thoại" in phone.text
    (done,) = await bot_zalo.say(user, "0912345678")
    item = await item_of(bot_zalo.services, code_in(done.text))
    assert (item.point_id, item.phone) == ("phuong-vo-cuong", "0912345678")
