"""The session, subscription and registration meta API: procedures and
meta events."""

from autobahn.wamp.types import RegisterOptions, SubscribeOptions

from lib import scenario

# An id no session, subscription or registration has.
UNKNOWN = 2**53 - 7


@scenario("session_meta")
async def session_meta(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    ids = await sc.quietly(a, a.call("wamp.session.list"))
    sc.note("list has A and B", a._session_id in ids and b._session_id in ids)
    count = await sc.quietly(a, a.call("wamp.session.count"))
    sc.note("count is the list's length", count == len(ids))
    await sc.outcome("count of role nobody", a.call("wamp.session.count", ["nobody"]))
    await sc.outcome("get B", a.call("wamp.session.get", b._session_id))
    await sc.outcome("get unknown", a.call("wamp.session.get", UNKNOWN))
    await sc.settle()


@scenario("session_kill")
async def session_kill(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    await sc.outcome("kill B", a.call("wamp.session.kill", b._session_id, "com.example.bye", "go away"))
    await sc.settle()
    await sc.outcome("kill unknown", a.call("wamp.session.kill", UNKNOWN))
    c = await sc.session("C")
    c_authid = (await sc.quietly(a, a.call("wamp.session.get", c._session_id)))["authid"]
    await sc.outcome("kill_by_authid C", a.call("wamp.session.kill_by_authid", c_authid))
    await sc.settle()


@scenario("session_meta_events")
async def session_meta_events(sc):
    a = await sc.session("A")
    await a.subscribe(lambda *x: None, "wamp.session.on_join")
    await a.subscribe(lambda *x: None, "wamp.session.on_leave")
    b = await sc.session("B")
    await sc.settle()
    b.leave()
    await sc.settle()


@scenario("subscription_meta")
async def subscription_meta(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    for topic in ("on_create", "on_subscribe", "on_unsubscribe", "on_delete"):
        await a.subscribe(lambda *x: None, f"wamp.subscription.{topic}")
    sub = await b.subscribe(lambda *x: None, sc.uri("pre"), options=SubscribeOptions(match="prefix"))
    await sc.settle()
    await sc.outcome("lookup", a.call("wamp.subscription.lookup", sc.uri("pre"), {"match": "prefix"}))
    await sc.outcome("lookup exact", a.call("wamp.subscription.lookup", sc.uri("pre")))
    await sc.outcome("match", a.call("wamp.subscription.match", sc.uri("pre.x")))
    await sc.outcome("match none", a.call("wamp.subscription.match", sc.uri("nothing")))
    await sc.outcome("get", a.call("wamp.subscription.get", sub.id))
    await sc.outcome("get unknown", a.call("wamp.subscription.get", UNKNOWN))
    await sc.outcome("list_subscribers", a.call("wamp.subscription.list_subscribers", sub.id))
    await sc.outcome("count_subscribers", a.call("wamp.subscription.count_subscribers", sub.id))
    listed = await sc.quietly(a, a.call("wamp.subscription.list"))
    sc.note("list has it under prefix", sub.id in listed["prefix"])
    await sub.unsubscribe()
    await sc.settle()


@scenario("registration_meta")
async def registration_meta(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    for topic in ("on_create", "on_register", "on_unregister", "on_delete"):
        await a.subscribe(lambda *x: None, f"wamp.registration.{topic}")
    reg = await b.register(lambda: None, sc.uri("proc"))
    await sc.settle()
    await sc.outcome("lookup", a.call("wamp.registration.lookup", sc.uri("proc")))
    await sc.outcome("lookup prefix", a.call("wamp.registration.lookup", sc.uri("proc"), {"match": "prefix"}))
    await sc.outcome("match", a.call("wamp.registration.match", sc.uri("proc")))
    await sc.outcome("match none", a.call("wamp.registration.match", sc.uri("nothing")))
    await sc.outcome("get", a.call("wamp.registration.get", reg.id))
    await sc.outcome("get unknown", a.call("wamp.registration.get", UNKNOWN))
    await sc.outcome("list_callees", a.call("wamp.registration.list_callees", reg.id))
    await sc.outcome("count_callees", a.call("wamp.registration.count_callees", reg.id))
    listed = await sc.quietly(a, a.call("wamp.registration.list"))
    sc.note("list has it under exact", reg.id in listed["exact"])
    await reg.unregister()
    await sc.settle()
    await b.register(lambda: None, sc.uri("pat"), options=RegisterOptions(match="prefix"))
    await sc.settle()
    b.leave()
    await sc.settle()


@scenario("shared_registration")
async def shared_registration(sc):
    """A shared (`roundrobin`) registration with two callees: the meta
    API's view of it, the calls' distribution, a conflicting REGISTER, and
    the meta events as each callee unregisters."""
    a = await sc.session("A")
    b = await sc.session("B")
    c = await sc.session("C")
    for topic in ("on_create", "on_register", "on_unregister", "on_delete"):
        await a.subscribe(lambda *x: None, f"wamp.registration.{topic}")
    shared = RegisterOptions(invoke="roundrobin")
    rb = await b.register(lambda: "B", sc.uri("shared"), options=shared)
    await sc.settle()
    rc = await c.register(lambda: "C", sc.uri("shared"), options=shared)
    await sc.settle()
    sc.note("one registration id", rb.id == rc.id)
    await sc.outcome("get", a.call("wamp.registration.get", rb.id))
    await sc.outcome("count_callees", a.call("wamp.registration.count_callees", rb.id))
    callees = await sc.quietly(a, a.call("wamp.registration.list_callees", rb.id))
    sc.note("list_callees has B and C", sorted(callees) == sorted([b._session_id, c._session_id]))
    for i in range(3):
        await sc.outcome(f"call {i}", a.call(sc.uri("shared")))
    await sc.outcome("register single", a.register(lambda: None, sc.uri("shared")))
    await sc.outcome(
        "register random", a.register(lambda: None, sc.uri("shared"), options=RegisterOptions(invoke="random"))
    )
    await rb.unregister()
    await sc.settle()
    await sc.outcome("count_callees after B", a.call("wamp.registration.count_callees", rc.id))
    await sc.outcome("call after B", a.call(sc.uri("shared")))
    await rc.unregister()
    await sc.settle()
