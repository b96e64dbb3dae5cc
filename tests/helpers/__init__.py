"""Helpers shared by several test modules (fakes, sample values, builders). Test
modules import from here, never from each other."""
