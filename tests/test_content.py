"""The content pack: the bundled one is complete and valid; broken ones are refused with the
file and entry of every problem named."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import unicodedata
from pathlib import Path

import pytest

from content.loader import BUNDLED_PACK, ContentError, load_pack
from content.models import KnowledgeBase

GOOD_ENTRY = """- id: {id}
  title: {title}
  topic: cchc
  agency: so-noi-vu
  answer: Câu trả lời.
  source: Nghị quyết 76/NQ-CP
  reviewed: 2026-01-01
"""


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """A copy of the bundled pack's frame with one valid entry file."""
    folder = tmp_path / "pack"
    shutil.copytree(BUNDLED_PACK, folder, ignore=shutil.ignore_patterns("entries"))
    (folder / "entries").mkdir()
    (folder / "entries" / "a.yaml").write_text(
        GOOD_ENTRY.format(id="mot", title="Một là gì?"), encoding="utf-8"
    )
    return folder


def problems(folder: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_pack(folder)
    return caught.value.problems


def test_bundled_pack_is_valid_and_large_enough(kb: KnowledgeBase) -> None:
    assert len(kb.entries) >= 60
    assert len({e.topic for e in kb.entries}) == len(kb.topics)  # every topic has entries


def test_bundled_entries_follow_the_style_guide(kb: KnowledgeBase) -> None:
    for entry in kb.entries:
        texts = [entry.title, entry.answer, *entry.phrasings, *entry.keywords]
        assert all(unicodedata.is_normalized("NFC", t) for t in texts), entry.id
        assert entry.title.endswith("?"), entry.id
        assert entry.source, entry.id
        assert entry.reviewed <= dt.date.today(), entry.id
        assert entry.agencies, entry.id
        assert len(entry.answer.split()) <= 150, entry.id
        for url in re.findall(r"https?://[^\s)]+", entry.answer):
            assert url.startswith("https://"), (entry.id, url)
        assert "UBND cấp huyện" not in entry.answer, entry.id  # abolished on 1 July 2025


def test_bundled_pack_covers_the_plan_topics(kb: KnowledgeBase) -> None:
    titles = " ".join(e.title.casefold() for e in kb.entries)
    for subject in (
        "sipas",
        "papi",
        "pci",
        "par index",
        "một cửa",
        "vneid",
        "đề án 06",
        "iso",
        "khai sinh",
        "kết hôn",
        "khai tử",
        "căn cước",
        "thường trú",
        "tạm trú",
        "lý lịch tư pháp",
        "giấy phép lái xe",
        "hộ kinh doanh",
        "doanh nghiệp",
        "sổ đỏ",
        "giấy phép xây dựng",
        "hộ chiếu",
        "thất nghiệp",
        "bảo hiểm y tế",
        "người có công",
        "bưu điện",
        "chứng thực",
        "đăng ký xe",
        "phản ánh",
    ):
        assert subject in titles, subject


def test_a_valid_pack_loads(pack: Path) -> None:
    kb = load_pack(pack)
    assert [e.id for e in kb.entries] == ["mot"]
    assert kb.entries[0].file.endswith("a.yaml")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (GOOD_ENTRY.format(id="mot", title="Trùng?"), "[mot]: id bị trùng (đã có trong"),
        (GOOD_ENTRY.format(id="Hai Ba", title="Sai id?"), "id chỉ gồm chữ thường"),
        (GOOD_ENTRY.format(id="hai", title="Không hỏi"), "[hai]: tiêu đề là câu hỏi"),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?").replace("Câu trả lời.", "''"),
            "[hai]: câu trả lời trống",
        ),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?").replace("topic: cchc", "topic: khong"),
            "[hai]: chủ đề không có trong topics.yaml: khong",
        ),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?").replace("so-noi-vu", "so-khong-co"),
            "[hai]: cơ quan không có trong agencies.yaml: so-khong-co",
        ),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?").replace("2026-01-01", "2099-01-01"),
            "[hai]: 'reviewed' là một ngày trong tương lai",
        ),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?").replace("2026-01-01", "hôm qua"),
            "[hai]: 'reviewed' phải là ngày",
        ),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?") + "  source_url: http://x.vn\n",
            "[hai]: 'source_url' phải bắt đầu bằng https://",
        ),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?") + "  phrasing: [a]\n",
            "[hai]: khóa lạ 'phrasing'",
        ),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?") + "  related: [khong-co]\n",
            "[hai]: 'related' trỏ tới id không có: khong-co",
        ),
        (
            GOOD_ENTRY.format(id="hai", title="Hai?").replace(
                "  source: Nghị quyết 76/NQ-CP\n", ""
            ),
            "[hai]: thiếu 'source'",
        ),
        ("- id: hai\n  title: [unclosed\n", "không đọc được YAML"),
    ],
)
def test_each_problem_is_named_with_file_and_entry(pack: Path, entry: str, message: str) -> None:
    (pack / "entries" / "b.yaml").write_text(entry, encoding="utf-8")
    found = problems(pack)
    assert any("b.yaml" in p and message in p for p in found), found


def test_all_problems_are_reported_at_once(pack: Path) -> None:
    (pack / "entries" / "b.yaml").write_text(
        GOOD_ENTRY.format(id="mot", title="Trùng?")
        + GOOD_ENTRY.format(id="hai", title="Hai").replace("topic: cchc", "topic: khong"),
        encoding="utf-8",
    )
    assert len(problems(pack)) == 3


def test_missing_messages_and_folder_are_reported(pack: Path, tmp_path: Path) -> None:
    (pack / "messages.yaml").write_text("welcome: Xin chào\n", encoding="utf-8")
    assert any("thiếu câu 'fallback'" in p for p in problems(pack))
    assert "không tìm thấy" in problems(tmp_path / "nowhere")[0]


def test_text_is_normalised_to_nfc(pack: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Đăng ký khai sinh ở đâu?")
    (pack / "entries" / "b.yaml").write_text(
        GOOD_ENTRY.format(id="hai", title=decomposed), encoding="utf-8"
    )
    entry = load_pack(pack).entry("hai")
    assert entry is not None
    assert entry.title == unicodedata.normalize("NFC", decomposed)


def test_service_points_are_grouped_and_checked(pack: Path, kb: KnowledgeBase) -> None:
    # The bundled list: the city's centre, departments, communes and wards, sector agencies;
    # each group a tap, each point a second one (Telegram and Zalo show at most ten buttons).
    assert [g.id for g in kb.service_groups] == ["trung-tam", "so-nganh", "xa-phuong", "nganh-doc"]
    assert all(1 <= len(g.points) <= 9 for g in kb.service_groups)
    point = kb.service_point("cong-an-xa")
    assert point is not None
    assert point.group == "nganh-doc"
    (pack / "service_points.yaml").write_text(
        "- id: nhom\n  title: Nhóm\n  points:\n"
        "    - {id: mot, name: Một, agency: khong-co}\n"
        "    - {id: mot, name: Một lần nữa}\n"
        "- id: trong\n  title: Nhóm trống\n",
        encoding="utf-8",
    )
    found = problems(pack)
    assert any("[mot]" in p and "khong-co" in p for p in found), found
    assert any("[mot]" in p and "bị trùng" in p for p in found), found
    assert any("[trong]" in p and "ít nhất một" in p for p in found), found
