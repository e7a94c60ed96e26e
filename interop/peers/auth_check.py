#!/usr/bin/env python3
"""AutobahnPython (asyncio) clients authenticating with every WAMP method
against a router, for Fahrbahn's interop suite.

Started by `cargo xtask interop` against both Crossbar.io and the Fahrbahn
router, configured alike (interop/crossbar/config.json: the `/auth` path of
the WebSocket transport and the RawSocket transport; interop/router.toml:
the principals, with listeners added by xtask), with the same
expectations. The principals (realm1 unless said otherwise):

  ticket-user      ticket  ticket-secret                        role user
  cra-user         wampcra cra-secret                           role user
  cra-salted       wampcra cra-salted-secret (salt123, 100, 32) role user
  cs-user          cryptosign, seed CS_SEED                     role user
  scram-user       scram (argon2id-13) scram-secret             role user
  restricted-user  ticket  restricted-secret, realm restricted  role restricted

Scenarios (one line each, `PASS <name>[: note]` or `FAIL <name>: <reason>`):

  ticket, wampcra, wampcra_salted, cryptosign, cryptosign_without_authid,
  scram                      join realm1 with authrole user and that method
  restricted_role            restricted-user joins realm restricted with
                             authrole restricted; REGISTER outside the role:
                             not_authorized; CALL inside it: no_such_procedure
  ticket_wrong, wampcra_wrong, wampcra_salted_wrong, scram_wrong
                             wrong secret: ABORT wamp.error.not_authorized
  cryptosign_unauthorized_key  a key not configured: not_authorized
  cryptosign_bad_signature   the configured public key announced, signed with
                             another key: not_authorized
  cryptosign_replayed        a signature recorded from an earlier session
                             answers a new challenge: not_authorized
  unknown_authid             ticket for an authid nobody configured:
                             not_authorized
  role_not_given             ticket-user asks for authrole restricted: never
                             gets it (Crossbar.io welcomes it with its own role
                             user, Fahrbahn refuses with not_authorized; the
                             line says which)
  wrong_realm                a realm the router does not have:
                             wamp.error.no_such_realm
  other_realm                restricted-user joins realm1, where it has no
                             role: refused (Crossbar.io: no_such_role,
                             Fahrbahn: not_authorized; the line says which)
  anonymous_refused          (WebSocket) no credentials on the auth
                             endpoint: wamp.error.no_auth_method
  origin_refused, origin_allowed
                             (WebSocket) a WebSocket upgrade with Origin
                             https://evil.org: 4xx; http://127.0.0.1:5173: 101

A challenge answered late is not checked: Crossbar.io has no configurable
authentication deadline (Fahrbahn's `limits.auth_timeout_secs` is tested on
simulated time in its own tests).

Exits 1 if any scenario failed (2 on usage errors).

usage: auth_check.py --url ws://127.0.0.1:PORT/auth|rs://127.0.0.1:PORT
                     [--serializer json|msgpack|cbor] [--timeout SECS]
"""

import argparse
import asyncio
import socket
import sys
from urllib.parse import urlsplit

import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import auth as wauth  # noqa: E402
from autobahn.wamp import serializer as wamp_serializer  # noqa: E402
from autobahn.wamp.cryptosign import CryptosignKey  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

SERIALIZERS = {
    "json": wamp_serializer.JsonSerializer,
    "msgpack": wamp_serializer.MsgPackSerializer,
    "cbor": wamp_serializer.CBORSerializer,
}

NOT_AUTHORIZED = "wamp.error.not_authorized"
CS_SEED = "c997d2deeccd7445918409bd47a68b11b0a5203c633b5aa8646539fbda14ddc7"
CS_PUBKEY = "3c37a8d113ee420c981303bbc162c899330ba8d6b3fe2f0bf5b1b273ca40662e"
OTHER_SEED = "bf12e47cf299df3aecfd8fcde731f44ef48da11f1aae3e765821be4b334ae0f6"


def log(message):
    print(f"auth_check: {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A scenario's check did not hold."""


class Refused(Exception):
    """The router ended the join with ABORT (or closed before WELCOME)."""

    def __init__(self, reason, message=None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def expect(condition, reason):
    if not condition:
        raise Failed(reason)


class AuthSession(ApplicationSession):
    """Joins with one method (`auth` = (method, params) or None for
    anonymous) and answers its challenge; `record`/`replay` capture or
    replay a cryptosign signature."""

    def __init__(self, config, auth=None, authrole=None, record=None, replay=None):
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.left = loop.create_future()
        self._auth = auth
        self._authrole = authrole
        self._record = record
        self._replay = replay
        self._scram = None
        self._key = None

    def onConnect(self):
        kw = {}
        if self._authrole:
            kw["authrole"] = self._authrole
        if self._auth is None:
            kw["authmethods"] = ["anonymous"]
        else:
            method, p = self._auth
            kw["authmethods"] = [method]
            if p.get("authid"):
                kw["authid"] = p["authid"]
            if method == "cryptosign":
                self._key = CryptosignKey.from_bytes(bytes.fromhex(p["seed"]))
                kw["authextra"] = {"pubkey": p.get("pubkey") or self._key.public_key()}
            elif method == "scram":
                self._scram = wauth.AuthScram(authid=p["authid"], password=p["password"])
                kw["authextra"] = self._scram.authextra
        self.join(self.config.realm, **kw)

    async def onChallenge(self, challenge):
        method, p = self._auth
        if challenge.method == "ticket":
            return p["ticket"]
        if challenge.method == "wampcra":
            key = p["secret"].encode("utf8")
            if "salt" in challenge.extra:
                key = wauth.derive_key(
                    key,
                    challenge.extra["salt"].encode("utf8"),
                    challenge.extra["iterations"],
                    challenge.extra["keylen"],
                )
            return wauth.compute_wcs(key, challenge.extra["challenge"].encode("utf8")).decode("ascii")
        if challenge.method == "cryptosign":
            if self._replay is not None:
                return self._replay
            signature = await self._key.sign_challenge(challenge)
            if self._record is not None:
                self._record.append(signature)
            return signature
        if challenge.method == "scram":
            return self._scram.on_challenge(self, challenge)
        raise Exception(f"unexpected challenge method {challenge.method}")

    def onWelcome(self, welcome):
        if self._scram is not None:
            return self._scram.on_welcome(self, welcome.authextra)
        return None

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.joined.done():
            self.joined.set_exception(Refused(details.reason, details.message))
        if not self.left.done():
            self.left.set_result(details)
        self.disconnect()

    def onDisconnect(self):
        if not self.joined.done():
            self.joined.set_exception(Refused("transport.lost", "closed before WELCOME"))
        if not self.left.done():
            self.left.set_result(None)


class Checks:
    def __init__(self, opts):
        self.opts = opts
        self.ws = urlsplit(opts.url).scheme == "ws"
        self.failed = 0

    async def connect(self, auth, realm="realm1", **kw):
        parts = urlsplit(self.opts.url)
        ser = SERIALIZERS[self.opts.serializer]()
        session = AuthSession(ComponentConfig(realm=realm), auth=auth, **kw)
        if self.ws:
            factory = WampWebSocketClientFactory(lambda: session, url=self.opts.url, serializers=[ser])
        else:
            factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
        loop = asyncio.get_running_loop()
        await loop.create_connection(factory, parts.hostname, parts.port)
        try:
            details = await asyncio.shield(session.joined)
        except Refused:
            raise
        return session, details

    async def leave(self, session):
        session.leave()
        await session.left

    async def joins(self, auth, authid, method, realm="realm1", role="user"):
        session, d = await self.connect(auth, realm=realm)
        try:
            got = (d.authid, d.authrole, d.authmethod)
            expect(got == (authid, role, method), f"joined as {got}, want {(authid, role, method)}")
        finally:
            await self.leave(session)
        return f"authid {d.authid} authrole {d.authrole} authmethod {d.authmethod}"

    async def refused(self, auth, uris, realm="realm1", **kw):
        """The join must be refused with one of `uris`."""
        try:
            session, d = await self.connect(auth, realm=realm, **kw)
        except Refused as e:
            expect(e.reason in uris, f"refused with {e.reason}, want {' or '.join(uris)}")
            return f"ABORT {e.reason}"
        await self.leave(session)
        raise Failed(f"joined as {d.authid} / {d.authrole} instead of being refused")

    async def run(self):
        ticket = lambda authid, t: ("ticket", {"authid": authid, "ticket": t})  # noqa: E731
        cra = lambda authid, s: ("wampcra", {"authid": authid, "secret": s})  # noqa: E731
        cs = lambda **p: ("cryptosign", {"seed": CS_SEED, **p})  # noqa: E731
        scram = lambda pw: ("scram", {"authid": "scram-user", "password": pw})  # noqa: E731
        na = [NOT_AUTHORIZED]
        scenarios = [
            ("ticket", lambda: self.joins(ticket("ticket-user", "ticket-secret"), "ticket-user", "ticket")),
            ("wampcra", lambda: self.joins(cra("cra-user", "cra-secret"), "cra-user", "wampcra")),
            ("wampcra_salted", lambda: self.joins(cra("cra-salted", "cra-salted-secret"), "cra-salted", "wampcra")),
            ("cryptosign", lambda: self.joins(cs(authid="cs-user"), "cs-user", "cryptosign")),
            ("cryptosign_without_authid", lambda: self.joins(cs(), "cs-user", "cryptosign")),
            ("scram", lambda: self.joins(scram("scram-secret"), "scram-user", "scram")),
            ("restricted_role", self.restricted_role),
            ("ticket_wrong", lambda: self.refused(ticket("ticket-user", "WRONG"), na)),
            ("wampcra_wrong", lambda: self.refused(cra("cra-user", "WRONG"), na)),
            ("wampcra_salted_wrong", lambda: self.refused(cra("cra-salted", "WRONG"), na)),
            ("scram_wrong", lambda: self.refused(scram("WRONG"), na)),
            ("cryptosign_unauthorized_key", lambda: self.refused(cs(authid="cs-user", seed=OTHER_SEED), na)),
            (
                "cryptosign_bad_signature",
                lambda: self.refused(cs(authid="cs-user", seed=OTHER_SEED, pubkey=CS_PUBKEY), na),
            ),
            ("cryptosign_replayed", self.cryptosign_replayed),
            ("unknown_authid", lambda: self.refused(ticket("nobody", "ticket-secret"), na)),
            ("role_not_given", self.role_not_given),
            (
                "wrong_realm",
                lambda: self.refused(
                    ticket("ticket-user", "ticket-secret"), ["wamp.error.no_such_realm"], realm="no.such.realm"
                ),
            ),
            (
                "other_realm",
                lambda: self.refused(
                    ticket("restricted-user", "restricted-secret"),
                    [NOT_AUTHORIZED, "wamp.error.no_such_role"],
                ),
            ),
        ]
        if self.ws:
            scenarios += [
                ("anonymous_refused", lambda: self.refused(None, ["wamp.error.no_auth_method"])),
                ("origin_refused", lambda: self.origin("https://evil.org", allowed=False)),
                ("origin_allowed", lambda: self.origin("http://127.0.0.1:5173", allowed=True)),
            ]
        for name, scenario in scenarios:
            try:
                note = await asyncio.wait_for(scenario(), self.opts.timeout)
            except Failed as e:
                self.fail(name, str(e))
            except asyncio.TimeoutError:
                self.fail(name, f"no answer within {self.opts.timeout}s")
            except Refused as e:
                self.fail(name, f"refused: {e}")
            except Exception as e:  # noqa: BLE001
                self.fail(name, f"{type(e).__name__}: {e}")
            else:
                print(f"PASS {name}" + (f": {note}" if note else ""), flush=True)
        return self.failed

    def fail(self, name, reason):
        self.failed += 1
        print(f"FAIL {name}: {reason}", flush=True)

    async def restricted_role(self):
        auth = ("ticket", {"authid": "restricted-user", "ticket": "restricted-secret"})
        session, d = await self.connect(auth, realm="restricted")
        try:
            expect(d.authrole == "restricted", f"authrole {d.authrole}, want restricted")
            try:
                await session.register(lambda: None, "com.example.auth_check.proc")
                raise Failed("REGISTER outside the role succeeded")
            except ApplicationError as e:
                expect(e.error == NOT_AUTHORIZED, f"REGISTER: {e.error}, want {NOT_AUTHORIZED}")
            try:
                await session.call("com.example.auth_check.missing")
                raise Failed("CALL of a procedure nobody registered succeeded")
            except ApplicationError as e:
                expect(e.error == "wamp.error.no_such_procedure", f"CALL: {e.error}, want no_such_procedure")
        finally:
            await self.leave(session)
        return "REGISTER not_authorized, CALL no_such_procedure"

    async def cryptosign_replayed(self):
        recorded = []
        auth = ("cryptosign", {"authid": "cs-user", "seed": CS_SEED})
        session, _ = await self.connect(auth, record=recorded)
        await self.leave(session)
        expect(len(recorded) == 1, f"{len(recorded)} signatures recorded")
        return await self.refused(auth, [NOT_AUTHORIZED], replay=recorded[0])

    async def role_not_given(self):
        auth = ("ticket", {"authid": "ticket-user", "ticket": "ticket-secret"})
        try:
            session, d = await self.connect(auth, authrole="restricted")
        except Refused as e:
            expect(e.reason == NOT_AUTHORIZED, f"refused with {e.reason}, want {NOT_AUTHORIZED}")
            return f"ABORT {e.reason}"
        await self.leave(session)
        expect(d.authrole == "user", f"joined with authrole {d.authrole}: a role it was not given")
        return "welcomed with its own role user"

    async def origin(self, origin, allowed):
        status = await asyncio.get_running_loop().run_in_executor(None, upgrade_status, self.opts.url, origin)
        if allowed:
            expect(status == 101, f"Origin {origin}: HTTP {status}, want 101")
        else:
            expect(400 <= status < 500, f"Origin {origin}: HTTP {status}, want 4xx")
        return f"HTTP {status}"


def upgrade_status(url, origin):
    """The status code of a WAMP WebSocket upgrade to `url` with this Origin."""
    parts = urlsplit(url)
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: wamp.2.json\r\nOrigin: {origin}\r\n\r\n"
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
    ap.add_argument("--timeout", type=float, default=10.0, help="time limit of each scenario (s)")
    opts = ap.parse_args()
    parts = urlsplit(opts.url)
    if parts.scheme not in ("ws", "rs") or not parts.hostname or not parts.port:
        ap.error(f"{opts.url}: want ws://HOST:PORT/PATH or rs://HOST:PORT")
    return opts


async def main(opts):
    log(f"{opts.url} {opts.serializer}")
    failed = await Checks(opts).run()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
