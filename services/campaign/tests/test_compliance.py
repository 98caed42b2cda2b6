"""Stop words (zh/en) and user keys."""

from __future__ import annotations

import pytest
from tgm_campaign.messaging.compliance import StopWords, normalise, user_keys
from tgm_contracts.settings import DEFAULT_STOP_WORDS

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

words = StopWords(DEFAULT_STOP_WORDS)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("STOP", "stop"),
        ("Stop!", "stop"),
        ("please stop messaging me", "stop"),
        ("Ｓｔｏｐ", "stop"),  # full-width letters
        ("unsubscribe", "unsubscribe"),
        ("Please REMOVE   me from this", "remove me"),
        ("opt-out", None),  # not one of the defaults (optout and "opt out" are)
        ("opt out please", "opt out"),
        ("退訂", "退訂"),
        ("我要退订，谢谢", "退订"),
        ("請不要再發了", "不要再發"),
        ("别再发了", "别再发"),
    ],
)
def test_default_stop_words_match(text: str, word: str | None) -> None:
    assert words.match(text) == word


@pytest.mark.parametrize(
    "text", ["unstoppable deal", "nonstop", "I want to buy", "stopwatch", "", "你好，請問價格"]
)
def test_ordinary_messages_do_not_opt_out(text: str) -> None:
    assert words.match(text) is None


def test_custom_words_and_empty_list() -> None:
    custom = StopWords(["Leave me alone", "滾"])
    assert custom.match("please leave  me alone!") == "leave me alone"
    assert custom.match("滾開") == "滾"
    assert StopWords([]).match("stop") is None
    assert normalise("  A\u3000B  ") == "a b"


def test_user_keys() -> None:
    assert user_keys(123, "Alice", "886912") == ["id:123", "@alice", "+886912"]
    assert user_keys(username="@bob") == ["@bob"]
    assert user_keys() == []
