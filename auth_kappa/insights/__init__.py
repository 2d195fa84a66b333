"""Meter insights over the topology's final windows: gaps and continuous-flow leaks.

Every runtime emits the same final windows (topology/processor.py pop_final), so an
insight computed from them agrees across the embedded engine, the live workers and a
replay. Rules are documented in the README (Insights).
"""
