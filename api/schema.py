"""The schema, composed from per-domain Query and Mutation classes, with its limits."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, OperationDefinitionNode, validate
from graphql.type.definition import GraphQLResolveInfoHelpers
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_limit
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from api.attribution.mutations import AttributionMutation
from api.attribution.queries import AttributionQuery
from api.audit.queries import AuditQuery
from api.audit.types import AuditEntry
from api.commissions.mutations import CommissionsMutation
from api.commissions.queries import CommissionsQuery
from api.commissions.types import Commission, CommissionRule, PayoutBatch
from api.context import Context
from api.cost import QueryCost
from api.errors import ApiError
from api.gamification.badge_mutations import BadgesMutation
from api.gamification.badges import Badge, BadgeAward
from api.gamification.leaderboard import LeaderboardQuery
from api.gamification.tiers import TiersMutation
from api.identity.mutations import IdentityMutation
from api.identity.queries import IdentityQuery
from api.identity.types import ApiToken
from api.node import NodeQuery
from api.partners.mutations import PartnersMutation
from api.partners.queries import PartnersQuery
from api.partners.types import Enrollment, Partner
from api.programs.mutations import ProgramsMutation
from api.programs.queries import ProgramsQuery
from api.programs.types import Program, Tier
from api.scalars import SCALAR_MAP
from api.tracking.customers import Customer
from api.tracking.deals import Deal, DealsMutation, DealsQuery
from api.tracking.links import LinksMutation, ReferralLink
from api.tracking.mutations import TrackingMutation
from api.tracking.pixel_mutations import PixelMutation
from api.tracking.queries import TrackingQuery
from api.tracking.types import Conversion, Touchpoint

log = logging.getLogger("partnergraph.api")

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 5000
CACHE_SIZE = 1000


@strawberry.type
class Query(
    IdentityQuery,
    NodeQuery,
    ProgramsQuery,
    PartnersQuery,
    AuditQuery,
    AttributionQuery,
    TrackingQuery,
    DealsQuery,
    CommissionsQuery,
    LeaderboardQuery,
):
    pass


@strawberry.type
class Mutation(
    ProgramsMutation,
    PartnersMutation,
    IdentityMutation,
    AttributionMutation,
    DealsMutation,
    PixelMutation,
    TrackingMutation,
    LinksMutation,
    CommissionsMutation,
    TiersMutation,
    BadgesMutation,
):
    pass


# The rule classes are made once: ValidationCache keys on them, and strawberry's
# QueryDepthLimiter / MaxAliasesLimiter would make new ones for every request.
_LIMIT_RULES = [depth_limit(MAX_DEPTH, None), alias_limit(MAX_ALIASES)]


class DepthAndAliasLimits(AddValidationRules):
    """Query depth at most MAX_DEPTH (introspection not counted), MAX_ALIASES aliases."""

    def __init__(self) -> None:
        super().__init__(list(_LIMIT_RULES))


class IntrospectionForUsersOnly(SchemaExtension):
    """Anonymous callers may not introspect: depth limits do not count introspection."""

    def on_validate(self) -> Iterator[None]:
        # Before the yield: strawberry decides to stop on pre_execution_errors inside this hook.
        context = self.execution_context
        principal = getattr(context.context, "principal", None)
        document = context.graphql_document
        if (
            principal is not None
            and principal.is_anonymous
            and "__" in (context.query or "")
            and document is not None
        ):
            errors = validate(context.schema._schema, document, [NoSchemaIntrospectionCustomRule])
            if errors:
                context.pre_execution_errors = [*(context.pre_execution_errors or []), *errors]
        yield


class OneOperationOrItsName(SchemaExtension):
    """A document with several operations needs `operationName`: the GraphQL spec says so,
    and strawberry would run the first (its `operation_name` already answers that name, so
    the name the client sent is read)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context._provided_operation_name is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                error = GraphQLError(
                    "operationName is required: the document has several operations"
                )
                context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield


def is_expected(error: GraphQLError) -> bool:
    """Errors clients may read: request errors, and the coded errors we raise on purpose."""
    original = error.original_error
    return original is None or isinstance(original, ApiError) or not error.path


class CycleFreeExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core 3.3 keeps bound methods of each executor in `async_helpers`: a reference
    cycle per request that only the cyclic collector frees, in pauses that made the p99 tail
    (bench/README.md). Calling through a weak reference breaks the cycle."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ref = weakref.ref(self)

        def gather(*a: Any, **k: Any) -> Any:
            executor = ref()
            assert executor is not None  # alive while its operation runs
            return executor.gather_async_work(*a, **k)

        def track(*a: Any, **k: Any) -> Any:
            executor = ref()
            assert executor is not None
            return executor.track_async_work(*a, **k)

        self.async_helpers = GraphQLResolveInfoHelpers(gather=gather, track=track)


class PartnerGraphSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors once, with the request id; the HTTP layer masks them."""
        context = execution_context.context if execution_context else None
        request_id = context.request_id if isinstance(context, Context) else "-"
        for error in errors:
            if not is_expected(error):
                log.error(
                    "unexpected error in %s (request %s)",
                    ".".join(str(p) for p in error.path or []),
                    request_id,
                    exc_info=error.original_error,
                )


def build_schema(development: bool = False) -> strawberry.Schema:
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=CACHE_SIZE),
        DepthAndAliasLimits,
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        IntrospectionForUsersOnly,
        OneOperationOrItsName,
        QueryCost,
    ]
    return PartnerGraphSchema(
        query=Query,
        mutation=Mutation,
        types=[
            Program,
            Tier,
            Partner,
            Enrollment,
            ApiToken,
            AuditEntry,
            Conversion,
            Touchpoint,
            Deal,
            Customer,
            ReferralLink,
            Commission,
            CommissionRule,
            PayoutBatch,
            Badge,
            BadgeAward,
        ],
        extensions=extensions,
        execution_context_class=CycleFreeExecutionContext,  # type: ignore[arg-type]
        config=StrawberryConfig(disable_field_suggestions=not development, scalar_map=SCALAR_MAP),
    )
