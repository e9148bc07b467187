"""PartnerGraph's business: models, rules and services. Knows nothing of HTTP or GraphQL."""
