"""Licentia exchange services (gRPC servers and the store)."""
