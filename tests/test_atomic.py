"""Atomic writes leave files and folders with the permissions a plain open()/mkdir() gives,
not mkstemp's owner-only 0600 (a report or model others cannot read)."""

from __future__ import annotations

import stat

from tunelab.atomic import atomic_dir, atomic_write_text


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_folders_get_the_usual_permissions(tmp_path):
    plain_file, plain_dir = tmp_path / "plain.txt", tmp_path / "plain"
    plain_file.write_text("x")
    plain_dir.mkdir()
    atomic_write_text(tmp_path / "report.html", "<html></html>")
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "config.json").write_text("{}")
    assert (tmp_path / "report.html").read_text() == "<html></html>"
    assert _mode(tmp_path / "report.html") == _mode(plain_file)
    assert _mode(tmp_path / "model") == _mode(plain_dir)
    assert (tmp_path / "model" / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
