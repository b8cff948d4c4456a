"""The command line's logging: text (default), one JSON object per line, or the user's
own ``logging.config.dictConfig`` file."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import socket
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._errors import SystemFileError

__all__ = ["JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# The attributes every LogRecord has: anything else on a record came as `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, ``node`` (host and pid), the structured fields the runtime logs with
    (``event``, ``path``: the actor instance, ``mailbox``, ``message_id``,
    ``attempt``, ``dead_letter_id``...), and ``exception`` (the traceback) if any.
    Usable in a dictConfig of one's own as ``{"()": "actors.JsonFormatter"}``."""

    def __init__(self) -> None:
        super().__init__()
        self._node = f"{socket.gethostname()}-{os.getpid()}"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node": self._node,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "text", config: str | None = None) -> None:
    """Set up the root logger on standard error: ``level`` and ``log_format`` (``text``
    or ``json``), or ``config``, a dictConfig in a ``.json`` or ``.toml`` file.

    Raises:
        SystemFileError: the config file is missing, unreadable, or rejected by
            ``logging.config.dictConfig`` (a usage error: exit status 2).
    """
    if config is not None:
        loaded = _read_config(config)
        try:
            logging.config.dictConfig(loaded)
        except (ValueError, TypeError, AttributeError, ImportError) as exc:
            raise SystemFileError(
                f"{config}: rejected by logging.config.dictConfig: {exc}", filename=config
            ) from exc
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level, handlers=[handler])


def _read_config(config: str) -> dict[str, Any]:
    path = Path(config)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SystemFileError(f"{config}: {exc.strerror or exc}", filename=config) from exc
    try:
        loaded = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except ValueError as exc:  # both JSONDecodeError and TOMLDecodeError
        raise SystemFileError(
            f"{config}: not valid {path.suffix[1:] or 'JSON'}: {exc}", filename=config
        ) from exc
    if not isinstance(loaded, dict):
        raise SystemFileError(
            f"{config}: a logging config is a table/object (dictConfig)", filename=config
        )
    loaded.setdefault("version", 1)
    # The runtime's loggers exist by now (imported); a config that does not name them
    # must not silence them.
    loaded.setdefault("disable_existing_loggers", False)
    return loaded
