"""`engage check` and `engage init`, run through the real CLI on the shipped workspace and on copies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engage.cli.main import main
from engage.workspace import init_workspace

REPO = Path(__file__).resolve().parents[2]
SECRETS = ("SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "ENGAGE_WRITE_KEY")
SUMMARY = (
    "workspace OK: endpoints.yml, 3 connectors, 12 segments, 7 journeys, 32 template files, templates.yml, "
    "messaging.yml, bot (8 files), catalog/products.csv, offers.yml, recommender.yml"
)

Run = Callable[..., tuple[int, list[str], list[str]]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SECRETS, "ENGAGE_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `engage ARGS...` in this process: exit code, stdout lines, stderr lines."""

    def run(*args: str) -> tuple[int, list[str], list[str]]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out.splitlines(), err.splitlines()

    return run


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    init_workspace(root)
    return root


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of `path` containing `text`."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def replace(path: Path, old: str, new: str) -> int:
    """Replace `old` (which must be there) and return the line where it was."""
    content = path.read_text()
    assert old in content, f"{old!r} not in {path}"
    line = line_of(path, old.splitlines()[0])
    path.write_text(content.replace(old, new, 1))
    return line


def test_the_shipped_workspace_passes(run: Run) -> None:
    code, out, err = run("check", "--workspace", str(REPO))
    assert (code, out) == (0, [SUMMARY])
    # connectors that no channel uses lack their secrets on a developer's machine: warnings only
    assert "warning: connectors/sendgrid.yml:3: environment variable SENDGRID_API_KEY is not set" in err[0]
    assert all(line.startswith("warning: ") for line in err)


def test_no_warning_once_secrets_are_set(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("ENGAGE_WORKSPACE", str(REPO))
    assert run("check") == (0, [SUMMARY], [])


def test_init_then_check_from_inside_the_new_workspace(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "shop"
    code, out, err = run("init", str(dest))
    assert code == 0, err
    assert out[0].startswith(f"created a workspace in {dest}: ")
    for part in ("endpoints.yml", "connectors/ (3 files)", "bot/ (9 files)", "templates/ (33 files)"):
        assert part in out[0]
    assert out[1] == f"next: cd {dest} && engage check"
    assert not any(path.is_symlink() for path in dest.rglob("*"))

    monkeypatch.chdir(dest / "journeys")  # found by walking up
    code, out, _ = run("check")
    assert (code, out) == (0, [SUMMARY])


def test_init_refuses_a_non_empty_folder(run: Run, ws: Path) -> None:
    code, out, err = run("init", str(ws))
    assert code == 1 and out == []
    assert err == [f"error: cannot create a workspace in {ws}: the folder is not empty"]


def test_no_workspace_is_one_error_line(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("check")
    assert code == 1 and out == []
    assert len(err) == 1 and err[0].startswith("error: no engage workspace: no endpoints.yml in")


def break_yaml_syntax(ws: Path) -> tuple[str, int, str]:
    line = replace(ws / "segments" / "email_users.yml", "name: email_users", "name: [email_users")
    return "segments/email_users.yml", line + 1, "invalid YAML: expected ',' or ']'"


def break_duplicate_key(ws: Path) -> tuple[str, int, str]:
    path = ws / "journeys" / "signup_welcome.yml"
    first = line_of(path, "name: signup_welcome")
    path.write_text(path.read_text() + "name: signup_welcome\n")
    return (
        "journeys/signup_welcome.yml",
        len(path.read_text().splitlines()),
        f"duplicate key 'name' (first defined on line {first})",
    )


def break_unknown_endpoints_key(ws: Path) -> tuple[str, int, str]:
    line = replace(ws / "endpoints.yml", "public_url:", "public_urls:")
    return "endpoints.yml", line, "unknown key 'public_urls'; known keys: database, event_stream, public_url,"


def break_wrong_type(ws: Path) -> tuple[str, int, str]:
    line = replace(ws / "endpoints.yml", "partitions: 8", "partitions: many")
    return "endpoints.yml", line, "event_stream.partitions: Input should be a valid integer"


def break_missing_variable(ws: Path) -> tuple[str, int, str]:
    replace(ws / "endpoints.yml", "email: outbox", "email: sendgrid")  # now the secret is needed
    line = line_of(ws / "connectors" / "sendgrid.yml", "${SENDGRID_API_KEY}")
    return "connectors/sendgrid.yml", line, "environment variable SENDGRID_API_KEY is not set"


def break_missing_variable_in_endpoints(ws: Path) -> tuple[str, int, str]:
    line = replace(ws / "endpoints.yml", "- dev-write-key", "- ${ENGAGE_WRITE_KEY}")
    return "endpoints.yml", line, "environment variable ENGAGE_WRITE_KEY is not set"


def break_template(ws: Path) -> tuple[str, int, str]:
    path = ws / "templates" / "email" / "welcome.html.j2"
    line = replace(path, '"Start shopping") }}', '"Start shopping") }')
    return "templates/email/welcome.html.j2", line, "template syntax: unexpected '}'"


def break_connector_type(ws: Path) -> tuple[str, int, str]:
    line = replace(ws / "connectors" / "outbox.yml", "type: outbox", "type: pigeon")
    return (
        "connectors/outbox.yml",
        line,
        "type: unknown connector type 'pigeon'; known types: outbox, sendgrid, twilio",
    )


def break_channel(ws: Path) -> tuple[str, int, str]:
    replace(ws / "connectors" / "sendgrid.yml", "${SENDGRID_API_KEY}", "SG.test")
    line = replace(ws / "endpoints.yml", "sms: outbox", "sms: sendgrid")
    return "endpoints.yml", line, "channels.sms: connector 'sendgrid' (type sendgrid) cannot send sms"


def break_segment_name(ws: Path) -> tuple[str, int, str]:
    line = replace(ws / "segments" / "users_with_cart.yml", "name: users_with_cart", "name: cart_users")
    return "segments/users_with_cart.yml", line, "name: 'cart_users' must be the file's name without .yml"


def break_bot(ws: Path) -> tuple[str, int, str]:
    line = replace(ws / "bot" / "domain.yml", "  - goodbye", "  - goodbye\n  -: [")
    return "bot/domain.yml", line + 1, "invalid YAML"


BREAKAGES = [
    break_yaml_syntax,
    break_duplicate_key,
    break_unknown_endpoints_key,
    break_wrong_type,
    break_missing_variable,
    break_missing_variable_in_endpoints,
    break_template,
    break_connector_type,
    break_channel,
    break_segment_name,
    break_bot,
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda f: f.__name__.removeprefix("break_"))
def test_a_broken_copy_fails_with_file_and_line(
    run: Run, ws: Path, breakage: Callable[[Path], tuple[str, int, str]]
) -> None:
    file, line, message = breakage(ws)
    code, out, err = run("check", "-w", str(ws))
    assert code == 1
    assert len(out) == 1, out
    assert out[0].startswith(f"{file}:{line}: {message}"), out[0]
    assert err[-1] == "error: 1 problem in 1 file"


def test_every_problem_in_every_file_is_reported_in_one_run_sorted(run: Run, ws: Path) -> None:
    expected = [breakage(ws) for breakage in (break_template, break_wrong_type, break_yaml_syntax)]
    expected += [break_duplicate_key(ws), break_connector_type(ws), break_unknown_endpoints_key(ws)]
    code, out, err = run("check", "-w", str(ws))
    assert code == 1
    assert [tuple(line.split(":", 2)[:2]) for line in out] == sorted((f, str(n)) for f, n, _ in expected)
    assert [(line.split(":")[0], int(line.split(":")[1])) for line in out] == sorted(
        (f, n) for f, n, _ in expected
    )
    for file, line, message in expected:
        assert any(printed.startswith(f"{file}:{line}: {message}") for printed in out), (file, line, message)
    assert err[-1] == "error: 6 problems in 5 files"


def test_a_missing_secret_of_an_unused_connector_does_not_fail(run: Run, ws: Path) -> None:
    code, out, err = run("check", "-w", str(ws))
    assert (code, out) == (0, [SUMMARY])
    assert sorted(err) == [
        "warning: connectors/sendgrid.yml:3: environment variable SENDGRID_API_KEY is not set "
        "(needed once a channel uses 'sendgrid')",
        "warning: connectors/twilio.yml:3: environment variable TWILIO_ACCOUNT_SID is not set "
        "(needed once a channel uses 'twilio')",
        "warning: connectors/twilio.yml:4: environment variable TWILIO_AUTH_TOKEN is not set "
        "(needed once a channel uses 'twilio')",
    ]


def test_a_channel_needs_an_existing_connector(run: Run, ws: Path) -> None:
    line = replace(ws / "endpoints.yml", "email: outbox", "email: mailgun")
    code, out, _ = run("check", "-w", str(ws))
    assert code == 1
    assert out == [
        f"endpoints.yml:{line}: channels.email: no connector file connectors/mailgun.yml "
        "(found: outbox, sendgrid, twilio)"
    ]


def test_a_new_file_is_counted_and_checked(run: Run, ws: Path) -> None:
    (ws / "journeys" / "back_in_view.yml").write_text(
        "name: back_in_view\ntrigger:\n  event: ProductViewed\n"
        "steps:\n  - send: {channel: sms, template: pick}\n"
    )
    (ws / "templates" / "sms" / "pick.txt.j2").write_text("Hi {{ name }}\n{% for p in products %}\n")
    code, out, _ = run("check", "-w", str(ws))
    assert code == 1
    assert len(out) == 1 and out[0].startswith("templates/sms/pick.txt.j2:2: template syntax: Unexpected end")
    (ws / "templates" / "sms" / "pick.txt.j2").write_text("Hi {{ user.first_name | default('there') }}\n")
    code, out, _ = run("check", "-w", str(ws))
    assert (code, out) == (
        0,
        [SUMMARY.replace("7 journeys", "8 journeys").replace("32 template files", "33 template files")],
    )


# --------------------------------------------------------------------------------------------- segments


def check_fails_with(run: Run, ws: Path, expected: list[str]) -> None:
    code, out, err = run("check", "-w", str(ws))
    assert code == 1
    assert out == expected
    files = len({line.split(":")[0] for line in expected})
    problems = f"{len(expected)} problem{'' if len(expected) == 1 else 's'}"
    assert err[-1] == f"error: {problems} in {files} file{'' if files == 1 else 's'}"


def test_an_unknown_key_in_a_segment(run: Run, ws: Path) -> None:
    line = replace(ws / "segments" / "recent_purchasers.yml", "  within: 30d", "  window: 30d")
    check_fails_with(
        run,
        ws,
        [
            f"segments/recent_purchasers.yml:{line}: unknown key 'window'; known keys: performed, where, "
            "at_least, at_most, exactly, within, sum, count, max, eq, ne, gt, gte, lt, lte"
        ],
    )


def test_a_bad_operator_in_a_segment(run: Run, ws: Path) -> None:
    line = replace(ws / "segments" / "email_users.yml", "      exists: true", "      present: true")
    check_fails_with(
        run,
        ws,
        [
            f"segments/email_users.yml:{line}: unknown operator 'present'; known operators: eq, ne, gt, gte, "
            "lt, lte, in, contains, exists, within"
        ],
    )


def test_an_unparseable_duration_in_a_segment(run: Run, ws: Path) -> None:
    line = replace(ws / "segments" / "new_signups.yml", "within: 7d", "within: a week")
    check_fails_with(
        run,
        ws,
        [
            f"segments/new_signups.yml:{line}: condition.within: cannot read duration 'a week': "
            "write a number and a unit (w, d, h, m, s), e.g. 30d, 1h, 1d12h"
        ],
    )


def test_an_in_segment_cycle_across_two_files(run: Run, ws: Path) -> None:
    replace(ws / "segments" / "lapsed_customers.yml", "  all:\n", "  all:\n    - in_segment: high_value\n")
    line = replace(
        ws / "segments" / "high_value.yml", "  performed: OrderCompleted", "  in_segment: lapsed_customers"
    )
    path = ws / "segments" / "high_value.yml"
    path.write_text(path.read_text().split("  within: 90d")[0])
    cycle = "high_value -> lapsed_customers -> high_value"
    check_fails_with(run, ws, [f"segments/high_value.yml:{line}: condition.in_segment: cycle: {cycle}"])


def test_an_unknown_in_segment_target(run: Run, ws: Path) -> None:
    line = replace(
        ws / "segments" / "email_users.yml",
        "    - consent: email",
        "    - in_segment: vips\n    - consent: email",
    )
    known = ", ".join(sorted(path.stem for path in (ws / "segments").glob("*.yml")))
    check_fails_with(
        run,
        ws,
        [
            f"segments/email_users.yml:{line}: condition.all[1].in_segment: unknown segment 'vips'; "
            f"known segments: {known}"
        ],
    )


def test_a_missing_manual_csv(run: Run, ws: Path) -> None:
    path = ws / "segments" / "blocked.yml"
    path.write_text("name: blocked\ncondition:\n  manual: lists/blocked.csv\n")
    check_fails_with(
        run,
        ws,
        ["segments/blocked.yml:3: condition.manual: file 'lists/blocked.csv' not found in the workspace"],
    )
    (ws / "lists").mkdir()
    (ws / "lists" / "blocked.csv").write_text("user_id\nu-1\n")
    code, out, _ = run("check", "-w", str(ws))
    assert code == 0 and ", 13 segments, " in out[0]
