"""JSON log lines and request ids."""

from __future__ import annotations

import json
import logging

from common.logs import JsonFormatter, TextFormatter, request_context, request_id_from


def record(message: str, **extra) -> logging.LogRecord:
    made = logging.getLogger("test").makeRecord("test", logging.INFO, "f.py", 1, message, (), None)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_json_lines_carry_the_request_id_and_extra_fields():
    with request_context("req-1"):
        line = json.loads(JsonFormatter().format(record("hello", route="/x", status=200)))
    assert line["message"] == "hello" and line["level"] == "INFO" and line["logger"] == "test"
    assert line["request_id"] == "req-1" and line["route"] == "/x" and line["status"] == 200
    assert line["time"].endswith("+00:00")
    outside = json.loads(JsonFormatter().format(record("bye")))
    assert "request_id" not in outside


def test_exceptions_are_kept():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, "f.py", 1, "failed", (), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(failed))
    assert "ValueError: boom" in line["exception"]


def test_text_format_appends_the_request_id():
    with request_context("req-2"):
        assert TextFormatter().format(record("hi")).endswith("hi [request_id=req-2]")


def test_request_ids_are_sane_tokens():
    assert request_id_from("a.b:c-d_9") == "a.b:c-d_9"
    for hostile in ("", None, "x" * 65, "new\nline", "{json}", "a b"):
        made = request_id_from(hostile)
        assert len(made) == 32 and made != hostile


def test_text_lines_escape_control_characters_but_keep_tracebacks():
    forged = "GET /x\n2026-01-01 00:00:00 INFO admin logged in\x1b[2K"
    line = TextFormatter().format(record(forged))
    assert "\n" not in line and "\x1b" not in line
    assert "\\n2026-01-01" in line and "\\x1b[2K" in line
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, "f.py", 1, "failed\r", (), sys.exc_info()
        )
    text = TextFormatter().format(failed)
    assert text.splitlines()[0].endswith("failed\\r") and "ValueError: boom" in text
