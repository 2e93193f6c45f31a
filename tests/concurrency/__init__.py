"""Acceptance tests that run many clients at once against a server in a subprocess."""
