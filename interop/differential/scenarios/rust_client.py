"""Fahrbahn's own client among the sessions: the `wamp_interop` example in
its `--differential-peer` mode (path in FAHRBAHN_DIFF_RUST_CLIENT, set by
`cargo xtask interop`) gets a retained event, a live event and a call,
has its subscription revoked, and leaves without GOODBYE (its testament)."""

import asyncio
import json
import os

from autobahn.wamp.types import PublishOptions

from lib import scenario

PROGRAM_VAR = "FAHRBAHN_DIFF_RUST_CLIENT"


@scenario("rust_client")
async def rust_client(sc):
    program = os.environ.get(PROGRAM_VAR)
    if not program:
        raise RuntimeError(f"{PROGRAM_VAR} is not set: the path of the wamp_interop example")
    a = await sc.session("A")
    base = sc.uri("r")
    await a.subscribe(lambda *x, **k: None, f"{base}.rust.will")
    await a.publish(f"{base}.to_rust", "retained", options=PublishOptions(acknowledge=True, retain=True))
    proc = await asyncio.create_subprocess_exec(
        program, "--differential-peer", "--url", sc.url, "--realm", sc.realm, "--prefix", base,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    lines = []
    try:
        ready = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
        if not ready or ready[0] != "READY":
            raise RuntimeError(f"the Rust client did not get ready: {ready}")
        rust_id = int(ready[1])
        sc.norm.name(rust_id, "session:R")

        async def read():
            while True:
                line = await proc.stdout.readline()
                if not line:
                    return
                kind, _, rest = line.decode().strip().partition(" ")
                lines.append([kind, json.loads(rest)])
                sc.last_activity = asyncio.get_running_loop().time()

        reader = asyncio.ensure_future(read())
        await sc.settle()
        await a.publish(f"{base}.to_rust", "live", 1, k="v", options=PublishOptions(acknowledge=True))
        await sc.outcome("add2 at R", a.call(f"{base}.rust.add2", 40, 2))
        sub = await sc.quietly(a, a.call("wamp.subscription.lookup", f"{base}.to_rust"))
        await sc.outcome(
            "revoke R", a.call("wamp.subscription.remove_subscriber", sub, rust_id, "com.example.kicked")
        )
        await sc.settle()
        proc.stdin.close()  # R exits without GOODBYE
        await asyncio.wait_for(proc.wait(), 10)
        await asyncio.wait_for(reader, 10)
        await sc.settle()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    sc.note("R observed", lines)
