"""Licentia exchange services (gRPC servers and the store).

The public API for running an exchange in a process (the tests, benchmarks and the demo do):
:func:`build` wires one :class:`App` from :class:`Settings`, :func:`start` serves it on a
``grpc.server`` as a :class:`RunningServer` (:class:`ServerSettings`: address, TLS, workers).
``licentia-server`` is ``licentia.services.server:main``, not imported here: the package must
not import the module that ``python -m licentia.services.server`` runs. Every other module is
the exchange's own business.
"""

from .app import App, build
from .deps import Settings
from .runtime import RunningServer, ServerSettings, start

__all__ = ["App", "RunningServer", "ServerSettings", "Settings", "build", "start"]
