"""Benchmarks: quality and speed measurements kept out of the timed test suite.

Each script writes its figures under ``benchmarks/results/`` and prints a table.
"""
