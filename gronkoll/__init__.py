"""Gronkoll: Green IT energy monitoring for Swedish municipalities."""

__version__ = "0.1.0"
