"""Candidate versions, resolution and combination planning for a target."""

from __future__ import annotations

from compat.resolve.candidates import CandidateSource, Dependency, requested
from compat.resolve.resolver import Conflict, Preferences, Resolver

__all__ = ["CandidateSource", "Conflict", "Dependency", "Preferences", "Resolver", "requested"]
