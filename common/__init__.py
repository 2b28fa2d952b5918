"""Helpers every package of the bundle shares: its error types (one-line messages) and atomic file writes."""
