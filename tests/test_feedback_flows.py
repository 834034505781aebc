"""Survey, complaint, tracking, answers and deleting one's data, through the neutral
dispatcher, on SQLite and on PostgreSQL when reachable."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import pytest

from bot.feedback_desk import FeedbackDesk
from bot.messages import Inbound, Reply
from bot.services import Services, open_services
from bot.settings import DatabaseSettings, FeedbackSettings, Settings
from storage.feedback import FeedbackFilter, FeedbackView
from storage.models import utcnow

CHANNEL = "telegram"
USER = "1001"
CODE_RE = re.compile(r"\b(PA|DG)-[2-9A-Z]{5}\b")


def settings_for(url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=url))


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Services]:
    async with open_services(settings_for(database_url)) as services:
        yield services


async def say(services: Services, text: str, user: str = USER) -> list[Reply]:
    return await services.dispatcher.dispatch(Inbound(CHANNEL, user, text=text))


async def press(services: Services, payload: str, user: str = USER) -> list[Reply]:
    return await services.dispatcher.dispatch(Inbound(CHANNEL, user, payload=payload))


def payloads(replies: list[Reply]) -> list[str]:
    return [b.payload for r in replies for b in r.buttons if b.payload]


async def items(services: Services) -> list[FeedbackView]:
    return await services.storage.feedback_inbox.find(FeedbackFilter())


async def only_item(services: Services) -> FeedbackView:
    found = await items(services)
    assert len(found) == 1, found
    return found[0]


# --- the satisfaction survey ------------------------------------------------------------------


async def test_survey_with_buttons_is_complete_and_counted(bot: Services) -> None:
    replies = await press(bot, "sv:start")
    assert "sv:group:xa-phuong" in payloads(replies)
    assert {"sv:skip", "sv:cancel"} <= set(payloads(replies))
    replies = await press(bot, "sv:group:xa-phuong")
    assert "sv:point:phuong-vo-cuong" in payloads(replies)
    replies = await press(bot, "sv:point:phuong-vo-cuong")
    assert "thủ tục gì" in replies[0].text
    replies = await say(bot, "đăng ký khai sinh")
    offered = [p for p in payloads(replies) if p.startswith("sv:proc:")]
    assert "sv:proc:khai-sinh-ho-so" in offered
    replies = await press(bot, "sv:proc:khai-sinh-ho-so")
    assert "Câu 1/5" in replies[0].text
    assert payloads(replies)[:5] == [f"sv:rate:{n}" for n in range(1, 6)]
    for number, rating in enumerate((5, 4, 3, 2, 1), start=1):
        assert f"Câu {number}/5" in replies[0].text
        replies = await press(bot, f"sv:rate:{rating}")
    assert "ý kiến gì thêm" in replies[0].text
    replies = await press(bot, "sv:skip")
    item = await only_item(bot)
    assert item.code in replies[0].text
    assert (item.kind, item.status) == ("survey", "new")
    assert item.point_id == "phuong-vo-cuong"
    assert item.procedure_id == "khai-sinh-ho-so"
    assert item.ratings == (5, 4, 3, 2, 1)
    assert item.comment is None
    assert item.completed_at is not None
    # Rated 1 or 2 somewhere: offered the way to a written answer.
    assert "chưa hài lòng" in replies[0].text
    assert payloads(replies)[0] == "pa:start"
    # The flow is over: the next message is an ordinary question.
    replies = await say(bot, "chỉ số sipas là gì")
    assert "Căn cứ:" in replies[0].text


async def test_survey_with_typed_answers_invalid_input_and_skips(bot: Services) -> None:
    await say(bot, "danh gia")
    replies = await say(bot, "phuong vo cuong")
    assert "thủ tục gì" in replies[0].text
    replies = await say(bot, "bỏ qua")
    assert "Câu 1/5" in replies[0].text
    # A 7 and a word are not ratings: the same question again, with what is expected.
    for wrong in ("7", "tốt lắm", "0"):
        replies = await say(bot, wrong)
        assert "từ 1 đến 5" in replies[0].text
        assert "Câu 1/5" in replies[0].text
    await say(bot, "4 sao")
    await say(bot, "bo qua")
    await say(bot, "rất hài lòng")
    await say(bot, "3")
    replies = await say(bot, "2 điểm")
    assert "ý kiến" in replies[0].text
    replies = await say(bot, "Nên có thêm ghế chờ.")
    item = await only_item(bot)
    assert item.code in replies[0].text
    assert item.status == "new"
    assert item.point_id == "phuong-vo-cuong"
    assert item.procedure_id is None
    assert item.ratings == (4, None, 5, 3, 2)
    assert item.comment == "Nên có thêm ghế chờ."
    assert "pa:start" in payloads(replies)
    # What the citizen wrote is in the item, not a second time in the conversation log.
    logged = [t.text for t in await bot.conversations.recent()]
    assert "Nên có thêm ghế chờ." not in logged
    assert "[nội dung góp ý]" in logged


async def test_cancelled_survey_stays_partial_and_hủy_keeps_the_subscription(
    bot: Services,
) -> None:
    await press(bot, "subscribe:all")
    await say(bot, "góp ý")
    await press(bot, "sv:skip")
    await say(bot, "bỏ qua")
    await press(bot, "sv:rate:5")
    replies = await say(bot, "hủy")
    assert "Đã hủy" in replies[0].text
    item = await only_item(bot)
    assert (item.status, item.ratings[0]) == ("partial", 5)
    subscriber = await bot.storage.subscribers.get(CHANNEL, USER)
    assert subscriber is not None
    assert subscriber.status == "active"
    # A partial survey is not the citizen's to track, and nothing waits for them.
    replies = await say(bot, f"tra cứu {item.code}")
    assert "Không tìm thấy" in replies[0].text


async def test_a_menu_button_or_command_leaves_the_flow(bot: Services) -> None:
    await say(bot, "góp ý")
    replies = await say(bot, "/start")
    assert replies[0].text.startswith("Xin chào")
    replies = await say(bot, "5")
    # Not a rating any more: an ordinary (unanswerable) message.
    assert "Câu" not in replies[0].text
    assert (await only_item(bot)).status == "partial"


async def test_the_flow_survives_a_restart_and_moves_between_workers(database_url: str) -> None:
    settings = settings_for(database_url)
    async with open_services(settings) as first:
        await say(first, "góp ý")
        await press(first, "sv:skip")
    # A restart: the next message reaches a new process with nothing in memory.
    async with open_services(settings) as second, open_services(settings) as third:
        replies = await say(second, "bỏ qua")
        assert "Câu 1/5" in replies[0].text
        # Two workers take turns with the same citizen.
        workers = [third, second, third, second, third]
        for worker, rating in zip(workers, (1, 2, 3, 4, 5), strict=True):
            await say(worker, str(rating))
        replies = await say(second, "bỏ qua")
        item = await only_item(second)
        assert item.code in replies[0].text
        assert (item.status, item.ratings) == ("new", (1, 2, 3, 4, 5))


async def test_a_lapsed_flow_lets_the_message_through(bot: Services) -> None:
    await say(bot, "góp ý")
    state = await bot.storage.sessions.get(CHANNEL, USER)
    assert state is not None
    assert state.flow == "survey"
    # As if the citizen came back after the flow's time: it has lapsed.
    await bot.storage.sessions.set_flow(
        CHANNEL, USER, "survey", state.step or "", state.data, ttl=dt.timedelta(seconds=-1)
    )
    replies = await say(bot, "chỉ số sipas là gì")
    assert "Căn cứ:" in replies[0].text
    replies = await press(bot, "sv:rate:4")
    assert "hết hạn" in replies[0].text
    assert "sv:start" in payloads(replies)
    assert (await only_item(bot)).status == "partial"


# --- complaints, tracking and answers ---------------------------------------------------------

DESCRIPTION = "Hồ sơ đăng ký đất đai nộp ngày 10/11 đã quá hẹn mà chưa có kết quả."


async def file_complaint(services: Services, *, phone: str | None, user: str = USER) -> str:
    replies = await say(services, "phản ánh", user)
    assert "mô tả sự việc" in replies[0].text
    assert payloads(replies) == ["pa:cancel"]
    replies = await say(services, DESCRIPTION, user)
    assert "pa:group:so-nganh" in payloads(replies)
    await press(services, "pa:group:so-nganh", user)
    replies = await press(services, "pa:point:van-phong-dang-ky-dat-dai", user)
    assert "mã hồ sơ" in replies[0].text
    replies = await say(services, "000.00.12.H06-251110-0001", user)
    assert payloads(replies)[:2] == ["pa:consent:yes", "pa:consent:no"]
    assert "90 ngày" in replies[0].text
    if phone is None:
        replies = await press(services, "pa:consent:no", user)
    else:
        replies = await say(services, "đồng ý", user)
        assert "số điện thoại" in replies[0].text
        replies = await say(services, phone, user)
    match = CODE_RE.search(replies[0].text)
    assert match is not None, replies[0].text
    assert "Thời hạn xử lý dự kiến: 10 ngày" in replies[0].text
    return match.group(0)


async def test_complaint_with_contact_records_consent(bot: Services) -> None:
    before = utcnow()
    code = await file_complaint(bot, phone="0912 345 678")
    item = await only_item(bot)
    assert item.code == code
    assert code.startswith("PA-")
    assert (item.kind, item.status) == ("complaint", "new")
    assert item.description == DESCRIPTION
    assert item.point_id == "van-phong-dang-ky-dat-dai"
    assert item.dossier_code == "000.00.12.H06-251110-0001"
    assert item.phone == "0912345678"
    assert item.contact_consent_at is not None
    assert item.contact_consent_at >= before
    assert (
        dt.timedelta(days=9, hours=23) < item.deadline_at - before < dt.timedelta(days=10, hours=1)
    )
    events = await bot.storage.feedback_inbox.events(item.id)
    assert [(e.from_status, e.to_status, e.actor) for e in events] == [(None, "new", "citizen")]


async def test_complaint_without_contact_keeps_no_phone(bot: Services) -> None:
    await file_complaint(bot, phone=None)
    item = await only_item(bot)
    assert item.phone is None
    assert item.contact_consent_at is None


async def test_complaint_input_is_checked_at_every_step(bot: Services) -> None:
    await say(bot, "phan anh")
    replies = await say(bot, "chậm")
    assert "hơi ngắn" in replies[0].text
    replies = await say(bot, "bỏ qua")
    assert "hơi ngắn" in replies[0].text
    await say(bot, DESCRIPTION)
    replies = await say(bot, "ubnd huyen xyz abc")
    assert "chưa tìm thấy nơi này" in replies[0].text
    await press(bot, "pa:skip")
    replies = await say(bot, "mã của tôi là ???")
    assert "Mã hồ sơ chỉ gồm" in replies[0].text
    await say(bot, "không có")
    replies = await say(bot, "để tôi nghĩ đã")
    assert "Đồng ý, để lại số" in replies[0].text
    await press(bot, "pa:consent:yes")
    replies = await say(bot, "12345")
    assert "chưa đúng" in replies[0].text
    # Skipping the number withdraws the consent: nothing personal is kept.
    replies = await press(bot, "pa:skip")
    assert CODE_RE.search(replies[0].text)
    item = await only_item(bot)
    assert (item.point_id, item.dossier_code, item.phone, item.contact_consent_at) == (
        None,
        None,
        None,
        None,
    )
    assert item.description == DESCRIPTION


async def test_tracking_own_unknown_and_someone_elses_code(bot: Services) -> None:
    code = await file_complaint(bot, phone="0912345678")
    replies = await say(bot, f"tra cứu {code.lower().replace('-', ' ')}")
    assert f"Mã {code}: đã tiếp nhận, đang chờ xử lý" in replies[0].text
    replies = await say(bot, "tra cứu PA-ZZZZZ")
    assert "Không tìm thấy mã PA-ZZZZZ" in replies[0].text
    await FeedbackDesk(bot.storage.feedback).answer(
        code, text="Hồ sơ đã có kết quả, mời ông/bà đến nhận.", actor="Nguyễn Văn An"
    )
    # Someone else with the code learns nothing: same reply as an unknown code.
    replies = await say(bot, f"tra cứu {code}", user="2002")
    assert replies[0].text.startswith(f"Không tìm thấy mã {code}")
    assert "kết quả" not in replies[0].text
    replies = await press(bot, f"track:{code}", user="2002")
    assert "Không tìm thấy" in replies[0].text
    # Their own button lists only their own items.
    replies = await press(bot, "track", user="2002")
    assert "chưa gửi" in replies[0].text
    replies = await press(bot, "track")
    # (The staff answer, waiting for this message, comes first.)
    assert replies[0].text.startswith(f"Trả lời cho phản ánh, góp ý {code}")
    assert payloads(replies[1:]) == [f"track:{code}"]


async def test_staff_answer_reaches_the_citizen_at_their_next_message_once(
    bot: Services,
) -> None:
    code = await file_complaint(bot, phone=None)
    desk = FeedbackDesk(bot.storage.feedback)
    await desk.assign(code, to="Trần Thị Bình", actor="Lãnh đạo phòng")
    await desk.answer(code, text="Hồ sơ đã có kết quả, mời bạn đến nhận.", actor="Trần Thị Bình")
    replies = await say(bot, "xin chào")
    assert replies[0].text.startswith(f"Trả lời cho phản ánh, góp ý {code}")
    assert "mời bạn đến nhận" in replies[0].text
    assert replies[1].text.startswith("Xin chào")
    item = await only_item(bot)
    assert (item.status, item.notify_status) == ("answered", "delivered")
    replies = await say(bot, "xin chào")
    assert len(replies) == 1
    assert replies[0].text.startswith("Xin chào")
    replies = await say(bot, f"tra cứu {code}")
    assert "đã có trả lời" in replies[0].text
    assert "mời bạn đến nhận" in replies[0].text
    events = await bot.storage.feedback_inbox.events(item.id)
    assert [(e.to_status, e.actor) for e in events] == [
        ("new", "citizen"),
        ("in_progress", "Lãnh đạo phòng"),
        ("answered", "Trần Thị Bình"),
    ]


async def test_rejection_tells_the_citizen_why(bot: Services) -> None:
    code = await file_complaint(bot, phone=None)
    await FeedbackDesk(bot.storage.feedback).reject(
        code, reason="Nội dung thuộc thẩm quyền Tòa án.", actor="Cán bộ A"
    )
    replies = await say(bot, "chào")
    assert "không được tiếp nhận xử lý" in replies[0].text
    assert "thẩm quyền Tòa án" in replies[0].text


# --- data protection ----------------------------------------------------------------------------


async def test_delete_my_data_asks_first_then_erases(bot: Services) -> None:
    await press(bot, "subscribe:all")
    code = await file_complaint(bot, phone="0912345678")
    replies = await say(bot, "xoa du lieu cua toi")
    assert "erase:yes" in payloads(replies)
    # Anything but a confirmation keeps the data (and is answered as usual).
    replies = await say(bot, "chỉ số sipas là gì")
    assert "Căn cứ:" in replies[0].text
    assert (await only_item(bot)).phone == "0912345678"

    await say(bot, "xóa dữ liệu của tôi")
    replies = await say(bot, "đồng ý")
    assert "Đã xóa dữ liệu" in replies[0].text
    item = await only_item(bot)
    assert (item.external_id, item.phone, item.dossier_code) == (None, None, None)
    assert item.contact_erased_at is not None
    assert item.description == DESCRIPTION  # the complaint itself is still handled
    assert await bot.storage.subscribers.get(CHANNEL, USER) is None
    assert [t for t in await bot.conversations.recent() if t.user_id == USER] == []
    # The code no longer leads back to them.
    replies = await say(bot, f"tra cứu {code}")
    assert "Không tìm thấy" in replies[0].text


async def test_delete_my_data_can_be_declined(bot: Services) -> None:
    await press(bot, "subscribe:all")
    await say(bot, "xóa dữ liệu của tôi")
    replies = await press(bot, "erase:no")
    assert "giữ nguyên" in replies[0].text
    subscriber = await bot.storage.subscribers.get(CHANNEL, USER)
    assert subscriber is not None
    assert subscriber.status == "active"
    # An old confirmation button asks again; it never erases on its own.
    replies = await press(bot, "erase:yes")
    assert "erase:yes" in payloads(replies)
    assert await bot.storage.subscribers.get(CHANNEL, USER) is not None


async def test_retention_erases_contacts_of_closed_items_only(bot: Services) -> None:
    closed = await file_complaint(bot, phone="0912345678")
    still_open = await file_complaint(bot, phone="0987654321", user="2002")
    await FeedbackDesk(bot.storage.feedback).resolve(closed, actor="Cán bộ A", text="Đã xử lý.")
    await bot.purge_expired(now=utcnow() + dt.timedelta(days=30))
    recent = await bot.storage.feedback.get(closed)
    assert recent is not None
    assert recent.phone == "0912345678"
    await bot.purge_expired(now=utcnow() + dt.timedelta(days=91))
    erased = await bot.storage.feedback.get(closed)
    kept = await bot.storage.feedback.get(still_open)
    assert erased is not None
    assert kept is not None
    assert (erased.phone, erased.dossier_code) == (None, None)
    assert erased.contact_erased_at is not None
    assert kept.phone == "0987654321"


async def test_an_answer_claimed_by_a_worker_that_died_still_reaches_the_citizen(
    bot: Services,
) -> None:
    code = await file_complaint(bot, phone=None)
    await FeedbackDesk(bot.storage.feedback).answer(code, text="Đã xử lý xong.", actor="Cán bộ A")
    item = await only_item(bot)
    repository = bot.storage.feedback
    # A worker claims the answer to push it, and dies; meanwhile the citizen writes.
    assert await repository.claim_notice(item.id, lease_expired_before=utcnow())
    replies = await say(bot, "xin chào")
    assert len(replies) == 1  # a claimed answer is the pushing worker's
    assert await repository.expire_notice_claims(utcnow() + dt.timedelta(seconds=1)) == 1
    replies = await say(bot, "xin chào")
    assert replies[0].text.startswith(f"Trả lời cho phản ánh, góp ý {code}")
    assert (await only_item(bot)).notify_status == "delivered"


async def test_a_citizen_cannot_flood_surveys_or_complaints(database_url: str) -> None:
    settings = settings_for(database_url).model_copy(
        update={"feedback": FeedbackSettings(daily_limit=2)}
    )
    async with open_services(settings) as services:
        for _ in range(2):
            await say(services, "góp ý")
            await say(services, "hủy")
        replies = await say(services, "góp ý")
        assert "đã gửi 2 lần trong 24 giờ qua" in replies[0].text
        assert len(await items(services)) == 2
        # Complaints count separately, and other citizens are not affected.
        await file_complaint(services, phone=None)
        await file_complaint(services, phone=None)
        replies = await say(services, "phản ánh")
        assert "đã gửi 2 lần" in replies[0].text
        replies = await say(services, "góp ý", user="2002")
        assert "Câu" not in replies[0].text
        assert "sv:group:xa-phuong" in payloads(replies)


async def test_a_satisfied_citizen_is_only_thanked(bot: Services) -> None:
    await say(bot, "đánh giá")
    await press(bot, "sv:skip")
    await press(bot, "sv:skip")
    for rating in ("5", "4", "5", "bỏ qua", "4"):
        await say(bot, rating)
    replies = await press(bot, "sv:skip")
    assert "Cảm ơn bạn đã đánh giá" in replies[0].text
    assert "chưa hài lòng" not in replies[0].text
    assert "pa:start" not in payloads(replies)
    assert (await only_item(bot)).ratings == (5, 4, 5, None, 4)
