"""Conversations through the channel-neutral dispatcher, with the logs they leave."""

from __future__ import annotations

import datetime as dt

from bot.messages import Button, Inbound
from bot.services import Services
from handlers.router import parse_command


def said(text: str) -> Inbound:
    return Inbound("test", "citizen-1", text=text)


def pressed(payload: str) -> Inbound:
    return Inbound("test", "citizen-1", payload=payload)


def test_commands_are_parsed_with_bot_suffix_and_arguments() -> None:
    assert parse_command("/start@CchcBot hello") == ("start", "hello")
    assert parse_command("/HELP") == ("help", "")
    assert parse_command("hello /start") is None
    assert parse_command("/") is None


async def test_start_command_and_greeting_both_welcome(services: Services) -> None:
    for inbound in (said("/start"), said("Xin chào"), said("chao ban"), pressed("start")):
        replies = await services.dispatcher.dispatch(inbound)
        assert replies[0].text.startswith("Xin chào")
        payloads = [b.payload for b in replies[0].buttons]
        # Every topic, then the feedback menu (survey, complaint, tracking).
        assert payloads == [f"topic:{t.id}" for t in services.kb.topics] + ["feedback"]


async def test_help_and_menu_words(services: Services) -> None:
    replies = await services.dispatcher.dispatch(said("/help"))
    assert "chủ đề" in replies[0].text
    replies = await services.dispatcher.dispatch(said("chủ đề"))
    assert all(b.payload and b.payload.startswith("topic:") for b in replies[0].buttons)


async def test_confident_answer_is_logged_without_a_gap(services: Services) -> None:
    replies = await services.dispatcher.dispatch(said("chỉ số sipas là gì"))
    assert "SIPAS" in replies[0].text
    turns = await services.conversations.recent()
    assert turns[0].outcome == "answer"
    assert turns[0].entry_id == "sipas-la-gi"
    assert turns[0].score is not None
    assert await services.gaps.top() == []


async def test_clarifying_question_offers_candidates_and_an_exit(services: Services) -> None:
    replies = await services.dispatcher.dispatch(said("căn cước"))
    buttons = replies[0].buttons
    assert replies[0].text == "Bạn muốn hỏi về nội dung nào dưới đây?"
    assert 2 <= len(buttons) <= 4
    assert buttons[-1] == Button("Không phải các câu trên", payload="fallback")
    assert all(b.payload and b.payload.startswith("faq:") for b in buttons[:-1])
    gaps = await services.gaps.top()
    assert gaps[0].normalized_text == "can cuoc"
    assert gaps[0].candidates


async def test_fallback_is_honest_and_logged_for_the_content_team(services: Services) -> None:
    for _ in range(3):
        replies = await services.dispatcher.dispatch(said("Kết quả bóng đá tối qua?"))
    assert "chưa có câu trả lời" in replies[0].text
    gaps = await services.gaps.top()
    assert (gaps[0].normalized_text, gaps[0].count) == ("ket qua bong da toi qua", 3)


async def test_personal_numbers_are_not_kept_in_logs(services: Services) -> None:
    await services.dispatcher.dispatch(said("số của tôi 0912 345 678, cccd 001203004567 ạ"))
    turn = (await services.conversations.recent())[0]
    assert "0912" not in turn.text
    assert "001203004567" not in turn.text
    assert "[đã ẩn]" in turn.text
    gap = (await services.gaps.top())[0]
    assert "001203004567" not in gap.normalized_text


async def test_retention_purges_old_logs(services: Services) -> None:
    await services.dispatcher.dispatch(said("giá vàng hôm nay"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    turns, gaps = await services.purge_expired(now=later)
    assert (turns, gaps) == (1, 1)
    assert await services.conversations.recent() == []


async def test_feedback_menu_leads_to_survey_complaint_tracking_and_other_ways(
    services: Services,
) -> None:
    replies = await services.dispatcher.dispatch(pressed("feedback"))
    payloads = [b.payload for b in replies[0].buttons]
    assert payloads == ["sv:start", "pa:start", "track", "topic:phan-anh"]
    # The other ways to send a petition are the knowledge base's entries on it.
    replies = await services.dispatcher.dispatch(pressed("topic:phan-anh"))
    assert any(b.payload and b.payload.startswith("faq:") for b in replies[0].buttons)


async def test_a_failing_log_does_not_cost_the_citizen_the_answer(services: Services) -> None:
    from sqlalchemy import text

    async with services.storage.db.begin() as conn:
        await conn.execute(text("DROP TABLE conversation_turns"))
        await conn.execute(text("DROP TABLE unanswered_questions"))
    replies = await services.dispatcher.dispatch(said("chỉ số sipas là gì"))
    assert "SIPAS" in replies[0].text
    replies = await services.dispatcher.dispatch(said("giá vàng hôm nay"))
    assert "chưa có câu trả lời" in replies[0].text
