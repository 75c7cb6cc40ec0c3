"""ENGAGE_ENDPOINTS: a workspace read from another endpoints file (endpoints.production.yml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engage.chat.rasa.environment import RasaEnvironment
from engage.chat.rasa.processes import RasaServer
from engage.errors import WorkspaceError
from engage.workspace import Workspace, check_workspace, find_workspace
from engage.workspace.endpoints import endpoints_file

DEV = "ingest:\n  write_keys: [dev]\n"
PROD = "ingest:\n  write_keys: ['${WRITE_KEY}']\npublic_url: https://shop.example.com\n"


class _Installed(RasaEnvironment):
    """A Rasa environment taken as set up, to build its command line without running it."""

    def require(self) -> RasaEnvironment:
        return self


def test_without_the_variable_engage_reads_endpoints_yml() -> None:
    assert endpoints_file({}) == "endpoints.yml"
    assert endpoints_file({"ENGAGE_ENDPOINTS": " "}) == "endpoints.yml"


@pytest.mark.parametrize("name", ["/etc/endpoints.yml", "../endpoints.yml", "conf/../../x.yml", "conf/"])
def test_the_variable_names_a_file_inside_the_workspace(name: str) -> None:
    with pytest.raises(WorkspaceError, match="ENGAGE_ENDPOINTS="):
        endpoints_file({"ENGAGE_ENDPOINTS": name})


def test_a_workspace_loads_and_checks_the_file_the_variable_names(tmp_path: Path) -> None:
    (tmp_path / "endpoints.yml").write_text(DEV)
    (tmp_path / "endpoints.production.yml").write_text(PROD)
    environ = {"ENGAGE_ENDPOINTS": "endpoints.production.yml", "WRITE_KEY": "prod"}
    ws = Workspace.load(tmp_path, environ=environ)
    assert ws.endpoints.ingest.write_keys == ["prod"]
    assert ws.endpoints_file == "endpoints.production.yml"
    assert ws.endpoints_path == tmp_path.resolve() / "endpoints.production.yml"
    assert Workspace.load(tmp_path, environ={}).endpoints.ingest.write_keys == ["dev"]
    problems, summary = check_workspace(tmp_path, {"ENGAGE_ENDPOINTS": "endpoints.production.yml"})
    assert [str(p) for p in problems] == [
        "endpoints.production.yml:2: environment variable WRITE_KEY is not set"
    ]
    assert summary.parts[0] == "endpoints.production.yml"


def test_a_missing_file_is_named_with_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "endpoints.yml").write_text(DEV)
    with pytest.raises(WorkspaceError, match=r"no endpoints\.prod\.yml \(from ENGAGE_ENDPOINTS\)"):
        Workspace.load(tmp_path, environ={"ENGAGE_ENDPOINTS": "endpoints.prod.yml"})
    monkeypatch.setenv("ENGAGE_ENDPOINTS", "endpoints.prod.yml")
    with pytest.raises(WorkspaceError, match=r"no endpoints\.prod\.yml \(from ENGAGE_ENDPOINTS\)"):
        find_workspace(tmp_path)
    problems, _ = check_workspace(tmp_path)
    assert [str(p) for p in problems][0].startswith("endpoints.prod.yml")


def test_rasa_started_by_engage_reads_the_same_file(tmp_path: Path) -> None:
    (tmp_path / "endpoints.yml").write_text(DEV)
    (tmp_path / "endpoints.production.yml").write_text(PROD)
    ws = Workspace.load(tmp_path, environ={"ENGAGE_ENDPOINTS": "endpoints.production.yml", "WRITE_KEY": "k"})
    server = RasaServer(ws, tmp_path / "model.tar.gz", environment=_Installed(tmp_path / "venv-rasa"))
    command = server.command
    assert command[command.index("--endpoints") + 1] == str(ws.endpoints_path)
