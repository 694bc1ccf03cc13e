"""Licentia: the protocol in code.

Pure functions and frozen values — keys, licence tokens, scope, presentations, status
lists, request signatures and the verification engine. Nothing in this package does I/O.
"""
