"""Benchmark: the click redirect `GET /r/{code}` (durable writes) against a bare Starlette
redirect route, then a count of the stored clicks.

    /tmp/venv/bin/python bench/clicks.py [--duration 10] [--runs 3] [--connections 32] [--check]

Needs wrk (`apt-get install -y wrk`; taskset comes with util-linux): without it the benchmark
stops at once with that message (exit 2). Each server is one uvicorn worker pinned to CPU 0,
with the same options as bench/graphql.py (whose helpers this reuses); wrk (one thread,
`--latency`) runs on CPU 1. PartnerGraph serves a fresh SQLite database (WAL, synchronous FULL:
each batch's commit is durable) seeded with a program, a partner, its enrollment and one link.
The wrk Lua script sends a browser user agent and a fresh `pg_vid` cookie on every request,
so no request is a repeat (the 30 s repeat window would otherwise count each connection once),
and counts every answer that is not a 302 with `pg_click` in its Location: any of them, or any
socket error, fails the benchmark. After the runs the server is stopped (its shutdown flushes
the queue) and the CLICK rows are counted: no 302 may be missing from the database (a few
extra rows are requests wrk abandoned when a run ended, answered after it stopped counting).
Bar: at least 0.5 of the bare route's req/s, p99 under 25 ms at 32 connections, no click lost.
Exit status: 0 measured, 1 a bar failed with --check, 2 the benchmark failed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO))

from bench import graphql as base  # noqa: E402 - after the path fix above
from bench.graphql import BenchError, LoadResult, Server  # noqa: E402

RATIO_BAR = 0.5
P99_BAR_MS = 25.0
CODE = "Bench-Link"
DESTINATION = "https://acme.example/pricing?plan=pro"
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


def wrk_script(path: str, fresh_visitor: bool) -> str:
    """One GET per request (a new `pg_vid` each time when `fresh_visitor`); counts every answer
    that is not a 302 to a Location carrying `pg_click`."""
    cookie = '["Cookie"] = "pg_vid=" .. prefix .. string.format("%012d", counter), '
    return (
        "\n".join(
            [
                "local threads = {}",
                "function setup(thread) table.insert(threads, thread) end",
                "function init(args)",
                "  not302 = 0; unexpected = 0; counter = 0",
                "  math.randomseed(os.time() + math.floor(os.clock() * 1e6))",
                "  local chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'",
                "  prefix = ''",
                "  for i = 1, 12 do",
                "    local k = math.random(1, #chars); prefix = prefix .. chars:sub(k, k)",
                "  end",
                "end",
                "function request()",
                "  counter = counter + 1",
                f"  return wrk.format('GET', '{path}', {{ ['User-Agent'] = '{USER_AGENT}', "
                + (cookie if fresh_visitor else "")
                + "})",
                "end",
                "function response(status, headers, body)",
                "  if status ~= 302 then not302 = not302 + 1 end",
                "  local location = headers['Location'] or headers['location'] or ''",
                "  if not string.find(location, 'pg_click=', 1, true) then",
                "    unexpected = unexpected + 1",
                "  end",
                "end",
                "function done(summary, latency, requests)",
                "  local n, u = 0, 0",
                "  for _, t in ipairs(threads) do",
                "    n = n + t:get('not302'); u = u + t:get('unexpected')",
                "  end",
                "  local e = summary.errors",
                "  io.write(string.format('BENCH_RESULT %d %d %d %d %d %d %d %d %d\\n',",
                "    summary.requests, summary.duration, latency:percentile(50),",
                "    latency:percentile(90), latency:percentile(99), latency.max, n, u,",
                "    e.connect + e.read + e.write + e.timeout))",
                "end",
            ]
        )
        + "\n"
    )


async def seed_database() -> None:
    """A fresh database: migrations, a program, a partner enrolled in it, one referral link."""
    from domain import db
    from domain.actor import Actor
    from domain.partners import services as partners
    from domain.programs import services as programs
    from domain.settings import load_settings
    from domain.tracking.models import ReferralLink

    settings = load_settings()
    await db.migrate(settings)
    await db.open_database(settings)
    try:
        actor = Actor.system("bench")
        spec = programs.ProgramSpec(name="Acme Cloud", currency="EUR", destination_url=DESTINATION)
        program = await programs.create_program(actor, spec)
        partner = await partners.create_partner(actor, "Bench Partner", "bench@partner.example")
        enrollment = await partners.enroll_partner(actor, program.id, partner.id, None, "BENCH")
        await ReferralLink.create(
            program_id=program.id, enrollment_id=enrollment.id, code=CODE,
            code_key=CODE.lower(), utm_source="bench", utm_medium="referral",
        )  # fmt: skip
    finally:
        await db.close_database()


def verify_answer(server: Server) -> None:
    """One click by hand: a 302 to the destination with pg_click, the UTM values, the cookie."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(
            "GET", f"/r/{CODE.upper()}?utm_campaign=check", headers={"User-Agent": USER_AGENT}
        )
        response = conn.getresponse()
        response.read()
        location = response.getheader("Location") or ""
        cookie = response.getheader("Set-Cookie") or ""
    finally:
        conn.close()
    expected = ("https://acme.example/pricing?plan=pro&utm_source=bench&utm_medium=referral"
                "&utm_campaign=check&pg_click=")  # fmt: skip
    if response.status != 302 or not location.startswith(expected) or "pg_vid=" not in cookie:
        raise BenchError(f"unexpected answer: {response.status} {location!r} {cookie!r}")


def count_clicks(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM touchpoints WHERE kind = 'CLICK'").fetchone()
    return int(count)


def measure(
    server: Server, path: str, script: Path, args: argparse.Namespace
) -> tuple[LoadResult, int]:
    """Warm-up and measured runs (the best counts); answers it and the 302s of every run."""
    results = []
    redirects = 0
    for seconds in [args.warmup] + [args.duration] * args.runs:
        before = base.cpu_seconds(server.pid)
        result = base.run_wrk(server.url + path, script, seconds, args.connections)
        result = replace(result, server_cpu_seconds=base.cpu_seconds(server.pid) - before)
        if result.non_2xx or result.unexpected_bodies or result.socket_errors:
            raise BenchError(
                f"{server.name}: {result.non_2xx} answers not 302, {result.unexpected_bodies} "
                f"without pg_click, {result.socket_errors} socket errors in {result.requests}"
            )
        redirects += result.requests
        results.append(result)
    measured = results[1:]
    if len(measured) > 1:
        runs = ", ".join(f"{r.rps:.0f}" for r in measured)
        print(f"  {server.name}: req/s of the {len(measured)} runs: {runs} (the best counts)")
    return max(measured, key=lambda r: r.rps), redirects


def report(bare: LoadResult, clicks: LoadResult, redirects: int, rows: int, conns: int) -> bool:
    ratio = clicks.rps / bare.rps
    lost = max(redirects - rows, 0)
    checks = [
        (f"clicks/bare req/s ratio: {ratio:.3f}   bar >= {RATIO_BAR}", ratio >= RATIO_BAR),
        (f"clicks p99 at {conns} connections: {clicks.p99_ms:.2f} ms   bar < {P99_BAR_MS:g} ms",
         clicks.p99_ms < P99_BAR_MS),
        (f"302s seen by wrk (all runs and the check): {redirects}, CLICK rows: {rows}, "
         f"lost: {lost}   bar 0", lost == 0),
    ]  # fmt: skip
    print(f"\n{'':<22}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}"
          f"{'requests':>9}{'CPU':>7}{'CPU us/req':>11}")  # fmt: skip
    print(base.row("bare Starlette 302", bare))
    print(base.row("PartnerGraph /r/{code}", clicks))
    print()
    for text, ok in checks:
        print(f"{text}: {'PASS' if ok else 'FAIL'}")
    for name, result in (("bare", bare), ("clicks", clicks)):
        if result.cpu_share < base.SATURATED:
            print(f"WARNING: the {name} server used {100 * result.cpu_share:.0f}% of its core "
                  "(another process took CPU, or wrk was the limit)")  # fmt: skip
    return all(ok for _, ok in checks)


def run(args: argparse.Namespace, work: Path) -> bool:
    database = work / "bench.sqlite3"
    env = {
        **os.environ,
        "PARTNERGRAPH_DATABASE_URL": f"sqlite://{database}",
        "PARTNERGRAPH_SECRET_KEY": base.SECRET_KEY,
        "PARTNERGRAPH_DEVELOPMENT": "false",
    }
    os.environ.update(env)
    print(f"PartnerGraph click benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
    print(f"  {base.versions()}")
    print(
        f"  one uvicorn worker on CPU {base.CPU_SERVER}; wrk -t1 -c{args.connections} on CPU "
        f"{base.CPU_LOADGEN}; warm-up {args.warmup:g} s, then {args.runs} x {args.duration:g} s"
    )

    bare_script = work / "bare.lua"
    bare_script.write_text(wrk_script(f"/r/{CODE}", fresh_visitor=True))
    with base.serve("bare Starlette 302", "bench.clicks_bare_app:create_app", env, "/",
                    b'"service":"bare"') as bare:  # fmt: skip
        bare_result, _ = measure(bare, f"/r/{CODE}", bare_script, args)

    asyncio.run(seed_database())
    script = work / "clicks.lua"
    script.write_text(wrk_script(f"/r/{CODE}", fresh_visitor=True))
    factory = "portal.app:create_app_from_env"
    with base.serve("PartnerGraph /r/{code}", factory, env, "/healthz", b'"database":"ok"') as pg:
        verify_answer(pg)
        clicks_result, redirects = measure(pg, f"/r/{CODE}", script, args)
        redirects += 1  # the check's
    rows = count_clicks(database)  # after shutdown: its flush included
    return report(bare_result, clicks_result, redirects, rows, args.connections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs, the best counts (3)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar fails")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.duration <= 0 or args.warmup <= 0 or args.connections < 1 or args.runs < 1:
        parser.error("--duration, --warmup must be positive; --connections, --runs at least 1")
    work = Path(tempfile.mkdtemp(prefix="partnergraph-bench-clicks-"))
    try:
        base.check_machine()
        with base.one_benchmark_at_a_time():
            bars_hold = run(args, work)
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if args.check and not bars_hold else 0)


if __name__ == "__main__":
    main()
