"""Licentia clients: advertiser SDK, holder wallet, platform verifier, auditor."""
