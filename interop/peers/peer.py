#!/usr/bin/env python3
"""AutobahnPython (asyncio) peer for Fahrbahn's WAMP interop suite.

Started by `cargo xtask interop`, one process per run, next to the Rust
program under test (the `wamp_interop` example). It joins realm `--realm` on
the Crossbar.io router anonymously and offers, under the URI prefix P given
with `--prefix`:

  P.add2(a, b)                  -> a + b
  P.echo(*args, **kwargs)       -> the same args and kwargs, unchanged
  P.error()                     -> ERROR com.example.error.custom,
                                   args [1, "two"], kwargs {"kw1": 3, "kw2": [4]}
  P.call(procedure, *a, **kw)   -> calls `procedure` (e.g. one the Rust client
                                   registered) with a/kw and returns its result
                                   args and kwargs unchanged; its errors are
                                   passed on as they are
  P.publish(topic, *a, **kw)    -> publishes a/kw to `topic` with
                                   acknowledge=True; returns the publication id
  P.received()                  -> every event received so far on
                                   P.rust_events, oldest first, as a list of
                                   {"args": [...], "kwargs": {...}}
  P.countdown(n)                -> progressive results n, n-1, ..., 1 (when
                                   the caller asked for them), then
                                   "liftoff" with kwargs {"progressive_sent": k}
  P.call_progressive(procedure, *a, **kw)
                                -> calls `procedure` asking for progressive
                                   results; returns args [[progressive
                                   results' args, in order], *final args]
                                   and the final kwargs

Binary values (bytes) round-trip with every serializer; with JSON they travel
as "\\u0000" + base64, the AutobahnPython/Crossbar convention.

Events are delivered asynchronously: after an acknowledged publish to
P.rust_events, poll P.received() until the event shows up.

Keyword arguments named `options` cannot be forwarded by P.call and
P.publish (AutobahnPython takes them as its own options); neither can a
kwarg named `procedure` (P.call) or `topic` (P.publish).

Prints "READY session=<id> prefix=<P>" on stdout once everything is
registered. SIGTERM or SIGINT: leaves the session and exits 0. Losing the
router: exits 1.

usage: peer.py --url ws://127.0.0.1:PORT/ws|rs://127.0.0.1:PORT
               [--serializer json|msgpack|cbor] [--batched]
               --prefix P [--realm realm1]
"""

import argparse
import asyncio
import signal
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
TIMEOUT = 10.0


def log(message):
    print(f"peer: {message}", file=sys.stderr, flush=True)


def result(args, kwargs):
    """A YIELD with exactly these args and kwargs.

    CallResult(**kwargs) would swallow kwargs named like its own options
    (callee, forward_for, ...), so the kwargs are set afterwards.
    """
    res = CallResult(*args)
    res.kwresults = dict(kwargs)
    return res


class Peer(ApplicationSession):
    def __init__(self, config, prefix):
        super().__init__(config)
        self.prefix = prefix
        self.events = []
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.gone = loop.create_future()

    def onConnect(self):
        self.join(self.config.realm, authmethods=["anonymous"])

    async def onJoin(self, details):
        try:
            await self.provide()
        except Exception as e:  # noqa: BLE001
            if not self.ready.done():
                self.ready.set_exception(e)
            return
        if not self.ready.done():
            self.ready.set_result(details.session)

    def onLeave(self, details):
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"session ended: {details.reason} {details.message or ''}"))
        self.disconnect()

    def onDisconnect(self):
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("connection closed before the session was ready"))
        if not self.gone.done():
            self.gone.set_result(None)

    def onUserError(self, fail, msg):
        # P.error and errors passed on by P.call are expected, not worth a traceback.
        if isinstance(getattr(fail, "value", fail), ApplicationError):
            return
        super().onUserError(fail, msg)

    async def provide(self):
        p = self.prefix

        def add2(a, b):
            return a + b

        def echo(*args, **kwargs):
            return result(args, kwargs)

        def error():
            raise ApplicationError("com.example.error.custom", 1, "two", kw1=3, kw2=[4])

        async def call(procedure, /, *args, **kwargs):
            # details=True: always a CallResult, so args and kwargs come back as sent
            res = await self.call(procedure, *args, options=CallOptions(details=True), **kwargs)
            return result(res.results, res.kwresults)

        async def publish(topic, /, *args, **kwargs):
            publication = await self.publish(topic, *args, options=PublishOptions(acknowledge=True), **kwargs)
            return publication.id

        def received():
            return list(self.events)

        def countdown(n, details=None):
            sent = 0
            for i in range(n, 0, -1):
                if details is not None and details.progress:
                    details.progress(i)
                    sent += 1
            return result(["liftoff"], {"progressive_sent": sent})

        async def call_progressive(procedure, /, *args, **kwargs):
            progress = []
            # Without details=True: AutobahnPython's on_progress with
            # details fails on a progressive RESULT that has no kwargs.
            options = CallOptions(on_progress=lambda *a, **_kw: progress.append(list(a)))
            res = await self.call(procedure, *args, options=options, **kwargs)
            if isinstance(res, CallResult):
                return result([progress, *res.results], res.kwresults)
            return result([progress] if res is None else [progress, res], {})

        def on_rust_event(*args, **kwargs):
            self.events.append({"args": list(args), "kwargs": kwargs})

        for endpoint, name in [
            (add2, "add2"),
            (echo, "echo"),
            (error, "error"),
            (call, "call"),
            (publish, "publish"),
            (received, "received"),
        ]:
            await self.register(endpoint, f"{p}.{name}")
        await self.register(countdown, f"{p}.countdown", options=RegisterOptions(details_arg="details"))
        await self.register(call_progressive, f"{p}.call_progressive")
        await self.subscribe(on_rust_event, f"{p}.rust_events")


def factory_for(url, serializer, batched, session):
    parts = urlsplit(url)
    ser = SERIALIZERS[serializer](batched=batched)
    if parts.scheme in ("ws", "wss"):
        factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[ser])
        factory.setProtocolOptions(maxFramePayloadSize=MAX_MESSAGE, maxMessagePayloadSize=MAX_MESSAGE)
        return factory, parts.hostname, parts.port or (443 if parts.scheme == "wss" else 80)
    if parts.scheme == "rs":
        if batched:
            raise SystemExit("peer: --batched needs a WebSocket URL (RawSocket has no batched mode)")
        if not parts.port:
            raise SystemExit(f"peer: {url}: a RawSocket URL needs a port")
        return WampRawSocketClientFactory(lambda: session, serializer=ser), parts.hostname, parts.port
    raise SystemExit(f"peer: {url}: the URL must start with ws:// or rs://")


async def main(opts):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    session = Peer(ComponentConfig(realm=opts.realm), opts.prefix)
    factory, host, port = factory_for(opts.url, opts.serializer, opts.batched, session)
    try:
        await asyncio.wait_for(loop.create_connection(factory, host, port), TIMEOUT)
        session_id = await asyncio.wait_for(asyncio.shield(session.ready), TIMEOUT)
    except Exception as e:  # noqa: BLE001
        log(f"cannot join {opts.realm} at {opts.url} ({opts.serializer}): {type(e).__name__}: {e}")
        return 1
    print(f"READY session={session_id} prefix={opts.prefix}", flush=True)

    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stopping, session.gone], return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        stopping.cancel()
        log("lost the connection to the router")
        return 1
    if session.is_attached():
        session.leave()
    try:
        await asyncio.wait_for(asyncio.shield(session.gone), 3.0)
    except asyncio.TimeoutError:
        session.disconnect()
    return 0


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="ws://HOST:PORT/PATH or rs://HOST:PORT")
    ap.add_argument("--serializer", default="json", choices=sorted(SERIALIZERS))
    ap.add_argument("--batched", action="store_true", help="batched serializer (WebSocket only)")
    ap.add_argument("--prefix", required=True, help="URI prefix of the procedures and topics")
    ap.add_argument("--realm", default="realm1")
    return ap.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
