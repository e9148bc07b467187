"""Use cases of programs and tiers: create, change, list, with the audit log."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.audit import services as audit
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.pagination import Page, PageRequest, by_ids, paginate
from domain.programs import rules
from domain.programs.models import LeaderboardVisibility, Program, ProgramStatus, Tier
from domain.programs.rules import AttributionSettings, RewardOffer, TierSpec


@dataclass(frozen=True)
class ProgramSpec:
    name: str | None = None
    currency: str | None = None
    destination_url: str | None = None
    attribution: AttributionSettings | None = None
    hold_days: int | None = None
    status: ProgramStatus | None = None
    referee_reward: RewardOffer | None = None
    clear_referee_reward: bool = False
    allowed_domains: list[str] | None = None  # hosts links may lead to besides the program's
    tier_grace_days: int | None = None
    leaderboard_visibility: LeaderboardVisibility | None = None


def _validate(spec: ProgramSpec, currency: str) -> None:
    errors = ErrorCollector()
    rules.ensure_name(errors, spec.name, ["name"], 200)
    if spec.currency is not None:
        rules.ensure_currency(errors, spec.currency)
    rules.ensure_http_url(errors, spec.destination_url, ["destinationUrl"])
    if spec.attribution is not None:
        rules.ensure_attribution(errors, spec.attribution)
    rules.ensure_hold_days(errors, spec.hold_days)
    rules.ensure_tier_grace_days(errors, spec.tier_grace_days)
    rules.ensure_reward(errors, spec.referee_reward, currency)
    rules.allowed_domains(errors, spec.allowed_domains)
    errors.raise_if_any()


def _apply(program: Program, spec: ProgramSpec) -> None:
    if spec.name is not None:
        program.name = spec.name.strip()
    if spec.destination_url is not None:
        program.destination_url = spec.destination_url
    if spec.hold_days is not None:
        program.hold_days = spec.hold_days
    if spec.tier_grace_days is not None:
        program.tier_grace_days = spec.tier_grace_days
    if spec.leaderboard_visibility is not None:
        program.leaderboard_visibility = spec.leaderboard_visibility
    if spec.status is not None:
        program.status = spec.status
    if spec.attribution is not None:
        a = spec.attribution
        program.attribution_model = a.model
        program.lookback_days = a.lookback_days or program.lookback_days or 30
        program.half_life_days = a.half_life_days
        program.first_weight = a.first_weight
        program.last_weight = a.last_weight
        weights = a.role_weights
        stored = {str(role): str(w) for role, w in weights.items()} if weights else None
        program.role_weights = stored  # type: ignore[assignment]  # a nullable JSON column
        if a.code_wins is not None:
            program.code_wins = a.code_wins
    if spec.referee_reward is not None:
        program.referee_reward_kind = spec.referee_reward.kind
        program.referee_reward_value = spec.referee_reward.value
    elif spec.clear_referee_reward:
        program.referee_reward_kind = None  # type: ignore[assignment]
        program.referee_reward_value = None
    if spec.allowed_domains is not None:
        hosts = rules.allowed_domains(ErrorCollector(), spec.allowed_domains)  # validated
        program.allowed_domains = hosts  # type: ignore[assignment]  # a nullable JSON column


def _snapshot(program: Program) -> dict[str, Any]:
    return {
        **program.snapshot(),
        "allowedDomains": program.allowed_domains or [],
        "tierGraceDays": program.tier_grace_days,
        "leaderboardVisibility": str(program.leaderboard_visibility),
    }


async def create_program(actor: Actor, spec: ProgramSpec) -> Program:
    errors = ErrorCollector()
    if spec.name is None:
        errors.invalid(["name"], "required")
    if spec.currency is None:
        errors.invalid(["currency"], "required")
    if spec.destination_url is None:
        errors.invalid(["destinationUrl"], "required")
    errors.raise_if_any()
    assert spec.currency is not None
    spec = replace(spec, currency=spec.currency.strip().upper())
    assert spec.currency is not None
    _validate(spec, spec.currency)
    program = Program(currency=spec.currency, status=ProgramStatus.ACTIVE)
    _apply(program, spec)
    async with in_transaction():
        await program.save()
        await audit.record(actor, "createProgram", program, after=_snapshot(program))
    return program


async def update_program(actor: Actor, program_id: int, spec: ProgramSpec) -> Program:
    """Change a program's settings; the currency is fixed once money has been recorded."""
    if spec.currency is not None:
        raise DomainError(ErrorCode.INVALID, ["currency"], "a program's currency cannot change")
    async with in_transaction():
        program = await Program.filter(id=program_id).select_for_update().first()
        if program is None:
            raise not_found(["id"], "program")
        _validate(spec, program.currency)
        before = _snapshot(program)
        _apply(program, spec)
        await program.save()
        await audit.record(actor, "updateProgram", program, before, _snapshot(program))
    return program


def _visible_programs(partner_id: int | None) -> Q:
    return Q() if partner_id is None else Q(enrollments__partner_id=partner_id)


async def list_programs(
    partner_id: int | None, page: PageRequest, search: str | None = None
) -> Page[Program]:
    """Programs, or (with a partner) only the programs that partner is enrolled in."""
    queryset = Program.filter(_visible_programs(partner_id))
    if search:
        queryset = queryset.filter(name__icontains=search.strip())
    return await paginate(queryset.distinct(), page)


async def programs_by_ids(ids: list[int], partner_id: int | None = None) -> list[Program | None]:
    """Programs by id; with a partner, only those it is enrolled in (others are None)."""
    if partner_id is None:
        return await by_ids(Program, ids)
    return await by_ids(Program, ids, _ENROLLED.format(column='"programs"."id"'), [partner_id])


# A partner sees the programs (and their tiers) it is enrolled in.
_ENROLLED = (
    'EXISTS (SELECT 1 FROM "enrollments" AS "e" WHERE "e"."program_id" = {column} '
    'AND "e"."partner_id" = {{}})'
)


# Tiers --------------------------------------------------------------------------------------


async def create_tier(actor: Actor, program_id: int, spec: TierSpec) -> Tier:
    errors = ErrorCollector()
    if spec.name is None:
        errors.invalid(["name"], "required")
    if spec.rank is None:
        errors.invalid(["rank"], "required")
    rules.ensure_tier(errors, spec)
    errors.raise_if_any()
    async with in_transaction():
        program = await Program.get_or_none(id=program_id)
        if program is None:
            raise not_found(["programId"], "program")
        await _ensure_tier_unique(program_id, spec, None)
        tier = Tier(program=program)
        _apply_tier(tier, spec)
        try:
            await tier.save()
        except IntegrityError:
            raise DomainError(ErrorCode.CONFLICT, ["rank"], "tier name or rank taken") from None
        await audit.record(actor, "createTier", tier, after=tier.snapshot())
    return tier


async def update_tier(actor: Actor, tier_id: int, spec: TierSpec) -> Tier:
    async with in_transaction():
        tier = await Tier.filter(id=tier_id).select_for_update().first()
        if tier is None:
            raise not_found(["id"], "tier")
        before = tier.snapshot()
        merged = TierSpec(
            name=spec.name,
            rank=spec.rank,
            qualify_metric=spec.qualify_metric or tier.qualify_metric,
            qualify_threshold=spec.qualify_threshold
            if spec.qualify_threshold is not None
            else tier.qualify_threshold,
            qualify_period_days=spec.qualify_period_days,
        )
        errors = ErrorCollector()
        rules.ensure_tier(errors, merged)
        errors.raise_if_any()
        await _ensure_tier_unique(tier.program_id, spec, tier.id)
        _apply_tier(tier, merged)
        await tier.save()
        await audit.record(actor, "updateTier", tier, before, tier.snapshot())
    return tier


async def _ensure_tier_unique(program_id: int, spec: TierSpec, tier_id: int | None) -> None:
    others = Tier.filter(program_id=program_id).exclude(id=tier_id or 0)
    if spec.rank is not None and await others.filter(rank=spec.rank).exists():
        raise DomainError(ErrorCode.CONFLICT, ["rank"], f"rank {spec.rank} is taken")
    if spec.name is not None and await others.filter(name=spec.name.strip()).exists():
        raise DomainError(ErrorCode.CONFLICT, ["name"], f"a tier named {spec.name!r} exists")


def _apply_tier(tier: Tier, spec: TierSpec) -> None:
    if spec.name is not None:
        tier.name = spec.name.strip()
    if spec.rank is not None:
        tier.rank = spec.rank
    tier.qualify_metric = spec.qualify_metric  # type: ignore[assignment]
    tier.qualify_threshold = spec.qualify_threshold
    if spec.qualify_period_days is not None:
        tier.qualify_period_days = spec.qualify_period_days


async def tiers_by_programs(program_ids: list[int]) -> list[list[Tier]]:
    """Each program's tiers by rank, in the order of `program_ids`."""
    rows = await Tier.filter(program_id__in=set(program_ids)).order_by("rank", "id")
    grouped: dict[int, list[Tier]] = {i: [] for i in program_ids}
    for tier in rows:
        grouped[tier.program_id].append(tier)
    return [grouped[i] for i in program_ids]


async def tiers_by_ids(ids: list[int], partner_id: int | None = None) -> list[Tier | None]:
    if partner_id is None:
        return await by_ids(Tier, ids)
    return await by_ids(Tier, ids, _ENROLLED.format(column='"tiers"."program_id"'), [partner_id])
