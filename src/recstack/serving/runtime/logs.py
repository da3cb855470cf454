"""Logging of server and scheduler processes: plain text, or one JSON object per line.

With ``log_format = "json"`` every record is a JSON object (``time, level, logger, message``
plus its extra fields), and the request middleware writes one record per request on the
``recstack.access`` logger: ``request_id, method, route, status, latency_ms, model_version,
arm`` — what a log pipeline needs to join a slow or failed request to the model that served it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from recstack.settings import Settings

ACCESS = logging.getLogger("recstack.access")
# attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON, with the fields passed through ``extra``.

    >>> record = logging.makeLogRecord({"name": "recstack.access", "levelname": "INFO",
    ...     "msg": "request", "created": 0.0, "route": "/v1/popular", "status": 200})
    >>> JsonFormatter().format(record)
    '{"time": "1970-01-01T00:00:00.000Z", "level": "INFO", "logger": "recstack.access", \
"message": "request", "route": "/v1/popular", "status": 200}'
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        body: dict[str, Any] = {
            "time": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure_logging(settings: Settings, level: str = "INFO") -> None:
    """Set up the root logger for ``settings.log_format`` (idempotent for one process)."""
    root = logging.getLogger()
    if settings.log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.handlers[:] = [handler]
        root.setLevel(level.upper())
        ACCESS.setLevel(logging.INFO)
    else:
        logging.basicConfig(level=level.upper())


def log_request(
    request_id: str,
    method: str,
    route: str,
    status: int,
    seconds: float,
    model_version: Any,
    arm: Any,
) -> None:
    """One access record (only called when ``log_format = "json"``)."""
    ACCESS.info(
        "request",
        extra={
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": round(seconds * 1000.0, 3),
            "model_version": model_version,
            "arm": arm,
        },
    )
