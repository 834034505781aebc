"""The web chat API and page, against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

USER = "u-5f0c1b2a9d8e4f7a"
Client = TestClient[Any, Any]


async def ask(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/chat", json={"user_id": USER, **body})
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def test_health_reports_the_knowledge_base(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    data = await response.json()
    assert data["status"] == "ok"
    assert data["entries"] >= 60


async def test_page_is_served_in_vietnamese_with_a_strict_policy(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    html = await response.text()
    assert '<html lang="vi"' in html
    assert "Trợ lý ảo cải cách hành chính" in html
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    script = await client.get("/static/chat.js")
    assert script.status == 200
    assert "cchc_user_id" in await script.text()


async def test_start_payload_greets_with_the_topic_menu(client: Client) -> None:
    data = await ask(client, payload="start")
    reply = data["replies"][0]
    assert reply["text"].startswith("Xin chào")
    payloads = [b["payload"] for b in reply["buttons"]]
    assert "topic:dinh-danh" in payloads


async def test_question_gets_the_answer_with_its_source(client: Client) -> None:
    data = await ask(client, text="SIPAS là gì")
    text = data["replies"][0]["text"]
    assert "SIPAS" in text
    assert "Căn cứ:" in text
    assert {"title": "Chủ đề", "payload": "topics"} in data["replies"][0]["buttons"]


async def test_browsing_topic_then_entry(client: Client) -> None:
    data = await ask(client, payload="topic:ho-tich")
    buttons = data["replies"][0]["buttons"]
    entry_payload = next(b["payload"] for b in buttons if b["payload"].startswith("faq:"))
    answer = await ask(client, payload=entry_payload)
    assert "Căn cứ:" in answer["replies"][0]["text"]


async def test_out_of_scope_question_gets_the_honest_fallback(client: Client) -> None:
    data = await ask(client, text="giá vàng hôm nay bao nhiêu")
    reply = data["replies"][0]
    assert "chưa có câu trả lời" in reply["text"]
    assert "18001096" in reply["text"]
    payloads = {b["payload"] for b in reply["buttons"]}
    assert {"topics", "feedback"} <= payloads


async def test_malformed_json_is_400(client: Client) -> None:
    response = await client.post(
        "/api/chat", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "error" in await response.json()


async def test_body_over_64_kib_is_413(client: Client) -> None:
    body = json.dumps({"user_id": USER, "text": "a" * (65 * 1024)})
    response = await client.post(
        "/api/chat", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert "error" in await response.json()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": "xin chào"},
        {"user_id": USER},
        {"user_id": "x", "text": "hi"},
        {"user_id": USER, "text": 42},
        {"user_id": USER, "payload": "<script>"},
        [1, 2],
    ],
)
async def test_missing_or_invalid_fields_are_422(client: Client, body: Any) -> None:
    response = await client.post("/api/chat", json=body)
    assert response.status == 422
    assert (await response.json())["error"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "chưa nhập câu hỏi"),
        ("   \n\t ", "chưa nhập câu hỏi"),
        ("😀🙏🔥", "chỉ đọc được câu hỏi bằng chữ"),
        ("\x00\x01\x02\ufffd\x7f", "chỉ đọc được câu hỏi bằng chữ"),
        ("!!! ??? ...", "chỉ đọc được câu hỏi bằng chữ"),
        ("x" * 10_000, "chưa có câu trả lời"),
        ("căn cước " * 1200, ""),
    ],
)
async def test_junk_gets_a_polite_reply(client: Client, text: str, expected: str) -> None:
    data = await ask(client, text=text)
    assert data["replies"]
    assert expected in data["replies"][0]["text"]


async def test_unknown_payload_falls_back_to_the_menu(client: Client) -> None:
    data = await ask(client, payload="faq:does-not-exist")
    assert data["replies"][0]["buttons"]
    data = await ask(client, payload="no-such-route")
    assert any(b["payload"].startswith("topic:") for b in data["replies"][0]["buttons"])


async def test_citizen_text_is_returned_as_data_not_markup(client: Client) -> None:
    # The API returns JSON strings; the page renders them with textContent. The reply to a
    # question containing markup must not echo it back as markup either.
    data = await ask(client, text="<script>alert(1)</script> căn cước")
    assert "<script>" not in json.dumps(data)
