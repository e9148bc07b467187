"""Benchmark: PartnerGraph's `/graphql` against a bare Starlette JSON route, then a profile.

    /tmp/venv/bin/python bench/graphql.py [--duration 10] [--runs 3] [--connections 32]
                                          [--no-profile] [--check] [--keep]

Each server is one uvicorn worker pinned to CPU 0 (`taskset -c 0`), with the same options; wrk
(one thread, `--latency`) runs on CPU 1. The GraphQL run sends a small authenticated read as a
partner, with a JWT from POST /auth/login, against a fresh SQLite database in a temporary
directory. The answer is checked once before loading, and wrk's Lua script counts every non-2xx
response and every body without the expected content: any of either fails the benchmark.
After a warm-up, the best of --runs runs counts (a shared machine only slows runs down); the
server's CPU time is read from /proc to show whether it was saturated. Finally py-spy samples
the GraphQL worker under the same load and the samples are grouped by where the time goes.
Only 127.0.0.1 is contacted; the servers are stopped on every exit path.
Exit status: 0 measured (bars printed), 1 a bar failed with --check, 2 the benchmark failed.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

# `python bench/graphql.py` puts bench/ first on sys.path, where this file would shadow
# graphql-core (which strawberry imports): drop it, and import the project from the repo root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO))

QUERY = "{ viewer { kind partner { name enrollments { referralCode program { name } } } } }"
PARTNER_NAME = "Bench Partner Ltd"
PARTNER_EMAIL = "owner@bench-partner.example"
USER_EMAIL = "ana@bench-partner.example"
ADMIN_EMAIL = "admin@bench.example"
PASSWORD = "bench password, long enough"
PROGRAMS = [("Acme Cloud Partners", "ACME-BENCH"), ("Globex Affiliates", "GLOBEX-BENCH"),
            ("Initech Referrals", "INITECH-BENCH")]  # fmt: skip
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"

CPU_SERVER = "0"
CPU_LOADGEN = "1"
RATIO_BAR = 0.3
P99_BAR_MS = 20.0
STARTUP_TIMEOUT = 30.0
LOCK_FILE = Path(tempfile.gettempdir()) / "partnergraph-bench.lock"
LOCK_TIMEOUT = 600.0
SATURATED = 0.9  # below this CPU share, something else took the server's core
PACKAGES = ["uvicorn", "uvloop", "httptools", "starlette", "strawberry-graphql", "graphql-core",
            "tortoise-orm", "aiosqlite", "PyJWT", "orjson"]  # fmt: skip


class BenchError(Exception):
    """The benchmark cannot give a trustworthy figure."""


# Straight to 127.0.0.1, whatever http_proxy says.
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------------------------
# Load generation (wrk)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    unexpected_bodies: int
    socket_errors: int
    server_cpu_seconds: float = 0.0  # user + system time of the server process meanwhile

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_share(self) -> float:
        """The server's CPU use, in cores (1.0: its one core was always busy)."""
        return self.server_cpu_seconds / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_seconds / self.requests * 1e6


def _lua_string(text: str) -> str:
    """A Lua long string literal holding `text` verbatim."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def wrk_script(
    method: str, body: str | None, headers: dict[str, str], expect: str, forbid: str | None
) -> str:
    """A wrk script that sends one request and counts non-2xx and unexpected answers."""
    lines = [f"wrk.method = {_lua_string(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()]
    lines += [
        f"local expect = {_lua_string(expect)}",
        f"local forbid = {_lua_string(forbid) if forbid else 'nil'}",
        "local threads = {}",
        "function setup(thread) table.insert(threads, thread) end",
        "function init(args) non2xx = 0; unexpected = 0 end",
        "function response(status, headers, body)",
        "  if status < 200 or status > 299 then non2xx = non2xx + 1 end",
        "  if not string.find(body, expect, 1, true)",
        "     or (forbid and string.find(body, forbid, 1, true)) then",
        "    unexpected = unexpected + 1",
        "  end",
        "end",
        "function done(summary, latency, requests)",
        "  local n, u = 0, 0",
        "  for _, t in ipairs(threads) do n = n + t:get('non2xx'); u = u + t:get('unexpected') end",
        "  local e = summary.errors",
        "  io.write(string.format('BENCH_RESULT %d %d %d %d %d %d %d %d %d\\n',",
        "    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),",
        "    latency:percentile(99), latency.max, n, u, e.connect + e.read + e.write + e.timeout))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> LoadResult:
    command = [
        "taskset", "-c", CPU_LOADGEN, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s",
        "--timeout", "5s", "--latency", "-s", str(script), url,
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    requests, duration_us, p50, p90, p99, top, non2xx, unexpected, errors = (
        int(x) for x in line.split()[1:]
    )
    if requests == 0:
        raise BenchError(f"wrk completed no request:\n{done.stdout}")
    return LoadResult(
        requests=requests,
        seconds=duration_us / 1e6,
        p50_ms=p50 / 1000,
        p90_ms=p90 / 1000,
        p99_ms=p99 / 1000,
        max_ms=top / 1000,
        non_2xx=non2xx,
        unexpected_bodies=unexpected,
        socket_errors=errors,
    )


def ensure_clean(name: str, result: LoadResult) -> None:
    """Fail loudly when any answer was not the 2xx answer we expected."""
    if result.non_2xx or result.unexpected_bodies or result.socket_errors:
        raise BenchError(
            f"{name}: {result.non_2xx} non-2xx responses, {result.unexpected_bodies} "
            f"unexpected bodies, {result.socket_errors} socket errors in {result.requests} "
            "requests: the figures would measure errors"
        )


# --------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def uvicorn_options() -> list[str]:
    """The same options for both servers: uvloop and httptools when installed, no access log."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return ["--loop", loop, "--http", http, "--log-level", "warning", "--no-access-log",
            "--lifespan", "on", "--app-dir", str(REPO)]  # fmt: skip


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def serve(
    name: str, factory: str, env: dict[str, str], ready_path: str, ready_body: bytes
) -> Iterator[Server]:
    """One uvicorn worker on CPU_SERVER, ready when `ready_path` answers 200 with `ready_body`
    in it; stopped (then killed if need be) on leaving."""
    port = free_port()
    command = [
        "taskset", "-c", CPU_SERVER, sys.executable, "-m", "uvicorn", factory, "--factory",
        "--host", "127.0.0.1", "--port", str(port), *uvicorn_options(),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env)  # taskset execs: pid is uvicorn's
    server = Server(name, f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise BenchError(f"{name} exited with {process.returncode} while starting")
            try:
                with LOCAL.open(server.url + ready_path, timeout=2) as response:
                    if response.status == 200 and ready_body in response.read():
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not answer within {STARTUP_TIMEOUT:g} s")
            time.sleep(0.1)
        if process.poll() is not None:  # another program answered on the port it could not bind
            raise BenchError(f"{name} exited with {process.returncode} while starting")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# PartnerGraph data and credentials


async def seed_database() -> None:
    """A fresh database: migrations, an admin, programs, a partner user enrolled in each."""
    from domain import db
    from domain.actor import Actor
    from domain.identity import services as identity
    from domain.identity.models import UserKind
    from domain.partners import services as partners
    from domain.programs import services as programs
    from domain.settings import load_settings

    settings = load_settings()
    await db.migrate(settings)
    await db.open_database(settings)
    try:
        actor = Actor.system("bench")
        await identity.create_user(ADMIN_EMAIL, PASSWORD, UserKind.ADMIN)
        partner = await partners.create_partner(actor, PARTNER_NAME, PARTNER_EMAIL)
        await identity.create_user(USER_EMAIL, PASSWORD, UserKind.PARTNER, partner)
        for name, code in PROGRAMS:
            spec = programs.ProgramSpec(
                name=name, currency="EUR", destination_url="https://acme.example/pricing"
            )
            program = await programs.create_program(actor, spec)
            await partners.enroll_partner(actor, program.id, partner.id, None, code)
    finally:
        await db.close_database()


def post_json(url: str, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with LOCAL.open(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise BenchError(f"POST {url}: {exc.code} {exc.read()[:500]!r}") from None


def login(base: str) -> str:
    tokens = post_json(base + "/auth/login", {"email": USER_EMAIL, "password": PASSWORD})
    return str(tokens["access_token"])


def verify_answer(base: str, token: str) -> None:
    """The query answers what the database holds, without errors, before any load."""
    body = post_json(base + "/graphql", {"query": QUERY}, {"Authorization": f"Bearer {token}"})
    viewer = (body.get("data") or {}).get("viewer") or {}
    partner = viewer.get("partner") or {}
    got = sorted(
        (e["program"]["name"], e["referralCode"]) for e in partner.get("enrollments") or []
    )
    if "errors" in body or viewer.get("kind") != "PARTNER" or partner.get("name") != PARTNER_NAME:
        raise BenchError(f"unexpected GraphQL answer: {body}")
    if got != sorted(PROGRAMS):
        raise BenchError(f"unexpected enrollments {got}, expected {sorted(PROGRAMS)}")


# --------------------------------------------------------------------------------------------
# Profile (py-spy)

# Where the worker's CPU goes, by purpose: each sample counts for the first group (in this
# order) with a frame anywhere on its stack matching (file prefix, function or "" for any).
GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("auth: JWT decode (api/tokens.py decode_access)", [("api/tokens.py", "decode_access")]),
    ("auth: session check (api/authn.py _session_live)", [("api/authn.py", "_session_live")]),
    ("auth: partner-active query (identity.partner_is_active)",
     [("domain/identity/services.py", "partner_is_active")]),  # fmt: skip
    ("auth: other", [("api/authn.py", "")]),
    ("DB: programs_by_ids (Enrollment.program loader)",
     [("domain/programs/services.py", "programs_by_ids")]),  # fmt: skip
    ("DB: partners_by_ids (Viewer.partner loader)",
     [("domain/partners/services.py", "partners_by_ids")]),  # fmt: skip
    ("DB: enrollments_by_partners (Partner.enrollments loader)",
     [("domain/partners/services.py", "enrollments_by_partners")]),  # fmt: skip
    ("DB: other", [("tortoise/", ""), ("pypika_tortoise/", ""), ("aiosqlite/", "")]),
    ("GraphQL: DataLoader machinery", [("strawberry/dataloader.py", "")]),
    ("GraphQL: query cost extension (api/cost.py)", [("api/cost.py", "")]),
    ("GraphQL: per-request context + loaders", [("api/context.py", ""), ("api/loaders.py", "")]),
    ("GraphQL: resolvers and types (api/)", [("api/relay.py", ""), ("api/identity/", ""),
                                             ("api/partners/", ""), ("api/programs/", "")]),
    ("GraphQL: parse, validate, extensions", [("graphql/language/", ""),
                                              ("graphql/validation/", ""),
                                              ("strawberry/extensions/", ""), ("api/", "")]),
    ("GraphQL: execution (graphql-core)", [("graphql/", "")]),
    ("GraphQL: strawberry schema and resolver glue", [("strawberry/", "")]),
    ("HTTP: JSON response (portal/http.py json_response)", [("portal/http.py", "json_response")]),
    ("HTTP: read + parse body (portal/http.py)", [("portal/http.py", "")]),
    ("HTTP: /graphql endpoint, other (portal/graphql.py)", [("portal/graphql.py", "")]),
    ("HTTP: middleware + routing", [("starlette/", ""), ("portal/", "")]),
    ("HTTP: uvicorn protocol (httptools)", [("uvicorn/", "")]),
]  # fmt: skip
PROJECT = ("api/", "domain/", "portal/")


def _frame_parts(frame: str) -> tuple[str, str]:
    """("function", "file") from py-spy's "function (file:line)"."""
    function, _, rest = frame.partition(" (")
    return function, rest.rsplit(":", 1)[0]


def _matches(file: str, prefix: str) -> bool:
    return file.startswith(prefix) or f"/{prefix}" in file


def _named(name: str, function: str) -> bool:
    """py-spy names methods Class.method: `function` "" matches any, else the last part."""
    return not function or name == function or name.endswith("." + function)


def classify(frames: list[tuple[str, str]]) -> str:
    for group, rules in GROUPS:
        for prefix, function in rules:
            if any(_matches(file, prefix) and _named(fn, function) for fn, file in frames):
                return group
    return "event loop and other"


def package_of(frames: list[tuple[str, str]]) -> str:
    """The package of the innermost frame outside the standard library."""
    for _, file in reversed(frames):
        top = file.split("/", 1)[0].removesuffix(".py")
        if file.startswith("<") or top in sys.stdlib_module_names:
            continue
        return "PartnerGraph (api, domain, portal)" if file.startswith(PROJECT) else top
    return "standard library (asyncio, ...)"


def _table(title: str, counts: Counter[str], total: int, limit: int) -> None:
    print(f"  {title}")
    for name, count in counts.most_common(limit):
        print(f"    {100 * count / total:5.1f}%  {name}")


def profile(
    server: Server, script: Path, seconds: float, connections: int, out: Path, keep: bool
) -> None:
    """Sample the worker (GIL-holding samples: its CPU) under load; print where it goes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("\nprofile skipped: py-spy not installed (/tmp/venv/bin/pip install py-spy)")
        return
    raw = out / "graphql-profile.txt"
    sampler = subprocess.Popen(
        [
            "taskset",
            "-c",
            CPU_LOADGEN,
            py_spy,
            "record",
            "--pid",
            str(server.pid),
            "--gil",
            "--duration",
            f"{max(int(seconds), 1)}",
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(0.5)  # py-spy attaches
        result = run_wrk(server.url + "/graphql", script, seconds + 1, connections)
        _, errors = sampler.communicate(timeout=seconds + 60)
    finally:
        if sampler.poll() is None:
            sampler.kill()
            sampler.wait(timeout=10)
    if sampler.returncode != 0 or not raw.exists():
        print(f"\nprofile failed: {errors.decode(errors='replace')[-500:]}")
        return
    ensure_clean("GraphQL (profiled)", result)
    groups: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    mine: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_parts(frame) for frame in stack.split(";")]
        total += count
        groups[classify(frames)] += count
        packages[package_of(frames)] += count
        for function, file in set(frames):
            if file.startswith(PROJECT):
                mine[f"{function} ({file})"] += count
    if total == 0:
        print("\nprofile: no samples")
        return
    print(f"\nProfile of the GraphQL worker: py-spy --gil, {total} samples over {seconds:g} s "
          f"at {connections} connections ({result.rps:.0f} req/s while sampled)")  # fmt: skip
    _table("by purpose (each sample once, first matching group):", groups, total, 25)
    _table("by package (innermost non-stdlib frame):", packages, total, 10)
    _table("PartnerGraph functions on the stack (inclusive):", mine, total, 12)
    print(f"  raw stacks: {raw}" + ("" if keep else " (deleted; --keep keeps them)"))


# --------------------------------------------------------------------------------------------
# The run


def versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} -")
    return ", ".join(found)


def row(name: str, r: LoadResult) -> str:
    return (
        f"{name:<22}{r.rps:>9.0f}{r.p50_ms:>8.2f}{r.p90_ms:>8.2f}{r.p99_ms:>8.2f}"
        f"{r.max_ms:>8.2f}{r.requests:>9}{100 * r.cpu_share:>6.0f}%{r.cpu_us_per_request:>9.0f}"
    )


@contextmanager
def one_benchmark_at_a_time() -> Iterator[None]:
    """Two runs at once would share the pinned cores and spoil each other's figures."""
    with LOCK_FILE.open("a") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BenchError(f"another benchmark run holds {LOCK_FILE}") from None
                if deadline - time.monotonic() >= LOCK_TIMEOUT - 1:
                    print(f"waiting for another benchmark run to finish ({LOCK_FILE})")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_machine() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchError(f"missing {', '.join(missing)}: apt-get install -y wrk util-linux")
    cpus = os.sched_getaffinity(0)
    if not {int(CPU_SERVER), int(CPU_LOADGEN)} <= cpus:
        raise BenchError(f"need CPUs {CPU_SERVER} and {CPU_LOADGEN}; this process may use {cpus}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(server: Server, path: str, script: Path, args: argparse.Namespace) -> LoadResult:
    """A warm-up, then `args.runs` measured runs, all free of errors; the best run counts
    (a shared machine only ever slows a run down)."""
    warmup = run_wrk(server.url + path, script, args.warmup, args.connections)
    ensure_clean(f"{server.name} (warm-up)", warmup)
    results = []
    for _ in range(args.runs):
        before = cpu_seconds(server.pid)
        result = run_wrk(server.url + path, script, args.duration, args.connections)
        ensure_clean(server.name, result)
        results.append(replace(result, server_cpu_seconds=cpu_seconds(server.pid) - before))
    if len(results) > 1:
        runs = ", ".join(f"{r.rps:.0f}" for r in results)
        print(f"  {server.name}: req/s of the {len(results)} runs: {runs} (the best counts)")
    return max(results, key=lambda r: r.rps)


def report(bare: LoadResult, graphql: LoadResult, connections: int) -> bool:
    """Print the figures and the bars; answers whether both bars hold."""
    ratio = graphql.rps / bare.rps
    ratio_ok = ratio >= RATIO_BAR
    p99_ok = graphql.p99_ms < P99_BAR_MS
    print(f"\n{'':<22}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}"
          f"{'requests':>9}{'CPU':>7}{'CPU us/req':>11}")  # fmt: skip
    print(row("bare Starlette JSON", bare))
    print(row("PartnerGraph GraphQL", graphql))
    print("  (every response was 2xx with the expected body, no GraphQL errors; CPU: the")
    print("   server process's user+system time, 100% = its one core always busy)")
    print(f"\nGraphQL/bare req/s ratio: {ratio:.3f}   bar >= {RATIO_BAR}: "
          f"{'PASS' if ratio_ok else 'FAIL'}")  # fmt: skip
    print(f"GraphQL p99 at {connections} connections: {graphql.p99_ms:.2f} ms   "
          f"bar < {P99_BAR_MS:g} ms: {'PASS' if p99_ok else 'FAIL'}")  # fmt: skip
    for name, result in (("bare", bare), ("GraphQL", graphql)):
        if result.cpu_share < SATURATED:
            print(f"WARNING: the {name} server used {100 * result.cpu_share:.0f}% of its core: "
                  "another process took CPU, or wrk was the limit; rerun on a quiet "
                  "machine")  # fmt: skip
    return ratio_ok and p99_ok


def run(args: argparse.Namespace, work: Path) -> bool:
    """The whole benchmark in `work`; answers whether the bars hold."""
    env = {
        **os.environ,
        "PARTNERGRAPH_DATABASE_URL": f"sqlite://{work / 'bench.sqlite3'}",
        "PARTNERGRAPH_SECRET_KEY": SECRET_KEY,
        "PARTNERGRAPH_DEVELOPMENT": "false",
    }
    os.environ.update(env)  # seed_database reads the settings from the environment too
    print(f"PartnerGraph GraphQL benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
    print(f"  {versions()}")
    print(f"  uvicorn {' '.join(uvicorn_options()[:-2])}, one worker on CPU {CPU_SERVER}; "
          f"wrk -t1 -c{args.connections} on CPU {CPU_LOADGEN}; "
          f"warm-up {args.warmup:g} s, then {args.runs} x {args.duration:g} s")  # fmt: skip

    bare_script = work / "bare.lua"
    bare_script.write_text(wrk_script("GET", None, {}, '"status":"ok"', None))
    bare_app = "bench.bare_app:create_app"
    with serve("bare Starlette JSON", bare_app, env, "/", b'"service":"bare"') as bare:
        bare_result = measure(bare, "/", bare_script, args)

    asyncio.run(seed_database())
    factory = "portal.app:create_app_from_env"
    with serve("PartnerGraph GraphQL", factory, env, "/healthz", b'"database":"ok"') as graphql:
        token = login(graphql.url)
        verify_answer(graphql.url, token)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        gql_script = work / "graphql.lua"
        gql_script.write_text(
            wrk_script(
                "POST",
                json.dumps({"query": QUERY}),
                headers,
                f'"name":"{PARTNER_NAME}"',
                '"errors"',
            )  # fmt: skip
        )
        gql_result = measure(graphql, "/graphql", gql_script, args)
        verify_answer(graphql.url, token)
        bars_hold = report(bare_result, gql_result, args.connections)
        if args.profile:
            profile(graphql, gql_script, args.profile_seconds, args.connections, work, args.keep)
    return bars_hold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs, the best counts (3)")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip py-spy")
    parser.add_argument("--profile-seconds", type=float, default=10.0, help="py-spy seconds (10)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar fails")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.duration <= 0 or args.warmup <= 0 or args.connections < 1 or args.runs < 1:
        parser.error("--duration, --warmup must be positive; --connections, --runs at least 1")
    work = Path(tempfile.mkdtemp(prefix="partnergraph-bench-"))
    try:
        check_machine()
        with one_benchmark_at_a_time():
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
