"""kanalhub benchmarks: measured figures, printed as a table and written as JSON.

Run with ``make bench`` (full size) or ``python -m bench.run --tiny`` (the reduced run that
``make test`` uses so the harness cannot rot; it asserts nothing about speed).
"""
