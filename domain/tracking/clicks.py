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
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from tortoise import connections

from domain.clock import utcnow
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs.models import ProgramStatus
from domain.tracking import click_rules as rules
from domain.tracking.models import ReferralLink, TouchpointKind, epoch_us

CACHE_SECONDS = 5.0  # how long a resolved (or unknown) code is trusted: a disabled link stops
CACHE_SIZE = 10_000  # redirecting within this time on every worker
REPEAT_WINDOW_SECONDS = 30.0  # one visitor's clicks on one link within this count once
RECENT_SIZE = 100_000
MAX_BATCH = 500

Clock = Callable[[], float]
_MARK = "PGCLICKIDMARK"  # stands for the click id in a cached destination URL


class ClickNotStored(Exception):
    """The batch holding this click failed to commit: the request must not redirect."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a code leads: a link (link_id) or an enrollment's referral code (link_id None)."""

    program_id: int
    enrollment_id: int
    link_id: int | None
    destination: str
    utm: rules.Utm
    lookback_seconds: int

    @property
    def key(self) -> tuple[int, int]:
        # links and bare referral codes are distinct targets for the repeat window
        return (self.link_id or 0, self.enrollment_id)


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
    """A random URL-safe id (16 bytes, 22 characters): click ids and visitor ids."""
    return secrets.token_urlsafe(16)


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


@dataclass
class _Batch:
    rows: list[tuple[object, ...]] = field(default_factory=list)
    done: asyncio.Future[None] | None = None


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

    def submit(self, row: tuple[object, ...]) -> asyncio.Future[None]:
        """Queue a row; answers the future of its batch's commit."""
        loop = asyncio.get_running_loop()
        if not self._batches or len(self._batches[-1].rows) >= self.max_batch:
            self._batches.append(_Batch(done=loop.create_future()))
        batch = self._batches[-1]
        batch.rows.append(row)
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run())
        assert self._wakeup is not None
        self._wakeup.set()
        assert batch.done is not None
        return batch.done

    async def store(self, row: tuple[object, ...]) -> None:
        try:
            await asyncio.shield(self.submit(row))
        except ClickNotStored:
            raise
        except Exception as exc:  # the database's own error: the caller only needs "not stored"
            raise ClickNotStored(str(exc)) from exc

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._batches:
                await self._commit(self._batches.pop(0))
            if self._closing:  # close() waits for this: everything queued is committed
                return

    async def _commit(self, batch: _Batch) -> None:
        assert batch.done is not None
        try:
            conn = connections.get("default")
            if self._sql is None:
                self._sql = _insert_sql(conn.capabilities.dialect)
            await conn.execute_many(self._sql, batch.rows)
        except Exception as exc:  # noqa: BLE001 - every waiting request answers "not stored"
            if not batch.done.done():
                batch.done.set_exception(ClickNotStored(str(exc)))
                batch.done.exception()  # retrieved: no "never retrieved" noise if none waits
            return
        self.commits += 1
        if not batch.done.done():
            batch.done.set_result(None)

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
        self.resolver = CodeResolver(ttl=cache_seconds)
        self.recent = RecentClicks(window=repeat_window)
        self.writer = ClickWriter(max_batch)
        self._templates: dict[Target, tuple[str, str]] = {}

    async def click(self, request: ClickRequest) -> ClickOutcome | None:
        """None for an unknown or inactive code. Raises ClickNotStored when the click should
        have been stored and was not."""
        target = await self.resolver.resolve(request.code)
        if target is None:
            return None
        visitor = request.visitor_id if rules.is_visitor_id(request.visitor_id) else new_id()
        assert visitor is not None
        incoming = rules.incoming_utm(request.query)
        earlier = self.recent.earlier(target, visitor)
        bot = rules.is_bot(request.user_agent)
        click_id = earlier or new_id()
        if earlier is None and not bot:
            await self.writer.store(self._row(target, request, visitor, click_id, incoming))
            self.recent.remember(target, visitor, click_id)
        return ClickOutcome(
            location=self._location(target, click_id, incoming),
            visitor_id=visitor,
            cookie_max_age=target.lookback_seconds,
            recorded=earlier is None and not bot,
        )

    def _location(self, target: Target, click_id: str, incoming: dict[str, str]) -> str:
        if incoming:
            return rules.destination_url(target.destination, click_id, target.utm, incoming)
        # the common case (no UTM on the click): the target's URL is built once, then only
        # the click id changes (URL-safe: it needs no encoding)
        parts = self._templates.get(target)
        if parts is None:
            url = rules.destination_url(target.destination, _MARK, target.utm, {})
            head, _, tail = url.rpartition(_MARK)
            parts = self._templates[target] = (head, tail)
            if len(self._templates) > CACHE_SIZE:
                self._templates.clear()
        return parts[0] + click_id + parts[1]

    def _row(
        self,
        target: Target,
        request: ClickRequest,
        visitor: str,
        click_id: str,
        incoming: dict[str, str],
    ) -> tuple[object, ...]:
        now = utcnow()
        utm = rules.effective_utm(target.utm, incoming)
        ip = request.client_ip
        return (
            target.program_id,
            target.enrollment_id,
            TouchpointKind.CLICK.value,
            now,
            epoch_us(now),
            visitor,
            click_id,
            False,
            target.link_id,
            utm.source,
            utm.medium,
            utm.campaign,
            rules.clip_referrer(request.referrer),
            None if ip is None else rules.hash_ip(self.ip_key, ip),
            rules.classify_user_agent(request.user_agent).value,
            now,
            target.program_id,
            visitor,
        )

    async def close(self) -> None:
        await self.writer.close()
