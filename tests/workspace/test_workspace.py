from __future__ import annotations

from pathlib import Path

import pytest

from engage.errors import WorkspaceError
from engage.workspace import example_workspace, find_workspace, init_workspace

REPO = Path(__file__).resolve().parents[2]


def test_find_walks_up_to_the_folder_holding_endpoints(tmp_path: Path) -> None:
    (tmp_path / "endpoints.yml").write_text("")
    deep = tmp_path / "journeys" / "drafts"
    deep.mkdir(parents=True)
    assert find_workspace(start=deep) == tmp_path.resolve()
    assert find_workspace(start=tmp_path) == tmp_path.resolve()


def test_find_uses_the_current_folder_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "endpoints.yml").write_text("")
    (tmp_path / "segments").mkdir()
    monkeypatch.chdir(tmp_path / "segments")
    assert find_workspace() == tmp_path.resolve()


def test_an_explicit_folder_must_hold_endpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "endpoints.yml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert find_workspace(Path("ws"), start=Path("/")) == (tmp_path / "ws").resolve()
    with pytest.raises(WorkspaceError, match=r"^workspace .* has no endpoints.yml; create a workspace with"):
        find_workspace(tmp_path, start=tmp_path / "ws")
    with pytest.raises(WorkspaceError, match=r"does not exist or is not a folder"):
        find_workspace(tmp_path / "absent")


def test_no_workspace_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        find_workspace(start=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"no engage workspace: no endpoints.yml in {tmp_path.resolve()} or any folder above"
    )
    assert "--workspace" in message and "ENGAGE_WORKSPACE" in message and "engage init" in message


def test_the_example_links_to_the_repository_files() -> None:
    example = example_workspace()
    for name in ("endpoints.yml", "connectors", "segments", "journeys", "templates", "bot"):
        link = example / name
        assert link.is_symlink() and not Path(link.readlink()).is_absolute()
        assert link.resolve() == (REPO / name).resolve()


def test_init_copies_files_not_links_and_leaves_run_state_out(tmp_path: Path) -> None:
    content = tmp_path / "content"
    for folder in ("bot/models", "bot/.rasa/cache", "bot/data", "connectors/__pycache__", "var"):
        (content / folder).mkdir(parents=True)
    (content / "endpoints.yml").write_text("ingest: {write_keys: [k]}\n")
    (content / "bot" / "data" / "nlu.yml").write_text("version: '3.1'\n")
    (content / "bot" / "models" / "m.tar.gz").write_bytes(b"model")
    (content / "bot" / ".rasa" / "cache" / "x").write_text("cache")
    (content / "connectors" / "outbox.yml").write_text("type: outbox\n")
    (content / "connectors" / "__pycache__" / "x.pyc").write_bytes(b"")
    (content / "var" / "engage.db").write_bytes(b"db")
    example = tmp_path / "example"
    example.mkdir()
    for name in ("endpoints.yml", "bot", "connectors", "var"):
        (example / name).symlink_to(Path("..") / "content" / name)

    dest = tmp_path / "new"
    init_workspace(dest, example=example)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [".gitignore", "bot/data/nlu.yml", "connectors/outbox.yml", "endpoints.yml"]
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    assert "var/" in (dest / ".gitignore").read_text()


def test_init_refuses_a_non_empty_folder_but_takes_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="not empty"):
        init_workspace(tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("")
    with pytest.raises(WorkspaceError, match="it is a file"):
        init_workspace(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    init_workspace(tmp_path / "empty")
    assert (tmp_path / "empty" / "endpoints.yml").is_file()
    assert (tmp_path / "empty" / "bot" / "domain.yml").is_file()
