"""Metrics (full-reference, no-reference, temporal), benchmark datasets, runner and reports."""
