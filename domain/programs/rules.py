"""Pure rules for programs: what a valid program, attribution setting and tier look like."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from domain.errors import ErrorCollector
from domain.money import AmountError, is_currency, to_minor
from domain.programs.models import AttributionModelKind, FunnelRole, RewardKind, TierMetric
from domain.tracking.link_rules import host_problem, normalize_host

MIN_LOOKBACK_DAYS, MAX_LOOKBACK_DAYS = 1, 365
MAX_HOLD_DAYS = 365
MAX_TIER_GRACE_DAYS = 365
MAX_ALLOWED_DOMAINS = 20
DEFAULT_HALF_LIFE_DAYS = 7.0
DEFAULT_POSITION_WEIGHT = Decimal("0.4")


@dataclass(frozen=True)
class AttributionSettings:
    model: AttributionModelKind
    lookback_days: int | None = None
    half_life_days: float | None = None
    first_weight: Decimal | None = None
    last_weight: Decimal | None = None
    role_weights: Mapping[FunnelRole, Decimal] | None = None
    code_wins: bool | None = None  # None: keep the program's choice


@dataclass(frozen=True)
class RewardOffer:
    kind: RewardKind
    value: Decimal


@dataclass(frozen=True)
class TierSpec:
    name: str | None = None
    rank: int | None = None
    qualify_metric: TierMetric | None = None
    qualify_threshold: Decimal | None = None
    qualify_period_days: int | None = None


def ensure_name(errors: ErrorCollector, name: str | None, path: list[str], limit: int) -> None:
    if name is not None and not (1 <= len(name.strip()) <= limit):
        errors.invalid(path, f"must be 1 to {limit} characters")


def ensure_currency(errors: ErrorCollector, currency: str) -> None:
    if not is_currency(currency):
        errors.invalid(["currency"], f"{currency!r} is not an ISO 4217 currency code")


def ensure_http_url(errors: ErrorCollector, url: str | None, path: list[str]) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or len(url) > 2048:
        errors.invalid(path, "must be an http(s) URL with a host")
    elif any(c.isspace() for c in url) or parts.username or parts.password:
        errors.invalid(path, "must not contain spaces or credentials")


def allowed_domains(errors: ErrorCollector, domains: list[str] | None) -> list[str] | None:
    """The hosts referral links may also lead to, lower-case and without repeats (at most
    MAX_ALLOWED_DOMAINS); None when not given."""
    if domains is None:
        return None
    path = ["allowedDomains"]
    if len(domains) > MAX_ALLOWED_DOMAINS:
        errors.invalid(path, f"at most {MAX_ALLOWED_DOMAINS} domains")
        return None
    hosts: list[str] = []
    for index, domain in enumerate(domains):
        host = normalize_host(domain)
        problem = host_problem(host)
        if problem:
            errors.invalid([*path, str(index)], problem)
        elif host not in hosts:
            hosts.append(host)
    return hosts


def ensure_hold_days(errors: ErrorCollector, hold_days: int | None) -> None:
    if hold_days is not None and not 0 <= hold_days <= MAX_HOLD_DAYS:
        errors.invalid(["holdDays"], f"must be 0 to {MAX_HOLD_DAYS} days")


def ensure_tier_grace_days(errors: ErrorCollector, grace_days: int | None) -> None:
    """How long an enrollment may stay below its tier before a periodic evaluation demotes it."""
    if grace_days is not None and not 0 <= grace_days <= MAX_TIER_GRACE_DAYS:
        errors.invalid(["tierGraceDays"], f"must be 0 to {MAX_TIER_GRACE_DAYS} days")


WEIGHT_PLACES = 4  # as stored (DecimalField(6, 4)); the engine's integers stay small


def _ensure_weight(errors: ErrorCollector, value: Decimal | None, path: list[str]) -> None:
    if value is None:
        return
    if not (value.is_finite() and 0 <= value <= 1):
        errors.invalid(path, "weights must be between 0 and 1")
    elif int(value.normalize().as_tuple().exponent) < -WEIGHT_PLACES:
        errors.invalid(path, f"weights have at most {WEIGHT_PLACES} decimal places")


def ensure_attribution(errors: ErrorCollector, settings: AttributionSettings) -> None:
    """Weights in [0, 1] summing to at most 1, half-life > 0, lookback 1 to 365 days."""
    base = ["attribution"]
    lookback = settings.lookback_days
    if lookback is not None and not MIN_LOOKBACK_DAYS <= lookback <= MAX_LOOKBACK_DAYS:
        errors.invalid([*base, "lookbackDays"], "must be 1 to 365 days")
    half_life = settings.half_life_days
    if half_life is not None and not (half_life > 0 and half_life < float("inf")):
        errors.invalid([*base, "halfLifeDays"], "must be more than 0 days")
    _ensure_weight(errors, settings.first_weight, [*base, "firstWeight"])
    _ensure_weight(errors, settings.last_weight, [*base, "lastWeight"])
    first = settings.first_weight if settings.first_weight is not None else DEFAULT_POSITION_WEIGHT
    last = settings.last_weight if settings.last_weight is not None else DEFAULT_POSITION_WEIGHT
    if settings.model is AttributionModelKind.POSITION_BASED and first + last > 1:
        errors.invalid([*base, "lastWeight"], "firstWeight + lastWeight must be at most 1")
    if settings.role_weights is not None:
        for role, weight in settings.role_weights.items():
            _ensure_weight(errors, weight, [*base, "roleWeights", str(role)])
        if sum(settings.role_weights.values(), Decimal(0)) > 1:
            errors.invalid([*base, "roleWeights"], "role weights must sum to at most 1")
    if settings.model is AttributionModelKind.ROLE_WEIGHTED and not settings.role_weights:
        errors.invalid([*base, "roleWeights"], "ROLE_WEIGHTED needs role weights")


def ensure_reward(errors: ErrorCollector, offer: RewardOffer | None, currency: str) -> None:
    if offer is None:
        return
    path = ["refereeReward", "value"]
    if not offer.value.is_finite() or offer.value <= 0:
        errors.invalid(path, "must be more than 0")
    elif offer.kind is RewardKind.PERCENT_DISCOUNT and offer.value > 100:
        errors.invalid(path, "a percent discount is at most 100")
    elif offer.kind is RewardKind.FLAT_CREDIT and is_currency(currency):
        try:
            to_minor(offer.value, currency)
        except AmountError as exc:
            errors.invalid(path, str(exc))


def ensure_tier(errors: ErrorCollector, spec: TierSpec) -> None:
    ensure_name(errors, spec.name, ["name"], 100)
    if spec.rank is not None and not 0 <= spec.rank <= 1000:
        errors.invalid(["rank"], "must be 0 to 1000")
    if spec.qualify_threshold is not None and not (
        spec.qualify_threshold.is_finite() and spec.qualify_threshold >= 0
    ):
        errors.invalid(["qualifyThreshold"], "must be 0 or more")
    if spec.qualify_period_days is not None and not 1 <= spec.qualify_period_days <= 3650:
        errors.invalid(["qualifyPeriodDays"], "must be 1 to 3650 days")
    if (spec.qualify_metric is None) != (spec.qualify_threshold is None):
        errors.invalid(["qualifyThreshold"], "give qualifyMetric and qualifyThreshold together")
