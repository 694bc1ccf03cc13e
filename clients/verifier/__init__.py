"""The platform verifier: licences checked in-process, revocations followed live."""
