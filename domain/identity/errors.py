"""Errors of identity that are not input errors: refused credentials and throttling."""

from __future__ import annotations


class InvalidCredentials(Exception):
    """Wrong e-mail or password, or a refresh token that is unknown, used, expired or revoked.

    One message for every case, so a caller cannot tell which part was wrong.
    """

    def __init__(self) -> None:
        super().__init__("invalid credentials")


class TooManyAttempts(Exception):
    """Login is throttled for this account or address; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed logins; try again later")
        self.retry_after = retry_after
