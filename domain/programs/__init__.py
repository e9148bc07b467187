"""Programs (the rules of one partner program) and their tiers."""
