#!/usr/bin/env python3
"""AutobahnPython (asyncio) checks of a router's static authorization, for
Fahrbahn's interop suite.

Started by `cargo xtask interop` against both Crossbar.io and the Fahrbahn
router, configured alike (interop/crossbar/config.json and
interop/router.toml): in realm `restricted` the anonymous role may call and
subscribe under `com.example.` (Crossbar.io's example `restricted` role) and
register under `com.fahrbahn.callee.`, nothing else. Every URI carries the
prefix P (`--prefix`, default unique to this process). The scenarios:

  join                        an anonymous session joins `restricted`
  register_outside_role       REGISTER com.example.P.add2: not_authorized
  publish_outside_role        acknowledged PUBLISH com.example.P.topic:
                              not_authorized
  subscribe_outside_role      SUBSCRIBE com.other.P.topic: not_authorized
  call_outside_role           CALL of com.fahrbahn.callee.P.proc, which the
                              session registered itself: not_authorized
  call_inside_role            CALL com.example.P.missing: no_such_procedure
                              (allowed, nobody registered it)
  subscribe_inside_role       SUBSCRIBE com.example.P.topic: subscribed
  session_stays               after all refusals the session is still
                              joined and leaves with GOODBYE

Over WebSocket, the listener accepts the origins `http://127.0.0.1:*` only
(`allowed_origins`), and three raw upgrade requests check it:

  origin_allowed              Origin http://127.0.0.1:5173: 101
  origin_refused              Origin https://evil.org: refused (4xx;
                              Crossbar.io answers 400, Fahrbahn 403; the
                              line says which)
  origin_absent               no Origin (a non-browser client): 101

Prints one line per scenario, `PASS <name>[: note]` or `FAIL <name>: <reason>`,
and exits 1 if any failed (2 on usage errors).

usage: authz_check.py --url ws://127.0.0.1:PORT/ws|rs://127.0.0.1:PORT
                      [--serializer json|msgpack|cbor] [--realm restricted]
                      [--prefix P] [--timeout SECS]
"""

import argparse
import asyncio
import os
import socket
import sys
from urllib.parse import urlsplit

import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import serializer as wamp_serializer  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import ComponentConfig, PublishOptions  # noqa: E402

SERIALIZERS = {
    "json": wamp_serializer.JsonSerializer,
    "msgpack": wamp_serializer.MsgPackSerializer,
    "cbor": wamp_serializer.CBORSerializer,
}

NOT_AUTHORIZED = "wamp.error.not_authorized"


def log(message):
    print(f"authz_check: {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A scenario's check did not hold."""


def expect(condition, reason):
    if not condition:
        raise Failed(reason)


def error_text(e):
    if isinstance(e, ApplicationError):
        return f"ERROR {e.error} args={list(e.args)}"
    return f"{type(e).__name__}: {e}"


class Session(ApplicationSession):
    """Joins anonymously; exposes futures for joined and left."""

    def __init__(self, config):
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.left = loop.create_future()

    def onConnect(self):
        self.join(self.config.realm, authmethods=["anonymous"])

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.joined.done():
            self.joined.set_exception(Failed(f"the session ended before joining: {details.reason}"))
        if not self.left.done():
            self.left.set_result(details)
        self.disconnect()

    def onDisconnect(self):
        if not self.joined.done():
            self.joined.set_exception(Failed("the connection closed before joining"))


async def connect(opts):
    parts = urlsplit(opts.url)
    ser = SERIALIZERS[opts.serializer]()
    session = Session(ComponentConfig(realm=opts.realm))
    if parts.scheme == "ws":
        factory = WampWebSocketClientFactory(lambda: session, url=opts.url, serializers=[ser])
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
    loop = asyncio.get_running_loop()
    await loop.create_connection(factory, parts.hostname, parts.port)
    await asyncio.shield(session.joined)
    return session


async def refused(what, action):
    """Runs `action`, which must fail with ERROR wamp.error.not_authorized."""
    try:
        result = await action
    except ApplicationError as e:
        expect(e.error == NOT_AUTHORIZED, f"{what}: {error_text(e)} (want {NOT_AUTHORIZED})")
        return
    raise Failed(f"{what} succeeded ({result!r}) instead of being refused")


class Checks:
    def __init__(self, opts):
        self.opts = opts
        self.p = opts.prefix
        self.s = None
        self.failed = 0

    async def run(self):
        scenarios = [
            ("join", self.join),
            ("register_outside_role", self.register_outside_role),
            ("publish_outside_role", self.publish_outside_role),
            ("subscribe_outside_role", self.subscribe_outside_role),
            ("call_outside_role", self.call_outside_role),
            ("call_inside_role", self.call_inside_role),
            ("subscribe_inside_role", self.subscribe_inside_role),
            ("session_stays", self.session_stays),
        ]
        if urlsplit(self.opts.url).scheme == "ws":
            scenarios += [
                ("origin_allowed", lambda: self.origin("http://127.0.0.1:5173", allowed=True)),
                ("origin_refused", lambda: self.origin("https://evil.org", allowed=False)),
                ("origin_absent", lambda: self.origin(None, allowed=True)),
            ]
        for name, scenario in scenarios:
            try:
                note = await asyncio.wait_for(scenario(), self.opts.timeout)
            except asyncio.TimeoutError:
                self.fail(name, f"timed out after {self.opts.timeout:g}s")
            except Failed as e:
                self.fail(name, str(e))
            except Exception as e:  # noqa: BLE001
                self.fail(name, f"unexpected {error_text(e)}")
            else:
                print(f"PASS {name}" + (f": {note}" if note else ""), flush=True)
            if name == "join" and self.failed:
                break  # nothing else can work
        if self.s is not None and self.s.is_attached():
            self.s.disconnect()
        return self.failed

    def fail(self, name, reason):
        self.failed += 1
        print(f"FAIL {name}: {reason}", flush=True)

    async def join(self):
        self.s = await connect(self.opts)
        details = await self.s.joined
        expect(details.authrole == "anonymous", f"authrole {details.authrole!r}")

    async def register_outside_role(self):
        await refused("REGISTER under com.example.", self.s.register(lambda: None, f"com.example.{self.p}.add2"))

    async def publish_outside_role(self):
        await refused(
            "acknowledged PUBLISH under com.example.",
            self.s.publish(f"com.example.{self.p}.topic", 1, options=PublishOptions(acknowledge=True)),
        )

    async def subscribe_outside_role(self):
        await refused("SUBSCRIBE under com.other.", self.s.subscribe(lambda *a: None, f"com.other.{self.p}.topic"))

    async def call_outside_role(self):
        procedure = f"com.fahrbahn.callee.{self.p}.proc"
        await self.s.register(lambda: "called", procedure)
        await refused(f"CALL of {procedure} (registered)", self.s.call(procedure))

    async def call_inside_role(self):
        try:
            result = await self.s.call(f"com.example.{self.p}.missing")
        except ApplicationError as e:
            expect(e.error == "wamp.error.no_such_procedure", error_text(e))
            return
        raise Failed(f"the call returned {result!r}")

    async def subscribe_inside_role(self):
        sub = await self.s.subscribe(lambda *a: None, f"com.example.{self.p}.topic")
        expect(sub.active, "the subscription is not active")

    async def origin(self, origin, allowed):
        status = await asyncio.get_running_loop().run_in_executor(None, upgrade_status, self.opts.url, origin)
        if allowed:
            expect(status == 101, f"Origin {origin}: HTTP {status} (want 101)")
            return None
        expect(400 <= status < 500, f"Origin {origin}: HTTP {status} (want a refusal)")
        return f"HTTP {status}"

    async def session_stays(self):
        expect(self.s.is_attached(), "the session is gone")
        self.s.leave()
        details = await self.s.left
        expect(details.reason.startswith("wamp.close."), f"GOODBYE reason {details.reason}")


def upgrade_status(url, origin):
    """The status code of a WAMP WebSocket upgrade to `url` with this Origin."""
    parts = urlsplit(url)
    header = f"Origin: {origin}\r\n" if origin else ""
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: wamp.2.json\r\n{header}\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(256)
            if not chunk:
                break
            head += chunk
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    try:
        return int(status_line.split(" ")[1])
    except (IndexError, ValueError):
        raise Failed(f"no HTTP status line: {status_line!r}") from None


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="ws://HOST:PORT/PATH or rs://HOST:PORT")
    ap.add_argument("--serializer", default="json", choices=sorted(SERIALIZERS))
    ap.add_argument("--realm", default="restricted")
    ap.add_argument("--prefix", default=f"authz_check{os.getpid()}", help="URI component of everything")
    ap.add_argument("--timeout", type=float, default=10.0, help="time limit of each scenario (s)")
    opts = ap.parse_args()
    parts = urlsplit(opts.url)
    if parts.scheme not in ("ws", "rs") or not parts.hostname or not parts.port:
        ap.error(f"{opts.url}: want ws://HOST:PORT/PATH or rs://HOST:PORT")
    return opts


async def main(opts):
    log(f"{opts.url} {opts.serializer} realm {opts.realm} prefix {opts.prefix}")
    failed = await Checks(opts).run()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
