#!/usr/bin/env python3
"""AutobahnPython (asyncio) WAMP benchmark client of `cargo xtask bench`.

The counterpart of Fahrbahn's `wamp_bench` (bench/src/bin/wamp_bench.rs),
with the same command line and the same output, so that xtask runs either
against either router:

  seq     a callee session registers an echo procedure, a caller session
          calls it with one integer and awaits each result before the next
          call: calls/s, p50 and p99 latency (us) of the calls of the window
  pipe    the same with --inflight calls kept in flight: calls/s
  pubsub  one publisher session and --subscribers subscriber sessions;
          events (one integer) are published without acknowledge in a closed
          loop: the publisher pauses once it is --window events ahead of the
          slowest subscriber and resumes when that gap is down to half the
          window. Rate: events delivered per second, summed over the
          subscribers (per_subscriber: the rate of one subscriber, i.e. the
          publication rate). Every subscriber checks that it gets every
          event, in order.

Every session has its own connection; all run on one asyncio event loop.
URIs are unique per process (bench.<pid>.<nanos>.*). After the warm-up it
prints "window start", measures for --duration, prints "window end" and then
one line

  result rate=R count=N secs=S [p50_us=P p99_us=Q p90_us=.. p999_us=.. max_us=..]
         [per_subscriber=R published=N]

(latencies for seq only).

Any error (a failed call, a lost or reordered event, a stalled subscriber, a
session that ends early) exits with status 1.

usage: bench_peer.py --url ws://127.0.0.1:PORT/ws|rs://127.0.0.1:PORT
                     [--serializer json|msgpack|cbor] --test seq|pipe|pubsub
                     [--subscribers 1] [--inflight 100] [--window 1000]
                     [--realm realm1] [--warmup 1] [--duration 10]
"""

import argparse
import asyncio
import math
import os
import sys
import time
from urllib.parse import urlsplit

import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import serializer as wamp_serializer  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

SERIALIZERS = {
    "json": wamp_serializer.JsonSerializer,
    "msgpack": wamp_serializer.MsgPackSerializer,
    "cbor": wamp_serializer.CBORSerializer,
}

TIMEOUT = 10.0  # joining, leaving, the last calls
STALL = 10.0  # how long the publisher waits for a silent subscriber
BURST = 64  # events published between two yields to the loop


class BenchError(Exception):
    pass


def say(line):
    print(line, flush=True)


class Session(ApplicationSession):
    """A session that joins anonymously and exposes its life as futures."""

    def __init__(self, config, role):
        super().__init__(config)
        self.role = role
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.gone = loop.create_future()

    def onConnect(self):
        self.join(self.config.realm, authmethods=["anonymous"])

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.joined.done():
            self.joined.set_exception(BenchError(f"{self.role}: join refused: {details.reason}"))
        self.disconnect()

    def onDisconnect(self):
        if not self.joined.done():
            self.joined.set_exception(BenchError(f"{self.role}: connection closed before the join"))
        if not self.gone.done():
            self.gone.set_result(None)


async def connect(opts, role):
    session = Session(ComponentConfig(realm=opts.realm), role)
    parts = urlsplit(opts.url)
    serializer = SERIALIZERS[opts.serializer]()
    if parts.scheme == "ws":
        factory = WampWebSocketClientFactory(lambda: session, url=opts.url, serializers=[serializer])
        port = parts.port or 80
    elif parts.scheme == "rs":
        factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
        port = parts.port
    else:
        raise BenchError(f"{opts.url}: the URL must start with ws:// or rs://")
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.create_connection(factory, parts.hostname, port), TIMEOUT)
        await asyncio.wait_for(asyncio.shield(session.joined), TIMEOUT)
    except asyncio.TimeoutError:
        raise BenchError(f"{role}: cannot join {opts.realm} at {opts.url} within {TIMEOUT}s") from None
    except OSError as e:
        raise BenchError(f"{role}: cannot connect to {opts.url}: {e}") from None
    return session


async def leave(session):
    if not session.is_attached():
        raise BenchError(f"{session.role}: the session ended early")
    session.leave()
    try:
        await asyncio.wait_for(asyncio.shield(session.gone), TIMEOUT)
    except asyncio.TimeoutError:
        session.disconnect()
        raise BenchError(f"{session.role}: not closed within {TIMEOUT}s of leaving") from None


def percentile(values, p):
    """Nearest-rank percentile p (0..1) of sorted values."""
    if not values:
        return 0
    rank = math.ceil(p * len(values))
    return values[min(max(rank, 1), len(values)) - 1]


async def rpc(opts, prefix):
    procedure = f"{prefix}.echo"
    callee = await connect(opts, "callee")
    await callee.register(lambda n: n, procedure)
    caller = await connect(opts, "caller")

    sequential = opts.test == "seq"
    state = {"measuring": False, "stop": False, "calls": 0}
    latencies = []

    async def worker(first):
        n = first
        while not state["stop"]:
            start = time.perf_counter()
            result = await caller.call(procedure, n)
            elapsed = time.perf_counter() - start
            if result != n:
                raise BenchError(f"call {n} returned {result!r}")
            if state["measuring"]:
                state["calls"] += 1
                if sequential:
                    latencies.append(elapsed)
            n += 1

    workers = 1 if sequential else opts.inflight
    tasks = [asyncio.ensure_future(worker(i * 1_000_000_000)) for i in range(workers)]
    done = asyncio.ensure_future(asyncio.gather(*tasks))
    try:
        await asyncio.wait_for(asyncio.shield(done), opts.warmup)
    except asyncio.TimeoutError:
        pass
    if done.done():
        done.result()  # raises the error of the worker that failed
        raise BenchError("the workers stopped early")
    say("window start")
    start = time.perf_counter()
    state["measuring"] = True
    try:
        await asyncio.wait_for(asyncio.shield(done), opts.duration)
    except asyncio.TimeoutError:
        pass
    state["measuring"] = False
    secs = time.perf_counter() - start
    say("window end")
    count = state["calls"]
    state["stop"] = True
    if not done.done():
        try:
            await asyncio.wait_for(done, TIMEOUT)
        except asyncio.TimeoutError:
            raise BenchError(f"the last calls did not finish within {TIMEOUT}s") from None
    done.result()
    await leave(caller)
    await leave(callee)
    if count == 0:
        raise BenchError("no call completed in the window")
    line = f"result rate={count / secs:.1f} count={count} secs={secs:.3f}"
    if sequential:
        latencies.sort()
        for name, p in [("p50", 0.50), ("p99", 0.99), ("p90", 0.90), ("p999", 0.999), ("max", 1.0)]:
            line += f" {name}_us={percentile(latencies, p) * 1e6:.1f}"
    say(line)


async def pubsub(opts, prefix):
    topic = f"{prefix}.topic"
    publisher = await connect(opts, "publisher")
    received = [0] * opts.subscribers
    low = opts.window // 2
    flow = {"published": 0, "resume": None, "error": None}

    def gap():
        return flow["published"] - min(received)

    def fail(message):
        if flow["error"] is None:
            flow["error"] = message
        resume = flow["resume"]
        if resume is not None and not resume.done():
            resume.set_result(None)

    def handler(i):
        def on_event(n):
            if n != received[i]:
                fail(f"subscriber {i}: event {received[i]} lost or out of order (got {n!r})")
                return
            received[i] += 1
            resume = flow["resume"]
            if resume is not None and not resume.done() and gap() <= low:
                resume.set_result(None)

        return on_event

    subscribers = []
    for i in range(opts.subscribers):
        session = await connect(opts, f"subscriber {i}")
        await session.subscribe(handler(i), topic)
        subscribers.append(session)

    def check():
        if flow["error"] is not None:
            raise BenchError(flow["error"])
        for session in [publisher, *subscribers]:
            if session.gone.done():
                raise BenchError(f"{session.role}: the session ended early")

    loop = asyncio.get_running_loop()
    warm_end = time.perf_counter() + opts.warmup
    window = None  # (start, delivered, published)
    while True:
        check()
        now = time.perf_counter()
        if window is None and now >= warm_end:
            say("window start")
            window = (now, sum(received), flow["published"])
        elif window is not None and now - window[0] >= opts.duration:
            secs = time.perf_counter() - window[0]
            say("window end")
            delivered = sum(received) - window[1]
            published = flow["published"] - window[2]
            break
        if gap() >= opts.window:
            flow["resume"] = loop.create_future()
            try:
                await asyncio.wait_for(flow["resume"], STALL)
            except asyncio.TimeoutError:
                raise BenchError(
                    f"a subscriber stalled: published {flow['published']}, slowest received {min(received)}"
                ) from None
            finally:
                flow["resume"] = None
            continue
        for _ in range(min(BURST, opts.window - gap())):
            publisher.publish(topic, flow["published"])
            flow["published"] += 1
        await asyncio.sleep(0)
    check()
    await leave(publisher)
    for session in subscribers:
        await leave(session)
    if delivered == 0:
        raise BenchError("no event delivered in the window")
    rate = delivered / secs
    say(
        f"result rate={rate:.1f} count={delivered} secs={secs:.3f} "
        f"per_subscriber={rate / opts.subscribers:.1f} published={published}"
    )


async def main(opts):
    prefix = f"bench.{os.getpid()}.{time.time_ns()}"
    try:
        if opts.test == "pubsub":
            await pubsub(opts, prefix)
        else:
            await rpc(opts, prefix)
    except Exception as e:  # noqa: BLE001
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


def parse_args():
    def positive(text):
        value = int(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not positive")
        return value

    def seconds(text):
        value = float(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"bad number of seconds {text}")
        return value

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="ws://HOST:PORT/PATH or rs://HOST:PORT")
    ap.add_argument("--serializer", default="json", choices=sorted(SERIALIZERS))
    ap.add_argument("--test", required=True, choices=["seq", "pipe", "pubsub"])
    ap.add_argument("--subscribers", type=positive, default=1)
    ap.add_argument("--inflight", type=positive, default=100)
    ap.add_argument("--window", type=positive, default=1000)
    ap.add_argument("--realm", default="realm1")
    ap.add_argument("--warmup", type=seconds, default=1.0)
    ap.add_argument("--duration", type=seconds, default=10.0)
    opts = ap.parse_args()
    if opts.duration <= 0:
        ap.error("--duration must be positive")
    return opts


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
