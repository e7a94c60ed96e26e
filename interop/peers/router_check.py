#!/usr/bin/env python3
"""AutobahnPython (asyncio) checks of a WAMP router, for Fahrbahn's interop suite.

Started by `cargo xtask interop` against the Fahrbahn router (`fahrbahn
router`), once per serializer and transport; it works against any WAMP router
that lets anonymous sessions on `--realm` call, register, publish and
subscribe (e.g. the Crossbar.io node of the interop suite).

Three sessions join the realm: A (caller, publisher), B (callee, subscriber)
and C (a callee that is killed). With `--serializer-b`, B speaks another
serializer than A and C, so every payload between them is transcoded by the
router. Every URI is under the prefix P given with
`--prefix` (default: one unique to this process). The scenarios, in order:

  join                      A, B and C join (anonymous)
  rpc_args_kwargs           A calls B's P.echo; positional and keyword
                            arguments (nested, unicode, ints, floats, bools,
                            null) come back unchanged
  application_error         B's P.fail raises com.example.error.custom with
                            args [1, "two"] and kwargs {"kw1": 3, "kw2": [4]};
                            A gets exactly that
  no_such_procedure         A calls P.missing: wamp.error.no_such_procedure
  procedure_already_exists  A registers P.echo (B has it):
                            wamp.error.procedure_already_exists
  publish_acknowledge       an acknowledged publish returns a publication id
  subscriber_receives       B receives A's event with args and kwargs intact
  exclude_me_default        A, subscribed itself, does not receive its own
                            event (B does)
  exclude_me_false          with exclude_me=False A receives its own event
  callee_killed_mid_call    while A's call to C's P.slow is pending, C's
                            connection is aborted (TCP RST, no GOODBYE, no
                            WebSocket close): A gets an ERROR; any
                            wamp.error.* passes, the line says which (the
                            Fahrbahn router documents wamp.error.canceled)
  dead_callee_unregistered  then calling P.slow: wamp.error.no_such_procedure
  shared_roundrobin         A and B register P.shared with invoke=roundrobin
                            (one registration id); A's 4 calls go to A, B,
                            A, B in turn
  call_timeout              A calls B's P.hang (never answers) with timeout
                            300 ms (--timeout-unit s: 1 s, for Crossbar.io):
                            wamp.error.canceled, args ["timeout reached"]
  leave                     B leaves: the router answers GOODBYE with
                            wamp.close.goodbye_and_out (wamp.close.normal,
                            what Crossbar.io sends, passes with a note) and
                            closes; B's P.echo is gone; then A leaves

Prints one line per scenario, `PASS <name>[: note]` or `FAIL <name>: <reason>`,
and exits 1 if any failed (2 on usage errors). Each scenario has a time limit
(--timeout, default 10 s). Diagnostics go to stderr.

usage: router_check.py --url ws://127.0.0.1:PORT/ws|rs://127.0.0.1:PORT
                       [--serializer json|msgpack|cbor] [--batched]
                       [--realm realm1] [--prefix P] [--timeout SECS]
                       [--timeout-unit ms|s]
"""

import argparse
import asyncio
import os
import socket
import struct
import sys
from urllib.parse import urlsplit

import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import serializer as wamp_serializer  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import (  # noqa: E402
    CallOptions,
    CallResult,
    ComponentConfig,
    PublishOptions,
    RegisterOptions,
)

SERIALIZERS = {
    "json": wamp_serializer.JsonSerializer,
    "msgpack": wamp_serializer.MsgPackSerializer,
    "cbor": wamp_serializer.CBORSerializer,
}

MAX_MESSAGE = 16 * 1024 * 1024
# The reasons accepted in the router's GOODBYE reply: the spec's, and the one
# Crossbar.io (26.10) and AutobahnPython send (the PASS line names it).
GOODBYE_REPLIES = ("wamp.close.goodbye_and_out", "wamp.close.normal")
# How long to wait for an event that must *not* arrive.
QUIET = 0.5

APP_ERROR = "com.example.error.custom"
APP_ERROR_ARGS = [1, "two"]
APP_ERROR_KWARGS = {"kw1": 3, "kw2": [4]}

ECHO_ARGS = [1, "two", -3.5, True, None, [1, [2, {"x": "ü"}]], {"nested": {"list": [1, 2]}}]
ECHO_KWARGS = {"k": "v", "n": 2, "unicode": "Fahrbahn ✓", "empty": {}, "list": [None, False]}


def log(message):
    print(f"router_check: {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A scenario's check did not hold."""


def expect(condition, reason):
    if not condition:
        raise Failed(reason)


class Session(ApplicationSession):
    """Joins anonymously; exposes futures for joined, left and disconnected."""

    def __init__(self, config, name):
        super().__init__(config)
        self.name = name
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.left = loop.create_future()
        self.gone = loop.create_future()

    def onConnect(self):
        self.join(self.config.realm, authmethods=["anonymous"])

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.joined.done():
            self.joined.set_exception(Failed(f"session {self.name} ended before joining: {details.reason}"))
        if not self.left.done():
            self.left.set_result(details)
        self.disconnect()

    def onDisconnect(self):
        if not self.joined.done():
            self.joined.set_exception(Failed(f"session {self.name}: connection closed before joining"))
        if not self.gone.done():
            self.gone.set_result(None)

    def onUserError(self, fail, msg):
        # handlers raising ApplicationError and cancelled invocations are expected
        if isinstance(getattr(fail, "value", fail), (ApplicationError, asyncio.CancelledError)):
            return
        super().onUserError(fail, msg)

    def abort_connection(self):
        """Drops the TCP connection at once: RST, no GOODBYE, no WebSocket close."""
        transport = self._transport.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


async def connect(opts, name):
    parts = urlsplit(opts.url)
    serializer = opts.serializer_b if name == "B" and opts.serializer_b else opts.serializer
    ser = SERIALIZERS[serializer](batched=opts.batched)
    session = Session(ComponentConfig(realm=opts.realm), name)
    if parts.scheme == "ws":
        factory = WampWebSocketClientFactory(lambda: session, url=opts.url, serializers=[ser])
        factory.setProtocolOptions(maxFramePayloadSize=MAX_MESSAGE, maxMessagePayloadSize=MAX_MESSAGE)
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
    loop = asyncio.get_running_loop()
    await loop.create_connection(factory, parts.hostname, parts.port)
    await asyncio.shield(session.joined)
    return session


def echo_result(*args, **kwargs):
    # CallResult(**kwargs) would take kwargs named like its options, so set them afterwards
    res = CallResult(*args)
    res.kwresults = dict(kwargs)
    return res


class Events:
    """Events received on one subscription."""

    def __init__(self):
        self.received = []
        self.changed = asyncio.Event()

    def handler(self, *args, **kwargs):
        self.received.append((list(args), kwargs))
        self.changed.set()

    async def wait_for(self, count):
        while len(self.received) < count:
            self.changed.clear()
            await self.changed.wait()


def error_text(e):
    if isinstance(e, ApplicationError):
        return f"ERROR {e.error} args={list(e.args)} kwargs={e.kwargs}"
    return f"{type(e).__name__}: {e}"


class Checks:
    def __init__(self, opts):
        self.opts = opts
        self.p = opts.prefix
        self.a = self.b = self.c = None
        self.failed = 0

    async def run(self):
        scenarios = [
            ("join", self.join),
            ("rpc_args_kwargs", self.rpc_args_kwargs),
            ("application_error", self.application_error),
            ("no_such_procedure", self.no_such_procedure),
            ("procedure_already_exists", self.procedure_already_exists),
            ("publish_acknowledge", self.publish_acknowledge),
            ("subscriber_receives", self.subscriber_receives),
            ("exclude_me_default", self.exclude_me_default),
            ("exclude_me_false", self.exclude_me_false),
            ("callee_killed_mid_call", self.callee_killed_mid_call),
            ("dead_callee_unregistered", self.dead_callee_unregistered),
            ("shared_roundrobin", self.shared_roundrobin),
            ("call_timeout", self.call_timeout),
            ("leave", self.leave),
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
        for session in (self.a, self.b, self.c):
            if session is not None and session.is_attached():
                session.disconnect()
        return self.failed

    def fail(self, name, reason):
        self.failed += 1
        print(f"FAIL {name}: {reason}", flush=True)

    async def call_error(self, session, procedure, *args, **kwargs):
        """The ApplicationError of a call that must fail."""
        try:
            res = await session.call(procedure, *args, **kwargs)
        except ApplicationError as e:
            return e
        raise Failed(f"the call to {procedure} returned {res!r} instead of failing")

    # --- the scenarios

    async def join(self):
        self.a = await connect(self.opts, "A")
        self.b = await connect(self.opts, "B")
        self.c = await connect(self.opts, "C")
        ids = {self.a.session_id, self.b.session_id, self.c.session_id}
        expect(len(ids) == 3 and all(isinstance(i, int) and i > 0 for i in ids), f"session ids {ids}")
        p = self.p

        def fail():
            raise ApplicationError(APP_ERROR, *APP_ERROR_ARGS, **APP_ERROR_KWARGS)

        await self.b.register(echo_result, f"{p}.echo")
        await self.b.register(fail, f"{p}.fail")

        self.c_invoked = asyncio.get_running_loop().create_future()

        def slow():
            if not self.c_invoked.done():
                self.c_invoked.set_result(None)
            # a future that never resolves: the invocation stays pending, and
            # no task is left for asyncio.run to cancel (the cancelled task's
            # ERROR would go to the aborted transport: a traceback)
            return asyncio.get_running_loop().create_future()

        await self.c.register(slow, f"{p}.slow")

    async def rpc_args_kwargs(self):
        res = await self.a.call(f"{self.p}.echo", *ECHO_ARGS, options=CallOptions(details=True), **ECHO_KWARGS)
        expect(list(res.results) == ECHO_ARGS, f"args {res.results!r} instead of {ECHO_ARGS!r}")
        expect(res.kwresults == ECHO_KWARGS, f"kwargs {res.kwresults!r} instead of {ECHO_KWARGS!r}")

    async def application_error(self):
        e = await self.call_error(self.a, f"{self.p}.fail")
        got = (e.error, list(e.args), e.kwargs)
        want = (APP_ERROR, APP_ERROR_ARGS, APP_ERROR_KWARGS)
        expect(got == want, f"got {error_text(e)}, want ERROR {want[0]} args={want[1]} kwargs={want[2]}")

    async def no_such_procedure(self):
        e = await self.call_error(self.a, f"{self.p}.missing")
        expect(e.error == "wamp.error.no_such_procedure", f"got {error_text(e)}")

    async def procedure_already_exists(self):
        try:
            registration = await self.a.register(echo_result, f"{self.p}.echo")
        except ApplicationError as e:
            expect(e.error == "wamp.error.procedure_already_exists", f"got {error_text(e)}")
            return
        await registration.unregister()
        raise Failed("the second register succeeded")

    async def publish_acknowledge(self):
        publication = await self.a.publish(f"{self.p}.nobody", 1, options=PublishOptions(acknowledge=True))
        pid = getattr(publication, "id", None)
        expect(isinstance(pid, int) and 0 < pid <= 2**53, f"publication id {pid!r}")
        return f"publication id {pid}"

    async def subscriber_receives(self):
        events = Events()
        await self.b.subscribe(events.handler, f"{self.p}.news")
        args, kwargs = [1, "two", {"three": [3]}], {"k": "v", "n": [1, 2]}
        await self.a.publish(f"{self.p}.news", *args, options=PublishOptions(acknowledge=True), **kwargs)
        await events.wait_for(1)
        expect(events.received[0] == (args, kwargs), f"received {events.received[0]!r}, want {(args, kwargs)!r}")

    async def both_subscribed(self, topic):
        own, other = Events(), Events()
        await self.a.subscribe(own.handler, topic)
        await self.b.subscribe(other.handler, topic)
        return own, other

    async def exclude_me_default(self):
        topic = f"{self.p}.self_default"
        own, other = await self.both_subscribed(topic)
        await self.a.publish(topic, "hello", options=PublishOptions(acknowledge=True))
        await other.wait_for(1)
        await asyncio.sleep(QUIET)
        expect(not own.received, f"the publisher received its own event: {own.received!r}")

    async def exclude_me_false(self):
        topic = f"{self.p}.self_included"
        own, other = await self.both_subscribed(topic)
        await self.a.publish(topic, "hello", options=PublishOptions(acknowledge=True, exclude_me=False))
        await own.wait_for(1)
        await other.wait_for(1)
        expect(own.received == [(["hello"], {})], f"the publisher received {own.received!r}")

    async def callee_killed_mid_call(self):
        call = asyncio.ensure_future(self.a.call(f"{self.p}.slow"))
        try:
            await asyncio.shield(self.c_invoked)
        except asyncio.CancelledError:
            call.cancel()
            raise
        if call.done():
            raise Failed(f"the call ended before the callee was killed: {call.result()!r}")
        self.c.abort_connection()
        try:
            res = await call
        except ApplicationError as e:
            expect(e.error.startswith("wamp.error."), f"got {error_text(e)}")
            if e.error == "wamp.error.canceled":
                return e.error
            return f"{e.error} (the Fahrbahn router documents wamp.error.canceled)"
        raise Failed(f"the call returned {res!r}")

    async def dead_callee_unregistered(self):
        await asyncio.shield(self.c.gone)
        e = await self.call_error(self.a, f"{self.p}.slow")
        expect(e.error == "wamp.error.no_such_procedure", f"got {error_text(e)}")

    async def shared_roundrobin(self):
        procedure = f"{self.p}.shared"
        shared = RegisterOptions(invoke="roundrobin")
        ra = await self.a.register(lambda: "A", procedure, options=shared)
        rb = await self.b.register(lambda: "B", procedure, options=shared)
        expect(ra.id == rb.id, f"registration ids {ra.id} and {rb.id}: want one shared registration")
        got = [await self.a.call(procedure) for _ in range(4)]
        await ra.unregister()
        await rb.unregister()
        expect(got == ["A", "B", "A", "B"], f"callees {got}, want A, B, A, B")

    async def call_timeout(self):
        def hang():
            return asyncio.get_running_loop().create_future()

        await self.b.register(hang, f"{self.p}.hang")
        timeout = 1 if self.opts.timeout_unit == "s" else 300
        e = await self.call_error(self.a, f"{self.p}.hang", options=CallOptions(timeout=timeout))
        got = (e.error, list(e.args))
        expect(got == ("wamp.error.canceled", ["timeout reached"]), f"got {error_text(e)}")

    async def leave_one(self, session):
        """Leaves; returns the reason of the router's GOODBYE reply."""
        session.leave()
        details = await asyncio.shield(session.left)
        expect(
            details.reason in GOODBYE_REPLIES,
            f"session {session.name}: GOODBYE reply reason {details.reason!r}, want wamp.close.goodbye_and_out",
        )
        await asyncio.shield(session.gone)
        return details.reason

    async def leave(self):
        reasons = {await self.leave_one(self.b)}
        e = await self.call_error(self.a, f"{self.p}.echo")
        expect(e.error == "wamp.error.no_such_procedure", f"after B left, calling its P.echo: {error_text(e)}")
        reasons.add(await self.leave_one(self.a))
        if reasons != {"wamp.close.goodbye_and_out"}:
            return f"GOODBYE reply {', '.join(sorted(reasons))} (the spec says wamp.close.goodbye_and_out)"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="ws://HOST:PORT/PATH or rs://HOST:PORT")
    ap.add_argument("--serializer", default="json", choices=sorted(SERIALIZERS))
    ap.add_argument("--batched", action="store_true", help="batched serializer (WebSocket only)")
    ap.add_argument(
        "--serializer-b",
        choices=sorted(SERIALIZERS),
        help="B's serializer (callee, subscriber), when it is to differ from A's and C's: "
        "the router transcodes every payload between them",
    )
    ap.add_argument("--realm", default="realm1")
    ap.add_argument("--prefix", default=f"router_check.{os.getpid()}", help="URI prefix of everything")
    ap.add_argument("--timeout", type=float, default=10.0, help="time limit of each scenario (s)")
    ap.add_argument(
        "--timeout-unit",
        default="ms",
        choices=("ms", "s"),
        help="the unit the router reads CALL timeout in: ms (the spec, Fahrbahn) or s (Crossbar.io)",
    )
    opts = ap.parse_args()
    parts = urlsplit(opts.url)
    if parts.scheme not in ("ws", "rs") or not parts.hostname or not parts.port:
        ap.error(f"{opts.url}: want ws://HOST:PORT/PATH or rs://HOST:PORT")
    if opts.batched and parts.scheme != "ws":
        ap.error("--batched needs a WebSocket URL (RawSocket has no batched mode)")
    return opts


async def main(opts):
    b = f" (B: {opts.serializer_b})" if opts.serializer_b else ""
    log(f"{opts.url} {opts.serializer}{'.batched' if opts.batched else ''}{b} realm {opts.realm} prefix {opts.prefix}")
    failed = await Checks(opts).run()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
