#!/usr/bin/env python3
"""The differential suite: the same scenarios against two WAMP routers,
compared.

    run.py record --url ws://127.0.0.1:PORT/ws --out FILE [--realm differential] [--only NAME...]
        runs every scenario (each with its own sessions and URIs) and writes
        the transcripts, one per scenario, to FILE (JSON);
    run.py compare REFERENCE CANDIDATE [--differences differences.json]
        prints `PASS <scenario>` when the two transcripts are equal once the
        deliberate differences are applied, else `FAIL <scenario>: ...` with
        the first difference; exits 1 if any failed.

Transcripts hold what each session received (EVENT, RESULT, ERROR,
INVOCATION, INTERRUPT, revocations, GOODBYE, …) in order, and what the
scenario noted, normalised for ids and timing (see lib.py). The deliberate
differences (differences.json) name a scenario, a path into its transcript
and the reason: that part is not compared.
"""

import argparse
import asyncio
import json
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lib  # noqa: E402
import scenarios  # noqa: E402,F401

SCENARIO_TIMEOUT = 30.0


async def record(opts):
    out = {}
    names = opts.only or sorted(lib.SCENARIOS)
    for i, name in enumerate(names):
        sc = lib.Scenario(opts.url, opts.realm, f"{opts.prefix}_{i}")
        try:
            await asyncio.wait_for(lib.SCENARIOS[name](sc), SCENARIO_TIMEOUT)
            await sc.close()
            out[name] = sc.transcript()
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            out[name] = {"broken": f"{type(e).__name__}: {e}", **sc.transcript()}
        print(f"recorded {name}", file=sys.stderr, flush=True)
    with open(opts.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    return 0


def remove(tree, path):
    """Removes the element at `path` (a list of keys and indexes; `*`
    matches every element) from `tree`, in place."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        items = range(len(tree)) if isinstance(tree, list) else list(tree.keys()) if isinstance(tree, dict) else []
        for k in reversed(list(items)):
            if rest:
                remove(tree[k], rest)
            else:
                del tree[k]
        return
    if isinstance(tree, dict) and head in tree:
        if rest:
            remove(tree[head], rest)
        else:
            del tree[head]
    elif isinstance(tree, list) and isinstance(head, int) and -len(tree) <= head < len(tree):
        if rest:
            remove(tree[head], rest)
        else:
            del tree[head]


def applies(scope, name):
    """Whether a difference for `scope` ('*', a name or a list) applies to
    scenario `name`."""
    return scope == "*" or scope == name or (isinstance(scope, list) and name in scope)


def first_difference(a, b, where="$"):
    if type(a) is not type(b):
        return f"{where}: {json.dumps(a)} vs {json.dumps(b)}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{where}.{k}: {'absent' if k not in a else json.dumps(a[k])} vs {'absent' if k not in b else json.dumps(b[k])}"
            d = first_difference(a[k], b[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{where}[{i}]")
            if d:
                return d
        if len(a) != len(b):
            longer, n = (a, len(b)) if len(a) > len(b) else (b, len(a))
            side = "reference" if longer is a else "candidate"
            return f"{where}: {side} has more: {json.dumps(longer[n:])[:300]}"
        return None
    return None if a == b else f"{where}: {json.dumps(a)} vs {json.dumps(b)}"


def compare(opts):
    with open(opts.reference) as f:
        ref = json.load(f)
    with open(opts.candidate) as f:
        cand = json.load(f)
    differences = []
    if opts.differences:
        with open(opts.differences) as f:
            differences = json.load(f)["differences"]
    failed = 0
    for name in sorted(set(ref) | set(cand)):
        if name not in ref or name not in cand:
            failed += 1
            print(f"FAIL {name}: only in {'candidate' if name not in ref else 'reference'}", flush=True)
            continue
        a, b = ref[name], cand[name]
        broken = a.get("broken") or b.get("broken")
        if broken:
            failed += 1
            print(f"FAIL {name}: the scenario broke: {broken}", flush=True)
            continue
        applied = [d for d in differences if applies(d["scenario"], name)]
        for d in applied:
            remove(a, list(d["path"]))
            remove(b, list(d["path"]))
        diff = first_difference(a, b)
        if diff:
            failed += 1
            print(f"FAIL {name}: {diff}", flush=True)
        else:
            note = f" ({len(applied)} deliberate differences)" if applied else ""
            print(f"PASS {name}{note}", flush=True)
    print(f"deliberate differences ({len(differences)}, from {opts.differences}):", flush=True)
    for d in differences:
        scope = d["scenario"] if isinstance(d["scenario"], str) else ",".join(d["scenario"])
        print(f"  [{scope}] {'.'.join(map(str, d['path']))}: {d['reason']}", flush=True)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--url", required=True)
    rec.add_argument("--realm", default="differential")
    rec.add_argument("--prefix", default="d", help="URI component of this run (the same for both routers)")
    rec.add_argument("--out", required=True)
    rec.add_argument("--only", nargs="*")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("reference")
    cmp_.add_argument("candidate")
    cmp_.add_argument("--differences", default=os.path.join(HERE, "differences.json"))
    opts = ap.parse_args()
    if opts.command == "record":
        return asyncio.run(record(opts))
    return compare(opts)


if __name__ == "__main__":
    sys.exit(main())
