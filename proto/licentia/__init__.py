"""Licentia: the protocol in code.

Pure functions and frozen values — keys, licence tokens, scope, presentations, status
lists, request signatures and the verification engine. Nothing in this package does I/O:
no grpc, socket, clock, sleep or thread of its own (a lock guards shared state); every
function that depends on time takes ``now``. Talking to an exchange — signed calls, the
mapping of gRPC errors, following its revocations — is the transport's
(``licentia.transport``). The generated gRPC stubs (``v1/*_pb2_grpc.py``) are protoc's
output beside the wire contract; no module of the core imports them
(``tests/project/test_layers.py``).
"""

#: The release, as every command's ``--version`` prints it and the distribution is built.
__version__ = "0.1.0"
