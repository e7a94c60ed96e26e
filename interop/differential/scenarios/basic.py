"""The Basic Profile, and the advanced features our router had before:
identification, exclusion, black/white lists, pattern subscriptions and
registrations, progressive results, cancel."""

import asyncio

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions, SubscribeOptions

from lib import CALL, PUBLISH, scenario


@scenario("rpc")
async def rpc(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    await b.register(lambda x, y: x + y, sc.uri("add2"))

    def fail():
        raise ApplicationError("com.example.error.foo", 1, 2, a=3)

    await b.register(fail, sc.uri("fail"))
    await sc.outcome("add2", a.call(sc.uri("add2"), 40, 2))
    await sc.outcome("fail", a.call(sc.uri("fail")))
    await sc.outcome("missing", a.call(sc.uri("missing")))
    await sc.outcome("register twice", b.register(lambda: None, sc.uri("add2")))
    a.send_raw([CALL, 1001, {}, "com..bad uri", []])  # AutobahnPython refuses to send it
    await sc.settle()


@scenario("pubsub")
async def pubsub(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    await b.subscribe(lambda *a, **k: None, sc.uri("t"))
    await a.subscribe(lambda *a, **k: None, sc.uri("t"))
    await a.publish(sc.uri("t"), 1, "two", k={"three": 3}, options=PublishOptions(acknowledge=True))
    await a.publish(sc.uri("t"), "me too", options=PublishOptions(acknowledge=True, exclude_me=False))
    await sc.settle()


@scenario("identification")
async def identification(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    await b.subscribe(lambda *a, **k: None, sc.uri("t"))
    await b.register(lambda: "ok", sc.uri("p"))
    # AutobahnPython has no disclose_me for PUBLISH: sent as it is.
    a.send_raw([PUBLISH, 1001, {"disclose_me": True}, sc.uri("t"), [1]])
    await sc.settle()
    # Nor for CALL: sent as it is, last (AutobahnPython does not expect the
    # RESULT).
    a.send_raw([CALL, 1002, {"disclose_me": True}, sc.uri("p"), []])
    await sc.settle()


@scenario("black_white_lists")
async def black_white_lists(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    c = await sc.session("C")
    for s in (a, b, c):
        await s.subscribe(lambda *a, **k: None, sc.uri("bw"))
    ack = dict(acknowledge=True, exclude_me=False)
    await a.publish(sc.uri("bw"), 1, options=PublishOptions(eligible=[b._session_id], **ack))
    await a.publish(sc.uri("bw"), 2, options=PublishOptions(exclude=[b._session_id], **ack))
    await a.publish(sc.uri("bw"), 3, options=PublishOptions(eligible_authrole=["anonymous"], **ack))
    await a.publish(sc.uri("bw"), 4, options=PublishOptions(exclude_authrole=["anonymous"], **ack))
    await a.publish(sc.uri("bw"), 5, options=PublishOptions(exclude=[c._session_id], eligible=[c._session_id, b._session_id], **ack))
    await sc.settle()


@scenario("pattern_subscriptions")
async def pattern_subscriptions(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    await b.subscribe(lambda *a, **k: None, sc.uri("pre"), options=SubscribeOptions(match="prefix"))
    await b.subscribe(lambda *a, **k: None, f"com.fahrbahn.diff.{sc.p}..w", options=SubscribeOptions(match="wildcard"))
    await b.subscribe(lambda *a, **k: None, sc.uri("pre.x.w"))
    await a.publish(sc.uri("pre.x.w"), "all three", options=PublishOptions(acknowledge=True))
    await a.publish(sc.uri("prefix"), "prefix only", options=PublishOptions(acknowledge=True))
    await a.publish(sc.uri("other.w"), "wildcard only", options=PublishOptions(acknowledge=True))
    await sc.settle()


@scenario("pattern_registrations")
async def pattern_registrations(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    await b.register(lambda: "prefix", sc.uri("pre"), options=RegisterOptions(match="prefix"))
    await b.register(lambda: "wildcard", f"com.fahrbahn.diff.{sc.p}..w", options=RegisterOptions(match="wildcard"))
    await b.register(lambda: "exact", sc.uri("pre.x.w"))
    for suffix in ("pre.x.w", "pre.y.w", "prefix", "other.w", "none"):
        await sc.outcome(suffix, a.call(sc.uri(suffix)))
    await sc.settle()


@scenario("progressive_results")
async def progressive_results(sc):
    a = await sc.session("A")
    b = await sc.session("B")

    async def count(n, details=None):
        for i in range(n):
            details.progress(i)
        return n

    await b.register(count, sc.uri("count"), options=RegisterOptions(details_arg="details"))
    progress = []
    await sc.outcome(
        "count",
        a.call(sc.uri("count"), 3, options=CallOptions(on_progress=lambda *x, **k: progress.append(list(x)))),
    )
    sc.note("progress", progress)
    await sc.settle()


@scenario("cancel")
async def cancel(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    release = asyncio.get_running_loop().create_future()

    async def slow():
        await release
        return "late"

    await b.register(slow, sc.uri("slow"))
    call = asyncio.ensure_future(a.call(sc.uri("slow")))
    await sc.settle()  # the INVOCATION reached B
    call.cancel()  # AutobahnPython sends CANCEL (mode killnowait)
    try:
        await call
    except asyncio.CancelledError:
        sc.note("call", "cancelled")
    await sc.settle()
    if not release.done():  # B's handler was not interrupted
        release.set_result(None)
    await sc.settle()
