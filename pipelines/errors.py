"""One error hierarchy for everything a user can get wrong.

The CLI prints ``Error: <format_message()>`` and exits with ``exit_code`` for these;
any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = [
    "AligncraftError",
    "ConfigError",
    "SchemaError",
    "InputError",
    "MissingDependencyError",
    "StageError",
    "BackendError",
    "ParseError",
]


class AligncraftError(Exception):
    """Base class: an error meant for the user, not a bug."""

    exit_code = 1
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def format_message(self) -> str:
        msg = self.message
        if self.hint:
            msg = f"{msg}\n  hint: {self.hint}"
        return msg


class ConfigError(AligncraftError):
    """A recipe, flag, parameter or model path is wrong."""

    exit_code = 2


class SchemaError(AligncraftError):
    """A stage is missing a column it requires, or the column has the wrong type."""

    exit_code = 2

    def __init__(self, message: str, *, stage: str | None = None, column: str | None = None, hint: str | None = None) -> None:
        prefix = ""
        if stage:
            prefix += f"stage '{stage}': "
        super().__init__(prefix + message, hint=hint)
        self.stage = stage
        self.column = column


class InputError(AligncraftError):
    """An input file is unreadable: names the file, line (of text) or row (record), and column."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, row: int | None = None, column: str | None = None, hint: str | None = None) -> None:
        where = []
        if path:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__((": ".join([", ".join(where), message]) if where else message), hint=hint)
        self.path, self.line, self.row, self.column = path, line, row, column


class MissingDependencyError(AligncraftError):
    """An optional package is not installed; the message gives the pip line."""

    def __init__(self, package: str, *, extra: str | None = None, purpose: str = "") -> None:
        pip = f'pip install "aligncraft[{extra}]"' if extra else f"pip install {package}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"the package '{package}' is not installed{what}", hint=pip)
        self.package = package


class StageError(AligncraftError):
    """A stage failed on a batch; finished shards are kept, so re-running resumes."""

    def __init__(self, stage: str, shard: int | None, cause: BaseException | str, tb: str | None = None) -> None:
        where = f"stage '{stage}'" + (f", batch {shard}" if shard is not None else "")
        cause_s = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"{where} failed: {cause_s}", hint="finished batches are saved; fix the cause and run the same command again to resume (--debug shows the full traceback)")
        self.stage, self.shard, self.traceback = stage, shard, tb
        self._cause_s = cause_s

    def __reduce__(self):  # crosses the worker-process boundary intact
        return (type(self), (self.stage, self.shard, self._cause_s, self.traceback))


class BackendError(AligncraftError):
    """An LLM backend cannot serve: server down, model missing, out of memory."""


class ParseError(ValueError):
    """Model output could not be parsed. Stages turn it into a rejected row with reason ``parse_error``."""

    def __init__(self, message: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw
