"""`Problem` (one located message about a preset) and `PresetErrors` (all of a preset's errors)."""

from __future__ import annotations

from dataclasses import dataclass

from tuitrain.errors import TuitrainError

ERROR, NOTICE = "error", "notice"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with (or worth saying about) a preset, at a file and line."""

    file: str
    line: int
    field: str
    message: str
    suggestion: str = ""
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        who = f" {self.field}:" if self.field else ""
        tail = f" ({self.suggestion})" if self.suggestion else ""
        return f"{where}:{who} {self.message}{tail}"


class PresetErrors(TuitrainError):
    """Every error found in a preset; `one_line()` gives one line per problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def one_line(self) -> str:
        return "\n".join(str(p) for p in self.problems)
