"""Gamification: points, badges and milestones, leaderboards, and tiers partners earn."""
