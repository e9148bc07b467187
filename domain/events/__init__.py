"""Events: what happened, written in the transaction of the change (the outbox)."""
