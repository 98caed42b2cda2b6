"""Commands declared on the use case method that answers them: `@answers(JoinGroup)`.

A domain whose handlers would only be `runtime.route(Cmd, lambda app: app.<use case>.<method>)` lines
marks each method with the command it answers and registers the use case once:

    class GroupOps:
        @answers(telegram_cmd.JoinGroup)
        async def join(self, req: JoinGroupRequest) -> JoinGroupResult: ...

    def register(runtime: Runtime) -> None:  # groups/handlers.py
        route_use_case(runtime, GroupOps, lambda app: app.groups)

*Decision:* the command and the method that answers it are named together, once (like tg-session's
`@account_call`), instead of a second list in `handlers.py` that must follow every rename. Each marked
method is served through `ServiceRuntime.route`, so the envelope, the validation and the start-time check
of the method's request type against the contract are the same as a written-out route. A method that
takes no request answers a command whose request is `Empty` (get-tags, ip-get-statistics): the empty
request is validated and dropped. A method that also takes who calls says so, `@answers(AddLead,
principal=True)` over `add_lead(self, req, by)`, and is served through `route_with_principal` (with no
request, `stop(self, by)`, it answers an `Empty` command). One method may answer several commands (an
alias kept for the earlier client): stack the decorators. A handler that needs more of the call context
(the request id) stays written out with `@runtime.command` in `handlers.py`.

Events the same way: `@hears(MessageReceived, "crm_received")` marks a method as one handler on the
service's one consumer of that event (`ServiceRuntime.on_event`, with its `max_workers` and `order_by`),
`@consumes(KeywordMatched, durable="crm_keywords")` as the handler of a durable consumer of its own
(`ServiceRuntime.subscribe_events`); `route_use_case` registers them with the commands. A reaction with
logic of its own (a filter before the use case) stays written out in `handlers.py`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

from tgm_contracts import Command, Event, Rpc
from tgm_contracts.base import Empty

from .runtime import OrderKey, ServiceRuntime

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
AppT = TypeVar("AppT")
UseCaseT = TypeVar("UseCaseT")
Answered = type[Command] | type[Rpc]

_MARK = "__tgm_answers__"
_HEARS = "__tgm_hears__"


class Answer(NamedTuple):
    """One command a use case method answers, and what the method takes besides `self`."""

    cmd: Answered
    name: str
    takes_request: bool
    takes_principal: bool = False


def answers(cmd: Answered, *, principal: bool = False) -> Callable[[F], F]:
    """Declare the decorated use case method as the one that answers `cmd` (see `route_use_case`);
    `principal=True`: it also takes the caller's principal, after the request."""

    def mark(fn: F) -> F:
        setattr(fn, _MARK, [*getattr(fn, _MARK, ()), (cmd, principal)])
        return fn

    return mark


class Reaction(NamedTuple):
    """One event a use case method handles: on the shared consumer (`durable` None: `on_event` under
    `name`) or on a durable consumer of its own (`subscribe_events`)."""

    event: type[Event]
    name: str
    durable: str | None = None
    max_workers: int = 1
    order_by: OrderKey | None = None


def hears(
    event: type[Event], name: str, *, max_workers: int = 1, order_by: OrderKey | None = None
) -> Callable[[F], F]:
    """Handle `event` with the decorated method, as the handler `name` of the service's one consumer of
    it (`ServiceRuntime.on_event`)."""
    return _react(Reaction(event, name, None, max_workers, order_by))


def consumes(event: type[Event], *, durable: str, max_workers: int = 1) -> Callable[[F], F]:
    """Handle `event` with the decorated method through a durable consumer of its own
    (`ServiceRuntime.subscribe_events`)."""
    return _react(Reaction(event, durable, durable, max_workers))


def _react(reaction: Reaction) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        setattr(fn, _HEARS, [*getattr(fn, _HEARS, ()), reaction])
        return fn

    return mark


def reactions(owner: type) -> list[tuple[Reaction, str]]:
    """The `@hears` / `@consumes` methods of a use case class: (reaction, method name)."""
    return [
        (reaction, name)
        for name, member in inspect.getmembers(owner, inspect.isfunction)
        for reaction in getattr(member, _HEARS, ())
    ]


def answered(owner: type) -> list[Answer]:
    """The `@answers` methods of a use case class, one entry per command they answer."""
    found = []
    for name, member in inspect.getmembers(owner, inspect.isfunction):
        for cmd, principal in getattr(member, _MARK, ()):
            params = [p for p in inspect.signature(member).parameters.values() if p.default is p.empty]
            taken = len(params) - 1  # besides self
            if principal and taken < 1:
                raise TypeError(f"{cmd.NAME}: {member.__qualname__} takes no principal")
            takes_request = taken > (1 if principal else 0)
            if not takes_request and not issubclass(cmd.Request, Empty):
                raise TypeError(
                    f"{cmd.NAME}: {member.__qualname__} takes no request but {cmd.NAME} sends one"
                )
            found.append(Answer(cmd, name, takes_request, principal))
    return found


def route_use_case(
    runtime: ServiceRuntime[AppT], owner: type[UseCaseT], use_case: Callable[[AppT], UseCaseT]
) -> None:
    """Serve every `@answers` method of `owner` (the use case's class) on `runtime`, and hand it the
    events of its `@hears` / `@consumes` methods, reached at each call as `use_case(app)` (the app of the
    current start). A class with none of them is a mistake: it fails here."""
    routes = answered(owner)
    heard = reactions(owner)
    if not routes and not heard:
        raise ValueError(f"{owner.__qualname__} has no @answers, @hears or @consumes method")
    for reaction, name in heard:
        handler = _handler(runtime, use_case, name)
        if reaction.durable is None:
            runtime.on_event(
                reaction.event, reaction.name, max_workers=reaction.max_workers, order_by=reaction.order_by
            )(handler)
        else:
            runtime.subscribe_events(reaction.event, reaction.durable, max_workers=reaction.max_workers)(
                handler
            )
    for cmd, name, takes_request, takes_principal in routes:
        reach = _reach(use_case, name, takes_request, takes_principal)
        if takes_principal:
            runtime.route_with_principal(cmd, reach)
        else:
            runtime.route(cmd, reach)


def _handler(
    runtime: ServiceRuntime[AppT], use_case: Callable[[AppT], Any], name: str
) -> Callable[[Any], Awaitable[None]]:
    async def handle(evt: Any) -> None:
        await getattr(use_case(runtime.app), name)(evt)

    return handle


def _reach(
    use_case: Callable[[AppT], Any], name: str, takes_request: bool, takes_principal: bool
) -> Callable[[AppT], Callable[..., Awaitable[Any]]]:
    if takes_request:
        return lambda app: getattr(use_case(app), name)

    def without_request(app: AppT) -> Callable[..., Awaitable[Any]]:
        method = getattr(use_case(app), name)

        async def call(req: Empty) -> Any:
            return await method()

        async def call_by(req: Empty, by: str | None) -> Any:
            return await method(by)

        served = call_by if takes_principal else call
        served.__qualname__ = method.__qualname__
        return served

    return without_request
