"""``bot subscribers list|count|export`` through the real CLI entry, and the repository's
streaming and counting underneath it (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from bot.cli import main
from bot.cli import subscribers as cli_subscribers
from bot.services import Storage, open_storage
from bot.settings import DatabaseSettings, Settings
from storage import subscribers as subscribers_module
from storage.subscribers import SubscriberRepository, SubscriberView

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
# 20:30 UTC on 28 February is 03:30 on 1 March in Vietnam.
LAST_SEEN = dt.datetime(2026, 2, 28, 20, 30, tzinfo=dt.UTC)
HYPERLINK = '=HYPERLINK("http://evil.example","Bấm vào đây")'

# (channel, external id, display name, topics, final status); None topics: never subscribed.
PEOPLE: list[tuple[str, str, str | None, list[str] | None, str]] = [
    ("telegram", "1001", "Nguyễn Văn An", ["thu-tuc-moi", "chinh-quyen-so"], "active"),
    ("telegram", "1002", HYPERLINK, ["thu-tuc-moi"], "blocked"),
    ("zalo", "z-3", "Trần Thị Bích", ["chinh-quyen-so"], "unsubscribed"),
    ("zalo", "z-4", "+84 912 345 678", ["thu-tuc-moi"], "unreachable"),
    ("zalo", "z-5", "-1+2", ["dich-vu-cong-truc-tuyen"], "active"),
    ("telegram", "1006", "@SUM(A1)", ["thu-tuc-moi"], "active"),
    ("telegram", "1007", "\tTab", ["tin-tuc-cchc"], "active"),
    ("telegram", "1008", "\rCR\x1b[2J\u202eĐảo", ["tin-tuc-cchc"], "active"),
    ("web", "web-user-0001", None, None, "unsubscribed"),
]


async def _seed(repository: SubscriberRepository) -> dict[str, SubscriberView]:
    for channel, external_id, name, topics, status in PEOPLE:
        if topics is None:
            await repository.touch(channel, external_id, display_name=name, at=LAST_SEEN)
            continue
        await repository.subscribe(
            channel, external_id, topics, source=f"{channel}:topic", display_name=name
        )
        if status == "unsubscribed":
            await repository.unsubscribe(channel, external_id, source=f"{channel}:stop")
        elif status != "active":
            await repository.set_status(channel, external_id, status, source="test")
    await repository.touch("telegram", "1001", at=LAST_SEEN)
    views = {}
    for channel, external_id, *_ in PEOPLE:
        view = await repository.get(channel, external_id)
        assert view is not None
        views[external_id] = view
    return views


def _local(moment: dt.datetime | None) -> str:
    return moment.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M") if moment else "-"


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(VIETNAM).replace(microsecond=0).isoformat() if moment else None


def _expected_record(view: SubscriberView) -> dict[str, Any]:
    return {
        "id": view.id,
        "channel": view.channel,
        "external_id": view.external_id,
        "display_name": view.display_name,
        "status": view.status,
        "topics": list(view.topics),
        "consent_at": _iso(view.consent_at),
        "consent_source": view.consent_source,
        "last_interaction_at": _iso(view.last_interaction_at),
    }


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def seeded(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, SubscriberView]:
    """The subscribers above in a SQLite file that ``bot`` reads through BOT_DATABASE_URL."""
    monkeypatch.setenv("BOT_DATABASE_URL", settings.database.url)

    async def seed() -> dict[str, SubscriberView]:
        async with open_storage(settings) as storage:
            return await _seed(storage.subscribers)

    return asyncio.run(seed())


def test_count_prints_totals_per_channel_and_status(
    seeded: dict[str, SubscriberView], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["subscribers", "count"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Tổng số: 9 người đăng ký",
        "Kênh      Đang nhận tin  Đã hủy đăng ký  Đã chặn bot  Không liên lạc được  Tổng",
        "telegram              4               0            1                    0     5",
        "web                   0               1            0                    0     1",
        "zalo                  1               1            0                    1     3",
        "Tổng                  5               2            1                    1     9",
    ]

    assert main(["subscribers", "count", "--json", "--topic", "thu-tuc-moi"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "total": 4,
        "by_channel": {"telegram": 3, "zalo": 1},
        "by_status": {"active": 2, "unsubscribed": 0, "blocked": 1, "unreachable": 1},
        "by_channel_status": {
            "telegram": {"active": 2, "unsubscribed": 0, "blocked": 1, "unreachable": 0},
            "zalo": {"active": 0, "unsubscribed": 0, "blocked": 0, "unreachable": 1},
        },
    }

    assert main(["subscribers", "count", "--json", "--status", "active", "--channel", "ZALO"]) == 0
    counted = json.loads(capsys.readouterr().out)
    assert counted["total"] == 1
    assert counted["by_channel"] == {"zalo": 1}

    assert main(["subscribers", "count", "--topic", "khong-co"]) == 0
    assert capsys.readouterr().out == "Tổng số: 0 người đăng ký\n"


def test_list_prints_a_table_in_vietnam_time_with_names_made_harmless(
    seeded: dict[str, SubscriberView], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["subscribers", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split("  ")[0] == "ID"
    header = [cell.strip() for cell in lines[0].split("  ") if cell.strip()]
    assert header == [
        "ID",
        "Kênh",
        "Mã người dùng",
        "Tên",
        "Trạng thái",
        "Chủ đề",
        "Đồng ý lúc",
        "Tương tác gần nhất",
    ]
    assert len(lines) == 1 + len(PEOPLE)  # no "more rows" note below the default limit of 50
    an = seeded["1001"]
    cells = [cell.strip() for cell in lines[1].split("  ") if cell.strip()]
    assert cells == [
        str(an.id),
        "telegram",
        "1001",
        "Nguyễn Văn An",
        "active",
        "thu-tuc-moi, chinh-quyen-so",
        _local(an.consent_at),
        "01/03/2026 03:30",
    ]
    web = [cell.strip() for cell in lines[-1].split("  ") if cell.strip()]
    assert web == [
        str(seeded["web-user-0001"].id),
        "web",
        "web-user-0001",
        "-",
        "unsubscribed",
        "-",
        "-",
        "01/03/2026 03:30",
    ]
    # Rows in id order, columns aligned.
    assert [int(line.split()[0]) for line in lines[1:]] == sorted(v.id for v in seeded.values())
    starts = {line.index("telegram") for line in lines if "telegram" in line}
    assert len(starts) == 1
    # What a citizen typed cannot steer the terminal: no raw control or bidi characters.
    assert "\x1b" not in out
    assert "\r" not in out
    assert "\t" not in out
    assert "\u202e" not in out
    assert "\\rCR\\x1b[2J\\u202eĐảo" in out
    assert "\\tTab" in out
    assert HYPERLINK[:29] + "…" in out  # names are cut at 30 columns

    assert main(["subscribers", "list", "--limit", "2", "--status", "active"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert [line.split()[1] for line in lines[1:3]] == ["telegram", "zalo"]
    assert lines[3] == (
        "(Chỉ hiện 2 người đầu tiên theo ID; còn nữa — dùng --limit N "
        "hoặc `bot subscribers export`.)"
    )

    assert main(["subscribers", "list", "--channel", "viber"]) == 0
    assert capsys.readouterr().out == "Không có người đăng ký nào khớp điều kiện.\n"


def test_list_json_has_the_export_shape(
    seeded: dict[str, SubscriberView], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["subscribers", "list", "--json", "--topic", "tin-tuc-cchc", "--limit", "5"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == [_expected_record(seeded["1007"]), _expected_record(seeded["1008"])]
    assert "Đảo" in out  # Vietnamese stays readable …
    assert "\\u001b" in out  # … invisible and steering characters are escaped
    assert "\\u202e" in out
    assert "\u202e" not in out
    assert "\x1b" not in out


def test_list_rejects_a_limit_below_one(
    seeded: dict[str, SubscriberView], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["subscribers", "list", "--limit", "0"])
    assert exited.value.code == 2
    assert "cần một số nguyên dương" in capsys.readouterr().err


def test_export_csv_file_has_a_bom_english_headers_and_no_formulas(
    seeded: dict[str, SubscriberView], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "subscribers.csv"
    assert main(["subscribers", "export", "--format", "csv", "--output", str(target)]) == 0
    assert capsys.readouterr().err.strip().endswith(f"Đã xuất 9 người đăng ký vào {target}.")
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfid,channel,external_id,display_name,status,topics,")
    assert raw.count(b"\xef\xbb\xbf") == 1
    text = raw.decode("utf-8-sig")
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == [
        "id",
        "channel",
        "external_id",
        "display_name",
        "status",
        "topics",
        "consent_at",
        "consent_source",
        "last_interaction_at",
    ]
    by_id = {row[2]: row for row in rows[1:]}
    assert len(by_id) == len(rows) - 1 == len(PEOPLE)
    an = seeded["1001"]
    assert by_id["1001"] == [
        str(an.id),
        "telegram",
        "1001",
        "Nguyễn Văn An",
        "active",
        "thu-tuc-moi;chinh-quyen-so",
        _iso(an.consent_at),
        "telegram:topic",
        "2026-03-01T03:30:00+07:00",
    ]
    assert by_id["web-user-0001"][3:] == [
        "",
        "unsubscribed",
        "",
        "",
        "",
        "2026-03-01T03:30:00+07:00",
    ]
    names = {external_id: row[3] for external_id, row in by_id.items()}
    assert names["1002"] == "'" + HYPERLINK
    assert names["z-4"] == "'+84 912 345 678"
    assert names["z-5"] == "'-1+2"
    assert names["1006"] == "'@SUM(A1)"
    assert names["1007"] == "'\tTab"
    assert names["1008"] == "'\rCR\x1b[2J\u202eĐảo"
    assert names["z-3"] == "Trần Thị Bích"
    assert [row[0] for row in rows[1:]] == [str(v.id) for v in seeded.values()]


def test_export_csv_to_stdout_filters_and_keeps_the_bom(
    seeded: dict[str, SubscriberView], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["subscribers", "export", "--status", "blocked"]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(captured.out.decode("utf-8-sig"), newline="")))
    assert len(rows) == 2
    assert rows[1][2:6] == ["1002", "'" + HYPERLINK, "blocked", "thu-tuc-moi"]
    assert "Đã xuất 1 người đăng ký." in captured.err.decode("utf-8")


def test_export_json_streams_every_match(
    seeded: dict[str, SubscriberView], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["subscribers", "export", "--format", "json"]) == 0
    out = capsysbinary.readouterr().out
    assert not out.startswith(b"\xef\xbb\xbf")
    assert json.loads(out) == [_expected_record(v) for v in seeded.values()]
    assert out.decode("utf-8").count("\n") == len(PEOPLE) + 2  # "[", one line each, "]"
    assert b"\x1b" not in out

    assert main(["subscribers", "export", "--format", "json", "--topic", "chinh-quyen-so"]) == 0
    assert json.loads(capsysbinary.readouterr().out) == [
        _expected_record(seeded["1001"]),
        _expected_record(seeded["z-3"]),
    ]

    assert main(["subscribers", "export", "--format", "json", "--channel", "viber"]) == 0
    assert capsysbinary.readouterr().out == b"[]\n"
    assert main(["subscribers", "export", "--channel", "viber"]) == 0
    assert capsysbinary.readouterr().out.decode("utf-8-sig").splitlines() == [
        ",".join(cli_subscribers.EXPORT_COLUMNS)
    ]


def test_export_to_a_folder_that_does_not_exist_fails_politely(
    seeded: dict[str, SubscriberView], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "khong-co" / "x.csv"
    assert main(["subscribers", "export", "--output", str(target)]) == 1
    assert f"Không ghi được tệp {target}" in capsys.readouterr().err
    assert not target.exists()


def test_cli_statuses_are_the_storage_statuses() -> None:
    assert cli_subscribers.STATUSES == subscribers_module.STATUSES


# --- the repository, on SQLite and PostgreSQL --------------------------------------------------


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    async with open_storage(Settings(database=DatabaseSettings(url=database_url))) as opened:
        yield opened


async def _ids(views: AsyncIterator[SubscriberView]) -> list[str]:
    return [view.external_id async for view in views]


async def test_iter_views_reads_keyset_batches_in_id_order(storage: Storage) -> None:
    repository = storage.subscribers
    seeded = await _seed(repository)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM subscribers" in statement:
            statements.append(" ".join(statement.split()))

    event.listen(storage.db.sync_engine, "before_cursor_execute", record)
    try:
        everyone = await _ids(repository.iter_views(batch=4))
    finally:
        event.remove(storage.db.sync_engine, "before_cursor_execute", record)
    assert everyone == [external_id for _, external_id, *_ in PEOPLE]
    # 9 rows in batches of 4: 4, 4, 1 — the short page ends the scan.
    assert len(statements) == 3
    assert all("ORDER BY subscribers.id" in s and "LIMIT" in s for s in statements)
    assert "subscribers.id >" not in statements[0]
    assert all("subscribers.id >" in s for s in statements[1:])
    # A last full page is followed by an empty one; one row per page works too.
    assert len(await _ids(repository.iter_views(batch=3))) == 9
    assert len(await _ids(repository.iter_views(batch=1))) == 9

    views = [v async for v in repository.iter_views(batch=2)]
    assert views == list(seeded.values())


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [p[1] for p in PEOPLE]),
        ({"status": "active"}, ["1001", "z-5", "1006", "1007", "1008"]),
        ({"channel": "zalo"}, ["z-3", "z-4", "z-5"]),
        ({"topic": "thu-tuc-moi"}, ["1001", "1002", "z-4", "1006"]),
        ({"topic": "thu-tuc-moi", "status": "active"}, ["1001", "1006"]),
        ({"topic": "chinh-quyen-so", "channel": "zalo"}, ["z-3"]),
        ({"status": "unsubscribed", "channel": "web"}, ["web-user-0001"]),
        ({"topic": "thu-tuc"}, []),  # a whole topic id, not a substring
        ({"status": "blocked", "channel": "zalo"}, []),
    ],
)
async def test_filters_and_counts_agree(
    storage: Storage, filters: dict[str, str], expected: list[str]
) -> None:
    repository = storage.subscribers
    await _seed(repository)
    assert await _ids(repository.iter_views(batch=2, **filters)) == expected
    assert await repository.count_by(**filters) == len(expected)
    assert sum((await repository.count_grouped(**filters)).values()) == len(expected)


async def test_count_grouped_by_channel_and_status(storage: Storage) -> None:
    repository = storage.subscribers
    await _seed(repository)
    assert await repository.count_grouped() == {
        ("telegram", "active"): 4,
        ("telegram", "blocked"): 1,
        ("zalo", "active"): 1,
        ("zalo", "unsubscribed"): 1,
        ("zalo", "unreachable"): 1,
        ("web", "unsubscribed"): 1,
    }
    assert await repository.count_grouped(topic="tin-tuc-cchc") == {("telegram", "active"): 2}


async def test_the_caller_may_write_between_batches(storage: Storage) -> None:
    """No connection is held while the caller works (SQLite has a pool of one), and keyset
    paging neither skips nor repeats rows whose status changes under it."""
    repository = storage.subscribers
    await _seed(repository)
    seen = []
    async with asyncio.timeout(20):
        async for view in repository.iter_views(status="active", batch=2):
            seen.append(view.external_id)
            await repository.set_status(view.channel, view.external_id, "blocked", source="test")
    assert seen == ["1001", "z-5", "1006", "1007", "1008"]
    assert await repository.count_by(status="active") == 0
    assert await repository.count_by(status="blocked") == 6


async def test_pending_interactions_are_written_before_reading(storage: Storage) -> None:
    repository = storage.subscribers
    repository.touch_soon("zalo", "new-citizen", display_name="Lê Thị Hoa")
    views = [v async for v in repository.iter_views()]
    assert [(v.external_id, v.display_name, v.status) for v in views] == [
        ("new-citizen", "Lê Thị Hoa", "unsubscribed")
    ]
    repository.touch_soon("zalo", "second")
    assert await repository.count_by(channel="zalo") == 2


async def test_batch_must_be_positive(storage: Storage) -> None:
    with pytest.raises(ValueError, match="batch"):
        await anext(storage.subscribers.iter_views(batch=0))
