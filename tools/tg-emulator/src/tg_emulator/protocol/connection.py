"""One client connection: transport, handshake, MTProto session, request dispatch, pushes."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from typing import TYPE_CHECKING, Any

from telethon.errors import TypeNotFoundError
from telethon.extensions import BinaryReader
from telethon.tl import functions, types

from ..errors import RpcFail
from . import tl
from .crypto import DecryptError, decrypt_from_client, encrypt_to_client
from .handshake import Handshake, HandshakeError
from .transport import FullTransport, TransportError

if TYPE_CHECKING:
    from ..server import Server
    from ..world.model import AuthKeyRecord

log = logging.getLogger(__name__)

_WRAPPERS = (
    functions.InvokeWithLayerRequest,
    functions.InitConnectionRequest,
    functions.InvokeWithoutUpdatesRequest,
    functions.InvokeAfterMsgRequest,
    functions.InvokeAfterMsgsRequest,
    functions.InvokeWithTakeoutRequest,
    functions.InvokeWithMessagesRangeRequest,
)
_PING = functions.PingRequest.CONSTRUCTOR_ID
_PING_DELAY = functions.PingDelayDisconnectRequest.CONSTRUCTOR_ID
_ACK = types.MsgsAck.CONSTRUCTOR_ID
_FUTURE_SALTS = functions.GetFutureSaltsRequest.CONSTRUCTOR_ID
_DESTROY_SESSION = functions.DestroySessionRequest.CONSTRUCTOR_ID
_STATE_REQ = types.MsgsStateReq.CONSTRUCTOR_ID
_RESEND_REQ = types.MsgResendReq.CONSTRUCTOR_ID
_HTTP_WAIT = types.HttpWait.CONSTRUCTOR_ID


def method_name(request: object) -> str:
    """TL name of a Telethon request object: ``SendMessageRequest`` -> ``messages.sendMessage``."""
    cls = type(request)
    name = cls.__name__.removesuffix("Request")
    name = name[:1].lower() + name[1:]
    module = cls.__module__.rsplit(".", 1)[-1]
    return name if module == "functions" else f"{module}.{name}"


class Connection:
    """Serves one TCP connection until it closes or is dropped."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.transport = FullTransport(reader, writer)
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.ip = peer[0] if peer else "127.0.0.1"
        self.handshake: Handshake | None = None
        self.key: AuthKeyRecord | None = None
        self.session_id: int | None = None
        self.duplicated = False
        self.updates_enabled = False
        self.user_id: int | None = None
        self.init: dict[str, Any] = {}
        self.layer = 0
        self._last_msg_id = 0
        self._seq = 0
        self._closed = False

    # ---------------------------------------------------------------- lifecycle

    @property
    def key_id(self) -> int | None:
        return self.key.key.key_id if self.key else None

    def is_alive(self) -> bool:
        return (
            not self._closed and not self.writer.transport.is_closing() and not self.transport.reader.at_eof()
        )

    async def run(self) -> None:
        try:
            while not self._closed:
                packet = await self.transport.read_packet()
                if len(packet) < 8:
                    raise TransportError("packet shorter than an auth key id")
                (key_id,) = struct.unpack_from("<Q", packet)
                if key_id == 0:
                    self._plain(packet)
                else:
                    await self._encrypted(key_id, packet)
                await self.writer.drain()
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            TransportError,
            HandshakeError,
            DecryptError,
        ) as e:
            if not isinstance(e, asyncio.IncompleteReadError | ConnectionResetError):
                log.info("closing connection from %s: %s", self.ip, e)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error on a connection; closing it")
        finally:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.server.unregister(self)
        try:
            self.writer.close()
        except Exception:  # already gone
            pass

    # ---------------------------------------------------------------- plain (handshake)

    def _plain(self, packet: bytes) -> None:
        if len(packet) < 20:
            raise HandshakeError("plain message too short")
        _, _msg_id, length = struct.unpack_from("<qqi", packet)
        body = packet[20 : 20 + length]
        with BinaryReader(body) as reader:
            request = reader.tgread_object()
        if self.handshake is None or isinstance(
            request, functions.ReqPqMultiRequest | functions.ReqPqRequest
        ):
            self.handshake = Handshake()
        answer, auth_key = self.handshake.handle(request)
        if auth_key is not None:
            self.server.world.register_key(auth_key)
            self.handshake = None
        self.transport.write_packet(struct.pack("<qqi", 0, self._new_msg_id(True), len(answer)) + answer)

    # ---------------------------------------------------------------- encrypted

    def _new_msg_id(self, response: bool) -> int:
        now = time.time()
        msg_id = (int(now) << 32) | (int((now % 1) * 2**32) & ~3)
        msg_id |= 1 if response else 3
        if msg_id <= self._last_msg_id:
            msg_id = self._last_msg_id + 4
        self._last_msg_id = msg_id
        return msg_id

    def _seq_no(self, content_related: bool) -> int:
        if content_related:
            self._seq += 1
            return self._seq * 2 - 1
        return self._seq * 2

    def send_messages(self, items: list[tuple[bytes, bool, bool]]) -> None:
        """Encrypt and write (body, content_related, is_response) items as one packet."""
        if self._closed or not items or self.key is None or self.session_id is None:
            return
        msgs = [(self._new_msg_id(resp), self._seq_no(cr), body) for body, cr, resp in items]
        if len(msgs) == 1:
            msg_id, seq_no, body = msgs[0]
        else:
            msg_id, seq_no, body = self._new_msg_id(False), self._seq_no(False), tl.container(msgs)
        plain = struct.pack("<qqqii", self.key.salt, self.session_id, msg_id, seq_no, len(body)) + body
        self.transport.write_packet(encrypt_to_client(self.key.key, plain))

    def push(self, data: bytes) -> None:
        """Send a server-initiated update (already serialized)."""
        if self.is_alive():
            self.send_messages([(data, True, False)])

    async def _encrypted(self, key_id: int, packet: bytes) -> None:
        world = self.server.world
        if self.key is None or self.key.key.key_id != key_id:
            rec = world.auth_keys.get(key_id)
            if rec is None:
                # Telethon reads a bare -404 as "the server forgot the auth key".
                self.transport.write_transport_error(404)
                await self.writer.drain()
                raise TransportError("unknown auth key")
            self.key = rec
            self.duplicated = self.server.register_key(self)
        plain = decrypt_from_client(self.key.key.key, packet)
        _salt, session_id, msg_id, seq_no, length = struct.unpack_from("<qqqii", plain)
        if length < 0 or 32 + length > len(plain):
            raise DecryptError("inner message length out of range")
        body = plain[32 : 32 + length]
        out: list[tuple[bytes, bool, bool]] = []
        if session_id != self.session_id:
            self.session_id = session_id
            self._seq = 0
            out.append(
                (
                    bytes(
                        types.NewSessionCreated(
                            first_msg_id=msg_id,
                            unique_id=struct.unpack("<q", os.urandom(8))[0],
                            server_salt=self.key.salt,
                        )
                    ),
                    False,
                    False,
                )
            )
        drift = (msg_id >> 32) - time.time()
        if drift < -300 or drift > 30:
            out.append(
                (bytes(types.BadMsgNotification(msg_id, seq_no, 16 if drift < 0 else 17)), False, True)
            )
            self.send_messages(out)
            return
        await self._process(msg_id, body, out)
        self.send_messages(out)

    async def _process(self, msg_id: int, body: bytes, out: list) -> None:
        cid = tl.constructor_of(body)
        if cid == tl.MSG_CONTAINER:
            for inner_id, _seq, inner in tl.split_container(body):
                await self._process(inner_id, inner, out)
            return
        if cid == tl.GZIP_PACKED:
            await self._process(msg_id, tl.unpack_gzip(body), out)
            return
        if cid in (_ACK, _HTTP_WAIT):
            return
        if cid in (_PING, _PING_DELAY):
            (ping_id,) = struct.unpack_from("<q", body, 4)
            out.append((bytes(types.Pong(msg_id=msg_id, ping_id=ping_id)), False, True))
            return
        if cid == _FUTURE_SALTS:
            now = int(time.time())
            salts = [types.FutureSalt(valid_since=None, valid_until=None, salt=self.key.salt)]  # type: ignore[union-attr]
            salts[0].valid_since = _dt(now)
            salts[0].valid_until = _dt(now + 86400)
            out.append((bytes(types.FutureSalts(req_msg_id=msg_id, now=_dt(now), salts=salts)), False, True))
            return
        if cid == _DESTROY_SESSION:
            (sid,) = struct.unpack_from("<q", body, 4)
            out.append((bytes(types.DestroySessionOk(session_id=sid)), False, True))
            return
        if cid in (_STATE_REQ, _RESEND_REQ):
            with BinaryReader(body) as reader:
                req = reader.tgread_object()
            info = bytes([1] * len(req.msg_ids)).decode("latin-1")
            out.append((bytes(types.MsgsStateInfo(req_msg_id=msg_id, info=info)), False, True))
            return
        out.append((await self._rpc(msg_id, body), True, True))

    async def _rpc(self, msg_id: int, body: bytes) -> bytes:
        try:
            with BinaryReader(body) as reader:
                request = reader.tgread_object()
        except TypeNotFoundError as e:
            return tl.rpc_error(msg_id, 400, f"INPUT_CONSTRUCTOR_INVALID_{e.invalid_constructor_id:08X}")
        except Exception:
            return tl.rpc_error(msg_id, 400, "INPUT_REQUEST_INVALID")
        without_updates = False
        while isinstance(request, _WRAPPERS):
            if isinstance(request, functions.InvokeWithLayerRequest):
                self.layer = request.layer
            elif isinstance(request, functions.InitConnectionRequest):
                self.init = {
                    "api_id": request.api_id,
                    "device_model": request.device_model,
                    "system_version": request.system_version,
                    "app_version": request.app_version,
                    "lang_code": request.lang_code,
                }
            elif isinstance(request, functions.InvokeWithoutUpdatesRequest):
                without_updates = True
            request = request.query
        if self.duplicated:
            return tl.rpc_error(msg_id, 406, "AUTH_KEY_DUPLICATED")
        try:
            answer = await self.server.dispatch(self, request, method_name(request))
        except RpcFail as e:
            return tl.rpc_error(msg_id, e.code, e.message)
        except _DropConnection:
            self.close()
            raise ConnectionError("connection dropped by fault injection") from None
        except Exception:
            log.exception("handler for %s failed", method_name(request))
            return tl.rpc_error(msg_id, 500, "INTERNAL")
        if self.key and self.key.user_id and not without_updates:
            self.updates_enabled = True
        self.server.track_user(self)
        return tl.rpc_result(msg_id, answer)


class _DropConnection(Exception):
    """Raised by dispatch to close the connection instead of answering (fault injection)."""


def _dt(ts: int):
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


DropConnection = _DropConnection
