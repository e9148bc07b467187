"""Use cases of identity: users, login sessions, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.audit import services as audit
from domain.clock import utcnow
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.identity import rules
from domain.identity.errors import InvalidCredentials, TooManyAttempts
from domain.identity.models import ApiToken, LoginFailure, RefreshToken, User, UserKind
from domain.identity.passwords import hash_password, needs_rehash, verify_password
from domain.pagination import Page, PageRequest, by_ids, paginate
from domain.partners.models import Partner, PartnerStatus

LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class LoginPolicy:
    window: timedelta
    max_per_account: int
    max_per_ip: int
    refresh_ttl: timedelta


@dataclass(frozen=True)
class Session:
    """A logged-in user and the refresh token (shown once) that continues the session."""

    user: User
    refresh_token: str
    family: str


def ensure_password(errors: ErrorCollector, field: list[str], password: str) -> None:
    problem = rules.password_problem(password)
    if problem:
        errors.invalid(field, f"password too weak: {problem}")


async def create_user(
    email: str, password: str, kind: UserKind, partner: Partner | None = None
) -> User:
    """A user who can log in; e-mails are unique case-insensitively."""
    errors = ErrorCollector()
    address = rules.normalize_email(email)
    if not rules.is_email(address):
        errors.invalid(["email"], "not an e-mail address")
    ensure_password(errors, ["password"], password)
    errors.raise_if_any()
    if await User.filter(email=address).exists():
        raise DomainError(ErrorCode.CONFLICT, ["email"], "a user with this e-mail exists")
    try:
        return await User.create(
            email=address, password_hash=await hash_password(password), kind=kind, partner=partner
        )
    except IntegrityError:
        raise DomainError(ErrorCode.CONFLICT, ["email"], "a user with this e-mail exists") from None


async def create_admin(email: str, password: str) -> User:
    return await create_user(email, password, UserKind.ADMIN)


async def add_partner_user(actor: Actor, partner_id: int, email: str, password: str) -> Partner:
    """Another user for a partner organization; answers the organization."""
    async with in_transaction():
        partner = await Partner.get_or_none(id=partner_id)
        if partner is None:
            raise not_found(["partnerId"], "partner")
        user = await create_user(email, password, UserKind.PARTNER, partner)
        await audit.record(actor, "createPartnerUser", partner, after={"userEmail": user.email})
    return partner


def _failure_keys(email: str, ip: str) -> tuple[str, str]:
    ip_digest = hashlib.sha256(ip.encode()).hexdigest()[:32]
    return f"account:{rules.normalize_email(email)}"[:128], f"ip:{ip_digest}"


async def _ensure_not_throttled(policy: LoginPolicy, keys: tuple[str, str], now: datetime) -> None:
    since = now - policy.window
    for key, limit in zip(keys, (policy.max_per_account, policy.max_per_ip), strict=True):
        failures = await LoginFailure.filter(key=key, at__gt=since).order_by("at").limit(limit)
        if len(failures) >= limit:
            retry = failures[0].at + policy.window - now
            raise TooManyAttempts(max(1, int(retry.total_seconds()) + 1))


async def login(email: str, password: str, ip: str, policy: LoginPolicy) -> Session:
    """Check a password and open a session; throttled per account and per IP.

    An unknown e-mail and a wrong password fail the same way, in the same time.
    """
    now = utcnow()
    keys = _failure_keys(email, ip)
    await _ensure_not_throttled(policy, keys, now)
    user = await User.get_or_none(email=rules.normalize_email(email), is_active=True)
    partner_ok = True
    if user is not None and user.partner_id is not None:
        partner_ok = await partner_is_active(user.partner_id)
    if not await verify_password(user.password_hash if user else None, password) or not partner_ok:
        await LoginFailure.bulk_create([LoginFailure(key=k, at=now) for k in keys])
        await LoginFailure.filter(at__lt=now - policy.window).delete()
        raise InvalidCredentials
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        await user.save(update_fields=["password_hash"])
    await LoginFailure.filter(key=keys[0]).delete()
    return await _issue(user, secrets.token_hex(16), policy.refresh_ttl, now)


async def _issue(user: User, family: str, ttl: timedelta, now: datetime) -> Session:
    secret = rules.new_refresh_secret()
    await RefreshToken.create(
        user=user, token_hash=rules.hash_secret(secret), family=family, expires_at=now + ttl
    )
    return Session(user=user, refresh_token=secret, family=family)


async def refresh(secret: str, policy: LoginPolicy) -> Session:
    """Rotate a refresh token. Reusing a used one revokes its whole family: it was stolen."""
    now = utcnow()
    token = await RefreshToken.get_or_none(token_hash=rules.hash_secret(secret))
    if token is None or token.revoked_at is not None:
        raise InvalidCredentials
    if token.used_at is not None:
        await revoke_family(token.family)
        raise InvalidCredentials
    if token.expires_at <= now:
        raise InvalidCredentials
    async with in_transaction():
        # The conditional update makes two concurrent uses of one token a detected reuse.
        claimed = await RefreshToken.filter(id=token.id, used_at=None).update(used_at=now)
        user = await User.get_or_none(id=token.user_id, is_active=True) if claimed else None
        if user is not None and user.partner_id is not None:
            user = user if await partner_is_active(user.partner_id) else None
        if user is not None:
            return await _issue(user, token.family, policy.refresh_ttl, now)
    if not claimed:
        await revoke_family(token.family)
    raise InvalidCredentials


async def revoke_family(family: str) -> None:
    await RefreshToken.filter(family=family, revoked_at=None).update(revoked_at=utcnow())


async def logout(secret: str) -> str | None:
    """End the session of this refresh token (its whole family); answers the session id.

    Unknown tokens are ignored, so logout can be repeated safely.
    """
    token = await RefreshToken.get_or_none(token_hash=rules.hash_secret(secret))
    if token is None:
        return None
    await revoke_family(token.family)
    return token.family


async def partner_is_active(partner_id: int) -> bool:
    """A suspended partner's users and tokens are refused."""
    return await Partner.filter(id=partner_id, status=PartnerStatus.ACTIVE).exists()


async def session_is_live(family: str, partner_id: int | None = None) -> bool:
    """False once the session was logged out or revoked for reuse, or its partner suspended."""
    if await RefreshToken.filter(family=family, revoked_at__isnull=False).exists():
        return False
    return partner_id is None or await partner_is_active(partner_id)


# API tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once, never stored


async def create_api_token(
    actor: Actor, name: str, scopes: list[str], expires_at: datetime | None
) -> CreatedToken:
    """A token for an app. Made by a partner, it acts for that partner with read rights only."""
    errors = ErrorCollector()
    if not name.strip() or len(name) > 100:
        errors.invalid(["name"], "give the token a name of 1 to 100 characters")
    if not scopes:
        errors.invalid(["scopes"], "give the token at least one scope")
    unknown = rules.unknown_scopes(scopes)
    if unknown:
        errors.invalid(["scopes"], f"unknown scopes: {', '.join(unknown)}")
    if actor.partner_id is not None:
        beyond = sorted(set(scopes) - rules.PARTNER_TOKEN_SCOPES - set(unknown))
        if beyond:
            errors.add(
                ErrorCode.FORBIDDEN,
                ["scopes"],
                f"a partner's token cannot have {', '.join(beyond)}",
            )
    if expires_at is not None and expires_at <= utcnow():
        errors.invalid(["expiresAt"], "must be in the future")
    errors.raise_if_any()
    new = rules.new_api_token()
    async with in_transaction():
        token = await ApiToken.create(
            name=name.strip(),
            token_hash=new.token_hash,
            prefix=new.prefix,
            last4=new.last4,
            scopes=sorted(set(scopes)),
            partner_id=actor.partner_id,
            created_by_id=actor.user_id,
            expires_at=expires_at,
        )
        await audit.record(actor, "createApiToken", token, after=_token_snapshot(token))
    return CreatedToken(token=token, secret=new.secret)


def _token_snapshot(token: ApiToken) -> dict[str, object]:
    return {
        "name": token.name,
        "scopes": token.scopes,
        "prefix": token.prefix,
        "partnerId": token.partner_id,
        "expiresAt": token.expires_at.isoformat() if token.expires_at else None,
        "revokedAt": token.revoked_at.isoformat() if token.revoked_at else None,
    }


async def revoke_api_token(actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token at once. A partner may revoke only its own partner's tokens."""
    async with in_transaction():
        token = await ApiToken.filter(id=token_id).select_for_update().first()
        if token is None or (actor.partner_id is not None and token.partner_id != actor.partner_id):
            raise not_found(["id"], "API token")
        if token.revoked_at is None:
            before = _token_snapshot(token)
            token.revoked_at = utcnow()
            await token.save(update_fields=["revoked_at"])
            await audit.record(actor, "revokeApiToken", token, before, _token_snapshot(token))
    return token


async def authenticate_api_token(secret: str) -> ApiToken | None:
    """The live token for this secret, or None. Marks it used at most once a minute."""
    if not rules.looks_like_api_token(secret):
        return None
    token = await ApiToken.get_or_none(token_hash=rules.hash_secret(secret), revoked_at=None)
    now = utcnow()
    if token is None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if token.partner_id is not None and not await partner_is_active(token.partner_id):
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        await ApiToken.filter(id=token.id).update(last_used_at=now)
    return token


async def list_api_tokens(partner_id: int | None, page: PageRequest) -> Page[ApiToken]:
    """Tokens of one partner, or (partner_id None) the tokens admins made."""
    return await paginate(ApiToken.filter(partner_id=partner_id), page)


async def api_tokens_by_ids(ids: list[int]) -> list[ApiToken | None]:
    return await by_ids(ApiToken, ids)


async def users_by_ids(ids: list[int]) -> list[User | None]:
    return await by_ids(User, ids)
