"""Tests of ``centermask_mm/converters/centermask.py``, by theme."""
