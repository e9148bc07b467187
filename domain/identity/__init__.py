"""Users, sessions (refresh tokens), API tokens and login throttling."""
