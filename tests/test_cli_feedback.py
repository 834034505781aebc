"""``bot feedback …`` as staff use it, through the real CLI entry on SQLite and PostgreSQL:
the list filters, ``show`` with masked and unmasked phones, the workflow and its history,
the CSV and XLSX exports, the satisfaction statistics and chart, and the contact purge.

The data is built through the citizens' side of the repository (``start_survey``,
``complete_survey``, ``create_complaint``) and ``FeedbackDesk``, as the bot builds it.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from PIL import Image

from bot.cli import feedback as cli_feedback
from bot.cli import main
from bot.feedback_desk import FeedbackDesk
from bot.feedback_report import index_chart, survey_stats
from bot.services import open_storage
from bot.settings import DatabaseSettings, Settings
from storage import feedback as feedback_storage
from storage.feedback import FeedbackView

VN = ZoneInfo("Asia/Ho_Chi_Minh")
Cli = Callable[..., tuple[int, str, str]]
Seeded = dict[str, FeedbackView]

PROCEDURE = "so-do-cap-lan-dau-ho-so"
PROCEDURE_TITLE = "Sổ đỏ (Giấy chứng nhận quyền sử dụng đất) cấp lần đầu cần giấy tờ gì?"
FORMULA = '=HYPERLINK("http://evil.example","Bấm vào đây")\x1b[2J'
DESCRIPTION = "Hồ sơ đất nộp ngày 10/11 đã trễ hẹn\r\n\x1b[31mXIN XỬ LÝ\x1b[0m\u202e"
ANSWER = "Đã chấn chỉnh cán bộ, xin lỗi ông/bà."
HEADERS = [
    "Mã",
    "Loại",
    "Trạng thái",
    "Nơi giải quyết",
    "Thủ tục",
    "Tiếp cận dịch vụ",
    "Thủ tục hành chính",
    "Công chức giải quyết",
    "Kết quả giải quyết",
    "Tiếp nhận, xử lý góp ý",
    "Ý kiến",
    "Nội dung phản ánh",
    "Mã hồ sơ",
    "Điện thoại",
    "Người xử lý",
    "Trả lời",
    "Ngày gửi",
    "Hạn xử lý",
    "Ngày đóng",
]


def settings_for(url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=url))


def ratings(*values: int | None) -> dict[str, int | None]:
    return dict(zip(feedback_storage.FACTORS, values, strict=True))


async def _seed(url: str) -> Seeded:
    """Five surveys (one left partial, one with every factor skipped) and three complaints:
    one in progress with a phone, one past its deadline, one answered."""
    now = dt.datetime.now(dt.UTC)
    async with open_storage(settings_for(url)) as storage:
        repo = storage.feedback
        desk = FeedbackDesk(repo)
        views: Seeded = {}

        async def survey(name: str, point: str | None, **values: Any) -> None:
            started = await repo.start_survey(
                "telegram", f"tg-{name}", deadline_at=now + dt.timedelta(days=15)
            )
            if values.pop("partial", False):
                await repo.update_survey(started.id, point_id=point, **values)
            else:
                await repo.complete_survey(started.id, point_id=point, **values)
            views[name] = started

        await survey(
            "s1", "so-tu-phap", procedure_id=PROCEDURE, comment=FORMULA, **ratings(5, 4, None, 2, 5)
        )
        await survey("s2", "so-tu-phap", **ratings(3, 3, 3, 3, 3))
        await survey("s3", "phuong-kinh-bac", comment="Cán bộ tận tình", **ratings(4, 5, 4, 5, 4))
        await survey("s4", "phuong-kinh-bac", partial=True, r_access=1)
        await survey("s5", "ttphcc")
        c1 = await repo.create_complaint(
            "zalo",
            "z-1",
            description=DESCRIPTION,
            deadline_at=now + dt.timedelta(days=10),
            point_id="phuong-kinh-bac",
            dossier_code="000.00.12.H05-250101-0001",
            phone="0912345678",
            contact_consent_at=now,
        )
        await desk.assign(c1.code, to="Trần Thị Bình", actor="Nguyễn Văn An")
        c2 = await repo.create_complaint(
            "telegram",
            "tg-c2",
            description="-1+2 lệ phí thu hai lần",
            deadline_at=now - dt.timedelta(days=1),
            point_id="so-tu-phap",
        )
        c3 = await repo.create_complaint(
            "zalo",
            "z-3",
            description="@SUM(A1) thái độ cán bộ",
            deadline_at=now - dt.timedelta(days=2),
            phone="0987654321",
            contact_consent_at=now,
        )
        await desk.answer(c3.code, text=ANSWER, actor="Lê Văn Cường")
        for name, view in (("c1", c1), ("c2", c2), ("c3", c3)):
            views[name] = view
        # The final state of each.
        return {name: await _get(repo, view.code) for name, view in views.items()}


async def _get(repo: feedback_storage.FeedbackRepository, code: str) -> FeedbackView:
    view = await repo.get(code)
    assert view is not None
    return view


def fetch(url: str, code: str) -> FeedbackView:
    async def go() -> FeedbackView:
        async with open_storage(settings_for(url), migrate=False) as storage:
            return await _get(storage.feedback, code)

    return asyncio.run(go())


def access_log(url: str) -> list[tuple[str, str, str | None]]:
    async def go() -> list[tuple[str, str, str | None]]:
        async with open_storage(settings_for(url), migrate=False) as storage:
            entries = await storage.feedback_inbox.access_log()
        return [(e.actor, e.action, e.detail) for e in reversed(entries)]

    return asyncio.run(go())


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith(("BOT_FEEDBACK", "BOT_CONTENT")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    return database_url


@pytest.fixture
def seeded(db: str) -> Seeded:
    return asyncio.run(_seed(db))


@pytest.fixture
def cli(db: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    def call(*args: str) -> tuple[int, str, str]:
        code = main(["feedback", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def codes(cli: Cli, *args: str) -> list[str]:
    code, out, err = cli("list", "--json", *args)
    assert code == 0, err
    return [record["code"] for record in json.loads(out)]


def local_day(view: FeedbackView) -> dt.date:
    return view.created_at.astimezone(VN).date()


def iso(moment: dt.datetime | None) -> str:
    return moment.astimezone(VN).replace(microsecond=0).isoformat() if moment else ""


def naive(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.astimezone(VN).replace(microsecond=0, tzinfo=None) if moment else None


def local(moment: dt.datetime) -> str:
    return moment.astimezone(VN).strftime("%d/%m/%Y %H:%M")


# --- list and export ------------------------------------------------------------------------


def test_list_and_export(seeded: Seeded, cli: Cli, db: str, tmp_path: Path) -> None:
    """Both read the same filters over one seeded database."""
    check_list(seeded, cli)
    check_exports(seeded, cli, db, tmp_path)


def check_list(seeded: Seeded, cli: Cli) -> None:
    """Each filter, the table's columns, overdue marks and escaped citizen text."""
    s1, s2, s3, s4, s5, c1, c2, c3 = (
        seeded[n].code for n in ("s1", "s2", "s3", "s4", "s5", "c1", "c2", "c3")
    )
    # Default: everything but the abandoned survey, oldest first.
    assert codes(cli) == [s1, s2, s3, s5, c1, c2, c3]
    assert codes(cli, "--kind", "complaint") == [c1, c2, c3]
    assert codes(cli, "--status", "in_progress", "--status", "answered") == [c1, c3]
    assert codes(cli, "--status", "partial") == [s4]
    assert codes(cli, "--point", "so-tu-phap") == [s1, s2, c2]
    assert codes(cli, "--rating-max", "2") == [s1]
    assert codes(cli, "--search", "trễ hẹn") == [c1]
    # Without diacritics and in capitals, on every backend.
    assert codes(cli, "--search", "TRE HEN") == [c1]
    assert codes(cli, "--search", "100%") == []  # '%' is a character, not a wildcard
    # Open and past the deadline: c3's has passed too, but it is answered.
    assert codes(cli, "--overdue") == [c2]
    # --from / --to are local dates, --to inclusive.
    first, last = local_day(seeded["s1"]), local_day(seeded["c3"])  # the same day, mostly
    since, until = first.isoformat(), last.isoformat()
    after = (last + dt.timedelta(days=1)).isoformat()
    before = (first - dt.timedelta(days=1)).isoformat()
    assert codes(cli, "--from", since, "--to", until) == [s1, s2, s3, s5, c1, c2, c3]
    assert codes(cli, "--from", after) == []
    assert codes(cli, "--to", before) == []
    assert codes(cli, "--from", before, "--kind", "complaint", "--point", "so-tu-phap") == [c2]

    code, _, err = cli("list", "--from", after, "--to", until)
    assert code == 2
    assert "phải trước hoặc bằng --to" in err
    with pytest.raises(SystemExit) as exited:  # argparse's own exit for a malformed date
        cli("list", "--from", "01/03/2026")
    assert exited.value.code == 2

    # The table: overdue marked, citizen text escaped.
    code, out, err = cli("list")
    assert code == 0, err
    assert "\x1b" not in out
    assert "\u202e" not in out
    lines = out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "Mã",
        "Loại",
        "Trạng thái",
        "Nơi giải quyết",
        "Gửi lúc",
        "Hạn xử lý",
        "Người xử lý",
        "Nội dung",
    ]
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in lines[1:])}
    c1, c2, s2 = seeded["c1"], seeded["c2"], seeded["s2"]
    assert rows[c1.code] == [
        c1.code,
        "Phản ánh",
        "Đang xử lý",
        "Phường Kinh Bắc",
        local(c1.created_at),
        local(c1.deadline_at),
        "Trần Thị Bình",
        "Hồ sơ đất nộp ngày 10/11 đã trễ hẹn \\x1…",
    ]
    assert rows[c2.code] == [
        c2.code,
        "Phản ánh",
        "Mới",
        "Sở Tư pháp",
        local(c2.created_at),
        local(c2.deadline_at) + " QUÁ HẠN",
        "-",
        "-1+2 lệ phí thu hai lần",
    ]
    # A survey without a comment shows its ratings ('-' for a skipped factor).
    assert rows[s2.code][-1] == "điểm 3 3 3 3 3"
    assert rows[seeded["s5"].code][-1] == "điểm - - - - -"
    assert rows[seeded["s1"].code][-1].startswith('=HYPERLINK("http://evil.example"')

    code, out, _ = cli("list", "--limit", "2")
    assert code == 0
    assert len(out.splitlines()) == 4
    assert out.splitlines()[-1].startswith("(Chỉ hiện 2 mục đầu tiên")
    code, out, _ = cli("list", "--kind", "survey", "--overdue")
    assert (code, out) == (0, "Không có mục nào khớp điều kiện.\n")


# --- show and the workflow ------------------------------------------------------------------


def test_show_then_handle_items_through_the_workflow(
    seeded: Seeded,
    cli: Cli,
    db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # show: the phone masked unless asked for, and who asked is logged.
    c1 = seeded["c1"]
    code, out, err = cli("show", c1.code.lower())
    assert code == 0, err
    assert "0912345678" not in out
    assert "09******78 (ẩn; --with-contact)" in out
    assert "z-1" not in out  # the citizen's platform id is contact data too
    assert "\x1b" not in out
    assert "  | \\x1b[31mXIN XỬ LÝ\\x1b[0m\\u202e" in out.splitlines()
    assert f"  Hạn xử lý:      {local(c1.deadline_at)}" in out.splitlines()
    assert access_log(db) == []

    code, out, err = cli("show", c1.code, "--with-contact")
    assert code == 2
    assert "--with-contact cần --by TÊN" in err

    code, out, err = cli("show", c1.code, "--with-contact", "--by", "Phạm Thị Dung", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["phone"], shown["external_id"]) == ("0912345678", "z-1")
    assert access_log(db) == [("Phạm Thị Dung", "show", c1.code)]

    code, out, err = cli("show", c1.code, "--json")
    shown = json.loads(out)
    assert shown["phone"] == "09******78"
    assert "external_id" not in shown
    assert shown["description"] == DESCRIPTION
    assert "\x1b" not in out  # JSON escapes it (\u001b) and the parsed text is intact
    assert shown["point_name"] == "Phường Kinh Bắc"
    assert shown["dossier_code"] == "000.00.12.H05-250101-0001"
    assert shown["deadline_at"] == iso(c1.deadline_at)

    # A survey: ratings with the factors' Vietnamese names, the procedure's title.
    code, out, err = cli("show", seeded["s1"].code)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Đánh giá {seeded['s1'].code}: Mới"
    assert f"  Thủ tục:        {PROCEDURE_TITLE} ({PROCEDURE})" in lines
    start = lines.index("Điểm đánh giá:")
    assert lines[start + 1 : start + 6] == [
        "  Tiếp cận dịch vụ:       5 – Rất hài lòng",
        "  Thủ tục hành chính:     4 – Hài lòng",
        "  Công chức giải quyết:   bỏ qua",
        "  Kết quả giải quyết:     2 – Không hài lòng",
        "  Tiếp nhận, xử lý góp ý: 5 – Rất hài lòng",
    ]
    assert '  | =HYPERLINK("http://evil.example","Bấm vào đây")\\x1b[2J' in lines

    code, _, err = cli("show", "PA-ZZZZZ")
    assert (code, err) == (2, "Không có mục nào mã PA-ZZZZZ.\n")

    # The workflow: every step recorded with who and when, bad moves refused.
    # --- the workflow ---------------------------------------------------------------------------

    c2 = seeded["c2"].code
    monkeypatch.setenv("LOGNAME", "nv.tiepnhan")  # --by defaults to the system user
    code, out, err = cli("assign", c2, "--to", "Trần Thị Bình")
    assert code == 0, err
    assert out == f"{c2}: Đang xử lý (bởi nv.tiepnhan; giao cho Trần Thị Bình).\n"
    long_answer = "Kính gửi ông/bà,\nHồ sơ đã được hoàn phí.\n" + "Chi tiết. " * 40
    answer_file = tmp_path / "tra-loi.txt"
    answer_file.write_text(long_answer, encoding="utf-8")
    code, out, err = cli("answer", c2, "--text-file", str(answer_file), "--by", "Trần Thị Bình")
    assert code == 0, err
    assert out == f"{c2}: Đã trả lời (bởi Trần Thị Bình; bot sẽ gửi thông báo tới người dân).\n"
    code, out, err = cli("resolve", c2, "--by", "Lê Văn Cường")
    assert (code, out.split(" (")[0]) == (0, f"{c2}: Đã giải quyết")

    # Moves the workflow does not allow, and bad input: exit 2 with the reason.
    for args, reason in (
        (("answer", c2, "--text", "Lần nữa", "--by", "X"), "không thể chuyển"),
        (("resolve", seeded["s4"].code, "--by", "X"), "không thể chuyển"),
        (("answer", seeded["c1"].code, "--text", "   ", "--by", "X"), "không được để trống"),
        (("reject", "PA-ZZZZZ", "--reason", "Trùng", "--by", "X"), "Không có mục nào mã"),
        (("answer", seeded["c1"].code, "--text-file", str(tmp_path / "none.txt")), "Không đọc"),
        (("assign", seeded["c1"].code, "--to", "Y", "--by", "  "), "--by TÊN"),
    ):
        code, out, err = cli(*args)
        assert code == 2, args
        assert reason in err, (args, err)
        assert out == ""

    code, out, err = cli("show", c2, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["status"], shown["assignee"], shown["answer"]) == (
        "resolved",
        "Trần Thị Bình",
        long_answer.strip(),
    )
    assert shown["answered_by"] == "Trần Thị Bình"
    assert [(h["from"], h["to"], h["actor"], h["via"], h["note"]) for h in shown["history"]] == [
        (None, "new", "citizen", "citizen", None),
        ("new", "in_progress", "nv.tiepnhan", "cli", "giao cho Trần Thị Bình"),
        ("in_progress", "answered", "Trần Thị Bình", "cli", None),
        ("answered", "resolved", "Lê Văn Cường", "cli", None),
    ]
    assert all(h["at"].endswith("+07:00") for h in shown["history"])

    # A long answer can come from standard input.
    c1 = seeded["c1"].code
    monkeypatch.setattr("sys.stdin", io.StringIO("Không thuộc thẩm quyền."))
    code, out, err = cli("answer", c1, "--text-file", "-", "--by", "Trần Thị Bình")
    assert code == 0, err
    assert fetch(db, c1).answer == "Không thuộc thẩm quyền."
    code, out, err = cli("show", c1)
    history = out.split("Lịch sử:\n")[1].splitlines()
    assert [line.split("  ", 2)[2] for line in history] == [
        "tạo (Mới), bởi người dân",
        "Mới → Đang xử lý, bởi Nguyễn Văn An (dòng lệnh) — giao cho Trần Thị Bình",
        "Đang xử lý → Đã trả lời, bởi Trần Thị Bình (dòng lệnh)",
    ]
    fresh = seeded["s2"].code
    code, out, err = cli("reject", fresh, "--reason", "Phiếu thử nghiệm", "--by", "Lê Văn Cường")
    assert (code, out.split(" (")[0]) == (0, f"{fresh}: Từ chối")
    rejected = fetch(db, fresh)
    assert (rejected.status, rejected.answer, rejected.closed_at is not None) == (
        "rejected",
        "Phiếu thử nghiệm",
        True,
    )


# --- exports --------------------------------------------------------------------------------


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8")[1:], newline="")))


def check_exports(seeded: Seeded, cli: Cli, db: str, tmp_path: Path) -> None:
    """Exports neutralise formulas, mask phones and log who took contacts."""
    target = tmp_path / "gop-y.csv"
    code, _, err = cli("export", "--output", str(target))
    assert code == 0, err
    assert "Đã xuất 7 mục vào" in err
    data = target.read_bytes()
    assert b"\r\n" in data
    rows = _csv_rows(data)
    assert rows[0] == HEADERS
    by_code = {row[0]: row for row in rows[1:]}
    assert list(by_code) == [seeded[n].code for n in ("s1", "s2", "s3", "s5", "c1", "c2", "c3")]
    s1, c1, c2, c3 = (seeded[n] for n in ("s1", "c1", "c2", "c3"))
    assert by_code[s1.code] == [
        s1.code,
        "Đánh giá",
        "Mới",
        "Sở Tư pháp",
        PROCEDURE_TITLE,
        "5",
        "4",
        "",
        "2",
        "5",
        "'" + FORMULA.replace("\x1b", "\\x1b"),
        "",
        "",
        "",
        "",
        "",
        iso(s1.created_at),
        iso(s1.deadline_at),
        "",
    ]
    assert by_code[c1.code] == [
        c1.code,
        "Phản ánh",
        "Đang xử lý",
        "Phường Kinh Bắc",
        "",
        *[""] * 5,
        "",
        DESCRIPTION.replace("\x1b", "\\x1b"),
        "000.00.12.H05-250101-0001",
        "09******78",
        "Trần Thị Bình",
        "",
        iso(c1.created_at),
        iso(c1.deadline_at),
        "",
    ]
    assert by_code[c2.code][11] == "'-1+2 lệ phí thu hai lần"
    assert by_code[c3.code] == [
        c3.code,
        "Phản ánh",
        "Đã trả lời",
        "",
        "",
        *[""] * 5,
        "",
        "'@SUM(A1) thái độ cán bộ",
        "",
        "09******21",
        "",
        ANSWER,
        iso(c3.created_at),
        iso(c3.deadline_at),
        iso(c3.closed_at),
    ]
    assert iso(c3.created_at).endswith("+07:00")
    assert access_log(db) == []

    # Unmasked phones only with a name, which the access log keeps.
    code, _, err = cli("export", "--output", str(target), "--with-contact")
    assert code == 2
    assert "--with-contact cần --by TÊN" in err
    args = ["--kind", "complaint", "--search", "cán bộ", "--with-contact", "--by", "Phạm Thị Dung"]
    code, out, err = cli("export", "--output", "-", *args)
    assert code == 0, err
    rows = _csv_rows(out.encode("utf-8"))
    assert [(row[0], row[13]) for row in rows[1:]] == [(c3.code, "0987654321")]
    assert "Đã xuất 1 mục (kèm số điện thoại" in err
    assert access_log(db) == [
        ("Phạm Thị Dung", "export", "csv, 1 mục; --kind complaint --search 'cán bộ'")
    ]

    # XLSX: string cells (never formulas), numbers, real dates.
    target = tmp_path / "gop-y.xlsx"
    args = ["--format", "xlsx", "--output", str(target), "--with-contact", "--by", "Dung"]
    assert cli("export", *args)[0] == 0
    assert access_log(db)[-1] == ("Dung", "export", "xlsx, 7 mục; không lọc")
    with zipfile.ZipFile(target) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml
    assert b"<f " not in sheet_xml

    sheet = load_workbook(target).active
    assert sheet is not None
    rows = list(sheet.iter_rows())
    assert len(rows) == 8
    for row in rows:
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
            if isinstance(cell.value, str):
                assert cell.data_type == "s"
    assert [cell.value for cell in rows[0]] == HEADERS
    values = {row[0].value: [cell.value for cell in row] for row in rows[1:]}
    s1, s5, c1, c3 = (seeded[n] for n in ("s1", "s5", "c1", "c3"))
    assert values[s1.code] == [
        s1.code,
        "Đánh giá",
        "Mới",
        "Sở Tư pháp",
        PROCEDURE_TITLE,
        5,
        4,
        None,
        2,
        5,
        FORMULA.replace("\x1b", "\\x1b"),  # a string cell: no apostrophe needed
        None,
        None,
        None,
        None,
        None,
        naive(s1.created_at),
        naive(s1.deadline_at),
        None,
    ]
    assert values[s5.code][5:10] == [None] * 5
    assert values[c1.code][11:16] == [
        DESCRIPTION.replace("\r\n", "\n").replace("\x1b", "\\x1b"),  # XML keeps "\n"
        "000.00.12.H05-250101-0001",
        "0912345678",
        "Trần Thị Bình",
        None,
    ]
    assert values[c3.code][10:] == [
        None,
        "@SUM(A1) thái độ cán bộ",
        None,
        "0987654321",
        None,
        ANSWER,
        naive(c3.created_at),
        naive(c3.deadline_at),
        naive(c3.closed_at),
    ]
    dates = [cell for cell in rows[1][16:19] if cell.value is not None]
    assert dates
    assert all(isinstance(cell.value, dt.datetime) for cell in dates)
    assert {cell.number_format for cell in dates} == {"dd/mm/yyyy hh:mm"}

    code, _, err = cli("export", "--format", "xlsx", "--output", "-")
    assert code == 2
    assert "XLSX cần --output" in err
    missing = tmp_path / "no-such-folder" / "x.xlsx"
    code, _, err = cli("export", "--format", "xlsx", "--output", str(missing))
    assert code == 1
    assert f"Không ghi được tệp {missing}" in err


# --- statistics and the contact purge -------------------------------------------------------


def _factors(*pairs: tuple[int, float | None, float | None]) -> dict[str, Any]:
    return {
        factor: {"answered": n, "mean": mean, "satisfied_percent": share}
        for factor, (n, mean, share) in zip(feedback_storage.FACTORS, pairs, strict=True)
    }


def test_stats_and_chart_then_the_contact_purge(
    seeded: Seeded, cli: Cli, tmp_path: Path, db: str
) -> None:
    chart = tmp_path / "chi-so.png"
    code, out, err = cli("stats", "--json", "--chart", str(chart))
    assert code == 0, err
    stats = json.loads(out)
    # Completed surveys s1 (5,4,-,2,5), s2 (3,3,3,3,3), s3 (4,5,4,5,4), s5 (all skipped);
    # the partial s4 does not count.
    third, two_thirds = pytest.approx(100 / 3), pytest.approx(200 / 3)
    assert stats["overall"] == {
        "responses": 4,
        "factors": _factors(
            (3, 4.0, two_thirds),
            (3, 4.0, two_thirds),
            (2, 3.5, 50.0),
            (3, pytest.approx(10 / 3), third),
            (3, 4.0, two_thirds),
        ),
        "index": pytest.approx((200 / 3 * 3 + 50 + 100 / 3) / 5),
    }
    points = {p["point_id"]: p for p in stats["points"]}
    assert list(points) == ["ttphcc", "so-tu-phap", "phuong-kinh-bac"]  # the pack's order
    assert points["so-tu-phap"] == {
        "point_id": "so-tu-phap",
        "point_name": "Sở Tư pháp",
        "responses": 2,
        "factors": _factors(
            (2, 4.0, 50.0), (2, 3.5, 50.0), (1, 3.0, 0.0), (2, 2.5, 0.0), (2, 4.0, 50.0)
        ),
        "index": 30.0,
    }
    assert points["phuong-kinh-bac"]["responses"] == 1
    assert points["phuong-kinh-bac"]["index"] == 100.0
    assert points["ttphcc"]["responses"] == 1
    assert points["ttphcc"]["index"] is None
    assert points["ttphcc"]["factors"]["r_access"] == {
        "answered": 0,
        "mean": None,
        "satisfied_percent": None,
    }
    month = seeded["s1"].completed_at
    assert month is not None
    assert stats["months"] == [
        {
            "month": month.astimezone(VN).strftime("%Y-%m"),
            "responses": 4,
            "index": stats["overall"]["index"],
        }
    ]
    data = chart.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000
    with Image.open(chart) as image:
        assert image.format == "PNG"
        assert image.width >= 800

    code, out, err = cli("stats", "--point", "phuong-kinh-bac", "--json")
    assert json.loads(out)["overall"]["responses"] == 1
    code, out, err = cli("stats")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Mức độ hài lòng — 4 phiếu đánh giá đã hoàn thành."
    cells = {row[0]: row for row in (re.split(r"\s{2,}", line) for line in lines) if len(row) == 8}
    assert cells["Sở Tư pháp"] == [
        "Sở Tư pháp",
        "2",
        "4,00 · 50,0%",
        "3,50 · 50,0%",
        "3,00 · 0,0%",
        "2,50 · 0,0%",
        "4,00 · 50,0%",
        "30,0%",
    ]
    assert cells["Chung"][1] == "4"
    assert cells["Chung"][-1] == "56,7%"
    tomorrow = (local_day(seeded["s1"]) + dt.timedelta(days=1)).isoformat()
    code, out, err = cli("stats", "--from", tomorrow)
    assert out.startswith("Mức độ hài lòng — 0 phiếu đánh giá đã hoàn thành, từ ")

    # The purge erases the contacts of closed items only (the statistics above stay whole).
    c1, c2, c3 = (seeded[n].code for n in ("c1", "c2", "c3"))
    assert cli("resolve", c2, "--by", "Bình")[0] == 0  # closed, but has no contact fields
    # The default retention (90 days) has not passed for anything.
    code, out, err = cli("purge", "--by", "Cán bộ bảo vệ dữ liệu")
    assert code == 0, err
    assert out.startswith("Đã xóa số điện thoại và mã hồ sơ của 0 mục đóng trước ")
    assert out.endswith("(quá 90 ngày).\n")
    assert fetch(db, c3).phone == "0987654321"

    code, out, err = cli("purge", "--days", "0", "--by", "Cán bộ bảo vệ dữ liệu")
    assert code == 0, err
    assert out.startswith("Đã xóa số điện thoại và mã hồ sơ của 1 mục ")
    answered = fetch(db, c3)
    assert (answered.phone, answered.dossier_code) == (None, None)
    assert answered.contact_erased_at is not None
    assert answered.answer == ANSWER  # only the contact fields go
    open_item = fetch(db, c1)  # still being handled: kept
    assert (open_item.phone, open_item.dossier_code) == ("0912345678", "000.00.12.H05-250101-0001")
    assert [(actor, action) for actor, action, _ in access_log(db)] == [
        ("Cán bộ bảo vệ dữ liệu", "purge"),
        ("Cán bộ bảo vệ dữ liệu", "purge"),
    ]
    code, out, _ = cli("show", c3)
    assert "  Điện thoại:     đã xóa lúc " in out

    code, out, err = cli("access-log")
    assert code == 0, err
    lines = out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["Thời điểm", "Người", "Thao tác", "Chi tiết"]
    assert re.split(r"\s{2,}", lines[1])[1:3] == [
        "Cán bộ bảo vệ dữ liệu (dòng lệnh)",
        "xóa liên hệ hết hạn",
    ]
    assert re.split(r"\s{2,}", lines[1])[3].startswith("1 mục đóng trước ")
    code, out, _ = cli("access-log", "--json")
    entries = json.loads(out)
    assert [e["detail"].split(" ")[0] for e in entries] == ["1", "0"]  # newest first
    assert all(e["at"].endswith("+07:00") for e in entries)


def test_survey_stats_months_follow_the_local_calendar() -> None:
    rows = [
        # 23:59 on 31 January in Vietnam; one minute later it is February there.
        ("a", dt.datetime(2026, 1, 31, 16, 59, tzinfo=dt.UTC), (5, 5, 5, 5, 5)),
        ("a", dt.datetime(2026, 1, 31, 17, 0, tzinfo=dt.UTC), (1, 2, 3, 4, 5)),
        ("b", dt.datetime(2026, 4, 10, 3, 0, tzinfo=dt.UTC), (4, None, None, None, None)),
    ]
    stats = survey_stats(rows, VN)
    assert {m: (t.responses, t.index) for m, t in stats.by_month.items()} == {
        "2026-01": (1, 100.0),
        "2026-02": (1, 40.0),
        "2026-03": (0, None),
        "2026-04": (1, 100.0),
    }
    assert stats.by_point["a"].index == 70.0
    assert stats.by_point["b"].index == 100.0
    assert stats.by_point["b"].factors[1].answered == 0
    overall = stats.overall
    assert [f.mean for f in overall.factors] == [pytest.approx(10 / 3), 3.5, 4.0, 4.5, 5.0]
    assert [f.satisfied for f in overall.factors] == [
        pytest.approx(200 / 3),
        50.0,
        50.0,
        100.0,
        100.0,
    ]
    assert overall.index == pytest.approx((200 / 3 + 50 + 50 + 100 + 100) / 5)


def test_chart_labels_are_taken_literally(tmp_path: Path) -> None:
    target = tmp_path / "chart.png"
    # Mathtext would fail on the unknown command; the label is drawn as typed.
    index_chart(
        [("Phường $\\khongco$ 100$", 55.5, 3), ("Xã Ê-đê", 80.0, 12)],
        target,
        title="Chỉ số hài lòng",
        note="ghi chú",
    )
    assert target.read_bytes().startswith(b"\x89PNG")


# --- the CLI's own copies of the storage constants ------------------------------------------


def test_cli_constants_match_the_storage_layer() -> None:
    assert cli_feedback.KINDS == feedback_storage.KINDS
    assert cli_feedback.STATUSES == feedback_storage.STATUSES
    assert cli_feedback.FACTORS == feedback_storage.FACTORS
    assert set(cli_feedback.LISTED) == set(feedback_storage.STATUSES) - {"partial"}
