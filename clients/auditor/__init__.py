"""The independent auditor of an exchange's public log (``licentia-audit``)."""

from .audit import Auditor, AuditReport, Counts, Problem
from .state import AuditState, StateError

__all__ = ["AuditReport", "AuditState", "Auditor", "Counts", "Problem", "StateError"]
