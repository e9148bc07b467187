"""Attribution: which partners earned how much of a conversion, and why."""
