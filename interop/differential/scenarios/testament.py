"""Testaments: published when the session goes away."""

from lib import scenario


@scenario("testament")
async def testament(sc):
    a = await sc.session("A")
    await a.subscribe(lambda *x, **k: None, sc.uri("will"))
    t = await sc.session("T")
    await sc.outcome("add flushed", t.call("wamp.session.add_testament", sc.uri("will"), ["flushed"], {}))
    await sc.outcome("flush", t.call("wamp.session.flush_testaments"))
    await t.call("wamp.session.add_testament", sc.uri("will"), ["destroyed"], {"k": 1})
    await t.call("wamp.session.add_testament", sc.uri("will"), ["detached"], {}, None, "detached")
    await sc.outcome("bad scope", t.call("wamp.session.add_testament", sc.uri("will"), [], {}, None, "never"))
    t.drop()  # the transport goes without GOODBYE
    await sc.settle()
