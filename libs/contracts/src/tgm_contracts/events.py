"""Events: immutable facts published to the TGM_EVENTS stream.

Each event class names its owner and event name once; its subject follows. The event id doubles as
``Nats-Msg-Id``, so JetStream drops a duplicate publish inside the dedupe window.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from . import subjects
from .base import WireModel, utcnow
from .enums import Service


class Event(WireModel):
    OWNER: ClassVar[Service]
    NAME: ClassVar[str]
    VERSION: ClassVar[int]
    SUBJECT: ClassVar[str]

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = Field(default_factory=utcnow)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Pydantic passes class kwargs through __init_subclass__; ours are read from the class body.
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "NAME" in cls.__dict__ and "OWNER" in cls.__dict__:
            cls.VERSION = cls.__dict__.get("VERSION", 1)
            cls.SUBJECT = subjects.event(cls.OWNER, cls.NAME, cls.VERSION)
            key = cls.SUBJECT
            if key in EVENTS and EVENTS[key] is not cls:
                raise ValueError(f"event {key} declared twice")
            EVENTS[key] = cls


EVENTS: dict[str, type[Event]] = {}
