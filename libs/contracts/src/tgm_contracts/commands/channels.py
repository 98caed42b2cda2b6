"""The `channels` commands: Tailchat bot apps, served by the tailchat service (issue 15).

These are **not seed commands** (`seed=False`): the seed's catalogue knows only Telegram. Least roles
follow the Telegram equivalents: registering or removing an app and changing its bot settings are
`admin` (like `save-api-credential`, `remove-account`), sending, editing and answering callbacks are
`operator` (like `send-private-message`), checking an app is `operator` (like `check-account-status`),
reads are `viewer`, `delete-channel-message` is `admin` (every `delete-` is).

Markup: `send-channel-message` and `edit-channel-message` take an optional channel-neutral `markup`
(`tgm_contracts.markup.MessageMarkup`), rendered by the tailchat service as `meta.replyKeyboard` /
`meta.inlineActions`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..base import Ack, Empty, HttpUrlStr, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..markup import MessageMarkup, utf16_len
from ..models.channels import (
    BotCommand,
    BotCommandView,
    ChannelMessageView,
    CommandScopeType,
    TailchatAppId,
    TailchatAppView,
    TailchatId,
)

T = Service.TAILCHAT
CH = Domain.CHANNELS
#: answerCallbackQuery refuses a longer text ("Text too long (max 200 characters)", JavaScript length).
ANSWER_TEXT = 200

# --- apps ----------------------------------------------------------------------------------------


class RegisterTailchatAppRequest(Request):
    """An app of a Tailchat server (fork blooworet/tailchat) with the `bot` capability enabled."""

    server_url: HttpUrlStr = Field(description="The server's base URL, e.g. https://chat.example.com.")
    app_id: TailchatAppId
    app_secret: str = Field(
        min_length=1,
        max_length=256,
        # it travels in the X-App-Secret header: visible ASCII only (schemathesis: a non-ASCII secret
        # failed inside the HTTP client as a 500)
        pattern=r"^[\x21-\x7e]+$",
        description="The app's secret, or the composite `<appId>:<secret>` (visible ASCII, as the header "
        "that carries it); encrypted at rest, never shown.",
    )
    name: str | None = Field(None, max_length=100, description="A label; the bot's nickname when null.")
    check: bool = Field(True, description="Ask the server who the bot is first (whoami); refuse on failure.")

    @model_validator(mode="after")
    def _secret_matches_app(self) -> RegisterTailchatAppRequest:
        head, sep, tail = self.app_secret.partition(":")
        if sep and head != self.app_id:
            raise ValueError("a composite appSecret must start with this appId and a colon")
        if sep and not tail:
            raise ValueError("the composite appSecret has no secret after the colon")
        return self


class RegisteredTailchatApp(Response):
    app: TailchatAppView
    callback_path: str = Field(
        description="Where Tailchat must POST callbacks (append to the gateway's public URL). Shown once: "
        "only the token's hash is kept; rotate-tailchat-callback-token makes a new one."
    )


class RegisterTailchatApp(
    Command,
    name="register-tailchat-app",
    owner=T,
    domain=CH,
    role=Role.ADMIN,
    request=RegisterTailchatAppRequest,
    response=RegisteredTailchatApp,
    seed=False,
):
    """Register (or re-key) a Tailchat bot app; its secret is encrypted at rest and never returned."""


class AppRef(Request):
    app_id: TailchatAppId


class TailchatAppList(Response):
    items: list[TailchatAppView] = Field(default_factory=list)


class GetTailchatApps(
    Command,
    name="get-tailchat-apps",
    owner=T,
    domain=CH,
    role=Role.VIEWER,
    request=Empty,
    response=TailchatAppList,
    seed=False,
):
    """The registered Tailchat apps (never their secrets)."""


class RemoveTailchatApp(
    Command,
    name="remove-tailchat-app",
    owner=T,
    domain=CH,
    role=Role.ADMIN,
    request=AppRef,
    response=Ack,
    seed=False,
):
    """Forget an app: its secret, callback token and remembered messages."""


class CheckTailchatApp(
    Command,
    name="check-tailchat-app",
    owner=T,
    domain=CH,
    role=Role.OPERATOR,
    request=AppRef,
    response=TailchatAppView,
    seed=False,
):
    """Ask the server who the app's bot is (whoami); the answer's status says ok, rejected or unreachable."""


class RotateTailchatCallbackTokenRequest(AppRef):
    apply: bool = Field(
        True,
        description="Also set the bot's callbackUrl on the server (needs TGM_TAILCHAT_PUBLIC_URL).",
    )


class RotatedCallbackToken(Response):
    callback_path: str = Field(description="The new callback path; shown once.")
    callback_url: str | None = Field(None, description="The full URL, when the public URL is configured.")
    applied: bool = Field(False, description="The server's callbackUrl was set to it.")
    rotated_at: datetime


class RotateTailchatCallbackToken(
    Command,
    name="rotate-tailchat-callback-token",
    owner=T,
    domain=CH,
    role=Role.ADMIN,
    request=RotateTailchatCallbackTokenRequest,
    response=RotatedCallbackToken,
    seed=False,
):
    """A new secret token in the app's callback URL (Tailchat does not sign callbacks); the old one stops."""


# --- bot settings and commands -------------------------------------------------------------------


class SetTailchatBotInfoRequest(AppRef):
    """Each field given is one `setAppBotInfo` call, in this order; fields left out are unchanged."""

    callback_url: HttpUrlStr | None = Field(None, description="Where the server POSTs callbacks.")
    username: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_]{3,30}[A-Za-z0-9]$",
        description="5-32 letters, digits or _ (not first or last), ending with 'bot'; settable once per app.",
    )
    allow_group: bool | None = None
    receive_all_group_messages: bool | None = None
    commands: list[BotCommand] | None = Field(None, max_length=50, description="Replaces every command.")

    @model_validator(mode="after")
    def _checks(self) -> SetTailchatBotInfoRequest:
        if self.username is not None and not self.username.lower().endswith("bot"):
            raise ValueError("a bot username must end with 'bot'")
        if self.commands is not None:
            names = [c.command for c in self.commands]
            if len(set(names)) != len(names):
                raise ValueError("command names must be unique")
        fields = (
            self.callback_url,
            self.username,
            self.allow_group,
            self.receive_all_group_messages,
            self.commands,
        )
        if all(f is None for f in fields):
            raise ValueError("give at least one field to set")
        return self


class TailchatBotInfoSet(Response):
    app_id: str
    fields: list[str] = Field(description="The fields the server accepted, in the order they were set.")


class SetTailchatBotInfo(
    Command,
    name="set-tailchat-bot-info",
    owner=T,
    domain=CH,
    role=Role.ADMIN,
    request=SetTailchatBotInfoRequest,
    response=TailchatBotInfoSet,
    seed=False,
):
    """Set the bot's callback URL, username (once), allowGroup, receiveAllGroupMessages and commands."""


class GetTailchatCommandsRequest(AppRef):
    scope_type: CommandScopeType | None = Field(
        None, description="Only this scope's commands (getBotCommandsByScope); every command when null."
    )
    chat_id: str | None = Field(None, max_length=128)
    user_id: str | None = Field(None, max_length=128)
    if_version: int | None = Field(None, ge=0, description="notModified when the version is still this.")
    if_etag: str | None = Field(None, max_length=200, description="notModified when the etag is still this.")

    @model_validator(mode="after")
    def _scope_needs(self) -> GetTailchatCommandsRequest:
        if self.scope_type in ("chat", "chat_member") and not self.chat_id:
            raise ValueError(f"scopeType {self.scope_type!r} needs chatId")
        if self.scope_type == "chat_member" and not self.user_id:
            raise ValueError("scopeType 'chat_member' needs userId")
        return self


class TailchatCommands(Response):
    app_id: str
    not_modified: bool = False
    version: int = 0
    etag: str | None = None
    commands: list[BotCommandView] | None = Field(None, description="Null when notModified.")


class GetTailchatCommands(
    Command,
    name="get-tailchat-commands",
    owner=T,
    domain=CH,
    role=Role.VIEWER,
    request=GetTailchatCommandsRequest,
    response=TailchatCommands,
    seed=False,
):
    """The bot's commands (optionally of one scope), with version and etag; notModified for a cached copy."""


# --- messages ------------------------------------------------------------------------------------


class SendChannelMessageRequest(AppRef):
    """To a converse (a group channel needs its groupId) or to a user by DM (ensureDMWithUser)."""

    converse_id: TailchatId | None = None
    group_id: TailchatId | None = Field(None, description="Required by Tailchat for a group channel.")
    user_id: TailchatId | None = Field(None, description="A DM to this user (the DM is created if needed).")
    text: str = Field(min_length=1, max_length=10_000)
    markup: MessageMarkup | None = Field(
        None, description="A reply keyboard and/or inline actions (channel-neutral, tgm_contracts.markup)."
    )

    @model_validator(mode="after")
    def _one_target(self) -> SendChannelMessageRequest:
        if (self.converse_id is None) == (self.user_id is None):
            raise ValueError("give exactly one of converseId or userId")
        if self.user_id is not None and self.group_id is not None:
            raise ValueError("a DM (userId) has no groupId")
        if self.markup is not None:
            self.markup.check_text(self.text)
        return self


class SendChannelMessage(
    Command,
    name="send-channel-message",
    owner=T,
    domain=CH,
    role=Role.OPERATOR,
    request=SendChannelMessageRequest,
    response=ChannelMessageView,
    seed=False,
):
    """Send a message as the app's bot, in a group channel or a DM; never retried (no duplicates)."""


class EditChannelMessageRequest(AppRef):
    """Tailchat replaces a message's whole meta on edit, so what the message carried is sent again:
    `markup` replaces the parts it gives (a reply keyboard, the inline actions) and keeps the others;
    `clearMarkup` drops both."""

    message_id: TailchatId
    text: str | None = Field(None, min_length=1, max_length=10_000)
    markup: MessageMarkup | None = Field(
        None,
        description="The parts to replace; `replyKeyboard: {remove: true}` takes the keyboard away and "
        "keeps the inline actions.",
    )
    clear_markup: bool = Field(False, description="Drop the reply keyboard and inline actions.")

    @model_validator(mode="after")
    def _something(self) -> EditChannelMessageRequest:
        if self.text is None and self.markup is None and not self.clear_markup:
            raise ValueError("give text, markup or clearMarkup")
        if self.markup is not None and self.clear_markup:
            raise ValueError("give markup or clearMarkup, not both")
        if self.markup is not None and self.text is not None:
            self.markup.check_text(self.text)
        return self


class EditChannelMessage(
    Command,
    name="edit-channel-message",
    owner=T,
    domain=CH,
    role=Role.OPERATOR,
    request=EditChannelMessageRequest,
    response=ChannelMessageView,
    seed=False,
):
    """Edit a message the bot sent, keeping its inline actions unless told otherwise."""


class DeleteChannelMessageRequest(AppRef):
    message_id: TailchatId


class DeleteChannelMessage(
    Command,
    name="delete-channel-message",
    owner=T,
    domain=CH,
    role=Role.ADMIN,
    request=DeleteChannelMessageRequest,
    response=Ack,
    seed=False,
):
    """Delete a message (groups: the bot needs the delete permission; DMs: only its own messages)."""


class AnswerCallbackRequest(AppRef):
    """Answer a button press within 30 s of it (the server forgets the traceId then).

    `channel` is the press's (the `button-pressed` event's): `telegram` presses (a Telegram bot
    account's inline button; appId `tg-<bot id>`, traceId the callback query id) are handed by the
    tailchat service to tg-session (`answer-telegram-callback`), so this stays one public command."""

    channel: Literal["tailchat", "telegram"] = Field(
        "tailchat", description="Where the press happened: the `channel` of its button-pressed event."
    )

    trace_id: str = Field(min_length=1, max_length=200)
    user_id: TailchatId = Field(description="The user who pressed (the callback's messageAuthor).")
    text: str = Field(
        min_length=1, max_length=200, description="1-200 characters, counted in UTF-16 as the server does."
    )
    show_alert: bool = False

    @field_validator("text")
    @classmethod
    def _utf16(cls, value: str) -> str:
        if utf16_len(value) > ANSWER_TEXT:
            raise ValueError(
                f"an answer is at most {ANSWER_TEXT} characters (UTF-16), not {utf16_len(value)}"
            )
        return value


class CallbackAnswered(Response):
    app_id: str
    trace_id: str
    answered: bool = True


class AnswerCallback(
    Command,
    name="answer-callback",
    owner=T,
    domain=CH,
    role=Role.OPERATOR,
    request=AnswerCallbackRequest,
    response=CallbackAnswered,
    seed=False,
):
    """Answer a button press (a toast or alert to the user who pressed); CONFLICT once 30 s have passed."""
