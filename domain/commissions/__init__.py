"""Commission rules, the rewards ledger and payouts."""
