"""Seeding a world from a JSON/YAML file or a dict (the same shape the admin API accepts).

Shape (every key optional)::

    seed: 1                      # makes ids and access hashes reproducible
    fixed_login_code: "12345"    # every login code (else random, readable via the API)
    limits: {account_messages: {count: 30, window: 60}, non_contact_messages: null, ...}
    unlimited: false             # true switches every rate limit off
    apps: [{api_id: 12345, api_hash: "..."}]   # if given, other apps get API_ID_INVALID
    users:
      - {phone: "+15550100001", first_name: Ann, username: ann, password: "pw", contacts: [bob]}
    groups:                      # supergroups (megagroups)
      - {title: Lobby, creator: ann, username: lobby, members: [bob], admins: [], invite: "JoinLobby",
         generate_members: 250, slowmode_seconds: 0, messages: [{from: bob, text: hi}]}
    channels:                    # broadcast channels, same keys as groups
    chats:                       # basic groups: title, creator, members, invite, messages
    messages: [{from: ann, to: bob, text: "hello"}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..limits import Limits
from .world import World

_USER_KEYS = {
    "phone",
    "first_name",
    "last_name",
    "username",
    "password",
    "password_hint",
    "id",
    "about",
    "bot",
    "login_code",
    "privacy_invites",
    "frozen",
    "banned",
}


def load_file(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a world file is a mapping at the top level")
    return data


def world_from(data: dict[str, Any] | None = None) -> World:
    data = data or {}
    world = World(seed=data.get("seed", 0))
    apply_seed(world, data)
    return world


def apply_seed(world: World, data: dict[str, Any]) -> dict[str, Any]:
    """Add what ``data`` describes to ``world``; returns the ids created."""
    if not isinstance(data, dict):
        raise ValueError("seed data is a mapping")
    if data.get("unlimited"):
        world.limits = Limits.unlimited()
    if "limits" in data and data["limits"] is not None:
        world.limits.update(data["limits"])
    if data.get("fixed_login_code"):
        world.fixed_login_code = str(data["fixed_login_code"])
    for app in data.get("apps") or []:
        world.apps[int(app["api_id"])] = str(app["api_hash"])
    created: dict[str, Any] = {"users": [], "groups": [], "channels": [], "chats": []}
    pending_contacts = []
    for spec in data.get("users") or []:
        unknown = set(spec) - _USER_KEYS - {"contacts"}
        if unknown:
            raise ValueError(f"unknown user keys {sorted(unknown)}")
        kwargs = {k: v for k, v in spec.items() if k in _USER_KEYS and k != "phone"}
        u = world.add_user(spec["phone"], **kwargs)
        created["users"].append(u.id)
        for c in spec.get("contacts") or []:
            pending_contacts.append((u, c))
    for u, c in pending_contacts:
        world.add_contact(u, c)
    created["bots"] = []
    for spec in data.get("bots") or []:
        unknown = set(spec) - {"username", "first_name", "token"}
        if unknown:
            raise ValueError(f"unknown bot keys {sorted(unknown)}")
        bot, token = world.bots.add(
            str(spec["username"]), first_name=str(spec.get("first_name", "")), token=spec.get("token")
        )
        created["bots"].append({"id": bot.id, "username": bot.username, "token": token})
    for key, megagroup in (("groups", True), ("channels", False)):
        for spec in data.get(key) or []:
            created[key].append(_seed_channel(world, spec, megagroup))
    for spec in data.get("chats") or []:
        creator = world.user(spec["creator"])
        c, _, _ = world.create_chat(
            creator, spec["title"], [world.user(m) for m in spec.get("members") or []]
        )
        if spec.get("invite"):
            c.invites.add(str(spec["invite"]))
        for m in spec.get("messages") or []:
            world.post(m["from"], c, m["text"])
        created["chats"].append(c.id)
    for m in data.get("messages") or []:
        world.post(m["from"], m["to"], m["text"])
    return created


def _seed_channel(world: World, spec: dict[str, Any], megagroup: bool) -> int:
    creator = world.user(spec["creator"])
    ch = world.create_channel(
        creator,
        spec["title"],
        about=spec.get("about", ""),
        megagroup=spec.get("megagroup", megagroup),
        username=spec.get("username"),
        slowmode_seconds=int(spec.get("slowmode_seconds", 0)),
        id=spec.get("id"),
    )
    for ref in spec.get("members") or []:
        u = world.user(ref)
        if u.id not in ch.participants:
            world.invite_to_channel(creator, ch, [u])
    for ref in spec.get("admins") or []:
        u = world.user(ref)
        if u.id not in ch.participants:
            world.invite_to_channel(creator, ch, [u])
        ch.participants[u.id].role = "admin"
    n = int(spec.get("generate_members", 0))
    if n:
        generate_members(world, ch, n)
    if spec.get("invite"):
        ch.invites.add(str(spec["invite"]))
    for m in spec.get("messages") or []:
        world.post(m["from"], ch, m["text"])
    return ch.id


def generate_members(world: World, ch, n: int, *, phone_prefix: str = "1999") -> list[int]:
    """Add ``n`` synthetic users to a channel (for paging and scale tests)."""
    ids = []
    base = len(world.users) * 100000
    for i in range(n):
        phone = f"{phone_prefix}{ch.id % 100000:05d}{base + i:07d}"[-15:]
        u = world.add_user(phone, first_name=f"Member{i}", last_name=ch.title[:20])
        world._add_participant(ch, u, inviter=world.users[ch.creator_id], via_link=False)
        ids.append(u.id)
    return ids
