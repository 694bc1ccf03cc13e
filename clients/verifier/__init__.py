"""The platform verifier: licences checked in-process, revocations followed live."""

from .verifier import Verifier, VerifierStats, fetch_issuer_keys, fetch_status_snapshot

__all__ = ["Verifier", "VerifierStats", "fetch_issuer_keys", "fetch_status_snapshot"]
