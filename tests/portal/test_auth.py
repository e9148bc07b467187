"""Credentials end to end: /auth/login, /auth/refresh, /auth/logout, and what /graphql refuses.

Access tokens are minted here with PyJWT and the same key derivation as api/tokens.py, so each
refusal test changes exactly one thing of a token that is otherwise accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning
from starlette.applications import Starlette

from domain.actor import Actor
from domain.audit.models import AuditEntry
from domain.clock import utcnow
from domain.identity import services as identity
from domain.identity.models import ApiToken, LoginFailure, RefreshToken, UserKind
from domain.identity.rules import new_api_token
from domain.partners import services as partners
from domain.partners.models import Partner, PartnerStatus
from domain.settings import Settings, load_settings
from portal.app import create_app
from tests.conftest import TEST_SECRET
from tests.helpers import PASSWORD, Api

VIEWER = "{ viewer { kind email } }"
NEW_SECRET = "a-brand-new-secret-key-after-rotation-0123456789"
CLIENT_IP = ("203.0.113.7", 4321)  # the conftest client's address


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"partnergraph/jwt-access/v1", hashlib.sha256).digest()


def _kid(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


KEY = _key(TEST_SECRET)


def claims(**changes: Any) -> dict[str, Any]:
    """Claims of a valid admin access token; a change to None removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "partnergraph",
        "aud": "partnergraph-api",
        "sub": "1",
        "kind": "ADMIN",
        "email": "admin@example.com",
        "sid": secrets.token_hex(16),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": secrets.token_hex(12),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def mint(
    payload: dict[str, Any] | None = None,
    *,
    key: bytes | str | None = KEY,
    algorithm: str = "HS256",
    **header_changes: Any,
) -> str:
    headers: dict[str, Any] = {"kid": _kid(KEY), "typ": "at+jwt", **header_changes}
    headers = {name: value for name, value in headers.items() if value is not None}
    return jwt.encode(payload or claims(), key, algorithm=algorithm, headers=headers)  # type: ignore[arg-type]


async def graphql(client: httpx.AsyncClient, credential: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"} if credential is not None else {}
    return await client.post("/graphql", json={"query": VIEWER}, headers=headers)


async def assert_refused(client: httpx.AsyncClient, credential: str) -> None:
    response = await graphql(client, credential)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert "data" not in body


async def assert_accepted(client: httpx.AsyncClient, credential: str, kind: str) -> None:
    response = await graphql(client, credential)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["viewer"]["kind"] == kind


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": password})


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def make_admin(email: str = "admin@example.com") -> None:
    await identity.create_user(email, PASSWORD, UserKind.ADMIN)


@pytest.fixture
async def other_ip_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=CLIENT_IP)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# Login ----------------------------------------------------------------------------------------


async def test_login_answers_a_bearer_access_token_a_refresh_token_and_expires_in(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await make_admin("Ana@Example.com")
    response = await login(client, " ANA@example.COM ")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds == 900
    header = jwt.get_unverified_header(body["access_token"])
    assert header == {"alg": "HS256", "typ": "at+jwt", "kid": _kid(KEY)}
    decoded = jwt.decode(
        body["access_token"], KEY, algorithms=["HS256"], audience="partnergraph-api"
    )
    assert decoded["iss"] == "partnergraph"
    assert decoded["kind"] == "ADMIN"
    assert decoded["email"] == "ana@example.com"
    assert decoded["exp"] - decoded["iat"] == 900
    assert not body["refresh_token"].startswith("pgt_")
    stored = await RefreshToken.get(
        token_hash=hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    )
    assert stored.used_at is None
    assert stored.revoked_at is None
    response = await graphql(client, body["access_token"])
    assert response.json()["data"]["viewer"] == {"kind": "ADMIN", "email": "ana@example.com"}


async def test_wrong_password_and_unknown_email_answer_the_same_status_and_body(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    wrong_password = await login(client, "admin@example.com", "not the password at all")
    unknown_email = await login(client, "nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.content == unknown_email.content
    assert wrong_password.json() == {"error": "invalid e-mail or password"}
    assert "www-authenticate" not in wrong_password.headers


async def test_login_is_throttled_after_5_failures_per_account_with_retry_after(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await make_admin()
    await make_admin("other@example.com")
    for _ in range(settings.login_max_failures_per_account):
        assert (await login(client, "admin@example.com", "wrong password!")).status_code == 401
    throttled = await login(client, "ADMIN@example.com")  # the right password, too late
    assert throttled.status_code == 429
    retry_after = int(throttled.headers["retry-after"])
    assert 0 < retry_after <= settings.login_window_seconds
    assert throttled.json() == {"error": "too many failed logins; try again later"}
    # the limit is the account's: another account from the same address still logs in
    assert (await login(client, "other@example.com")).status_code == 200
    assert (await login(client, "admin@example.com")).status_code == 429


async def test_unknown_emails_are_throttled_like_existing_accounts(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    for _ in range(settings.login_max_failures_per_account):
        assert (await login(client, "ghost@example.com")).status_code == 401
    response = await login(client, "ghost@example.com")
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_login_is_throttled_after_20_failures_per_ip_across_accounts(
    client: httpx.AsyncClient, other_ip_client: httpx.AsyncClient, settings: Settings
) -> None:
    await make_admin()
    assert settings.login_max_failures_per_ip == 20
    for i in range(settings.login_max_failures_per_ip):  # each account stays under its limit
        assert (await login(client, f"guess{i}@example.com")).status_code == 401
    assert await LoginFailure.filter(key__startswith="ip:").count() == 20
    throttled = await login(client, "admin@example.com")  # right password, same address
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["retry-after"]) <= settings.login_window_seconds
    assert (await login(client, "guess99@example.com")).status_code == 429
    # another address is not affected
    assert (await login(other_ip_client, "admin@example.com")).status_code == 200


async def test_a_successful_login_clears_the_account_failures(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    for _ in range(2):
        assert (await login(client, "admin@example.com", "wrong password!")).status_code == 401
    assert await LoginFailure.filter(key="account:admin@example.com").count() == 2
    assert (await login(client, "admin@example.com")).status_code == 200
    assert await LoginFailure.filter(key="account:admin@example.com").count() == 0
    assert await LoginFailure.filter(key__startswith="ip:").count() == 2  # the address keeps its


LOGIN_BODIES = [
    pytest.param(b"email=a@example.com&password=x", id="form-encoded"),
    pytest.param(b"{not json", id="broken-json"),
    pytest.param(b"", id="empty"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'"text"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b'{"email": "a@example.com"}', id="no-password"),
    pytest.param(b'{"password": "x"}', id="no-email"),
    pytest.param(b'{"email": 1, "password": "x"}', id="email-number"),
    pytest.param(b'{"email": "", "password": "x"}', id="email-empty"),
    pytest.param(b'{"email": "a@example.com", "password": null}', id="password-null"),
    pytest.param(b'{"email": "a@example.com", "password": ["x"]}', id="password-list"),
    pytest.param(b'{"email": "' + b"a" * 300 + b'@example.com", "password": "x"}', id="email-long"),
]


@pytest.mark.parametrize("body", LOGIN_BODIES)
async def test_malformed_login_bodies_answer_400_and_count_no_failure(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await client.post(
        "/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    assert await LoginFailure.all().count() == 0


@pytest.mark.parametrize("path", ["/auth/refresh", "/auth/logout"])
@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b"{}", b'{"refresh_token": 1}', b'{"refresh_token": ""}'],
    ids=["broken-json", "array", "empty-object", "number", "empty-string"],
)
async def test_malformed_refresh_and_logout_bodies_answer_400(
    client: httpx.AsyncClient, path: str, body: bytes
) -> None:
    response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text


async def test_a_login_that_is_not_json_content_is_refused_415(client: httpx.AsyncClient) -> None:
    await make_admin()
    response = await client.post(
        "/auth/login", data={"email": "admin@example.com", "password": PASSWORD}
    )
    assert response.status_code == 415
    assert await RefreshToken.all().count() == 0


# Refresh and logout ---------------------------------------------------------------------------


async def test_refresh_rotates_and_the_old_refresh_token_is_then_refused(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    first = (await login(client, "admin@example.com")).json()
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    await assert_accepted(client, second["access_token"], "ADMIN")
    replay = await refresh(client, first["refresh_token"])
    assert replay.status_code == 401
    assert replay.json() == {"error": "invalid or expired refresh token"}


async def test_reusing_a_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    first = (await login(client, "admin@example.com")).json()
    second = (await refresh(client, first["refresh_token"])).json()
    third = (await refresh(client, second["refresh_token"])).json()
    assert (await refresh(client, first["refresh_token"])).status_code == 401  # stolen
    assert (await refresh(client, third["refresh_token"])).status_code == 401  # the newest too
    assert await RefreshToken.filter(revoked_at=None).count() == 0
    assert await RefreshToken.all().count() == 3
    await assert_refused(client, third["access_token"])  # the session is over


async def test_two_concurrent_refreshes_with_one_token_give_one_session_then_revoke_it(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    first = (await login(client, "admin@example.com")).json()
    answers = await asyncio.gather(*(refresh(client, first["refresh_token"]) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 401]
    winner = next(a for a in answers if a.status_code == 200).json()
    assert (await refresh(client, winner["refresh_token"])).status_code == 401
    assert await RefreshToken.filter(revoked_at=None).count() == 0


async def test_unknown_refresh_tokens_and_access_tokens_are_refused_by_refresh(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    tokens = (await login(client, "admin@example.com")).json()
    assert (await refresh(client, "made-up")).status_code == 401
    assert (await refresh(client, tokens["access_token"])).status_code == 401
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_an_expired_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    await make_admin()
    tokens = (await login(client, "admin@example.com")).json()
    await RefreshToken.all().update(expires_at=utcnow() - timedelta(seconds=1))
    assert (await refresh(client, tokens["refresh_token"])).status_code == 401


async def test_logout_revokes_the_session_refresh_and_access_tokens(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    tokens = (await login(client, "admin@example.com")).json()
    other = (await login(client, "admin@example.com")).json()  # another session of the user
    await assert_accepted(client, tokens["access_token"], "ADMIN")  # now in the session cache
    response = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert (await refresh(client, tokens["refresh_token"])).status_code == 401
    await assert_refused(client, tokens["access_token"])  # the same app forgot its cache
    # the other session lives on
    await assert_accepted(client, other["access_token"], "ADMIN")
    assert (await refresh(client, other["refresh_token"])).status_code == 200
    # logout is idempotent, and an unknown token changes nothing
    again = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 204
    unknown = await client.post("/auth/logout", json={"refresh_token": "made-up"})
    assert unknown.status_code == 204


async def test_access_tokens_after_a_refresh_belong_to_the_session_logout_ends(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    first = (await login(client, "admin@example.com")).json()
    second = (await refresh(client, first["refresh_token"])).json()
    await assert_accepted(client, first["access_token"], "ADMIN")
    await client.post("/auth/logout", json={"refresh_token": second["refresh_token"]})
    await assert_refused(client, first["access_token"])
    await assert_refused(client, second["access_token"])


# Access tokens refused at /graphql -------------------------------------------------------------


async def test_a_token_minted_here_is_accepted_so_each_refusal_below_is_its_one_change(
    client: httpx.AsyncClient,
) -> None:
    await assert_accepted(client, mint(), "ADMIN")


def _swap_payload(signed: str, other: str) -> str:
    """`signed`'s header and signature around `other`'s claims."""
    header, _, signature = signed.split(".")
    return f"{header}.{other.split('.')[1]}.{signature}"


def _hs512() -> str:
    """The right key, but an algorithm the server does not pin."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return mint(algorithm="HS512")


REFUSED_ACCESS_TOKENS = [
    pytest.param(lambda: mint(key=_key("another-secret-key-0123456789-abcdefghijkl")), id="forged"),
    pytest.param(lambda: mint(key=TEST_SECRET), id="raw-secret-not-derived-key"),
    pytest.param(lambda: mint()[:-4] + "AAAA", id="signature-changed"),
    pytest.param(lambda: _swap_payload(mint(), mint(claims(aud="x"))), id="payload-swapped"),
    pytest.param(
        lambda: mint(claims(exp=int(time.time()) - 60, iat=int(time.time()) - 960)), id="expired"
    ),
    pytest.param(lambda: mint(claims(nbf=int(time.time()) + 120)), id="not-yet-valid"),
    pytest.param(lambda: mint(key=None, algorithm="none"), id="alg-none"),
    pytest.param(lambda: _hs512(), id="alg-hs512"),
    pytest.param(lambda: mint(claims(aud="someone-else")), id="wrong-audience"),
    pytest.param(lambda: mint(claims(iss="https://evil.example")), id="wrong-issuer"),
    pytest.param(lambda: mint(typ=None), id="no-typ"),
    pytest.param(lambda: mint(typ="JWT"), id="typ-jwt"),
    pytest.param(lambda: mint(typ="refresh+jwt"), id="typ-refresh"),
    pytest.param(lambda: mint(kid="0123456789abcdef"), id="unknown-kid"),
    pytest.param(lambda: mint(kid=None), id="no-kid"),
    *(
        pytest.param(lambda claim=claim: mint(claims(**{claim: None})), id=f"no-{claim}")
        for claim in ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "sid", "kind", "email"]
    ),
    pytest.param(lambda: mint(claims(sub="admin")), id="sub-not-an-id"),
    pytest.param(lambda: mint(claims(kind="APP")), id="kind-app"),
    pytest.param(lambda: mint(claims(kind="ANONYMOUS")), id="kind-anonymous"),
    pytest.param(lambda: mint(claims(kind="PARTNER")), id="kind-partner-without-pid"),
    pytest.param(lambda: "not.a.jwt", id="garbage"),
    pytest.param(lambda: "pgt_" + "0" * 49, id="api-token-bad-checksum"),
]


@pytest.mark.parametrize("make", REFUSED_ACCESS_TOKENS)
async def test_bad_access_tokens_are_refused_with_401(client: httpx.AsyncClient, make: Any) -> None:
    await assert_refused(client, make())


@pytest.mark.parametrize(
    "authorization",
    ["Basic YWRtaW46cGFzcw==", "Bearer", "Bearer    ", "Token abc", "bearer"],
)
async def test_malformed_authorization_headers_are_refused_with_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.post(
        "/graphql", json={"query": VIEWER}, headers={"Authorization": authorization}
    )
    assert response.status_code == 401


async def test_a_refresh_token_cannot_be_used_as_an_access_token(
    client: httpx.AsyncClient,
) -> None:
    await make_admin()
    tokens = (await login(client, "admin@example.com")).json()
    await assert_refused(client, tokens["refresh_token"])
    await assert_accepted(client, tokens["access_token"], "ADMIN")


# Key rotation ---------------------------------------------------------------------------------


def _rotated(settings: Settings, previous: list[str]) -> Starlette:
    rotated = load_settings(
        database_url=settings.database_url,
        secret_key=NEW_SECRET,
        previous_secret_keys=",".join(previous),
        development=False,
    )
    return create_app(rotated, manage_database=False)


async def test_tokens_signed_with_a_previous_key_still_verify_after_rotation(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await make_admin()
    old_token = (await login(client, "admin@example.com")).json()["access_token"]
    async with _client(_rotated(settings, [TEST_SECRET])) as rotated:
        await assert_accepted(rotated, old_token, "ADMIN")
        new = (await login(rotated, "admin@example.com")).json()["access_token"]
        assert jwt.get_unverified_header(new)["kid"] == _kid(_key(NEW_SECRET))
        await assert_accepted(rotated, new, "ADMIN")
    await assert_refused(client, new)  # the old deployment does not know the new key


async def test_tokens_of_a_retired_key_are_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    async with _client(_rotated(settings, [])) as rotated:
        await assert_refused(rotated, mint())
        forged = mint(key=_key(NEW_SECRET))  # the new key under the old key's kid
        await assert_refused(rotated, forged)
        await assert_accepted(
            rotated, mint(key=_key(NEW_SECRET), kid=_kid(_key(NEW_SECRET))), "ADMIN"
        )


def test_previous_secret_keys_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTNERGRAPH_SECRET_KEY", NEW_SECRET)
    monkeypatch.setenv("PARTNERGRAPH_PREVIOUS_SECRET_KEYS", f"{TEST_SECRET}, {'o' * 40}")
    loaded = load_settings()
    assert loaded.verification_keys == [NEW_SECRET, TEST_SECRET, "o" * 40]


# API tokens -----------------------------------------------------------------------------------


async def _admin_token(name: str = "ci", scopes: list[str] | None = None) -> str:
    created = await identity.create_api_token(
        Actor(label="admin:admin@example.com"), name, scopes or ["partners:read"], None
    )
    return created.secret


async def test_api_token_secret_is_shown_once_and_stored_only_as_sha256(api: Api) -> None:
    admin = await api.admin_token()
    payload = await api.mutate(
        "createApiToken",
        {"name": "warehouse", "scopes": ["partners:read"]},
        "token apiToken { id name scopes prefix last4 lastUsedAt revokedAt }",
        admin,
    )
    assert payload["userErrors"] == []
    secret = payload["token"]
    assert secret.startswith("pgt_")
    assert len(secret) == 53
    shown = payload["apiToken"]
    assert shown["prefix"] == secret[:10]
    assert shown["last4"] == secret[-4:]
    assert shown["scopes"] == ["partners:read"]
    # stored: a SHA-256 of the secret, never the secret itself
    row = await ApiToken.get()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    values = [str(value) for value in (await ApiToken.all().values())[0].values()]
    assert not any(secret in value or secret[4:-6] in value for value in values)
    audit = [str(e) for e in await AuditEntry.all().values("before", "after")]
    assert not any(secret[4:-6] in text for text in audit)
    # not readable later: no field of ApiToken holds it
    later = await api.client.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { node(id: $id) { ... on ApiToken { id name scopes prefix "
            "last4 createdAt expiresAt lastUsedAt revokedAt partner { id } } } "
            "viewer { apiTokens { totalCount edges { node { id prefix last4 } } } } "
            '__type(name: "ApiToken") { fields { name } } }',
            "variables": {"id": shown["id"]},
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert later.status_code == 200
    assert secret[4:-6] not in later.text
    body = later.json()["data"]
    assert body["node"]["prefix"] == secret[:10]
    assert body["viewer"]["apiTokens"]["totalCount"] == 1
    assert {f["name"] for f in body["__type"]["fields"]} == {
        "id", "name", "scopes", "prefix", "last4", "createdAt", "expiresAt", "lastUsedAt",
        "revokedAt", "partner",
    }  # fmt: skip


async def test_last_used_at_is_set_on_first_use_then_at_most_once_a_minute(
    client: httpx.AsyncClient,
) -> None:
    secret = await _admin_token()
    assert (await ApiToken.get()).last_used_at is None
    before = utcnow()
    await assert_accepted(client, secret, "APP")
    first_use = (await ApiToken.get()).last_used_at
    assert first_use is not None
    assert before <= first_use <= utcnow()
    await assert_accepted(client, secret, "APP")
    assert (await ApiToken.get()).last_used_at == first_use  # not on every request
    await ApiToken.all().update(last_used_at=first_use - timedelta(minutes=2))
    await assert_accepted(client, secret, "APP")
    refreshed = (await ApiToken.get()).last_used_at
    assert refreshed is not None
    assert refreshed >= first_use


async def test_a_revoked_api_token_is_refused(client: httpx.AsyncClient) -> None:
    secret = await _admin_token()
    await assert_accepted(client, secret, "APP")
    row = await ApiToken.get()
    await identity.revoke_api_token(Actor(label="admin:admin@example.com"), row.id)
    await assert_refused(client, secret)


async def test_an_expired_api_token_is_refused(client: httpx.AsyncClient) -> None:
    created = await identity.create_api_token(
        Actor(label="admin:admin@example.com"),
        "short-lived",
        ["partners:read"],
        utcnow() + timedelta(hours=1),
    )
    await assert_accepted(client, created.secret, "APP")
    await ApiToken.all().update(expires_at=utcnow() - timedelta(seconds=1))
    await assert_refused(client, created.secret)


async def test_an_api_token_with_a_bad_checksum_is_refused(client: httpx.AsyncClient) -> None:
    secret = await _admin_token()
    await assert_accepted(client, secret, "APP")
    last = secret[-1]
    await assert_refused(client, secret[:-1] + ("A" if last != "A" else "B"))
    body = secret[4:-6]
    changed = "pgt_" + ("0" if body[0] != "0" else "1") + body[1:] + secret[-6:]
    await assert_refused(client, changed)


async def test_an_unknown_well_formed_api_token_is_refused(client: httpx.AsyncClient) -> None:
    await assert_refused(client, new_api_token().secret)


async def test_a_suspended_partners_user_and_api_tokens_are_refused(
    client: httpx.AsyncClient,
) -> None:
    partner = await partners.create_partner(
        Actor.system(), "Northwind", "ana@northwind.example", PASSWORD
    )
    tokens = (await login(client, "ana@northwind.example")).json()
    user_id = int(jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"])
    app_token = await identity.create_api_token(
        Actor(label="partner:ana", user_id=user_id, partner_id=partner.id),
        "reports",
        ["partners:read"],
        None,
    )
    await assert_accepted(client, tokens["access_token"], "PARTNER")
    await assert_accepted(client, app_token.secret, "APP")

    await partners.update_partner(Actor.system(), partner.id, status=PartnerStatus.SUSPENDED)

    await assert_refused(client, tokens["access_token"])
    await assert_refused(client, app_token.secret)
    assert (await refresh(client, tokens["refresh_token"])).status_code == 401
    wrong = await login(client, "ana@northwind.example", "not the password at all")
    suspended = await login(client, "ana@northwind.example")
    assert suspended.status_code == wrong.status_code == 401
    assert suspended.content == wrong.content

    await partners.update_partner(Actor.system(), partner.id, status=PartnerStatus.ACTIVE)
    await assert_accepted(client, app_token.secret, "APP")
    assert (await Partner.get()).status == PartnerStatus.ACTIVE


async def test_a_worker_checks_a_session_at_most_once_per_period(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """With session_check_seconds, a logged-in partner's requests skip the session query."""
    cached = create_app(
        settings.model_copy(update={"session_check_seconds": 60.0}), manage_database=False
    )
    await partners.create_partner(Actor.system(), "Northwind", "ana@northwind.example", PASSWORD)
    transport = httpx.ASGITransport(app=cached, client=("203.0.113.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        tokens = (await login(client, "ana@northwind.example")).json()
        await assert_accepted(client, tokens["access_token"], "PARTNER")
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
            await assert_accepted(client, tokens["access_token"], "PARTNER")
        queries = [r.getMessage() for r in caplog.records if r.name == "tortoise.db_client"]
        assert not any("refresh_tokens" in q or '"partners"' in q for q in queries), queries
        # logging out through this worker ends the session at once all the same
        await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        await assert_refused(client, tokens["access_token"])
