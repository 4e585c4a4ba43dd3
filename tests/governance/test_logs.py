"""Log output: plain text, or one JSON object per line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from governance.logs import configure_logging
from governance.settings import Settings


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _records(text: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_lines_carry_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json"))
    logging.getLogger("steward.test").warning("queue %s is %d deep", "outbox", 3)
    (record,) = _records(capsys.readouterr().err)
    assert record["level"] == "WARNING"
    assert record["logger"] == "steward.test"
    assert record["message"] == "queue outbox is 3 deep"
    assert datetime.fromisoformat(record["time"]).utcoffset() is not None
    assert "exception" not in record


def test_json_exception_stays_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json"))
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logging.getLogger("steward.test").exception("first line\nsecond line")
    output = capsys.readouterr().err
    assert output.count("\n") == 1
    (record,) = _records(output)
    assert record["level"] == "ERROR"
    assert record["message"] == "first line\nsecond line"
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert record["exception"].endswith("ValueError: bad\nvalue")


def test_level_filters_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json", log_level="WARNING"))
    logger = logging.getLogger("steward.test")
    logger.info("hidden")
    logger.error("shown")
    records = _records(capsys.readouterr().err)
    assert [record["message"] for record in records] == ["shown"]


def test_text_format_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="text"))
    logging.getLogger("steward.test").warning("plain")
    line = capsys.readouterr().err.strip()
    assert line.endswith("WARNING steward.test: plain")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_invalid_log_format_rejected() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="xml")  # type: ignore[arg-type]
