"""Procedure codes in what citizens type, the procedure fields of an entry, and the web chat
answering codes, showing official cards and sections in full (against a real server)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.settings import ContentSettings, DatabaseSettings, Settings
from content.loader import ContentError, load_pack
from content.procedures import entry_id, find_code, normalize_code
from content.tthc_import import question_title, shorten
from tests.test_cli import run_bot
from tests.test_tthc_import import SAMPLE_CSV, make_pack

USER = "u-5f0c1b2a9d8e4f7a"
Client = TestClient[Any, Any]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1.001193", "1.001193"),
        ("thủ tục 1.001193", "1.001193"),
        ("tt 1.001193", "1.001193"),
        ("1.001193 can giay to gi", "1.001193"),
        ("mã 2.000488?", "2.000488"),
        ("1.012753.h19 là gì", "1.012753.H19"),
        ("nộp 1.000.000 đồng", None),
        ("Nghị định 123/2015/NĐ-CP", None),
        ("12.001193", None),
        ("1.0011934", None),
        ("1.00119", None),
        ("đăng ký khai sinh", None),
    ],
)
def test_codes_are_found_in_what_citizens_type(text: str, code: str | None) -> None:
    assert find_code(text) == code


def test_codes_make_stable_entry_ids() -> None:
    assert normalize_code(" 1.012753.h19 ") == "1.012753.H19"
    assert normalize_code("1.001193 x") is None
    assert entry_id("1.001193") == "tthc-1-001193"
    assert entry_id("1.012753.H19") == "tthc-1-012753-h19"


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("Đăng ký khai sinh", "Thủ tục đăng ký khai sinh thực hiện thế nào?"),
        ("Thủ tục đăng ký kết hôn.", "Thủ tục đăng ký kết hôn thực hiện thế nào?"),
        ("Cấp Phiếu lý lịch tư pháp", "Thủ tục cấp Phiếu lý lịch tư pháp thực hiện thế nào?"),
        ("BHYT: cấp lại thẻ", "Thủ tục BHYT: cấp lại thẻ thực hiện thế nào?"),
    ],
)
def test_titles_are_natural_questions(name: str, title: str) -> None:
    assert question_title(name) == title


def test_long_sections_are_shortened_at_line_or_word_ends() -> None:
    assert shorten("Ngắn.") == ("Ngắn.", False)
    text, cut = shorten("Dòng một.\n" + "x " * 200)
    assert (text, cut) == ("Dòng một…", True)
    text, cut = shorten("từ " * 200, 30)
    assert cut
    assert text.endswith("từ…")
    assert len(text) <= 31


def test_procedure_fields_are_checked_and_subfolders_read(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "pack")
    folder = pack / "entries" / "nhom" / "con"
    folder.mkdir(parents=True)
    (folder / "x.yaml").write_text(
        "- id: " + "a" * 60 + "\n  title: Một?\n  topic: ho-tich\n  answer: x\n  source: y\n"
        "  reviewed: 2026-01-01\n  procedures: [abc]\n  details: {Thành phần hồ sơ: đủ}\n"
        "- id: hai\n  title: Hai?\n  topic: ho-tich\n  answer: x\n  source: y\n"
        "  reviewed: 2026-01-01\n  procedure: {code: '1.001193', ten: x}\n",
        encoding="utf-8",
    )
    with pytest.raises(ContentError) as caught:
        load_pack(pack)
    problems = "\n".join(caught.value.problems)
    assert "mã thủ tục không hợp lệ trong 'procedures': abc" in problems
    assert "id quá dài cho nút 'Xem đầy đủ' (tối đa 64 byte)" in problems
    assert "khóa lạ trong 'procedure': 'ten'" in problems
    assert "'procedure' cần 'code' (mã hợp lệ) và 'name'" in problems
    shutil.rmtree(pack / "entries" / "nhom")
    assert load_pack(pack).entry("khai-sinh-rieng") is not None


@pytest.fixture(scope="module")
def imported_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pack = make_pack(tmp_path_factory.mktemp("imported") / "pack")
    result = run_bot("content", "import-tthc", str(SAMPLE_CSV), "--into", str(pack))
    assert result.returncode == 0, result.stderr
    return pack


@pytest.fixture
def settings(sqlite_url: str, imported_pack: Path) -> Settings:
    """The web chat (conftest's ``client``) on the pack with the sample catalogue imported."""
    return Settings(
        database=DatabaseSettings(url=sqlite_url), content=ContentSettings(dir=imported_pack)
    )


async def ask(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/chat", json={"user_id": USER, **body})
    assert response.status == 200, await response.text()
    reply: dict[str, Any] = (await response.json())["replies"][0]
    assert all(len(b["payload"].encode()) <= 64 for b in reply["buttons"] if b.get("payload"))
    return reply


@pytest.mark.parametrize("text", ["1.001193", "thủ tục 1.001193", "1.001193 can giay to gi"])
async def test_a_typed_code_gets_its_procedure(client: Client, text: str) -> None:
    reply = await ask(client, text=text)
    assert reply["text"].startswith("**Đăng ký khai sinh** (mã thủ tục 1.001193)")
    assert "Căn cứ: Luật Hộ tịch 2014" in reply["text"]
    assert "ma_thu_tuc=1.001193" in reply["text"]


async def test_an_unknown_code_points_to_the_portal(client: Client) -> None:
    reply = await ask(client, text="tt 1.099999")
    assert "chưa có thủ tục mã 1.099999" in reply["text"]
    url = "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html"
    assert f"{url}?ma_thu_tuc=1.099999" in reply["text"]
    assert any(b.get("url", "").startswith(url) for b in reply["buttons"])


async def test_the_full_text_button_shows_the_whole_section(client: Client) -> None:
    reply = await ask(client, text="thu tuc dang ky khai sinh")
    assert "Xuất trình giấy tờ tùy thân" not in reply["text"]
    button = next(b for b in reply["buttons"] if b["title"] == "Xem đầy đủ: Thành phần hồ sơ")
    assert button["payload"] == "faqd:tthc-1-001193:0"
    full = await ask(client, payload=button["payload"])
    assert full["text"].startswith("**Thành phần hồ sơ** – Đăng ký khai sinh (mã 1.001193)")
    assert "Xuất trình giấy tờ tùy thân của người đi đăng ký." in full["text"]
    back = {"title": "Thủ tục đăng ký khai sinh thực hiện thế nào?", "payload": "faq:tthc-1-001193"}
    assert back in full["buttons"]
    stale = await ask(client, payload="faqd:tthc-1-001193:9")
    assert any(b["payload"].startswith("topic:") for b in stale["buttons"])


async def test_a_hand_written_entry_shows_the_official_cards(client: Client) -> None:
    reply = await ask(client, payload="faq:khai-sinh-rieng")
    text = reply["text"]
    assert text.startswith("Nộp tại Trung tâm Phục vụ hành chính công")
    assert "**Thủ tục: Đăng ký khai sinh** (mã 1.001193)" in text
    assert "- Cơ quan thực hiện: Ủy ban nhân dân cấp xã\n" in text
    assert "- Phí, lệ phí: Miễn lệ phí đăng ký khai sinh đúng hạn" in text
    # A code the catalogue lacks still gets its portal link, nothing invented.
    assert "Thủ tục mã 1.099990 trên Cổng Dịch vụ công quốc gia: https://" in text
    assert {"title": "Thủ tục 1.001193", "payload": "faq:tthc-1-001193"} in reply["buttons"]
