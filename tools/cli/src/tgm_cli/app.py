"""`tgm`: the TG-Matrix command line. Every subcommand is a client of the gateway's public API only
(`client.Gateway`): the catalogue, `POST /api/v1/commands/<name>` and the WebSocket.

Subcommands: `login`/`logout`, `call` (any command, its payload checked against the registry's schema
first), `commands` (list, `describe`), `events` (live), and shortcuts: `accounts`, `queue`, `export`
(writes the downloaded file) and `backup` (a progress bar fed by `backup-progress` events).
Exit codes: `exits.Exit`. Shell completion: `tgm --install-completion`.

Destructive commands (the catalogue's `destructive: true`: clear-*, reset-settings, restore-database,
remove-/logout-account, …) need `confirm=true` like any client; `tgm call clear-logs all=true` without it
is sent unchecked so the gateway's refusal, which says what the command would destroy, is what the
operator reads. There are no dedicated destructive subcommands, so no `--yes` flag.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from . import __version__, config
from . import catalogue as registry
from .catalogue import fields
from .client import DEFAULT_TIMEOUT, ApiError, Gateway
from .exits import Exit, for_code
from .output import Output, default_output, err, out, rows_table, show, to_json
from .payload import PayloadError, merge_pairs, validate

app = typer.Typer(
    name="tgm",
    help="The TG-Matrix command line: any command of the catalogue, live events and shortcuts, "
    "through the gateway's public API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _State:
    url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    output: Output | None = None


state = _State()


def _version(value: bool) -> None:
    if value:
        print(f"tgm {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    url: Annotated[
        str | None, typer.Option("--url", help="Gateway URL (default: TGM_URL, then the login file).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a reply.")] = DEFAULT_TIMEOUT,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state.url, state.timeout = url, timeout


OutputOpt = Annotated[
    Output | None,
    typer.Option("--output", "-o", help="json (the default when stdout is not a terminal), table or yaml."),
]


def _gateway(key_required: bool = True) -> Gateway:
    try:
        creds = config.load(url=state.url)
    except ValueError as exc:
        raise ApiError("VALIDATION_ERROR", str(exc)) from None
    if key_required and not creds.key:
        raise ApiError("UNAUTHORIZED", "no API key: run `tgm login` or set TGM_KEY")
    return Gateway(creds, timeout=state.timeout)


def _say_error(exc: ApiError, output: Output | None) -> None:
    err.print(Text(f"tgm: {exc.code}: {exc.message}", style="bold red"))
    if exc.retry_after is not None:
        err.print(Text(f"retry after {exc.retry_after} s"))
    details = exc.details
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and "msg" in item:
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                err.print(Text(f"  {where or 'payload'}: {item['msg']}"))
            else:
                err.print(Text(f"  {item}"))
    elif details is not None:
        err.print(Text(f"  {json.dumps(details, ensure_ascii=False, default=str)}"))
    if output is Output.json:
        print(to_json(exc.envelope()))


@contextmanager
def failures(output: Output | None = None) -> Iterator[None]:
    """Turn an `ApiError` / `PayloadError` into its message on stderr and its exit code."""
    try:
        yield
    except PayloadError as exc:
        error = ApiError("VALIDATION_ERROR", f"payload refused before sending: {exc}")
        _say_error(error, output)
        if exc.command:
            err.print(Text(f"  `tgm commands describe {exc.command}` lists its fields", style="dim"))
        raise typer.Exit(Exit.VALIDATION) from None
    except ApiError as exc:
        _say_error(exc, output)
        raise typer.Exit(for_code(exc.code)) from None


def _output(output: Output | None) -> Output:
    return output or default_output()


def _complete_command(incomplete: str) -> list[str]:
    """Command names for shell completion (nothing when the gateway cannot be reached at once)."""
    try:
        creds = config.load()
        with Gateway(creds, timeout=3) as gw:
            return sorted(name for name in registry.load(gw).commands if name.startswith(incomplete))
    except Exception:
        return []


def _read_json(source: str | None) -> Any:
    if source is None:
        return None
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise PayloadError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise PayloadError(f"{'stdin' if source == '-' else source} is not JSON: {exc}") from None


def _payload(gw: Gateway, command: str, json_source: str | None, pairs: list[str], check: bool) -> Any:
    """The payload from `--json` and the pairs, checked against the command's request schema.
    Only a fresh catalogue may refuse it (see `catalogue`): a cached one that does not know the
    command or refuses the payload is fetched again first."""
    payload = merge_pairs(_read_json(json_source), pairs)
    if not check:
        return payload
    cat = registry.load(gw)
    while True:
        try:
            spec = cat.get(command)
            if spec.get("destructive") and isinstance(payload, dict) and payload.get("confirm") is not True:
                return payload  # the gateway refuses it, naming what the command destroys
            validate(command, spec["request"], payload)
            return payload
        except (ApiError, PayloadError):
            if cat.fresh:
                raise
            cat = registry.load(gw, refresh=True)


# ----------------------------------------------------------------------------- login


@app.command()
def login(
    url: Annotated[
        str | None,
        typer.Option(help="Gateway URL (default: TGM_URL, the stored one, then http://127.0.0.1:8080)."),
    ] = None,
    key: Annotated[str | None, typer.Option(help="API key; asked for (hidden) when omitted.")] = None,
) -> None:
    """Check a key against the gateway and store URL and key in the config dir (mode 0600)."""
    with failures():
        base = config.load(url=url or state.url)
        secret = key or typer.prompt("API key", hide_input=True)
        creds = config.Credentials(base.url, secret.strip())
        with Gateway(creds, timeout=min(state.timeout, 30)) as gw:
            gw.call("get-settings", {})  # a viewer may read it; the gateway answers from its own database
        path = config.save(creds)
    err.print(Text(f"logged in to {creds.url}; key stored in {path} (mode 0600)"))


@app.command()
def logout() -> None:
    """Delete the stored key (TGM_URL / TGM_KEY in the environment still apply)."""
    removed = config.remove()
    err.print(Text(f"removed {config.config_file()}" if removed else "not logged in (no stored key)"))


# ----------------------------------------------------------------------------- call


@app.command()
def call(
    command: Annotated[
        str, typer.Argument(help="A command of the catalogue.", autocompletion=_complete_command)
    ],
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KEY=VALUE]...", help="Payload fields; JSON values when they parse, dotted keys nest."
        ),
    ] = None,
    json_source: Annotated[
        str | None, typer.Option("--json", "-j", metavar="FILE|-", help="Payload as a JSON file (- : stdin).")
    ] = None,
    output: OutputOpt = None,
    check: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Check the payload against the schema first.")
    ] = True,
) -> None:
    """Run one command and print its reply."""
    with failures(output), _gateway() as gw:
        data = gw.call(command, _payload(gw, command, json_source, pairs or [], check))
        show(data, _output(output))


# ----------------------------------------------------------------------------- commands


@app.command("commands")
def commands_(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PATTERN] | describe NAME",
            help="A name/domain filter (glob or text), or `describe NAME`.",
        ),
    ] = None,
    output: OutputOpt = None,
    refresh: Annotated[
        bool,
        typer.Option("--refresh", help=f"Ask the gateway, not the cache (kept {registry.MAX_AGE:.0f} s)."),
    ] = False,
) -> None:
    """List the catalogue (name, domain, least role), or describe one command's payload and reply."""
    args = args or []
    with failures(output), _gateway(key_required=False) as gw:
        catalogue = registry.load(gw, refresh=refresh)
        if args and args[0] == "describe":
            if len(args) != 2:
                raise typer.BadParameter("describe takes one command name")
            _describe(catalogue.get(args[1]), _output(output))
            return
        if len(args) > 1:
            raise typer.BadParameter("give at most one PATTERN")
        found = catalogue.matching(args[0] if args else None)
        if not found:
            raise ApiError("NOT_FOUND", f"no command matches {args[0]!r}")
        rows = [
            {
                "command": c["command"],
                "domain": c["domain"],
                "role": c["role"],
                "summary": c.get("summary", ""),
            }
            for c in sorted(found, key=lambda c: (c["domain"], c["command"]))
        ]
        show(rows, _output(output), table=rows_table(rows, title=f"{len(rows)} commands"))


def _describe(spec: dict[str, Any], output: Output) -> None:
    if output is not Output.table:
        show(spec, output)
        return
    out.print(
        Text(
            f"{spec['command']}  ({spec['domain']}, served by {spec['owner']}, least role {spec['role']})",
            style="bold",
        )
    )
    if spec.get("summary"):
        out.print(Text(spec["summary"]))
    columns = ["field", "type", "required", "default", "limits", "description"]
    request = fields(spec["request"])
    out.print(rows_table(request, columns, title="payload") if request else Text("payload: {} (no fields)"))
    reply = fields(spec["response"])
    if reply:
        out.print(rows_table(reply, columns[:2] + columns[-1:], title="reply data"))


# ----------------------------------------------------------------------------- events


def _nats_match(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` one or more to the end (as a regular expression: the
    CLI needs nothing of the server's packages)."""
    tokens = [r"[^.]+" if t == "*" else r".+" if t == ">" else re.escape(t) for t in pattern.split(".")]
    return re.fullmatch(r"\.".join(tokens), subject) is not None


def _subscription(patterns: list[str]) -> tuple[list[str], Callable[[dict[str, Any]], bool]]:
    """What to subscribe to and which pushed events to keep. A pattern is an event subject
    (`tgm.gateway.evt.>`) or a glob on event names (`send-*`, `backup-progress`). One subject is
    subscribed as given; anything else subscribes to every event and filters here (two overlapping
    subscriptions would push an event twice)."""
    if not patterns:
        return ["tgm.*.evt.>"], lambda m: True
    if len(patterns) == 1 and patterns[0].startswith("tgm."):
        return patterns, lambda m: True
    if len(patterns) == 1 and not any(ch in patterns[0] for ch in "*?["):
        return [f"tgm.*.evt.{patterns[0]}.*"], lambda m: True

    def keep(message: dict[str, Any]) -> bool:
        return any(
            _nats_match(p, message.get("subject", ""))
            if p.startswith("tgm.")
            else fnmatch.fnmatchcase(str(message.get("event", "")), p)
            for p in patterns
        )

    return ["tgm.*.evt.>"], keep


def _local_time(stamp: Any) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return str(stamp)


def _event_line(message: dict[str, Any]) -> Text:
    parts = str(message.get("subject", "")).split(".")
    line = Text()
    line.append(_local_time(message.get("timestamp")), style="dim")
    line.append(f"  {message.get('event')}", style="bold cyan")
    line.append(f"  {parts[1] if len(parts) > 1 else '?'}  ", style="magenta")
    line.append(json.dumps(message.get("data"), ensure_ascii=False, default=str))
    return line


@app.command()
def events(
    patterns: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PATTERN]...",
            help="Event names (globs: send-*) or subjects (tgm.gateway.evt.>); all when omitted.",
        ),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until Ctrl-C.")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N events.")] = None,
    within: Annotated[float | None, typer.Option("--timeout", help="Stop after S seconds.")] = None,
) -> None:
    """Print events pushed over the WebSocket as they happen (Ctrl-C ends with exit 0)."""
    if not follow and count is None and within is None:
        raise typer.BadParameter("events are live: give --follow (until Ctrl-C), --count N or --timeout S")
    subjects, keep = _subscription(patterns or [])
    seen = 0
    # Ctrl-C sets a flag the loop reads between waits (each at most 1 s), rather than raising
    # KeyboardInterrupt wherever the main thread happens to be (inside the WebSocket library it
    # could leave its lock held, and the close then hung): the exit is always a clean close.
    stopping: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    try:
        with failures(), _gateway() as gw, gw.events(subjects) as stream:
            err.print(Text(f"subscribed to {', '.join(stream.subjects)}", style="dim"))
            deadline = None if within is None else time.monotonic() + within
            while not stopping and (count is None or seen < count):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                message = stream.next(1.0 if left is None else min(1.0, left))
                if message is None or not keep(message):
                    continue
                seen += 1
                if json_lines:
                    print(json.dumps(message, ensure_ascii=False, default=str), flush=True)
                else:
                    out.print(_event_line(message), soft_wrap=True, highlight=False)
                    out.file.flush()
    finally:
        signal.signal(signal.SIGINT, previous)
    if stopping:
        err.print(Text(f"stopped after {seen} events", style="dim"))


# ----------------------------------------------------------------------------- shortcuts

ACCOUNT_COLUMNS = [
    "id",
    "phone",
    "label",
    "state",
    "role",
    "connected",
    "healthScore",
    "sends",
    "proxy",
    "until",
]


def _account_row(a: dict[str, Any]) -> dict[str, Any]:
    proxy = a.get("proxy") or {}
    return {
        **a,
        "sends": f"{a.get('dailySendCount', 0)}/{a.get('dailySendLimit', '?')}",
        "proxy": f"{proxy.get('host')}:{proxy.get('port')}" if proxy else "",
        "until": a.get("floodWaitUntil") or a.get("cooldownUntil"),
    }


@app.command()
def accounts(
    state_: Annotated[
        list[str] | None, typer.Option("--state", help="Only these states (repeatable).")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Text in phone, label, username, names.")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Only this account group.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every page, not only the first.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    output: OutputOpt = None,
) -> None:
    """The fleet: get-accounts as a table (state, role, health, daily sends, proxy)."""
    payload: dict[str, Any] = {"limit": limit}
    for name, value in (("state", state_), ("text", search), ("group", group)):
        if value:
            payload[name] = value
    with failures(output), _gateway() as gw:
        page = gw.call("get-accounts", payload)
        items = list(page["items"])
        while every and page.get("nextCursor"):
            page = gw.call("get-accounts", {**payload, "cursor": page["nextCursor"]})
            items += page["items"]
        data = {**page, "items": items, "nextCursor": page.get("nextCursor")}
        counts = ", ".join(f"{k} {v}" for k, v in sorted(data.get("byState", {}).items()))
        title = f"{len(items)} accounts" + (f" ({counts})" if counts else "")
        show(
            data,
            _output(output),
            table=rows_table([_account_row(a) for a in items], ACCOUNT_COLUMNS, title=title),
        )


@app.command()
def queue(
    account: Annotated[str | None, typer.Option(help="Only this account's row and jobs.")] = None,
    jobs: Annotated[bool, typer.Option("--jobs", help="List the jobs too.")] = False,
    output: OutputOpt = None,
) -> None:
    """The paced queue: get-queue-status (totals, pauses, per-account pacing, jobs)."""
    payload: dict[str, Any] = {"includeJobs": jobs}
    if account:
        payload["accountId"] = account
    with failures(output), _gateway() as gw:
        data = gw.call("get-queue-status", payload)
        if _output(output) is not Output.table:
            show(data, _output(output))
            return
        totals = data.get("totals", {})
        state_line = "paused" if data.get("paused") else "running"
        out.print(
            Text(
                f"queue {state_line}; sends last minute {data.get('sendsLastMinute')}, last hour {data.get('sendsLastHour')}",
                style="bold",
            )
        )
        out.print(rows_table([totals], title="totals"))
        for pause in data.get("pauses", []):
            out.print(Text(f"pause: {json.dumps(pause, ensure_ascii=False)}"))
        rows = data.get("accounts", [])
        if rows:
            cols = [
                "accountId",
                "paused",
                "pending",
                "scheduled",
                "inFlight",
                "sent",
                "failed",
                "sentToday",
                "dailyCap",
                "nextAllowedAt",
                "cooldownUntil",
            ]
            out.print(rows_table(rows, cols, title="accounts"))
        job_page = data.get("jobs") or {}
        if job_page.get("items"):
            out.print(rows_table(job_page["items"], title="jobs"))


class ExportKind(StrEnum):
    report = "report"
    logs = "logs"
    users = "users"


EXPORT_COMMANDS = {
    ExportKind.report: "export-report",
    ExportKind.logs: "export-logs",
    ExportKind.users: "export-collected-users",
}


class _Hashing:
    """A binary sink that keeps the sha256 of what went through it."""

    def __init__(self, f: Any) -> None:
        self.f, self.digest = f, hashlib.sha256()

    def write(self, block: bytes) -> None:
        self.digest.update(block)
        self.f.write(block)


def _write_export(gw: Gateway, data: dict[str, Any], dest: str | None) -> tuple[str, int]:
    """Write the file of an export reply (inline, or downloaded from the gateway when it was too large
    for one reply); where, and how many bytes. The sha256 of the reply is checked either way."""
    # The file name comes off the bus: only its last component is used, never a path it names.
    name = Path(str(data.get("filename") or "export")).name or "export"
    target = Path(dest) if dest and dest != "-" else Path.cwd() / name
    if target.is_dir():
        target = target / name
    if data.get("objectName"):
        if dest == "-":
            sink = _Hashing(sys.stdout.buffer)
            size = gw.download(str(data["objectName"]), sink)
            sys.stdout.flush()
        else:
            partial = target.with_name(target.name + ".part")
            try:
                with partial.open("wb") as f:
                    sink = _Hashing(f)
                    size = gw.download(str(data["objectName"]), sink)
                if data.get("sha256") and sink.digest.hexdigest() != data["sha256"]:
                    raise ApiError("INTERNAL", "the downloaded file does not match its sha256")
            except BaseException:
                partial.unlink(missing_ok=True)  # nothing half-written is left behind
                raise
        if data.get("sha256") and sink.digest.hexdigest() != data["sha256"]:
            raise ApiError("INTERNAL", "the downloaded file does not match its sha256")
        if dest == "-":
            return "-", size
        partial.replace(target)  # a file is there whole or not at all
        return str(target), size
    try:
        content = base64.b64decode(data.get("contentBase64") or "", validate=True)
    except ValueError:
        raise ApiError("INTERNAL", "the export's content is not valid base64") from None
    if data.get("sha256") and hashlib.sha256(content).hexdigest() != data["sha256"]:
        raise ApiError("INTERNAL", "the downloaded file does not match its sha256")
    if dest == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return "-", len(content)
    target.write_bytes(content)
    return str(target), len(content)


@app.command()
def export(
    what: Annotated[
        ExportKind,
        typer.Argument(help="report (export-report), logs (export-logs) or users (export-collected-users)."),
    ],
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KIND] [KEY=VALUE]...",
            help="For a report, its kind first (dashboard, messages…); then payload fields.",
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="csv, xlsx or json (users: csv or xlsx).")
    ] = None,
    dest: Annotated[
        str | None,
        typer.Option(
            "--out", "-O", help="File or folder to write; - for stdout. Default: the file's own name here."
        ),
    ] = None,
    json_source: Annotated[
        str | None, typer.Option("--json", "-j", metavar="FILE|-", help="Payload as JSON.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Export a report, the logs or the collected users, and write the downloaded file."""
    pairs = list(pairs or [])
    if what is ExportKind.report and pairs and "=" not in pairs[0]:
        pairs[0] = f"report={pairs[0]}"
    if fmt:
        pairs.append(f"format={fmt}")
    command = EXPORT_COMMANDS[what]
    with failures(output), _gateway() as gw:
        data = gw.call(command, _payload(gw, command, json_source, pairs, True))
        where, size = _write_export(gw, data, dest)
        meta = {k: v for k, v in data.items() if k != "contentBase64"} | {"path": where}
        note = f"wrote {where}: {data.get('rows')} rows, {size} bytes" + (
            " (truncated by maxRows)" if data.get("truncated") else ""
        )
        err.print(Text(note))
        if where != "-":
            show(meta, _output(output))


@app.command()
def backup(
    label: Annotated[str | None, typer.Option(help="A label kept with the backup.")] = None,
    output: OutputOpt = None,
) -> None:
    """Back up every service's database, with a progress bar fed by backup-progress events."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    payload: dict[str, Any] = {"wait": False, **({"label": label} if label else {})}
    with failures(output), _gateway() as gw, gw.events(["tgm.gateway.evt.backup-progress.*"]) as stream:
        started = gw.call("backup-database", payload)
        backup_id = started["backupId"]
        status = started
        with Progress(
            TextColumn("backup {task.fields[backup]}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[service]}"),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task = bar.add_task("backup", total=1.0, backup=backup_id, service="")
            while status["state"] == "running":
                message = stream.next(2.0)
                if message is not None and (message.get("data") or {}).get("backupId") == backup_id:
                    data = message["data"]
                    bar.update(task, completed=data.get("progress", 0), service=data.get("service") or "")
                    if data.get("state") == "running":
                        continue
                # Finished, or no event for a while: the status is the truth (an event may be missed).
                status = gw.call("get-backup-status", {"backupId": backup_id})["items"][0]
                bar.update(task, completed=status.get("progress", 0))
        show(status, _output(output))
        if status["state"] != "completed":
            raise ApiError("INTERNAL", f"backup {backup_id} {status['state']}: {status.get('error')}")


def main() -> None:
    app()
