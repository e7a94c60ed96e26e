"""The machinery of the differential suite: sessions that record what the
router sends them, at the wire level, normalised for ids and timing.

Every session speaks WAMP over WebSocket with JSON, through
AutobahnPython's asyncio client; besides the usual API, each keeps the
frames the router sent it (`Session.seen`), decoded from JSON, so that
details AutobahnPython does not model (`ppt_*`, `x_*`, revocation
reasons) are compared too. `Session.send_raw` sends a message AutobahnPython
cannot build (e.g. PUBLISH with `ppt_*` options).

A scenario is an `async def` taking a `Scenario` and registered with
`@scenario("name")` in a module of `scenarios/`; it opens sessions with
`await sc.session("A")`, acts through them, and calls `await sc.settle()`
where the routers' messages must have arrived. Its transcript is what each
session saw plus what the scenario `note`d, normalised (`Normaliser`).
"""

import asyncio
import json
from urllib.parse import urlsplit

import txaio

txaio.use_asyncio()

from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory, WampWebSocketClientProtocol  # noqa: E402
from autobahn.wamp import serializer as wamp_serializer  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

SCENARIOS = {}

# WAMP message codes.
HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED, EVENT = 16, 17, 32, 33, 34, 35, 36
CALL, CANCEL, RESULT = 48, 49, 50
REGISTER, REGISTERED, UNREGISTER, UNREGISTERED, INVOCATION, INTERRUPT, YIELD = 64, 65, 66, 67, 68, 69, 70

NAMES = {
    ABORT: "ABORT", GOODBYE: "GOODBYE", ERROR: "ERROR", PUBLISHED: "PUBLISHED", SUBSCRIBED: "SUBSCRIBED",
    UNSUBSCRIBED: "UNSUBSCRIBED", EVENT: "EVENT", RESULT: "RESULT", REGISTERED: "REGISTERED",
    UNREGISTERED: "UNREGISTERED", INVOCATION: "INVOCATION", INTERRUPT: "INTERRUPT",
}

# Detail keys whose values are wall-clock times or router internals.
DROPPED_KEYS = {"created"}

# How long the router must be quiet before a step counts as settled, and
# the longest a step may take.
QUIET = 0.25
SETTLE_MAX = 5.0


def scenario(name):
    """Registers an `async def f(sc: Scenario)` as the scenario `name`."""

    def register(f):
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = f
        return f

    return register


class Recording(WampWebSocketClientProtocol):
    """The WebSocket protocol that also keeps every WAMP message received."""

    def onMessage(self, payload, isBinary):
        sink = getattr(self.factory, "sink", None)
        if sink is not None and not isBinary:
            try:
                sink(json.loads(payload.decode("utf-8")))
            except ValueError:
                pass
        super().onMessage(payload, isBinary)


class Session(ApplicationSession):
    """A joined session that records what the router sent it."""

    def __init__(self, config, name, scenario_):
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.name = name
        self.sc = scenario_
        self.joined = loop.create_future()
        self.left = loop.create_future()
        self.seen = []
        # RESULTs not to record (answers to `Scenario.quietly` calls).
        self.unrecorded_results = 0

    def record(self, msg):
        if self.sc.closing:
            return
        self.sc.last_activity = asyncio.get_running_loop().time()
        if isinstance(msg, list) and msg:
            if msg[0] == WELCOME:
                self.sc.norm.name(msg[1], f"session:{self.name}")
            elif msg[0] == SUBSCRIBED:
                self.sc.norm.fresh(msg[2], "subscription")
            elif msg[0] == REGISTERED:
                self.sc.norm.fresh(msg[2], "registration")
            if msg[0] == RESULT and self.unrecorded_results > 0:
                self.unrecorded_results -= 1
            elif msg[0] in NAMES:
                self.seen.append(msg)

    def onConnect(self):
        self.join(self.config.realm, authmethods=["anonymous"])

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.joined.done():
            self.joined.set_exception(RuntimeError(f"left before joining: {details.reason}"))
        if not self.left.done():
            self.left.set_result(details)
        self.disconnect()

    def onDisconnect(self):
        if not self.joined.done():
            self.joined.set_exception(RuntimeError("the connection closed before joining"))
        if not self.left.done():
            self.left.set_result(None)

    def send_raw(self, msg):
        """Sends `msg` (a JSON-able list) as it is."""
        self._transport.sendMessage(json.dumps(msg).encode("utf-8"), False)

    def drop(self):
        """Closes the transport without GOODBYE."""
        self._transport.transport.abort()


class Normaliser:
    """Replaces ids by stable names: sessions by the scenario's names for
    them, subscriptions and registrations by the order they were first
    seen (`subscription1`, …); other large integers (publications) by
    `<id>`."""

    def __init__(self):
        self.names = {}
        self.counts = {}

    def name(self, id_, name):
        self.names[id_] = name

    def fresh(self, id_, kind):
        if id_ not in self.names:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.names[id_] = f"{kind}{self.counts[kind]}"

    def value(self, v):
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int):
            if v in self.names:
                return self.names[v]
            return "<id>" if v > 2**31 else v
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in sorted(v.items()) if k not in DROPPED_KEYS}
        return v

    def message(self, m):
        """A received message without its request and publication ids; an
        absent payload is an empty one; the router's own error messages
        (free text) are left out."""
        code = m[0]
        name = NAMES[code]
        rest = m[1:]

        def payload(items):
            args = items[0] if len(items) > 0 else []
            kwargs = items[1] if len(items) > 1 else {}
            return [self.value(args), self.value(kwargs)]

        if code == EVENT:
            return [name, self.value(rest[0]), self.value(rest[2])] + payload(rest[3:])
        if code == RESULT:
            return [name, self.value(rest[1])] + payload(rest[2:])
        if code == ERROR:
            error = rest[3]
            out = [name, rest[0], self.value(rest[2]), error]
            if error.startswith("wamp."):
                return out
            return out + payload(rest[4:])
        if code == INVOCATION:
            return [name, self.value(rest[1]), self.value(rest[2])] + payload(rest[3:])
        if code == INTERRUPT:
            return [name, self.value(rest[1])]
        if code in (UNSUBSCRIBED, UNREGISTERED):
            revoked = rest[0] == 0
            return [name, "revoked" if revoked else "answer", self.value(rest[1] if len(rest) > 1 else {})]
        if code in (SUBSCRIBED, REGISTERED):
            return [name, self.value(rest[1])]
        if code == PUBLISHED:
            return [name]
        if code == ABORT:
            details = {k: v for k, v in rest[0].items() if k != "message"}
            return [name, self.value(details), rest[1]]
        if code == GOODBYE:
            details = {k: v for k, v in rest[0].items() if k != "message"}
            return [name, self.value(details), rest[1]]
        return [name] + self.value(rest)


class Scenario:
    """One run of one scenario against one router."""

    def __init__(self, url, realm, prefix):
        self.url = url
        self.realm = realm
        self.p = prefix
        self.norm = Normaliser()
        self.sessions = {}
        self.notes = {}
        self.last_activity = 0.0
        # Set when the scenario is over: what its sessions get while they
        # leave is not part of it.
        self.closing = False

    def uri(self, suffix):
        """A URI of this run: `com.fahrbahn.diff.<prefix>.<suffix>`."""
        return f"com.fahrbahn.diff.{self.p}.{suffix}"

    async def session(self, name):
        ser = wamp_serializer.JsonSerializer()
        session = Session(ComponentConfig(realm=self.realm), name, self)
        factory = WampWebSocketClientFactory(lambda: session, url=self.url, serializers=[ser])
        factory.protocol = Recording
        factory.sink = session.record
        parts = urlsplit(self.url)
        await asyncio.get_running_loop().create_connection(factory, parts.hostname, parts.port)
        await asyncio.shield(session.joined)
        self.sessions[name] = session
        return session

    def note(self, label, value):
        """Records an observation of the scenario itself, under `label`
        (unique in the scenario)."""
        if label in self.notes:
            raise ValueError(f"note {label!r} taken twice")
        self.notes[label] = value

    async def outcome(self, label, awaitable):
        """Notes what `awaitable` (a call) gave: its result, or its error
        URI (with the payload for application errors)."""
        try:
            result = await awaitable
        except ApplicationError as e:
            if e.error.startswith("wamp."):
                self.note(label, ["error", e.error])
            else:
                self.note(label, ["error", e.error, list(e.args), e.kwargs])
            return None
        self.note(label, ["result", _plain(result)])
        return result

    async def quietly(self, session, awaitable):
        """Awaits a call of `session` whose RESULT is not recorded (one
        that depends on what other scenarios left behind, e.g. every
        session of the realm); the scenario notes what it may compare."""
        session.unrecorded_results += 1
        try:
            return await awaitable
        except ApplicationError:
            session.unrecorded_results -= 1
            raise

    async def settle(self):
        """Waits until no session received anything for `QUIET` seconds
        (at most `SETTLE_MAX`)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.last_activity = max(self.last_activity, start)
        while loop.time() - start < SETTLE_MAX:
            await asyncio.sleep(QUIET / 5)
            if loop.time() - self.last_activity >= QUIET:
                return

    async def close(self):
        self.closing = True
        for s in self.sessions.values():
            if s.is_attached():
                s.leave()
        for s in self.sessions.values():
            try:
                await asyncio.wait_for(asyncio.shield(s.left), 5)
            except asyncio.TimeoutError:
                pass

    def transcript(self):
        return {
            "notes": {label: self.norm.value(v) for label, v in self.notes.items()},
            "sessions": {
                name: [self.norm.message(m) for m in s.seen] for name, s in sorted(self.sessions.items())
            },
        }


def _plain(v):
    """AutobahnPython's result objects as plain values."""
    if hasattr(v, "results") and hasattr(v, "kwresults"):
        return {"args": list(v.results), "kwargs": v.kwresults}
    if isinstance(v, tuple):
        return list(v)
    return v
