"""What a pushed event shows to whom (api/event_view.py): viewers get no message texts, login material
or full phone numbers; operators and admins get the event as published; every event the contracts
declare is covered. Over a real WebSocket: tests/test_gateway.py."""

from __future__ import annotations

import pytest
from pydantic.alias_generators import to_camel
from tgm_contracts import Role
from tgm_contracts.events import EVENTS
from tgm_gateway.api import event_view
from tgm_gateway.api.event_view import LOGIN_FIELDS, PHONE_FIELDS, TEXT_FIELDS, for_role, mask_phone


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_a_viewer_sees_no_texts_login_material_or_phones() -> None:
    data = {
        "accountId": "a1",
        "phone": "+886912345678",
        "text": "please call me at home",
        "qrUrl": "tg://login?token=abc",
        "items": [{"textPreview": "hi", "n": 2, "phone": "+1 (555) 010-9999"}],
        "state": "active",
    }
    seen = for_role(Role.VIEWER, "message-received", data)
    assert seen == {
        "accountId": "a1",
        "phone": "+886*******78",
        "text": None,
        "qrUrl": None,
        "items": [{"textPreview": None, "n": 2, "phone": "+155******99"}],
        "state": "active",
    }
    assert for_role(Role.OPERATOR, "message-received", data) is data
    assert for_role(Role.ADMIN, "message-received", data) is data
    notice = {"title": "lead", "message": "Bob asked: price?"}
    assert for_role(Role.VIEWER, "operator-notified", notice)["message"] is None
    assert for_role(Role.VIEWER, "one-click-progress", {"message": "step 2"})["message"] == "step 2"
    assert mask_phone("12345") == "*****" and mask_phone(None) is None


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_every_declared_event_field_that_holds_words_or_phones_is_covered() -> None:
    """A new field named like a text or a phone must be listed in event_view's rules."""
    covered = TEXT_FIELDS | LOGIN_FIELDS | PHONE_FIELDS | {"message"}
    missed = []
    for evt in EVENTS.values():
        for name in evt.model_fields:
            wire = to_camel(name)
            wordy = any(w in name for w in ("text", "preview", "phone", "caption", "snippet", "qr_url"))
            if wordy and wire not in covered:
                missed.append(f"{evt.NAME}.{wire}")
    assert not missed, f"add to event_view's rules (or decide they are safe and say why): {missed}"
    assert "message-received" in {e.NAME for e in EVENTS.values()}  # the walk saw the real events
    assert {e.NAME for e in EVENTS.values()} >= event_view.MESSAGE_IS_TEXT
