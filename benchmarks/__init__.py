"""Benchmarks of ``saga_store_pynamo`` beside raw botocore and pydynox.

Run ``python -m benchmarks.run --help``; ``docs/performance.md`` explains the figures.
"""
