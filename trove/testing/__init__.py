"""Helpers for testing and benchmarking Trove against real backing services."""
