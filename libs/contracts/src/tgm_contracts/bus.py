"""Who may do what on the message bus, declared once (ARCHITECTURE.md §3, §10; docs/SECURITY.md).

One NATS account (TGM, JetStream enabled) holds every service; each service connects as its own user,
named like the service. `USERS` is the whole call graph: what each user may publish and subscribe to
besides what every service gets. `render_accounts_conf` writes nats-server's `accounts` block from it:
`deploy/k8s/nats/accounts.conf` is generated from it (`make schemas`, checked by tests/deploy) and the
embedded stack (tools/stack) runs its nats-server with the same rendering and its own passwords.

Every service may:
  - publish and subscribe on its own subjects `tgm.<service>.>` (the commands, rpcs and sys ops it
    serves, the events it publishes);
  - subscribe to every event `tgm.*.evt.>` (it publishes only its own);
  - subscribe to its OWN inbox `_INBOX.<service>.>` only (the runtime connects with that inbox prefix,
    `inbox_prefix`), so no service reads another's replies; and publish to `_INBOX.>` to answer
    requests. allow_responses alone is not enough: its permission expires (2 min by default, while a
    backup may take 5) and nats-server refuses the answer to a message that reached two subscriptions
    of one connection (checked by tests/deploy);
  - use JetStream: `$JS.API.>` (streams, consumers, KV, object store) except deleting streams and
    purging the event stream, `$JS.ACK.>` / `$JS.FC.>` (acks, flow control), the object stores
    `$O.tgm_backups.>` / `$O.tgm_exports.>` and the KV buckets it writes `$KV.<bucket>.>`;
  - answer requests with other reply subjects (allow_responses).
And the other services' subjects in its `calls` (never another service's commands unless named here:
the gateway sends those for callers, and every command also carries the gateway's signature,
tgm_runtime.busauth).

What could not be narrowed (nats-server matches whole subject tokens): `$JS.API.>` is per account, not
per stream owner — every service creates the shared streams at start (TGM_EVENTS, TGM_TELEMETRY) and
its consumers on them are named `<service>_<x>` (a prefix within one token, which no permission can
match), KV watchers and object-store reads create ephemeral consumers with generated names; so a
service user may create consumers on any stream of the account and read any KV bucket. Writing a
bucket it does not own (`$KV.<bucket>.>`) and deleting or purging streams are refused.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

from . import streams
from .commands.accounts import GetAccounts
from .commands.ai import AiGenerateResponse, GetAiSettings
from .commands.telegram_ops import CreateGroup, GetCreatedGroups, GetGroupMembers, JoinGroup
from .enums import Service
from .rpc_bots import AnswerTelegramCallback
from .rpc_channels import SendChannelReply
from .sys import SettingsGet, SettingsSave

#: The inbox prefix of a service's connection; its user may read only the replies under it.
INBOX_ROOT = "_INBOX"


def inbox_prefix(service: Service | str) -> str:
    """`_INBOX.<service>`: what the runtime hands nats-py as `inbox_prefix` (a token of its own, so a
    permission `_INBOX.<service>.>` matches exactly this service's replies)."""
    return f"{INBOX_ROOT}.{Service(service).value}"


#: The nats-server system account's user (monitoring); not a service.
SYS_USER = "sys"


def password_var(user: str) -> str:
    """The environment variable nats-server reads a user's password from (k8s Secret key)."""
    return "TGM_NATS_PASSWORD_" + user.upper().replace("-", "_")


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` the rest."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


@dataclass(frozen=True)
class Call:
    """Subjects of other services a user publishes to, and why (a line of the generated table)."""

    subjects: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class BusUser:
    service: Service
    #: Other services' subjects it publishes to.
    calls: tuple[Call, ...] = ()
    #: Subjects it subscribes to besides its own, every event and its inbox.
    hears: tuple[str, ...] = ()
    #: KV buckets it writes (everyone may read every bucket: see the module docstring).
    kv: tuple[streams.KvSpec, ...] = ()

    @property
    def name(self) -> str:
        return self.service.value

    @property
    def own(self) -> str:
        return f"tgm.{self.service.value}.>"

    def call_subjects(self) -> list[str]:
        return [s for call in self.calls for s in call.subjects]

    def publish_allow(self) -> list[str]:
        return [
            self.own,
            *self.call_subjects(),
            f"{INBOX_ROOT}.>",
            *INFRA_PUBLISH,
            *(f"$KV.{kv.bucket}.>" for kv in self.kv),
        ]

    def may_publish(self, subject: str) -> bool:
        return any(subject_matches(p, subject) for p in self.publish_allow())

    def subscribe_allow(self) -> list[str]:
        return [self.own, *self.hears, EVENTS_SUBSCRIBE, f"{inbox_prefix(self.service)}.>"]


EVENTS_SUBSCRIBE = "tgm.*.evt.>"
INFRA_PUBLISH: tuple[str, ...] = (
    "$JS.API.>",
    "$JS.ACK.>",
    "$JS.FC.>",
    *(f"$O.{store.bucket}.>" for store in streams.OBJECT_STORES),
)
DENY_PUBLISH: tuple[str, ...] = (
    "$JS.API.STREAM.DELETE.>",
    f"$JS.API.STREAM.PURGE.{streams.EVENTS_STREAM.name}",
)


def _subjects(*cmds: type) -> tuple[str, ...]:
    return tuple(c.SUBJECT for c in cmds)  # type: ignore[attr-defined]


USERS: tuple[BusUser, ...] = (
    BusUser(
        Service.GATEWAY,
        calls=(
            Call(("tgm.*.cmd.>",), "every command, for its callers (signed, tgm_runtime.busauth)"),
            Call(("tgm.*.sys.>",), "the sys fan-out: info, settings, backup, restore, shutdown"),
            Call(("tgm.tailchat.rpc.>",), "hands Tailchat callbacks to the service"),
        ),
        hears=("tgm.stream.>",),
        kv=(streams.KEY_RATE,),
    ),
    BusUser(
        Service.TG_SESSION,
        calls=(Call(("tgm.acct.>",), "account and bot calls forwarded to the replica holding them"),),
        hears=("tgm.acct.>",),
        kv=(streams.ACCOUNT_LEASES,),
    ),
    BusUser(
        Service.CAMPAIGN,
        calls=(
            Call(("tgm.tg-session.rpc.>", "tgm.ai.rpc.>"), "tg-session's and ai's internal rpcs"),
            Call(("tgm.acct.>",), "the accounts tg-session holds: send, join, ..."),
            Call(
                _subjects(GetAccounts, GetGroupMembers, JoinGroup, CreateGroup, GetCreatedGroups),
                "tg-session commands automation and collaboration run (signed as campaign)",
            ),
            Call(_subjects(AiGenerateResponse, GetAiSettings), "ai commands (signed as campaign)"),
            Call(_subjects(SendChannelReply), "trigger-rule replies on Tailchat, once per firing key"),
            Call(
                (SettingsGet.subject(Service.GATEWAY),),
                "the `general` timezone of trigger rules' schedules and daily limits",
            ),
            Call(
                (SettingsGet.subject(Service.AI), SettingsSave.subject(Service.AI)),
                "ai's auto-reply switch, read and set by automation's AI control",
            ),
        ),
        kv=(streams.JOB_LEASES, streams.MONITORED_CHATS),
    ),
    BusUser(Service.AI, calls=(Call(("tgm.stream.>",), "AI stream chunks the gateway relays"),)),
    BusUser(
        Service.ANALYTICS,
        calls=(
            Call(("tgm.tg-session.rpc.>", "tgm.campaign.rpc.>"), "tg-session's and campaign's rpcs"),
            Call(("tgm.acct.*.send.v1",), "reports to a Telegram peer"),
            Call(("tgm.*.sys.info.v1",), "the read-only probe behind `service.down` alerts"),
            Call(("tgm.gateway.sys.settings-get.v1",), "the `general` timezone of day buckets"),
            Call(_subjects(SendChannelReply), "reports to a Tailchat channel"),
            Call(_subjects(GetAccounts), "the account directory of rebuilds (signed as analytics)"),
        ),
    ),
    BusUser(
        Service.TAILCHAT,
        calls=(
            Call(
                _subjects(AnswerTelegramCallback), "answer-callback of a Telegram bot's press, to tg-session"
            ),
        ),
    ),
)

USERS_BY_NAME: dict[str, BusUser] = {u.name: u for u in USERS}


def _quoted(items: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f'"{s}"' for s in items)


def _wrapped(items: list[str], indent: str, width: int = 110) -> str:
    """Items as quoted, comma-separated lines no wider than `width`."""
    lines: list[str] = []
    line = ""
    for item in items:
        piece = f'"{item}"'
        if line and len(indent) + len(line) + len(piece) + 2 > width:
            lines.append(line + ",")
            line = piece
        else:
            line = f"{line}, {piece}" if line else piece
    lines.append(line)
    return "\n".join(indent + x for x in lines)


def _password(user: str, passwords: Mapping[str, str] | None) -> str:
    if passwords is None:
        return "$" + password_var(user)
    value = passwords[user]
    if not value.isalnum():
        raise ValueError(f"the NATS password of {user} must be letters and digits (it goes in nats:// URLs)")
    return f'"{value}"'


HEADER = """\
# GENERATED from libs/contracts/src/tgm_contracts/bus.py by `make schemas` (deploy/generate.py);
# do not edit: change the declaration and regenerate (tests/deploy checks this file is current).
#
# TG-Matrix NATS accounts, users and permissions (ARCHITECTURE.md §3, §10; docs/SECURITY.md). One account
# (TGM, JetStream enabled) holds every service; each service connects as its own user, allowed only:
#   - its own subjects `tgm.<service>.>`, every event `tgm.*.evt.>` (subscribe only) and its own inbox
#     `_INBOX.<service>.>` (subscribe; the runtime connects with that inbox prefix); publishing to
#     `_INBOX.>` answers requests (allow_responses alone expires after 2 min and refuses the answer to
#     a message that reached two subscriptions of one connection),
#   - JetStream: `$JS.API.>` (deleting streams and purging the event stream are denied), `$JS.ACK.>`,
#     `$JS.FC.>`, the object stores `$O.tgm_backups.>` / `$O.tgm_exports.>`, the KV buckets it writes,
#   - and the other services' subjects it calls (table below).
#
"""


def render_accounts_conf(passwords: Mapping[str, str] | None = None) -> str:
    """nats-server's `accounts` block and `system_account`. Without `passwords`, each password is the
    environment variable `$TGM_NATS_PASSWORD_<USER>` (deploy/); with them (user -> password, letters
    and digits, every user and `sys`), the literal values (the embedded stack's own config file)."""
    table = ["#   caller       publishes to (besides its own)"]
    for user in USERS:
        if not user.calls:
            table.append(f"#   {user.name:<12} -")
        for i, call in enumerate(user.calls):
            who = user.name if i == 0 else ""
            text = f"{', '.join(call.subjects)}: {call.why}"
            lines = textwrap.wrap(text, 110 - 17, break_on_hyphens=False)
            table.append(f"#   {who:<12} {lines[0]}")
            table += [f"#   {'':<12}   {more}" for more in lines[1:]]
    out = [
        HEADER + "\n".join(table) + "\n",
        "accounts {",
        "  TGM {",
        "    jetstream: enabled",
        "    users: [",
    ]
    for user in USERS:
        out += [
            "      {",
            f'        user: "{user.name}"',
            f"        password: {_password(user.name, passwords)}",
            "        permissions: {",
            "          publish: {",
            "            allow: [",
            _wrapped(user.publish_allow(), " " * 14),
            "            ]",
            f"            deny: [{_quoted(DENY_PUBLISH)}]",
            "          }",
            "          subscribe: {",
            "            allow: [",
            _wrapped(user.subscribe_allow(), " " * 14),
            "            ]",
            "          }",
            "          allow_responses: true",
            "        }",
            "      }",
        ]
    out += [
        "    ]",
        "  }",
        "  SYS {",
        "    users: [",
        f'      {{ user: "{SYS_USER}", password: {_password(SYS_USER, passwords)} }}',
        "    ]",
        "  }",
        "}",
        "",
        "system_account: SYS",
        "",
    ]
    return "\n".join(out)
