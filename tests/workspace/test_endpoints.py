from __future__ import annotations

from pathlib import Path

import pytest

from engage.errors import ConfigError, Problem, WorkspaceError
from engage.workspace import Endpoints, Workspace
from engage.workspace.endpoints import resolve_database_url

MINIMAL = "ingest:\n  write_keys: [k1]\n"


def workspace(tmp_path: Path, text: str) -> Path:
    (tmp_path / "endpoints.yml").write_text(text, encoding="utf-8")
    return tmp_path


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Workspace.load(workspace(tmp_path, text), environ=environ or {})
    return [str(p) for p in caught.value.problems]


def test_a_file_with_only_write_keys_has_every_default(tmp_path: Path) -> None:
    ws = Workspace.load(workspace(tmp_path, MINIMAL), environ={})
    e = ws.endpoints
    assert ws.root == tmp_path.resolve() and ws.root.is_absolute()
    assert e.database.url == f"sqlite:///{tmp_path.resolve().as_posix()}/var/engage.db"
    assert e.database.pool_size == 5
    assert (e.event_stream.type, e.event_stream.url, e.event_stream.partitions) == ("inprocess", None, 8)
    assert (e.event_stream.exchange, e.event_stream.batch_size) == ("engage.events", 500)
    assert e.public_url == "http://127.0.0.1:8000"
    assert e.ingest.write_keys == ["k1"]
    assert (e.ingest.max_event_bytes, e.ingest.max_batch_bytes) == (32768, 512000)
    assert (e.profiles.default_region, e.profiles.email_consent_default) == ("US", True)
    assert (e.channels.email, e.channels.sms) == ("outbox", "outbox")
    assert (e.rasa.url, e.rasa.host, e.rasa.port, e.rasa.token) == (
        "http://127.0.0.1:5005", "127.0.0.1", 5005, "dev-rasa-token",
    )  # fmt: skip
    assert e.tracker_store is None


def test_without_ingest_a_write_key_is_required(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["endpoints.yml: ingest.write_keys: at least one write key is required"]
    assert problems(tmp_path, "# settings\npublic_url: http://shop.test\n") == [
        "endpoints.yml:2: ingest.write_keys: at least one write key is required"
    ]
    assert problems(tmp_path, "ingest:\n  write_keys: []\n") == [
        "endpoints.yml:2: ingest.write_keys: at least one write key is required"
    ]


def test_empty_sections_mean_their_defaults(tmp_path: Path) -> None:
    ws = Workspace.load(workspace(tmp_path, MINIMAL + "database:\nchannels:\n"), environ={})
    assert ws.endpoints.database.pool_size == 5 and ws.endpoints.channels.email == "outbox"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/x.db", "sqlite:///{root}/data/x.db"),
        ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
        ("'sqlite:///:memory:'", "sqlite:///:memory:"),
        ("postgresql://u@127.0.0.1/engage", "postgresql+psycopg://u@127.0.0.1/engage"),
        ("postgres://u@127.0.0.1/engage", "postgresql+psycopg://u@127.0.0.1/engage"),
        ("postgresql+psycopg://u:p@db:5432/e", "postgresql+psycopg://u:p@db:5432/e"),
    ],
)
def test_database_urls(tmp_path: Path, url: str, expected: str) -> None:
    ws = Workspace.load(workspace(tmp_path, MINIMAL + f"database:\n  url: {url}\n"), environ={})
    assert ws.endpoints.database.url == expected.format(root=tmp_path.resolve().as_posix())


def test_relative_sqlite_keeps_its_query() -> None:
    assert resolve_database_url("sqlite:///v/e.db?timeout=5", Path("/w")) == "sqlite:////w/v/e.db?timeout=5"


def test_unsupported_database_never_echoes_the_password(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "database:\n  url: mysql://u:secret@h/db\n")
    assert found == [
        "endpoints.yml:4: database.url: unsupported database scheme 'mysql': "
        "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
    ]
    found = problems(tmp_path, MINIMAL + "database:\n  url: postgresql+psycopg2://u:secret@h/db\n")
    assert "postgresql+psycopg://" in found[0] and "secret" not in found[0]


def test_rabbitmq_needs_a_url(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + "event_stream:\n  type: rabbitmq\n") == [
        "endpoints.yml:3: event_stream: url is required with type rabbitmq, e.g. amqp://USER:PASSWORD@HOST:5672/%2F"
    ]
    text = MINIMAL + "event_stream:\n  type: rabbitmq\n  url: amqp://guest:guest@127.0.0.1:5672/%2F\n"
    assert Workspace.load(workspace(tmp_path, text), environ={}).endpoints.event_stream.type == "rabbitmq"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("event_stream:\n  partitions: many\n", "event_stream.partitions: Input should be a valid integer"),
        (
            "event_stream:\n  partitions: 0\n",
            "event_stream.partitions: Input should be greater than or equal to 1",
        ),
        (
            "event_stream:\n  partitions: 257\n",
            "event_stream.partitions: Input should be less than or equal to 256",
        ),
        (
            "event_stream:\n  type: kafka\n",
            "event_stream.type: Input should be 'inprocess' or 'rabbitmq' (got 'kafka')",
        ),
        (
            "event_stream:\n  batch_size: 20000\n",
            "event_stream.batch_size: Input should be less than or equal",
        ),
        ("event_stream:\n  url: http://mq\n", "event_stream.url: must be an amqp:// or amqps:// URL"),
        ("public_url: ftp://shop\n", "public_url: 'ftp://shop' is not an http:// or https:// URL"),
        ("profiles:\n  default_region: XX\n", "profiles.default_region: 'XX' is not an ISO 3166 alpha-2"),
        (
            "profiles:\n  email_consent_default: maybe\n",
            "profiles.email_consent_default: Input should be a valid boolean",
        ),
        ("channels:\n  email: outbox.yml\n", "channels.email: 'outbox.yml' is not a connector name"),
        ("database:\n  pool_size: 0\n", "database.pool_size: Input should be greater than or equal to 1"),
        ("database:\n  colour: red\n", "unknown key 'colour'; known keys: url, pool_size"),
        ("tracker_store: [SQL]\n", "tracker_store: Input should be a valid dictionary"),
        ("rasa:\n  url: ftp://rasa\n", "rasa.url: 'ftp://rasa' is not an http:// or https:// URL"),
        ("rasa:\n  url: http://rasa:port\n", "rasa.url: 'http://rasa:port' has an invalid port"),
        ("rasa:\n  token: ''\n", "rasa.token: String should have at least 1 character"),
    ],
)
def test_wrong_values_name_the_key_path_at_its_line(tmp_path: Path, section: str, message: str) -> None:
    found = problems(tmp_path, MINIMAL + section)
    assert len(found) == 1
    assert found[0].startswith("endpoints.yml:4: " if "\n  " in section else "endpoints.yml:3: ")
    assert message in found[0]


def test_write_keys_must_be_non_empty_strings(tmp_path: Path) -> None:
    assert problems(tmp_path, "ingest:\n  write_keys: ['k', '  ']\n") == [
        "endpoints.yml:2: ingest.write_keys: a write key cannot be empty"
    ]
    assert problems(tmp_path, "ingest:\n  write_keys:\n    - k\n    - 42\n") == [
        "endpoints.yml:4: ingest.write_keys[1]: Input should be a valid string (got 42)"
    ]
    assert problems(
        tmp_path, "ingest:\n  write_keys: [k]\n  max_event_bytes: 4096\n  max_batch_bytes: 2048\n"
    ) == ["endpoints.yml:1: ingest: max_batch_bytes must be at least max_event_bytes"]


def test_values_are_normalised(tmp_path: Path) -> None:
    text = MINIMAL + "public_url: https://shop.example.com/\nprofiles:\n  default_region: gb\n"
    endpoints = Workspace.load(workspace(tmp_path, text), environ={}).endpoints
    assert endpoints.public_url == "https://shop.example.com"
    assert endpoints.profiles.default_region == "GB"


def test_unknown_top_level_key_lists_the_known_ones_and_rasa_keys_are_kept(tmp_path: Path) -> None:
    rasa = "action_endpoint:\n  url: http://127.0.0.1:5055/webhook\n"
    rasa += "tracker_store:\n  type: SQL\n  db: var/t.db\n"
    endpoints = Workspace.load(workspace(tmp_path, MINIMAL + rasa), environ={}).endpoints
    assert endpoints.tracker_store == {"type": "SQL", "db": "var/t.db"}
    assert endpoints.action_endpoint == {"url": "http://127.0.0.1:5055/webhook"}
    (found,) = problems(tmp_path, MINIMAL + rasa + "colour: blue\n")
    assert found.startswith(
        "endpoints.yml:8: unknown key 'colour'; known keys: database, event_stream, public_url,"
    )
    for key in (
        "ingest",
        "channels",
        "action_endpoint",
        "tracker_store",
        "event_broker",
        "lock_store",
        "nlg",
    ):
        assert key in found


def test_variables_are_substituted_from_the_given_environ(tmp_path: Path) -> None:
    text = "ingest:\n  write_keys:\n    - ${WRITE_KEY}\nevent_stream:\n  partitions: ${PARTS}\n"
    endpoints = Workspace.load(
        workspace(tmp_path, text), environ={"WRITE_KEY": "prod", "PARTS": "16"}
    ).endpoints
    assert endpoints.ingest.write_keys == ["prod"]
    assert endpoints.event_stream.partitions == 16


def test_missing_variable_is_a_problem_naming_it_without_a_second_type_error(tmp_path: Path) -> None:
    text = "ingest:\n  write_keys:\n    - ${WRITE_KEY}\nevent_stream:\n  partitions: ${PARTS}\n"
    assert problems(tmp_path, text, environ={"WRITE_KEY": "k"}) == [
        "endpoints.yml:5: environment variable PARTS is not set"
    ]


def test_variable_with_a_default_is_refused_like_rasa_would(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "ingest:\n  write_keys: ['${KEY:-dev}']\n", environ={"KEY": "x"})
    assert found == "endpoints.yml:2: ingest.write_keys[0]: '${KEY:-dev}' is not supported: write ${NAME}"


def test_every_problem_is_listed_sorted_by_line(tmp_path: Path) -> None:
    text = "event_stream:\n  partitions: many\npublic_url: nope\ncolour: blue\ndatabase: {pool_size: -1}\n"
    with pytest.raises(ConfigError) as caught:
        Workspace.load(workspace(tmp_path, text), environ={})
    assert [p.line for p in caught.value.problems] == [1, 2, 3, 4, 5]
    assert "ingest.write_keys" in caught.value.problems[0].message
    assert len(str(caught.value).splitlines()) == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "endpoints.yml:1: expected a mapping of keys, not a list"),
        ("ingest: [\n", "endpoints.yml:2: invalid YAML"),
        (
            "ingest:\n  write_keys: [k]\ningest: {}\n",
            "endpoints.yml:3: duplicate key 'ingest' (first defined on line 1)",
        ),
    ],
)
def test_file_level_problems(tmp_path: Path, text: str, message: str) -> None:
    assert problems(tmp_path, text)[0].startswith(message)


def test_load_refuses_a_folder_without_endpoints(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="has no endpoints.yml"):
        Workspace.load(tmp_path)


def test_var_dir_is_created_on_first_access(tmp_path: Path) -> None:
    ws = Workspace.load(workspace(tmp_path, MINIMAL), environ={})
    assert not (tmp_path / "var").exists()
    assert ws.var_dir == tmp_path.resolve() / "var"
    assert ws.var_dir.is_dir()


def test_endpoints_model_is_usable_directly() -> None:
    endpoints = Endpoints.model_validate({"ingest": {"write_keys": ["k"]}})
    assert endpoints.database.url == "sqlite:///var/engage.db"  # made absolute only by Workspace.load
    assert Problem("endpoints.yml", 0, "x") < Problem("endpoints.yml", 1, "a")
