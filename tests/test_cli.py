"""The ``bot`` command as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import db

ASK_KEYS = {"outcome", "entry_id", "title", "score", "answer", "suggestions"}


def run_bot(
    *args: str,
    env_extra: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=cwd,
    )


def test_ask_json_prints_the_documented_shape() -> None:
    result = run_bot("ask", "--json", "chỉ số SIPAS là gì")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == ASK_KEYS
    assert data["outcome"] == "answer"
    assert data["entry_id"] == "sipas-la-gi"
    assert data["title"].endswith("?")
    assert 0 < data["score"] <= 1
    assert data["answer"]
    for suggestion in data["suggestions"]:
        assert set(suggestion) == {"entry_id", "title", "score"}


def test_ask_json_from_stdin_answers_each_line_in_order() -> None:
    questions = ["sipas là gì", "giá vàng hôm nay", "căn cước", "", "PCI la gi"]
    result = run_bot("ask", "--json", "-", stdin="\n".join(questions) + "\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(questions)
    assert [d["outcome"] for d in lines] == ["answer", "fallback", "clarify", "fallback", "answer"]
    assert lines[1]["entry_id"] is None
    assert lines[1]["title"] is None
    assert lines[1]["answer"] is None
    assert lines[1]["score"] is None
    assert len(lines[2]["suggestions"]) >= 2
    assert all(set(d) == ASK_KEYS for d in lines)


def test_ask_plain_text() -> None:
    result = run_bot("ask", "pci", "la", "gi")
    assert result.returncode == 0
    assert "PCI" in result.stdout


def test_content_check_passes_on_the_bundled_pack() -> None:
    result = run_bot("content", "check")
    assert result.returncode == 0, result.stderr
    assert "Nội dung hợp lệ" in result.stdout


def test_content_check_names_file_and_entry_of_each_problem(
    tmp_path: Path, repo_root: Path
) -> None:
    pack = tmp_path / "pack"
    (pack / "entries").mkdir(parents=True)
    for name in ("pack.yaml", "topics.yaml", "agencies.yaml", "messages.yaml"):
        (pack / name).write_text(
            (repo_root / "content" / "pack" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    (pack / "entries" / "bad.yaml").write_text(
        "- id: a-b\n  title: Một?\n  topic: khong-co\n  answer: x\n  source: y\n"
        "  reviewed: 2026-01-01\n"
        "- id: a-b\n  title: Hai?\n  topic: cchc\n  answer: x\n  source: y\n"
        "  reviewed: 2026-01-01\n"
        "- id: c\n  title: Ba?\n  topic: cchc\n  answer: ''\n  source: y\n  reviewed: 2026-01-01\n",
        encoding="utf-8",
    )
    result = run_bot("content", "check", "--content", str(pack))
    assert result.returncode == 2
    assert "bad.yaml [a-b]: chủ đề không có trong topics.yaml: khong-co" in result.stderr
    assert "bad.yaml [a-b]: id bị trùng" not in result.stderr  # the first a-b was invalid
    assert "bad.yaml [c]: câu trả lời trống" in result.stderr
    # The same pack is refused by every command that reads content, through the env too.
    ask = run_bot("ask", "--json", "x", env_extra={"BOT_CONTENT_DIR": str(pack)})
    assert ask.returncode == 2


def test_db_upgrade_then_gaps_report(tmp_path: Path) -> None:
    env = {"BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    upgrade = run_bot("db", "upgrade", env_extra=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert db.HEAD in upgrade.stdout
    chat = run_bot("chat", env_extra=env, stdin="giá vàng hôm nay\ngiá vàng hôm nay\n1\nthoát\n")
    assert chat.returncode == 0, chat.stderr
    assert "Xin chào" in chat.stdout
    assert "[1]" in chat.stdout
    gaps = run_bot("content", "gaps", "--json", env_extra=env)
    assert gaps.returncode == 0, gaps.stderr
    rows = json.loads(gaps.stdout)
    assert rows[0]["text"] == "gia vang hom nay"
    assert rows[0]["count"] == 2
    table = run_bot("content", "gaps", env_extra=env)
    assert "gia vang hom nay" in table.stdout


@pytest.mark.parametrize("command", [["serve", "--help"], ["--help"]])
def test_help_is_available(command: list[str]) -> None:
    result = run_bot(*command)
    assert result.returncode == 0
    assert "usage" in result.stdout


def test_serve_starts_on_the_embedded_default_and_answers(tmp_path: Path) -> None:
    """What the README's run command does: SQLite under ./var, bundled content, no tokens."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("BOT_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/chat",
            data=json.dumps({"user_id": "smoke-test-user", "text": "pci la gi"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert "PCI" in json.loads(response.read())["replies"][0]["text"]
        assert (tmp_path / "var" / "bot.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def test_db_current_and_purge(tmp_path: Path) -> None:
    env = {"BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'purge.db'}"}
    assert run_bot("db", "current", env_extra=env).stdout.strip() == "(chưa có bảng nào)"
    purge = run_bot("db", "purge", env_extra=env)
    assert purge.returncode == 0, purge.stderr
    assert "Đã xóa 0 lượt hội thoại" in purge.stdout
    assert run_bot("db", "current", env_extra=env).stdout.strip() == db.HEAD
