"""The marketer's templates, rendered in Jinja2's sandbox.

A template is named by its channel and file stem: `email/welcome` is `templates/email/welcome.subject.j2`,
`.html.j2` and `.txt.j2`; `sms/optin` is `templates/sms/optin.txt.j2`. Files starting with `_` are layouts
and partials that templates extend or include.

The environment is Jinja2's immutable sandbox: a template reads only what it is given, cannot reach Python
internals (`__class__`, `mro`, globals), change what it is given, or read files beyond `templates/` and the
environment. HTML is autoescaped; text and SMS are not. An undefined variable is an error, not an empty
string, unless the template gives it a `default`: a customer never gets "Hi ,".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from sqlalchemy.exc import SQLAlchemyError

from engage.errors import EngageError
from engage.messaging.config import TemplateSettings
from engage.messaging.sms import SmsLength, sms_length

__all__ = ["Templates", "Rendered", "TemplateError", "TEMPLATES_DIR", "PARTS"]

TEMPLATES_DIR = "templates"
PARTS = {"email": ("subject", "html", "txt"), "sms": ("txt",)}
"""The files of one template, by channel."""


class TemplateError(EngageError):
    """A template that cannot be rendered: the file, the line and what is wrong."""

    def __init__(self, file: str, line: int, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


@dataclass(frozen=True)
class Rendered:
    channel: str
    subject: str
    """Empty for an SMS."""
    html: str
    """Empty for an SMS."""
    text: str
    """An email's text part, an SMS's body."""

    @property
    def sms_length(self) -> SmsLength:
        return sms_length(self.text)


class Templates:
    def __init__(self, root: Path, settings: Mapping[str, TemplateSettings] | None = None):
        self.folder = root / TEMPLATES_DIR
        self.settings_by_name = dict(settings or {})
        self.environment = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(self.folder),
            undefined=jinja2.StrictUndefined,
            autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
            keep_trailing_newline=False,
            auto_reload=False,
        )

        self._parts = self._scan()
        """Each template's files that exist, by part: read once (like the compiled templates, which
        Jinja2 keeps until engage reloads its workspace)."""

    def _scan(self) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for channel, parts in PARTS.items():
            for path in sorted((self.folder / channel).glob(f"*.{parts[0]}.j2")):
                if path.name.startswith("_"):
                    continue
                stem = path.name.removesuffix(f".{parts[0]}.j2")
                files = {part: f"{channel}/{stem}.{part}.j2" for part in parts}
                found[f"{channel}/{stem}"] = {p: f for p, f in files.items() if (self.folder / f).is_file()}
        return found

    def names(self, channel: str | None = None) -> list[str]:
        """Every template, `email/NAME` and `sms/NAME`, sorted."""
        return sorted(name for name in self._parts if channel is None or name.startswith(f"{channel}/"))

    def exists(self, name: str) -> bool:
        return name in self._parts

    def settings(self, name: str) -> TemplateSettings:
        return self.settings_by_name.get(name, TemplateSettings())

    def files(self, name: str) -> list[str]:
        """The files `name` is made of, relative to the workspace root."""
        channel, _, stem = name.partition("/")
        return [f"{TEMPLATES_DIR}/{channel}/{stem}.{part}.j2" for part in PARTS[channel]]

    def require(self, name: str) -> None:
        """TemplateError, listing the templates, unless `name` is one."""
        if not self.exists(name):
            known = ", ".join(self.names()) or "none"
            message = f"no template {name!r} (the templates: {known})"
            raise TemplateError(f"{TEMPLATES_DIR}/{name}", 0, message)

    def render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        """Render every part of `name` with `context`; TemplateError names the file and line that failed."""
        self.require(name)
        channel = name.partition("/")[0]
        files = self._parts[name]
        parts = {
            part: self._render_file(files[part], context) if part in files else "" for part in PARTS[channel]
        }
        if channel == "email":
            subject = " ".join(parts["subject"].split())  # one line, whatever the template's layout
            return Rendered("email", subject, parts["html"], parts["txt"].strip() + "\n")
        return Rendered("sms", "", "", parts["txt"].strip())

    def _render_file(self, file: str, context: Mapping[str, Any]) -> str:
        try:
            return self.environment.get_template(file).render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                _shown(exc.filename or file, self.folder), exc.lineno, f"syntax: {exc.message}"
            ) from None
        except jinja2.TemplateNotFound as exc:  # includes outside templates/ are not found, by design
            where, line = _template_frame(exc.__traceback__, file, self.folder)
            raise TemplateError(where, line, f"no template file {exc.name!r} in templates/") from None
        except jinja2.UndefinedError as exc:
            where, line = _template_frame(exc.__traceback__, file, self.folder)
            raise TemplateError(
                where, line, f"undefined: {exc.message}; give it a default or pass it"
            ) from None
        except SecurityError as exc:
            where, line = _template_frame(exc.__traceback__, file, self.folder)
            raise TemplateError(where, line, f"not allowed in a template: {exc}") from None
        except (TemplateError, SQLAlchemyError, OSError):
            raise  # the template's own error, or engage's infrastructure failing: not the template's fault
        except Exception as exc:  # a filter or a function given bad input: still the template's line
            where, line = _template_frame(exc.__traceback__, file, self.folder)
            raise TemplateError(where, line, f"{type(exc).__name__}: {exc}") from None


def _template_frame(trace: TracebackType | None, file: str, folder: Path) -> tuple[str, int]:
    """The innermost template file and line in `trace` (Jinja2 rewrites its frames to point at them)."""
    found = (f"{TEMPLATES_DIR}/{file}", 0)
    while trace is not None:
        name = trace.tb_frame.f_code.co_filename
        if name.endswith(".j2"):
            found = (_shown(name, folder), trace.tb_lineno)
        trace = trace.tb_next
    return found


def _shown(name: str, folder: Path) -> str:
    path = Path(name)
    try:
        return f"{TEMPLATES_DIR}/{path.resolve().relative_to(folder.resolve()).as_posix()}"
    except ValueError:
        return f"{TEMPLATES_DIR}/{name}" if not path.is_absolute() else name
