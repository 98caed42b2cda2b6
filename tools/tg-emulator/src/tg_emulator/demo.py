"""The ``--demo`` world: a few accounts, groups with members, and people who chat now and then."""

from __future__ import annotations

import asyncio
import logging
import random

from .world import World
from .world.seed import apply_seed

log = logging.getLogger(__name__)

DEMO_LOGIN_CODE = "22222"
DEMO_PASSWORD = "demo-password"

_LINES = [
    "Hi! Is this still available?",
    "Good morning everyone",
    "Does anyone know when the next meetup is?",
    "Thanks, that helped a lot",
    "Can you send me the price list?",
    "I'll be there in 10 minutes",
    "Interesting, tell me more",
    "What are your opening hours?",
    "Great news!",
    "Let's talk tomorrow",
]

_FIRST = ["Mia", "Leo", "Zoe", "Max", "Ivy", "Sam", "Ava", "Eli", "Noa", "Kai", "Lia", "Tom"]
_LAST = ["Stone", "Reed", "Park", "Hale", "Voss", "Lane", "Cruz", "Nash", "Ford", "Wade"]


def demo_seed(people: int = 40) -> dict:
    rng = random.Random(7)
    accounts = [
        {"phone": "+15550100001", "first_name": "Fleet", "last_name": "One", "username": "fleet_one"},
        {"phone": "+15550100002", "first_name": "Fleet", "last_name": "Two", "username": "fleet_two"},
        {
            "phone": "+15550100003",
            "first_name": "Fleet",
            "last_name": "Three",
            "username": "fleet_three",
            "password": DEMO_PASSWORD,
            "password_hint": "demo",
        },
    ]
    crowd = [
        {
            "phone": f"+1555020{i:04d}",
            "first_name": rng.choice(_FIRST),
            "last_name": rng.choice(_LAST),
            "username": f"person_{i:03d}",
        }
        for i in range(people)
    ]
    names = [p["username"] for p in crowd]
    return {
        "seed": "demo",
        "fixed_login_code": DEMO_LOGIN_CODE,
        "users": accounts + crowd,
        "groups": [
            {
                "title": "Crypto Traders Lounge",
                "creator": names[0],
                "username": "traders_lounge",
                "members": names[1:30],
                "invite": "TradersLoungeInvite",
                "messages": [{"from": names[1], "text": "Welcome to the lounge!"}],
            },
            {
                "title": "City Marketplace",
                "creator": names[2],
                "username": "city_market",
                "members": names[3:35],
                "slowmode_seconds": 10,
            },
            {
                "title": "Private Club",
                "creator": names[4],
                "members": names[5:15],
                "invite": "PrivateClubInvite",
            },
        ],
        "channels": [{"title": "Daily News", "creator": names[6], "username": "daily_news_demo"}],
        "messages": [{"from": names[7], "to": "fleet_one", "text": "Hey, saw your ad, interested!"}],
    }


def build_demo_world() -> World:
    world = World(seed="demo")
    apply_seed(world, demo_seed())
    return world


async def chatter(world: World, *, every: tuple[float, float] = (2.0, 6.0), seed: int | None = None) -> None:
    """Forever: now and then a random person writes into a group or to a fleet account."""
    rng = random.Random(seed)
    fleet = [u for u in world.users.values() if (u.username or "").startswith("fleet_")]
    while True:
        await asyncio.sleep(rng.uniform(*every))
        groups = [ch for ch in world.channels.values() if ch.megagroup and len(ch.participants) > 1]
        try:
            if groups and rng.random() < 0.7:
                ch = rng.choice(groups)
                author = world.users[rng.choice([uid for uid in ch.participants])]
                world.post(author, ch, rng.choice(_LINES))
            elif fleet:
                people = [u for u in world.users.values() if (u.username or "").startswith("person_")]
                if people:
                    world.post(rng.choice(people), rng.choice(fleet), rng.choice(_LINES))
        except Exception:  # a demo writer must never take the server down
            log.exception("demo chatter failed")
