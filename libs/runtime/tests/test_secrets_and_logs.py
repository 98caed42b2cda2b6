from __future__ import annotations

import gzip
import logging

import pytest
from tgm_runtime import backup
from tgm_runtime.errors import Invalid
from tgm_runtime.logs import redact
from tgm_runtime.secrets import SecretBox, SecretError, decode_key, is_encrypted, mask, new_key_text

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


def box(*previous: str) -> tuple[SecretBox, str]:
    key = new_key_text()
    return SecretBox(decode_key(key), [decode_key(p) for p in previous]), key


def test_round_trip_is_bound_to_its_context() -> None:
    b, _ = box()
    token = b.encrypt("1BVtsOK4Bu...session", context="acct-1")
    assert is_encrypted(token) and "session" not in token
    assert b.decrypt(token, context="acct-1") == "1BVtsOK4Bu...session"
    with pytest.raises(SecretError):
        b.decrypt(token, context="acct-2")  # a ciphertext copied to another record is useless


def test_rotation_keeps_old_secrets_readable() -> None:
    old, old_key = box()
    token = old.encrypt("hash")
    new, _ = box(old_key)
    assert new.decrypt(token) == "hash"
    assert new.needs_rotation(token) and not new.needs_rotation(new.encrypt("hash"))
    stranger, _ = box()
    with pytest.raises(SecretError):
        stranger.decrypt(token)


def test_bad_keys_and_tokens() -> None:
    with pytest.raises(SecretError):
        decode_key("c2hvcnQ=")
    b, _ = box()
    with pytest.raises(SecretError):
        b.decrypt("plain text")
    with pytest.raises(SecretError):
        b.decrypt(b.encrypt("x")[:-4] + "AAAA")


def test_mask_shows_a_prefix_only() -> None:
    assert mask("sk-abcdefghijklmnop") == "sk-a" + "•" * 12
    assert mask(None) is None


def test_log_redaction() -> None:
    line = 'connect apiHash="0123456789abcdef" password: hunter2 session_string=1BQANOTSAFE'
    red = redact(line)
    assert "0123456789abcdef" not in red and "hunter2" not in red and "1BQANOTSAFE" not in red
    assert "connect" in red


def test_logs_pass_through_the_filter(caplog: pytest.LogCaptureFixture) -> None:
    from tgm_runtime.logs import _ContextFilter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "apiKey=sk-secret-value done", None, None)
    _ContextFilter("svc", "r1").filter(record)
    assert "sk-secret-value" not in record.getMessage() and record.service == "svc"


def test_json_lines_carry_no_ansi_colour_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn logs its lines with a `color_message` extra holding ANSI codes (issue 17, finding 5)."""
    import json

    from tgm_runtime.logs import setup_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.propagate, uvicorn.disabled = False, True  # as uvicorn's own log config leaves it
    try:
        setup_logging("svc", "r1")
        assert uvicorn.propagate and not uvicorn.disabled and not uvicorn.handlers  # to the JSON handler
        # Handed to the root's handler directly: whatever else in this process (other tests) did to
        # the uvicorn loggers' levels, this checks the line the handler writes.
        record = uvicorn.makeRecord(
            uvicorn.name,
            logging.INFO,
            __file__,
            80,
            "Started server process [%d]",
            (42,),
            None,
            extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
        )
        root.handle(record)
        raw = capsys.readouterr().out.strip().splitlines()[-1]
        line = json.loads(raw)
    finally:
        root.handlers[:], root.level = handlers, level
    assert line["message"] == "Started server process [42]" and "color_message" not in line
    assert "\\u001b" not in raw and "\x1b" not in raw


def test_a_corrupt_backup_is_refused_before_anything_changes() -> None:
    with pytest.raises(Invalid):
        backup.parse(b"not gzip")
    truncated = gzip.compress(b'{"c": "a", "d": {"_id": 1}}\n{"c": "a", "end": 2}\n')
    with pytest.raises(Invalid):
        backup.parse(truncated)
    good = gzip.compress(b'{"c": "a", "d": {"_id": 1}}\n{"c": "a", "end": 1}\n{"c": "b", "end": 0}\n')
    assert backup.parse(good) == {"a": [{"_id": 1}], "b": []}
