"""Broker features of the Advanced Profile: event retention, subscription
revocation, payload passthru (`ppt_*`) and custom (`x_*`) options."""

from autobahn.wamp.types import PublishOptions, SubscribeOptions

from lib import PUBLISH, scenario


@scenario("retention")
async def retention(sc):
    a = await sc.session("A")
    await a.publish(sc.uri("r"), "first", options=PublishOptions(acknowledge=True, retain=True))
    await a.publish(sc.uri("r"), "kept", options=PublishOptions(acknowledge=True, retain=True))
    await a.publish(sc.uri("plain"), "not kept", options=PublishOptions(acknowledge=True))
    b = await sc.session("B")
    await b.subscribe(lambda *x: None, sc.uri("r"), options=SubscribeOptions(get_retained=True))
    await b.subscribe(lambda *x: None, sc.uri("plain"), options=SubscribeOptions(get_retained=True))
    c = await sc.session("C")
    await c.subscribe(lambda *x: None, sc.uri("r"))  # no get_retained: nothing
    await sc.settle()


@scenario("subscription_revocation")
async def subscription_revocation(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    sub = await b.subscribe(lambda *x: None, sc.uri("rev"))
    b_id = b._session_id
    await sc.outcome(
        "remove_subscriber",
        a.call("wamp.subscription.remove_subscriber", sub.id, b_id, "com.example.kicked"),
    )
    await sc.settle()
    await a.publish(sc.uri("rev"), "after", options=PublishOptions(acknowledge=True))
    await sc.outcome("match after", a.call("wamp.subscription.match", sc.uri("rev")))
    await sc.outcome(
        "remove again", a.call("wamp.subscription.remove_subscriber", sub.id, b_id)
    )
    await sc.settle()


@scenario("payload_passthru")
async def payload_passthru(sc):
    a = await sc.session("A")
    b = await sc.session("B")
    await b.subscribe(lambda *x, **k: None, sc.uri("ppt"))
    # Not acknowledged: AutobahnPython does not expect the PUBLISHED.
    options = {
        "ppt_scheme": "x_fahrbahn",
        "ppt_serializer": "native",
        "ppt_cipher": "xsalsa20poly1305",
        "ppt_keyid": "key1",
    }
    a.send_raw([PUBLISH, 1001, options, sc.uri("ppt"), ["opaque"]])
    a.send_raw([PUBLISH, 1002, {"x_trace": "t1"}, sc.uri("ppt"), [2]])
    await sc.settle()
