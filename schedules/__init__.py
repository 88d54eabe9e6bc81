"""Scheduled jobs: nightly shutdowns, their verification and audit."""
