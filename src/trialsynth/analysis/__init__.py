"""Analyses on top of results: agreement, prior-data conflict, LOO, assurance, sensitivity."""
