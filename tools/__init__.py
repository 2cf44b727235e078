"""Measurement scripts and the helpers they share with the tests (run them as scripts)."""
