"""The platform verifier: licences checked in-process, revocations followed live."""

from .files import FileCheck
from .verifier import Verifier, VerifierStats, fetch_issuer_keys, fetch_status_snapshot

__all__ = ["FileCheck", "Verifier", "VerifierStats", "fetch_issuer_keys", "fetch_status_snapshot"]
