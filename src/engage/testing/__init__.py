"""Helpers for engage's own tests and benchmarks: local fakes of the providers engage talks to."""
