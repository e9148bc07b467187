"""Portable badges: `GET /badges/{awardId}` and `GET /.well-known/jwks.json`.

Public, like a badge page: anyone holding the link can read and verify the credential (what it
states is in `domain.gamification.credentials`). The award ID is the BadgeAward's global ID,
as `BadgeAward.credentialUrl` names it; an unknown or malformed one answers 404.

- `Accept: application/vc+jwt`: the credential as a compact JWS signed RS256 (VC-JOSE: the
  credential is the claims set, with iss, jti and nbf), header {alg, typ "vc+jwt", kid};
- otherwise: the credential as JSON-LD (`application/ld+json`).

`/.well-known/jwks.json` lists every signing key's public part; a JWS header's `kid` names one.
"""

from __future__ import annotations

import jwt
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.relay import from_global_id, to_global_id
from domain.gamification import credentials
from domain.settings import Settings
from portal.http import json_response

JSON_LD = "application/ld+json"
VC_JWT = "application/vc+jwt"
PUBLIC = {"Access-Control-Allow-Origin": "*"}  # verifiers in a browser may read them too


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def wants_jwt(accept: str) -> bool:
    """Whether the Accept header prefers application/vc+jwt to JSON-LD (at least as high a
    quality as JSON-LD, application/json or a wildcard; a missing header means JSON-LD)."""
    jwt_q, ld_q = 0.0, 0.0
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        if media == VC_JWT:
            jwt_q = max(jwt_q, _quality(params))
        elif media in {JSON_LD, "application/json", "application/*", "*/*"}:
            ld_q = max(ld_q, _quality(params))
    return jwt_q > 0 and jwt_q >= ld_q


class BadgeRoutes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.public_url.rstrip("/")

    def routes(self) -> list[Route]:
        return [
            Route("/badges/{award_id}", self.credential, methods=["GET"]),
            Route("/.well-known/jwks.json", self.jwks, methods=["GET"]),
        ]

    async def credential(self, request: Request) -> Response:
        parsed = from_global_id(request.path_params["award_id"])
        facts = None
        if parsed is not None and parsed[0] == "BadgeAward":
            facts = await credentials.award_facts(parsed[1])
        if facts is None:
            return json_response({"error": "no such badge award"}, 404)
        url = f"{self.base}/badges/{to_global_id('BadgeAward', facts.award_id)}"
        salt = credentials.identity_salt(self.settings.signing_key, facts.award_id)
        credential = credentials.build_credential(facts, url, self.base, salt)
        headers = {"Cache-Control": "no-store", "Vary": "Accept", **PUBLIC}
        if not wants_jwt(request.headers.get("accept", "")):
            return Response(orjson.dumps(credential), media_type=JSON_LD, headers=headers)
        key = await credentials.signing_key(self.settings.verification_keys)
        token = jwt.encode(
            credentials.jwt_claims(credential, facts.awarded_at),
            key.private_key,
            algorithm=credentials.ALGORITHM,
            headers={"kid": key.kid, "typ": "vc+jwt"},
        )
        return Response(token, media_type=VC_JWT, headers=headers)

    async def jwks(self, request: Request) -> Response:
        keys = await credentials.published_keys(self.settings.verification_keys)
        headers = {"Cache-Control": "public, max-age=300", **PUBLIC}
        return Response(
            orjson.dumps({"keys": keys}), media_type="application/json", headers=headers
        )
