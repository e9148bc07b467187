"""The click path's use case: resolve a code, decide whether the click counts, store it with
group commit. No HTTP here: the portal route turns a request into `ClickRequest` and the
outcome into a redirect.

Group commit: one writer task per process (per event loop) takes the batches of pending clicks
in order and inserts each in one transaction (one `executemany`); every request awaits the
commit future of its batch, so a redirect is only ever sent for a stored click, yet a commit
carries all the clicks that arrived while the previous one ran (up to `max_batch`).
"""

from __future__ import annotations

import asyncio
import os
import time
from base64 import urlsafe_b64encode
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import aiosqlite
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.sqlite.client import SqliteClient
from tortoise.transactions import in_transaction

from domain.clock import epoch_us, utcnow
from domain.gamification import rewards
from domain.gamification.badges import ClickBadges
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs.models import ProgramStatus
from domain.tracking import click_rules as rules
from domain.tracking.models import ReferralLink, TouchpointKind

CACHE_SECONDS = 5.0  # how long a resolved (or unknown) code is trusted: a disabled link stops
CACHE_SIZE = 10_000  # redirecting within this time on every worker
REPEAT_WINDOW_SECONDS = 30.0  # one visitor's clicks on one link within this count once
RECENT_SIZE = 100_000
MAX_BATCH = 500
SQLITE_CACHE_KIB = 65_536  # the page cache of the connection the clicks are written on
GATHER_TURNS = 4  # event loop turns a batch may wait for more clicks

Clock = Callable[[], float]
Rows = list[tuple[object, ...]]
_MARK = "PGCLICKIDMARK"  # stands for the click id in a cached destination URL
_CLICK = TouchpointKind.CLICK.value


class ClickNotStored(Exception):
    """The batch holding this click failed to commit: the request must not redirect."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a code leads: a link (link_id) or an enrollment's referral code (link_id None).
    What every click on it needs is computed once, when the code is resolved: the repeat
    window's key and the destination URL around the click id."""

    program_id: int
    enrollment_id: int
    link_id: int | None
    destination: str
    utm: rules.Utm
    lookback_seconds: int
    # links and bare referral codes are distinct targets for the repeat window
    key: tuple[int, int] = field(init=False, compare=False)
    # the destination (no UTM on the click) is head + click id + tail: the click id is URL-safe
    head: str = field(init=False, compare=False)
    tail: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        url = rules.destination_url(self.destination, _MARK, self.utm, {})
        head, _, tail = url.rpartition(_MARK)
        object.__setattr__(self, "key", (self.link_id or 0, self.enrollment_id))
        object.__setattr__(self, "head", head)
        object.__setattr__(self, "tail", tail)


@dataclass(frozen=True, slots=True)
class ClickRequest:
    code: str
    query: list[tuple[str, str]]
    visitor_id: str | None  # the pg_vid cookie as sent (validated here)
    user_agent: str
    referrer: str | None
    client_ip: str | None


@dataclass(frozen=True, slots=True)
class ClickOutcome:
    location: str
    visitor_id: str
    cookie_max_age: int
    recorded: bool  # False: a bot or a repeat


def new_id() -> str:
    """A URL-safe id for clicks and visitors: the microseconds since the epoch in 13 hex digits
    (ids sort by creation: the unique index on click ids grows at its end, one page per batch,
    not one random page per click) then 16 random bytes (22 characters: the id is no easier
    to guess). The destination learns when the click was made, which it sees anyway."""
    return f"{time.time_ns() // 1000:013x}" + urlsafe_b64encode(os.urandom(16))[:22].decode()


class CodeResolver:
    """Codes to targets, cached in-process for `ttl` seconds (unknown codes too, so a flood of
    bad codes does not reach the database). A link disabled, or an enrollment or program
    paused, stops redirecting on every worker within `ttl` seconds."""

    def __init__(
        self, ttl: float = CACHE_SECONDS, size: int = CACHE_SIZE, clock: Clock = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._cache: dict[str, tuple[Target | None, float]] = {}

    def clear(self) -> None:
        self._cache.clear()

    async def resolve(self, code: str) -> Target | None:
        key = code.lower()
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        target = await _load_target(key) if 0 < len(key) <= 64 else None
        if len(self._cache) >= self.size:
            self._cache.clear()  # simple bound: a refill costs one query per live code
        self._cache[key] = (target, now + self.ttl)
        return target


async def _load_target(key: str) -> Target | None:
    """An active link by its code, else an active enrollment by its referral code."""
    link = (
        await ReferralLink.filter(
            code_key=key,
            disabled=False,
            enrollment__status=EnrollmentStatus.ACTIVE,
            program__status=ProgramStatus.ACTIVE,
        )
        .select_related("program")
        .first()
    )
    if link is not None:
        return Target(
            program_id=link.program_id,
            enrollment_id=link.enrollment_id,
            link_id=link.id,
            destination=link.destination_url or link.program.destination_url,
            utm=rules.Utm(link.utm_source, link.utm_medium, link.utm_campaign),
            lookback_seconds=link.program.lookback_days * 86_400,
        )
    enrollment = (
        await Enrollment.filter(
            code_key=key, status=EnrollmentStatus.ACTIVE, program__status=ProgramStatus.ACTIVE
        )
        .select_related("program")
        .first()
    )
    if enrollment is None:
        return None
    return Target(
        program_id=enrollment.program_id,
        enrollment_id=enrollment.id,
        link_id=None,
        destination=enrollment.program.destination_url,
        utm=rules.Utm(),
        lookback_seconds=enrollment.program.lookback_days * 86_400,
    )


class RecentClicks:
    """Clicks of the last `window` seconds by (target, visitor), so a repeat reuses the first
    click's id. In-process and bounded (oldest forgotten first): with several workers a repeat
    that lands on another worker counts twice, which the window only makes rarer anyway."""

    def __init__(
        self,
        window: float = REPEAT_WINDOW_SECONDS,
        size: int = RECENT_SIZE,
        clock: Clock = time.monotonic,
    ) -> None:
        self.window = window
        self.size = size
        self.clock = clock
        self._seen: OrderedDict[tuple[int, int, str], tuple[str, float]] = OrderedDict()

    def clear(self) -> None:
        self._seen.clear()

    def earlier(self, target: Target, visitor_id: str) -> str | None:
        """The click id of this visitor's click on this target within the window, if any."""
        hit = self._seen.get((*target.key, visitor_id))
        if hit is None or self.clock() - hit[1] >= self.window:
            return None
        return hit[0]

    def remember(self, target: Target, visitor_id: str, click_id: str) -> None:
        key = (*target.key, visitor_id)
        self._seen[key] = (click_id, self.clock())
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


# The visitor's customer is looked up inside the insert (one indexed subquery per row): no
# extra round trip per click, and a visitor stitched a moment ago is seen by the next batch.
_COLUMNS = (
    "program_id, enrollment_id, kind, occurred_at, occurred_us, visitor_id, click_id, excluded, "
    "link_id, utm_source, utm_medium, utm_campaign, referrer, ip_hash, ua_class, created_at, "
    "customer_id"
)
_SUBQUERY = "(SELECT customer_id FROM visitor_customers WHERE program_id = {} AND visitor_id = {})"


def _insert_sql(dialect: str) -> str:
    count = 18
    marks = [f"${i}" for i in range(1, count + 1)] if dialect == "postgres" else ["?"] * count
    customer = _SUBQUERY.format(marks[16], marks[17])
    return f"INSERT INTO touchpoints ({_COLUMNS}) VALUES ({', '.join(marks[:16])}, {customer})"


class _Batch:
    """Rows to insert in one transaction, and the future of each row's request."""

    __slots__ = ("rows", "waiters")

    def __init__(self) -> None:
        self.rows: list[tuple[object, ...]] = []
        self.waiters: list[asyncio.Future[None]] = []


def _sqlite_insert(connection: aiosqlite.Connection, sql: str, rows: Rows, tune: bool) -> None:
    """BEGIN, insert, COMMIT in the driver's thread: one hop there and back per batch (through
    aiosqlite's own calls it is three). (One multi-row INSERT per batch measured no faster.)"""
    conn = connection._conn
    if tune:
        # The touchpoints' index on visitor ids (random keys) touches pages all over the file:
        # with SQLite's default 2 MB cache a batch re-reads some from the OS once the table is
        # large (about 7 us less per row measured with 64 MB). Per connection, set once.
        conn.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    conn.execute("BEGIN")
    try:
        conn.executemany(sql, rows)
    except BaseException:
        conn.rollback()
        raise
    conn.execute("COMMIT")


_tuned: list[aiosqlite.Connection | None] = [None]  # the connection the cache size is set on


async def _insert(client: BaseDBAsyncClient, sql: str, rows: Rows) -> None:
    """The batch in one transaction, under the client's own lock (nothing else of Tortoise's
    runs on that connection meanwhile)."""
    if isinstance(client, SqliteClient) and hasattr(aiosqlite.Connection, "_execute"):
        # aiosqlite's private one-hop call (0.17 to 0.22 at least); without it, the plain path
        async with client.acquire_connection() as connection:
            tune = _tuned[0] is not connection
            await connection._execute(_sqlite_insert, connection, sql, rows, tune)  # type: ignore[no-untyped-call]
            _tuned[0] = connection
    else:  # asyncpg: Tortoise's execute_many is already one transaction and one executemany
        await client.execute_many(sql, rows)  # type: ignore[arg-type]


async def _insert_and_award(sql: str, rows: Rows, clicked: dict[int, set[int]]) -> None:
    """The batch and the CLICKS badges it reaches, in one transaction (the slower path, taken
    only for batches with clicks of programs that have CLICKS badges)."""
    async with in_transaction() as connection:
        await connection.execute_many(sql, rows)  # type: ignore[arg-type]
        await rewards.clicks_stored(clicked)


class ClickWriter:
    """Group commit of click rows: `store` appends a row to the open batch and waits for that
    batch's commit. A failed commit fails every click of the batch (`ClickNotStored`).
    `close` flushes every queued batch; a later `store` starts the writer again."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        self.commits = 0  # batches committed (tests and the benchmark read it)
        self._batches: list[_Batch] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sql: str | None = None
        self._closing = False
        self.click_badges = ClickBadges()

    def submit(self, row: tuple[object, ...]) -> asyncio.Future[None]:
        """Queue a row; answers a future done when its batch committed. One future per row (not
        one per batch behind `shield`): a cancelled request cancels only its own."""
        loop = asyncio.get_running_loop()
        batches = self._batches
        if not batches or len(batches[-1].rows) >= self.max_batch:
            batches.append(_Batch())
        batch = batches[-1]
        batch.rows.append(row)
        done: asyncio.Future[None] = loop.create_future()
        batch.waiters.append(done)
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run())
        assert self._wakeup is not None
        self._wakeup.set()
        return done

    async def store(self, row: tuple[object, ...]) -> None:
        """Raises ClickNotStored when the row's batch failed to commit."""
        await self.submit(row)

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._batches:
                await self._gather()
                await self._commit(self._batches.pop(0))
            if self._closing:  # close() waits for this: everything queued is committed
                return

    async def _gather(self) -> None:
        """Let the requests already received reach the batch before it commits: yield to the
        event loop while the batch still grows (a few loop turns, no timer). Bigger batches
        mean fewer commits, and each commit's fsync costs more than a click."""
        batch = self._batches[0]
        for _ in range(GATHER_TURNS):
            size = len(batch.rows)
            if size >= self.max_batch:
                return
            await asyncio.sleep(0)
            if len(batch.rows) == size:
                return

    async def _commit(self, batch: _Batch) -> None:
        try:
            client = connections.get("default")
            if self._sql is None:
                self._sql = _insert_sql(client.capabilities.dialect)
            clicked = await self._badged(batch.rows)
            if clicked:
                await _insert_and_award(self._sql, batch.rows, clicked)
            else:
                await _insert(client, self._sql, batch.rows)
        except Exception as exc:  # noqa: BLE001 - every waiting request answers "not stored"
            for done in batch.waiters:
                if not done.done():
                    done.set_exception(ClickNotStored(str(exc)))
                    done.exception()  # retrieved: no "never retrieved" noise if none waits
            return
        self.commits += 1
        for done in batch.waiters:
            if not done.done():  # a cancelled request's future is done already
                done.set_result(None)

    async def _badged(self, rows: Rows) -> dict[int, set[int]]:
        """The enrollments clicked in the batch, by program, of programs with CLICKS badges."""
        having = await self.click_badges.programs_with({cast(int, row[0]) for row in rows})
        clicked: dict[int, set[int]] = {}
        for row in rows if having else ():
            program = cast(int, row[0])
            if program in having:
                clicked.setdefault(program, set()).add(cast(int, row[1]))
        return clicked

    async def close(self) -> None:
        """Commit everything queued, then stop the writer (the app's shutdown calls this
        before closing the database)."""
        task = self._task
        if task is None or task.done():
            return
        self._closing = True
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            await task
        finally:
            self._closing = False
            if self._task is task:  # a click may have started a new writer meanwhile
                self._task = None


class ClickService:
    """The click path: resolve, filter bots and repeats, store, answer where to redirect."""

    def __init__(
        self,
        secret: str,
        *,
        repeat_window: float = REPEAT_WINDOW_SECONDS,
        cache_seconds: float = CACHE_SECONDS,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.ip_key = rules.ip_hash_key(secret)
        self.hash_ip = rules.ip_hasher(self.ip_key)
        self.resolver = CodeResolver(ttl=cache_seconds)
        self.recent = RecentClicks(window=repeat_window)
        self.writer = ClickWriter(max_batch)
        # user agent -> (bot, device class): browsers send a handful of distinct strings
        self._agents: dict[str, tuple[bool, str]] = {}

    async def click(self, request: ClickRequest) -> ClickOutcome | None:
        """None for an unknown or inactive code. Raises ClickNotStored when the click should
        have been stored and was not."""
        answer = await self.handle(
            request.code,
            rules.incoming_utm(request.query) if request.query else {},
            request.visitor_id,
            request.user_agent,
            request.referrer,
            request.client_ip,
        )
        if answer is None:
            return None
        location, visitor, target, recorded = answer
        return ClickOutcome(location, visitor, target.lookback_seconds, recorded)

    async def handle(
        self,
        code: str,
        incoming: dict[str, str],
        visitor_id: str | None,
        user_agent: str,
        referrer: str | None,
        client_ip: str | None,
    ) -> tuple[str, str, Target, bool] | None:
        """`click` without the request and outcome objects (the portal's hot path): None for an
        unknown code, else (location, visitor id, target, recorded)."""
        target = await self.resolver.resolve(code)
        if target is None:
            return None
        visitor = visitor_id if rules.is_visitor_id(visitor_id) else new_id()
        assert visitor is not None
        earlier = self.recent.earlier(target, visitor)
        agent = self._agent(user_agent)
        click_id = earlier or new_id()
        recorded = earlier is None and not agent[0]
        if recorded:
            row = self._make_row(target, visitor, click_id, incoming, agent[1], referrer, client_ip)
            await self.writer.store(row)
            self.recent.remember(target, visitor, click_id)
        if incoming:
            location = rules.destination_url(target.destination, click_id, target.utm, incoming)
        else:
            location = target.head + click_id + target.tail
        return location, visitor, target, recorded

    def _agent(self, user_agent: str) -> tuple[bool, str]:
        agent = self._agents.get(user_agent)
        if agent is None:
            if len(self._agents) >= CACHE_SIZE:
                self._agents.clear()
            agent = (rules.is_bot(user_agent), rules.classify_user_agent(user_agent).value)
            self._agents[user_agent] = agent
        return agent

    def _row(
        self,
        target: Target,
        request: ClickRequest,
        visitor: str,
        click_id: str,
        incoming: dict[str, str],
    ) -> tuple[object, ...]:
        ua_class = self._agent(request.user_agent)[1]
        return self._make_row(
            target, visitor, click_id, incoming, ua_class, request.referrer, request.client_ip
        )

    def _make_row(
        self,
        target: Target,
        visitor: str,
        click_id: str,
        incoming: dict[str, str],
        ua_class: str,
        referrer: str | None,
        client_ip: str | None,
    ) -> tuple[object, ...]:
        now = utcnow()
        utm = rules.effective_utm(target.utm, incoming) if incoming else target.utm
        return (
            target.program_id,
            target.enrollment_id,
            _CLICK,
            now,
            epoch_us(now),
            visitor,
            click_id,
            False,
            target.link_id,
            utm.source,
            utm.medium,
            utm.campaign,
            None if referrer is None else rules.clip_referrer(referrer),
            None if client_ip is None else self.hash_ip(client_ip),
            ua_class,
            now,
            target.program_id,
            visitor,
        )

    async def close(self) -> None:
        await self.writer.close()
