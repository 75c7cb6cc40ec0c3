"""The root of engage's exception tree.

Every error a user can cause is an `EngageError` whose `str()` is one line naming where the problem is
(file and line, field, profile, provider). The CLI prints that line and exits 1; anything else is a bug
and exits 2 with its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["EngageError", "Problem", "WorkspaceError", "ConfigError"]


class EngageError(Exception):
    """An expected failure, caused by input or environment, with a one-line message."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a workspace file, reported as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class WorkspaceError(EngageError):
    """The workspace cannot be found or one of its files is invalid."""


class ConfigError(WorkspaceError):
    """A workspace file has one or more problems; the message lists each as `file:line: message`."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, file: str | Path, line: int, message: str) -> ConfigError:
        return cls([Problem(str(file), line, message)])
