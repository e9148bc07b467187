"""PartnerGraph's GraphQL face: types, thin resolvers, authorization, loaders and limits."""
