"""Subscribing and stopping, through the neutral dispatcher, with the audit trail."""

from __future__ import annotations

from bot.messages import Inbound
from bot.services import Services


def said(text: str, channel: str = "telegram") -> Inbound:
    return Inbound(channel, "4242", text=text, display_name="Nguyễn Văn A")


def pressed(payload: str, channel: str = "telegram") -> Inbound:
    return Inbound(channel, "4242", payload=payload)


async def test_welcome_offers_subscribing_on_push_channels_only(services: Services) -> None:
    telegram = await services.dispatcher.dispatch(said("/start"))
    assert telegram[0].buttons[-1].payload == "subscribe"
    web = await services.dispatcher.dispatch(said("/start", channel="web"))
    assert all(b.payload != "subscribe" for b in web[0].buttons)


async def test_typed_words_offer_topics_then_a_tap_subscribes(services: Services) -> None:
    for words in ("đăng ký", "dang ky", "/subscribe", "Đăng ký nhận tin"):
        replies = await services.dispatcher.dispatch(said(words))
        payloads = [b.payload for b in replies[0].buttons]
        assert "subscribe:all" in payloads, words
    replies = await services.dispatcher.dispatch(pressed("subscribe:thu-tuc-moi"))
    assert "Thủ tục hành chính mới, sửa đổi" in replies[0].text
    assert "HỦY" in replies[0].text
    assert "subscribe:thu-tuc-moi" not in [b.payload for b in replies[0].buttons]
    view = await services.storage.subscribers.get("telegram", "4242")
    assert view is not None
    assert view.status == "active"
    assert view.topics == ("thu-tuc-moi",)
    assert view.consent_source == "telegram:topic"
    assert view.consent_at is not None
    assert view.display_name == "Nguyễn Văn A"
    # A second topic adds to the first; "all" takes every topic.
    await services.dispatcher.dispatch(pressed("subscribe:chinh-quyen-so"))
    view = await services.storage.subscribers.get("telegram", "4242")
    assert view is not None
    assert view.topics == ("thu-tuc-moi", "chinh-quyen-so")
    await services.dispatcher.dispatch(pressed("subscribe:all"))
    view = await services.storage.subscribers.get("telegram", "4242")
    assert view is not None
    assert set(view.topics) == {t.id for t in services.kb.subscription_topics}


async def test_stop_words_unsubscribe_at_once_and_subscribing_again_works(
    services: Services,
) -> None:
    for stop in ("hủy", "huy", "huỷ", "huy dang ky", "dừng", "stop", "/unsubscribe", "HỦY"):
        await services.dispatcher.dispatch(pressed("subscribe:all"))
        replies = await services.dispatcher.dispatch(said(stop))
        assert "ngừng nhận tin" in replies[0].text, stop
        view = await services.storage.subscribers.get("telegram", "4242")
        assert view is not None
        assert view.status == "unsubscribed", stop
    history = await services.storage.subscribers.history("telegram", "4242")
    assert [a for a, _, _ in history][:2] == ["subscribe", "unsubscribe"]
    assert history[1][1] == "telegram:stop"


async def test_words_that_only_look_like_stop_do_not_unsubscribe(services: Services) -> None:
    await services.dispatcher.dispatch(pressed("subscribe:all"))
    for text in ("đúng", "dùng", "hủy hộ kinh doanh thế nào"):
        await services.dispatcher.dispatch(said(text))
    view = await services.storage.subscribers.get("telegram", "4242")
    assert view is not None
    assert view.status == "active"


async def test_follow_subscribes_to_default_topics_and_unfollow_stops(services: Services) -> None:
    replies = await services.dispatcher.dispatch(pressed("follow", channel="zalo"))
    assert replies[0].text.startswith("Xin chào")
    view = await services.storage.subscribers.get("zalo", "4242")
    assert view is not None
    assert view.status == "active"
    assert set(view.topics) == {t.id for t in services.kb.subscription_topics if t.default}
    assert view.consent_source == "zalo:follow"
    assert await services.dispatcher.dispatch(pressed("unfollow", channel="zalo")) == []
    view = await services.storage.subscribers.get("zalo", "4242")
    assert view is not None
    assert view.status == "unsubscribed"


async def test_interactions_are_recorded_and_a_blocked_user_returns(services: Services) -> None:
    await services.dispatcher.dispatch(pressed("subscribe:all"))
    await services.storage.subscribers.set_status(
        "telegram", "4242", "blocked", source="telegram:my_chat_member"
    )
    await services.dispatcher.dispatch(said("/start"))
    view = await services.storage.subscribers.get("telegram", "4242")
    assert view is not None
    assert view.status == "active"
    assert view.last_interaction_at is not None
    actions = [a for a, _, _ in await services.storage.subscribers.history("telegram", "4242")]
    assert actions == ["subscribe", "blocked", "active"]


async def test_web_chat_explains_that_subscribing_needs_zalo_or_telegram(
    services: Services,
) -> None:
    replies = await services.dispatcher.dispatch(said("đăng ký", channel="web"))
    assert "Zalo và Telegram" in replies[0].text
    assert await services.storage.subscribers.count() == 0
