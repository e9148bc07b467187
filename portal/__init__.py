"""PartnerGraph's HTTP face: the Starlette app, /graphql, /auth, /healthz, and the CLI."""
