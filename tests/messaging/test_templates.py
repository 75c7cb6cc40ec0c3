"""Templates: rendered in Jinja2's sandbox, HTML escaped and text not, an undefined variable an error with
its file and line unless it has a default, every shipped template rendering for the sample customers."""

from __future__ import annotations

from pathlib import Path

import pytest

from engage.cli.main import main
from engage.messaging.config import TemplateSettings
from engage.messaging.templates import TemplateError, Templates
from engage.workspace import example_workspace, init_workspace


def write(root: Path, files: dict[str, str]) -> Templates:
    for name, content in files.items():
        path = root / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return Templates(root)


def test_html_is_escaped_text_is_not_and_an_email_has_three_parts(tmp_path: Path) -> None:
    templates = write(
        tmp_path,
        {
            "email/hello.subject.j2": "Hi\n  {{ user.name }}\n",
            "email/hello.html.j2": "<p>{{ user.name }}</p>",
            "email/hello.txt.j2": "{{ user.name }}",
            "sms/hello.txt.j2": "  {{ user.name }} \n",
        },
    )
    assert templates.names() == ["email/hello", "sms/hello"]
    email = templates.render("email/hello", {"user": {"name": "<Bob & Co>"}})
    assert email.subject == "Hi <Bob & Co>"  # one line
    assert email.html == "<p>&lt;Bob &amp; Co&gt;</p>"
    assert email.text == "<Bob & Co>\n"
    assert templates.render("sms/hello", {"user": {"name": "Bob"}}).text == "Bob"


def test_an_undefined_variable_names_its_file_and_line_unless_defaulted(tmp_path: Path) -> None:
    templates = write(
        tmp_path,
        {
            "sms/greet.txt.j2": "Hello\n{{ user.first_name | default('there') }},\nyour {{ user.pet }}",
            "sms/partial.txt.j2": "Hi\n{% include 'sms/_bits.txt.j2' %}",
            "sms/_bits.txt.j2": "one\ntwo {{ missing_thing }}",
        },
    )
    with pytest.raises(TemplateError) as raised:
        templates.render("sms/greet", {"user": {}})
    assert (raised.value.file, raised.value.line) == ("templates/sms/greet.txt.j2", 3)
    assert "'dict object' has no attribute 'pet'" in raised.value.message
    assert templates.render("sms/greet", {"user": {"pet": "cat"}}).text == "Hello\nthere,\nyour cat"
    with pytest.raises(TemplateError) as raised:
        templates.render("sms/partial", {})
    assert (raised.value.file, raised.value.line) == ("templates/sms/_bits.txt.j2", 2)  # where it is used


@pytest.mark.parametrize(
    "attack",
    [
        "{{ user.__class__.__mro__[1].__subclasses__() }}",
        "{{ track.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.environ }}",
        "{{ ''.__class__.__base__ }}",
        "{% include '/etc/passwd' %}",
        "{% include '../../secret.txt' %}",
        "{{ user.update({'x': 1}) }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
    ],
)
def test_a_template_cannot_reach_files_the_environment_or_python_internals(
    tmp_path: Path, attack: str
) -> None:
    (tmp_path / "secret.txt").write_text("the secret")
    templates = write(tmp_path, {"sms/evil.txt.j2": attack})
    with pytest.raises(TemplateError) as raised:
        templates.render("sms/evil", {"user": {"name": "x"}, "track": lambda url: url})
    assert raised.value.file.startswith("templates/sms/")
    assert "the secret" not in str(raised.value) and "root:" not in str(raised.value)


def test_a_syntax_error_and_an_unknown_template(tmp_path: Path) -> None:
    templates = write(tmp_path, {"sms/broken.txt.j2": "ok\n{% if %}"})
    with pytest.raises(TemplateError, match=r"templates/sms/broken.txt.j2:2: syntax"):
        templates.render("sms/broken", {})
    with pytest.raises(TemplateError, match="no template 'sms/nope'"):
        templates.render("sms/nope", {})
    assert templates.settings("sms/broken") == TemplateSettings()


def test_templates_check_renders_every_shipped_template_for_the_samples(tmp_path: Path, capsys) -> None:
    root = tmp_path / "shop"
    init_workspace(root)
    assert main(["templates", "check", "-w", str(root)]) == 0
    out = capsys.readouterr().out
    shipped = {path.name for path in (example_workspace() / "templates").rglob("*.j2")}
    assert {
        "welcome.html.j2",
        "abandoned_cart.txt.j2",
        "weekly_picks.subject.j2",
        "optin_confirmation.txt.j2",
    } <= shipped
    assert "templates OK: 14 templates rendered 28 times" in out


def test_templates_check_fails_with_the_file_line_and_variable(tmp_path: Path, capsys) -> None:
    root = tmp_path / "shop"
    init_workspace(root)
    (root / "templates" / "sms" / "late.txt.j2").write_text(
        "Hi {{ user.first_name }},\nyour order {{ event.properties.tracking_url }}"
    )
    assert main(["templates", "check", "-w", str(root)]) == 1
    err = capsys.readouterr().err
    assert (
        "templates/sms/late.txt.j2:2: undefined: 'dict object' has no attribute 'tracking_url'; give it a "
        "default or pass it (rendering for a customer with every trait)"
    ) in err
    assert "late.txt.j2:1: undefined: 'dict object' has no attribute 'first_name'" in err  # the other sample
    assert main(["check", "-w", str(root)]) == 1  # engage check renders them too


def test_engage_check_warns_of_an_sms_over_its_budget(tmp_path: Path, capsys) -> None:
    root = tmp_path / "shop"
    init_workspace(root)
    (root / "templates" / "sms" / "long.txt.j2").write_text(
        "{{ shop.name }}: " + "a rather long message " * 12
    )
    (root / "templates" / "templates.yml").write_text(
        (root / "templates" / "templates.yml").read_text() + "sms/long:\n  max_segments: 1\n"
    )
    assert main(["check", "-w", str(root)]) == 0
    err = capsys.readouterr().err
    assert "templates/sms/long.txt.j2: renders as 2 segments (GSM-7, 282 septets) for a customer" in err
    assert "the budget is 1" in err


def test_templates_yml_names_existing_templates_with_known_settings(tmp_path: Path, capsys) -> None:
    root = tmp_path / "shop"
    init_workspace(root)
    (root / "templates" / "templates.yml").write_text(
        "sms/ghost: {transactional: true}\nemail/welcome: {transactionl: true}\n"
    )
    assert main(["check", "-w", str(root)]) == 1
    out = capsys.readouterr().out
    assert "templates/templates.yml:1: sms/ghost: no template sms/ghost" in out
    assert "templates/templates.yml:2: unknown key 'transactionl'; known keys: transactional" in out
