"""Partners (organizations or people) and their enrollments in programs."""
