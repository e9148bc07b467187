"""A query cost limit, as GitHub and Shopify have (strawberry has none).

Cost = the most fields an operation can resolve: each field costs 1 plus its selection's
cost, times `first` on a connection (default 20) and times LIST_FACTOR on a plain list.
Too costly an operation is refused before it runs; every answer reports its cost in
`extensions.cost`, so clients can see how close they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.execution import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from api.relay import DEFAULT_PAGE

MAX_COST = 100_000
LIST_FACTOR = 10


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def first(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                return given if isinstance(given, int) else DEFAULT_PAGE
        return DEFAULT_PAGE

    def fields(
        self, selection_set: SelectionSetNode, parent: Any
    ) -> Iterator[tuple[FieldNode, Any]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                yield from self.fields(selection.selection_set, target)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    target = self.schema.get_type(fragment.type_condition.name.value)
                    yield from self.fields(fragment.selection_set, target)

    def cost(self, selection_set: SelectionSetNode | None, parent: Any, page: int = 1) -> int:
        """Cost of a selection; `page` is the `first` of the connection it selects from."""
        if selection_set is None or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0
        total = 0
        for node, owner in self.fields(selection_set, parent):
            definition = owner.fields.get(node.name.value) if hasattr(owner, "fields") else None
            if definition is None:  # __typename and introspection
                continue
            named = get_named_type(definition.type)
            if named.name.endswith("Connection"):
                child = self.cost(node.selection_set, named, max(self.first(node), 0))
            else:
                child = self.cost(node.selection_set, named)
                if owner.name.endswith("Connection") and node.name.value == "edges":
                    child *= page
                elif is_list_type(get_nullable_type(definition.type)):
                    child *= LIST_FACTOR
            total += 1 + child
        return total


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    root = schema.get_root_type(operation.operation)
    return _Walk(schema, fragments, variables).cost(operation.selection_set, root)


class QueryCost(SchemaExtension):
    """Refuses operations costing more than MAX_COST; reports the cost of each."""

    def __init__(self) -> None:
        super().__init__()
        self.cost: int | None = None

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            chosen = [
                o
                for o in operations
                if context.operation_name is None
                or (o.name is not None and o.name.value == context.operation_name)
            ]
            if chosen:
                self.cost = operation_cost(
                    context.schema._schema, chosen[0], fragments, context.variables or {}
                )
            if self.cost is not None and self.cost > MAX_COST:
                error = GraphQLError(
                    f"query cost {self.cost} is over the limit of {MAX_COST}: "
                    "ask for fewer items (first) or fewer fields",
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": self.cost, "limit": MAX_COST},
                )
                context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requested": self.cost, "limit": MAX_COST}}
