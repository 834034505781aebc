"""``bot content import-tthc``: the procedure catalogue (CSV, XLSX, JSON) becomes generated
entries in their own folder of a pack; re-imports report what changed and never touch
hand-written entries. Every import here runs the real CLI on a temporary copy of a pack."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from openpyxl import Workbook

from content.loader import BUNDLED_PACK, load_pack
from content.normalize import strip_marks
from content.tthc_source import column_key
from tests.test_cli import run_bot

SAMPLES = BUNDLED_PACK.parent / "samples"
SAMPLE_CSV = SAMPLES / "tthc-sample.csv"
SAMPLE_JSON = SAMPLES / "tthc-sample.json"
SAMPLE_CODES = {"1.001193", "1.004222", "1.013124", "2.000815", "2.001417", "1.001612"}
# Bundled entry files copied into the test packs, so imported entries meet real competition.
HAND_WRITTEN = ("ho-tich.yaml", "cu-tru.yaml", "kinh-doanh.yaml")
OWN_ENTRY = """# Hand-written: shows the official cards of two procedures.
- id: khai-sinh-rieng
  title: Làm giấy khai sinh cho con ở tỉnh mình thế nào?
  topic: ho-tich
  answer: Nộp tại Trung tâm Phục vụ hành chính công xã, phường hoặc trực tuyến.
  source: Luật Hộ tịch 2014
  reviewed: 2026-01-01
  procedures: [1.001193, 1.099990]  # unquoted: YAML reads numbers, the loader restores codes
"""


def make_pack(folder: Path) -> Path:
    """The bundled pack's frame, three of its entry files (links to other files dropped) and
    one hand-written entry naming procedure codes."""
    shutil.copytree(BUNDLED_PACK, folder, ignore=shutil.ignore_patterns("entries"))
    (folder / "entries").mkdir()
    entries = {
        name: yaml.safe_load((BUNDLED_PACK / "entries" / name).read_text(encoding="utf-8"))
        for name in HAND_WRITTEN
    }
    ids = {e["id"] for items in entries.values() for e in items}
    for name, items in entries.items():
        for item in items:
            item["related"] = [r for r in item.get("related") or [] if r in ids]
        text = yaml.safe_dump(items, allow_unicode=True, sort_keys=False)
        (folder / "entries" / name).write_text(text, encoding="utf-8")
    (folder / "entries" / "rieng.yaml").write_text(OWN_ENTRY, encoding="utf-8")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def generated(folder: Path) -> dict[str, str]:
    """The generated files without their header comment (which names the file and the time)."""
    return {
        p.name: "\n".join(line for line in p.read_text("utf-8").splitlines() if line[:1] != "#")
        for p in sorted((folder / "entries" / "thu-tuc").glob("*.yaml"))
    }


def import_tthc(*args: str) -> tuple[int, str, str]:
    result = run_bot("content", "import-tthc", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def sample_rows() -> list[list[str]]:
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return make_pack(tmp_path / "pack")


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Mã thủ tục", "code"),
        ("MÃ THỦ TỤC", "code"),
        ("ma thu tuc", "code"),
        ("TTHC_MA", "code"),
        ("MA_TTHC", "code"),
        ("MA_THU_TUC", "code"),
        ("Tên thủ tục", "name"),
        ("TEN_TTHC", "name"),
        ("PROCEDURE_NAME", "name"),
        ("Lĩnh vực", "field"),
        ("CẤP THỰC HIỆN", "level"),
        ("Cơ quan thực hiện", "agency"),
        ("Phí/Lệ phí", "fee"),
        ("Phí, lệ phí", "fee"),
        ("Lệ phí", "fee"),
        ("Yêu cầu, điều kiện", "conditions"),
        ("yeu cau dieu kien", "conditions"),
        ("Thời hạn giải quyết", "time_limit"),
        ("Ghi chú", None),
    ],
)
def test_headers_are_recognised_whatever_the_case_and_diacritics(
    header: str, key: str | None
) -> None:
    assert column_key(header) == key


def test_csv_xlsx_and_json_give_the_same_entries(tmp_path: Path) -> None:
    # The spreadsheet is built here from the sample, with headers typed without diacritics.
    rows = sample_rows()
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Danh mục thủ tục (mẫu)"])
    sheet.append([strip_marks(column_header).upper() for column_header in rows[1]])
    for row in rows[2:]:
        sheet.append(row)
    workbook.save(tmp_path / "danh-muc.xlsx")
    results = {}
    for source in (SAMPLE_CSV, tmp_path / "danh-muc.xlsx", SAMPLE_JSON):
        folder = make_pack(tmp_path / source.suffix.lstrip("."))
        code, out, err = import_tthc(str(source), "--into", str(folder))
        assert code == 0, err
        assert "Thêm mới: 6; thay đổi: 0; bỏ đi: 0" in out
        results[source.suffix] = generated(folder)
    assert set(results[".csv"]) == {f"{c}.yaml" for c in SAMPLE_CODES}
    assert results[".csv"] == results[".xlsx"] == results[".json"]


def test_generated_entries_are_complete_and_say_only_what_the_file_says(tmp_path: Path) -> None:
    folder = make_pack(tmp_path / "pack")
    code, _, err = import_tthc(str(SAMPLE_CSV), "--into", str(folder))
    assert code == 0, err
    text = (folder / "entries" / "thu-tuc" / "1.001193.yaml").read_text("utf-8")
    assert text.startswith("# Tệp sinh tự động bởi `bot content import-tthc` từ tthc-sample.csv")
    assert "Đừng sửa tay" in text
    kb = load_pack(folder)
    entry = kb.procedure_entry("1.001193")
    assert entry is not None
    assert entry.id == "tthc-1-001193"
    assert entry.title == "Thủ tục đăng ký khai sinh thực hiện thế nào?"
    assert entry.topic == "ho-tich"
    assert entry.agencies == ()  # "Ủy ban nhân dân cấp xã" is no agency name of the pack
    assert entry.source.startswith("Luật Hộ tịch 2014")
    assert entry.source_url == (
        "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html"
        "?ma_thu_tuc=1.001193"
    )
    assert "Miễn lệ phí đăng ký khai sinh đúng hạn" in entry.answer
    assert "Xuất trình giấy tờ tùy thân" not in entry.answer  # shortened...
    sections = dict(entry.details)
    assert "Xuất trình giấy tờ tùy thân" in sections["Thành phần hồ sơ"]  # ...kept in full
    assert entry.procedure is not None
    assert entry.procedure.level == "Cấp xã"
    assert set(entry.keywords) == {"Đăng ký khai sinh", "Hộ tịch"}
    police = kb.procedure_entry("2.001417")
    assert police is not None
    assert police.agencies == ("cong-an-thanh-pho",)  # the exact name of a known agency
    assert police.title.startswith("Thủ tục cấp Phiếu lý lịch tư pháp")
    business = kb.procedure_entry("1.001612")
    assert business is not None
    assert business.topic == "kinh-doanh"
    assert business.source == "Các văn bản quy định về đăng ký hộ kinh doanh hiện hành"


@pytest.mark.parametrize(
    ("rows", "missing"),
    [
        ([["Tên thủ tục", "Lĩnh vực"], ["Đăng ký khai sinh", "Hộ tịch"]], "'Mã thủ tục'"),
        ([["Mã thủ tục", "Lĩnh vực"], ["1.001193", "Hộ tịch"]], "'Tên thủ tục'"),
    ],
)
def test_a_file_without_code_or_name_column_is_refused(
    pack: Path, tmp_path: Path, rows: list[list[str]], missing: str
) -> None:
    before = snapshot(pack)
    code, _, err = import_tthc(str(write_csv(tmp_path / "x.csv", rows)), "--into", str(pack))
    assert code == 2
    assert f"không tìm thấy cột {missing}" in err
    assert snapshot(pack) == before


def test_json_without_a_name_key_is_refused(pack: Path, tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"result": [{"MA_TTHC": "1.001193"}]}), encoding="utf-8")
    code, _, err = import_tthc(str(path), "--into", str(pack))
    assert code == 2
    assert "'Tên thủ tục'" in err


def test_unknown_columns_and_bad_rows_are_reported(pack: Path, tmp_path: Path) -> None:
    rows = [
        ["STT", "Mã thủ tục", "Tên thủ tục", "Ghi chú nội bộ"],
        ["1", "1.001193", "Đăng ký khai sinh", "x"],
        ["2", "abc", "Một thủ tục", ""],
        ["3", "1.004222", "", ""],
        ["4", "", "Không có mã", ""],
        ["5", "1.001193", "Trùng mã", ""],
    ]
    code, out, err = import_tthc(str(write_csv(tmp_path / "x.csv", rows)), "--into", str(pack))
    assert code == 0, err
    assert "Cột không dùng (bỏ qua): STT, Ghi chú nội bộ." in out
    assert "dòng 3: mã thủ tục không hợp lệ (abc)" in out
    assert "dòng 4: thiếu tên thủ tục (1.004222)" in out
    assert "dòng 5: thiếu mã thủ tục" in out
    assert "dòng 6: mã 1.001193 trùng với dòng 2" in out
    assert set(generated(pack)) == {"1.001193.yaml"}


def test_dry_run_writes_nothing(pack: Path) -> None:
    before = snapshot(pack)
    code, out, err = import_tthc(str(SAMPLE_JSON), "--into", str(pack), "--dry-run")
    assert code == 0, err
    assert "Thêm mới: 6" in out
    assert "1.001193  Đăng ký khai sinh" in out
    assert "chưa ghi tệp nào" in out
    assert snapshot(pack) == before


def test_reimport_reports_changes_and_leaves_hand_written_entries_alone(
    pack: Path, tmp_path: Path
) -> None:
    code, _, err = import_tthc(str(SAMPLE_CSV), "--into", str(pack))
    assert code == 0, err
    hand_written = {k: v for k, v in snapshot(pack).items() if not k.startswith("entries/thu-tuc")}
    rows = sample_rows()
    header = rows[1]
    fee = header.index("Phí/Lệ phí")
    newer = [row for row in rows if row[0] != "1.013124"]  # kết hôn left the catalogue
    next(row for row in newer if row[0] == "1.004222")[fee] = "Miễn phí khi nộp trực tuyến."
    newer.append(["1.000001", "Thủ tục cấp giấy phép mẫu", "Lĩnh vực mẫu", *[""] * 12])
    path = write_csv(tmp_path / "moi.csv", newer)
    code, out, err = import_tthc(str(path), "--into", str(pack), "--dry-run")
    assert code == 0, err
    report = out
    code, out, err = import_tthc(str(path), "--into", str(pack))
    assert code == 0, err
    assert out.splitlines()[:9] == report.splitlines()[:9]  # the dry run announced it all
    assert "Thêm mới: 1; thay đổi: 1; bỏ đi: 1; không đổi: 4." in out
    assert "Thêm mới:\n  1.000001  Thủ tục cấp giấy phép mẫu" in out
    assert "Thay đổi:\n  1.004222  Đăng ký thường trú" in out
    assert "Bỏ đi (không còn trong tệp):\n  1.013124  Đăng ký kết hôn" in out
    assert "Thêm chủ đề 'thu-tuc-khac'" in out
    assert not (pack / "entries" / "thu-tuc" / "1.013124.yaml").exists()
    after = snapshot(pack)
    topics = after.pop("topics.yaml")
    assert "- id: thu-tuc-khac\n  title: Thủ tục hành chính khác\n" in topics.decode()
    hand_written.pop("topics.yaml")
    assert {k: after[k] for k in hand_written} == hand_written
    kb = load_pack(pack)
    entry = kb.procedure_entry("1.000001")
    assert entry is not None
    assert entry.title == "Thủ tục cấp giấy phép mẫu thực hiện thế nào?"  # "thủ tục" once
    assert entry.topic == "thu-tuc-khac"
    assert entry.source == "Cơ sở dữ liệu quốc gia về thủ tục hành chính"
    code, out, _ = import_tthc(str(path), "--into", str(pack))
    assert "Thêm mới: 0; thay đổi: 0; bỏ đi: 0; không đổi: 6." in out


def test_imported_pack_passes_check_and_answers_by_name_and_code(pack: Path) -> None:
    # Without --into, the import writes into the pack named by --content.
    code, _, err = import_tthc(str(SAMPLE_CSV), "--content", str(pack))
    assert code == 0, err
    check = run_bot("content", "check", "--content", str(pack))
    assert check.returncode == 0, check.stderr
    assert "Nội dung hợp lệ" in check.stdout
    # A code no imported entry carries is a warning, not a failure.
    assert "Cảnh báo:" in check.stdout
    assert "[khai-sinh-rieng]: mã thủ tục 1.099990 chưa có" in check.stdout
    assert "1.001193 chưa có" not in check.stdout
    questions = [
        "thu tuc dang ky khai sinh",
        "1.001193",
        "tt 1.004222 can giay to gi",
        "9.999999",
        "đăng ký khai sinh cần giấy tờ gì",
    ]
    ask = run_bot("ask", "--json", "--content", str(pack), "-", stdin="\n".join(questions))
    assert ask.returncode == 0, ask.stderr
    answers = [json.loads(line) for line in ask.stdout.splitlines()]
    assert [a["entry_id"] for a in answers] == [
        "tthc-1-001193",
        "tthc-1-001193",
        "tthc-1-004222",
        None,
        "khai-sinh-ho-so",  # the hand-written answer still wins its own question
    ]
    assert answers[3]["outcome"] == "fallback"
