"""Commands, internal calls and the registry the gateway routes from.

A command is declared once, as a class that names its seed command, owner, domain, least role,
major version and its request/response models::

    class AddAccount(Command, name="add-account", owner=Service.TG_SESSION, domain=Domain.ACCOUNT,
                     role=Role.OPERATOR, request=AddAccountRequest, response=AccountView):
        '''Add a Telegram account to the fleet.'''

Handlers subscribe with ``AddAccount.SUBJECT``; the gateway builds its routing table from
``REGISTRY``. No subject string is typed anywhere else.

Destructive commands (the rule is in `base.py`'s docstring) take a `Confirmed` request; the catalogue
shows `describe()["destructive"]`, and `invalid_payload_message` makes the refusal of a call without
`confirm: true` the envelope's message (the gateway and every service use it).

Commands the seed does not have (the `channels` domain: Tailchat) say ``seed=False``; the catalogue
shows it (`describe()["seed"]`) and `REGISTRY.seed()` lists the seed's own.
"""

from __future__ import annotations

from typing import Any, ClassVar, NotRequired, TypedDict, Unpack

from pydantic import BaseModel, ValidationError

from . import subjects
from .base import CONFIRM_REQUIRED, Confirmed
from .base import Request as RequestModel
from .enums import Domain, Role, Service


class Command:
    NAME: ClassVar[str]
    OWNER: ClassVar[Service]
    DOMAIN: ClassVar[Domain]
    ROLE: ClassVar[Role]
    VERSION: ClassVar[int]
    SUBJECT: ClassVar[str]
    Request: ClassVar[type[RequestModel]]
    Response: ClassVar[type[BaseModel]]
    #: Long-running commands (backups, extraction) may take longer than the default deadline.
    TIMEOUT: ClassVar[float | None]
    #: False for commands that are not in the seed's catalogue (the `channels` domain).
    SEED: ClassVar[bool]
    #: An example payload, shown in the gateway's /docs; checked against `Request` when declared.
    EXAMPLE: ClassVar[dict[str, Any] | None]

    def __init_subclass__(
        cls,
        *,
        name: str,
        owner: Service,
        domain: Domain,
        role: Role,
        request: type[RequestModel],
        response: type[BaseModel],
        version: int = 1,
        timeout: float | None = None,
        seed: bool = True,
        example: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.NAME = name
        cls.OWNER = owner
        cls.DOMAIN = domain
        cls.ROLE = role
        cls.VERSION = version
        cls.Request = request
        cls.Response = response
        cls.TIMEOUT = timeout
        cls.SEED = seed
        if example is not None:
            request.model_validate(example)  # an example its own contract refuses fails at import
        cls.EXAMPLE = example
        cls.SUBJECT = subjects.command(owner, name, version)
        if issubclass(request, Confirmed):
            _bind_confirmed(request, name)
        REGISTRY.register(cls)

    @classmethod
    def parse(cls, payload: Any) -> RequestModel:
        """Validate a payload; raises pydantic.ValidationError."""
        return cls.Request.model_validate(payload if payload is not None else {})

    @classmethod
    def destructive(cls) -> bool:
        """True when the command runs only with `confirm: true` (its request is `Confirmed`)."""
        return issubclass(cls.Request, Confirmed)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "command": cls.NAME,
            "owner": cls.OWNER.value,
            "domain": cls.DOMAIN.value,
            "role": cls.ROLE.label,
            "version": cls.VERSION,
            "subject": cls.SUBJECT,
            "seed": cls.SEED,
            "destructive": cls.destructive(),
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
        }


def _bind_confirmed(request: type[Confirmed], name: str) -> None:
    if not request.DESTROYS:
        raise TypeError(f"{request.__name__} is Confirmed but does not say what {name} DESTROYS")
    if request.COMMAND and name != request.COMMAND:
        raise TypeError(f"{request.__name__} is the confirmed request of {request.COMMAND}, not {name}")
    request.COMMAND = name


def invalid_payload_message(name: str, exc: ValidationError) -> str:
    """The message of a refused payload: the refusal of a destructive call without `confirm: true`
    (it names what the command destroys), else "invalid payload for <name>"."""
    for err in exc.errors(include_url=False, include_input=False):
        if err["type"] == CONFIRM_REQUIRED:
            return str(err["msg"])
    return f"invalid payload for {name}"


class CommandRegistry:
    """All commands by seed name (latest major) and by (name, major)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], type[Command]] = {}
        self._latest: dict[str, type[Command]] = {}

    def register(self, cmd: type[Command]) -> None:
        key = (cmd.NAME, cmd.VERSION)
        if key in self._by_key and self._by_key[key] is not cmd:
            raise ValueError(f"command {cmd.NAME} v{cmd.VERSION} declared twice")
        self._by_key[key] = cmd
        latest = self._latest.get(cmd.NAME)
        if latest is None or latest.VERSION < cmd.VERSION:
            self._latest[cmd.NAME] = cmd

    def get(self, name: str, version: int | None = None) -> type[Command] | None:
        """The command by seed name: the given major version, or the latest one."""
        if version is not None:
            return self._by_key.get((name, version))
        return self._latest.get(name)

    def names(self) -> list[str]:
        return sorted(self._latest)

    def all(self) -> list[type[Command]]:
        return [self._by_key[k] for k in sorted(self._by_key)]

    def seed(self) -> list[type[Command]]:
        """The commands of the seed's catalogue (not the `channels` domain's)."""
        return [c for c in self.all() if c.SEED]

    def owned_by(self, owner: Service) -> list[type[Command]]:
        return [c for c in self.all() if c.OWNER is owner]

    def __len__(self) -> int:
        return len(self._latest)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


REGISTRY = CommandRegistry()


class CallSpec(TypedDict):
    """The keywords an internal call is declared with (`Rpc`, `AccountRpc`)."""

    name: str
    request: type[RequestModel]
    response: type[BaseModel]
    version: NotRequired[int]


class _Call:
    """What every internal call has: a name, a major version, and its request and response models."""

    NAME: ClassVar[str]
    VERSION: ClassVar[int]
    Request: ClassVar[type[RequestModel]]
    Response: ClassVar[type[BaseModel]]

    @classmethod
    def _declare(cls, spec: CallSpec) -> None:
        cls.NAME, cls.VERSION = spec["name"], spec.get("version", 1)
        cls.Request, cls.Response = spec["request"], spec["response"]


class Rpc(_Call):
    """An internal call between services: ``tgm.<owner>.rpc.<name>.v<major>``."""

    OWNER: ClassVar[Service]
    SUBJECT: ClassVar[str]

    def __init_subclass__(cls, *, owner: Service, **spec: Unpack[CallSpec]) -> None:
        super().__init_subclass__()
        cls._declare(spec)
        cls.OWNER = owner
        cls.SUBJECT = subjects.rpc(owner, cls.NAME, cls.VERSION)
        RPCS.append(cls)


class AccountRpc(_Call):
    """A call to whichever tg-session replica holds an account: ``tgm.acct.<id>.<name>.v<major>``."""

    def __init_subclass__(cls, **spec: Unpack[CallSpec]) -> None:
        super().__init_subclass__()
        cls._declare(spec)
        ACCOUNT_RPCS.append(cls)

    @classmethod
    def subject(cls, account_id: str) -> str:
        return subjects.account(account_id, cls.NAME, cls.VERSION)


RPCS: list[type[Rpc]] = []
ACCOUNT_RPCS: list[type[AccountRpc]] = []


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Field-level details of a validation failure, without echoing input values (may be secrets)."""
    return [
        {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


__all__ = [
    "ACCOUNT_RPCS",
    "REGISTRY",
    "RPCS",
    "AccountRpc",
    "Command",
    "CommandRegistry",
    "Rpc",
    "invalid_payload_message",
    "validation_details",
]
