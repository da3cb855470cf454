"""Errors a user can cause, each carrying a message fit to show them as it is."""

from __future__ import annotations


class RecstackError(Exception):
    """Base of every error recstack raises on purpose."""


class ConfigError(RecstackError):
    """A setting, option or config file is wrong."""


class NotFoundError(RecstackError):
    """A user, item, model or version that does not exist was asked for."""


class InvalidRequestError(RecstackError):
    """A request that cannot be served as asked (a bad filter, an event for an unknown item)."""


class TooLargeError(RecstackError):
    """A request over a documented size limit (events per batch, items per upsert)."""


class UnavailableError(RecstackError):
    """What a request needs is not there yet (no engine loaded, no store, no content model)."""


class ConflictError(RecstackError):
    """What was asked cannot run now: another holds it (a retrain already running)."""


class DataError(RecstackError):
    """Input data is malformed: carries the file, the 1-based line and the reason.

    ``line`` counts physical lines of the file including the header, so a user can open the
    file at that line; for Parquet it is the 1-based row number.
    """

    def __init__(self, reason: str, *, file: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{reason}")


class MissingExtraError(RecstackError, ImportError):
    """An optional dependency is not installed; names the pip extra that brings it."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package} is not installed; install it with: pip install 'recstack[{extra}]'"
        )


def require(module: str, extra: str):  # noqa: ANN201 - returns a module
    """Import an optional module or raise MissingExtraError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra) from exc
