"""gRPC method paths, read from the generated service descriptors.

A method path (``/licentia.v1.LicenceService/RevokeLicence``) is signed into every request
and names the handler on the server, so it is never written by hand: :func:`path` builds it
from the ``.proto``'s own descriptor and refuses a method the service does not have, which
makes a typo or a renamed method fail where the constant is defined, at import time.

    from licentia.methods import path
    from licentia.v1 import licences_pb2

    REVOKE = path(licences_pb2, "RevokeLicence")
"""

from __future__ import annotations

from types import ModuleType

from google.protobuf.descriptor import ServiceDescriptor

__all__ = ["path", "service"]


def service(source: ModuleType | ServiceDescriptor) -> ServiceDescriptor:
    """The service a generated ``*_pb2`` module defines (its only one), or ``source`` itself.

    Raises ``ValueError`` for a module that defines no service or several.
    """
    if isinstance(source, ServiceDescriptor):
        return source
    services = list(source.DESCRIPTOR.services_by_name.values())
    if len(services) != 1:
        raise ValueError(f"{source.__name__} defines {len(services)} services, not one")
    found: ServiceDescriptor = services[0]
    return found


def path(source: ModuleType | ServiceDescriptor, method: str) -> str:
    """``/package.Service/Method`` for ``method`` of ``source``'s service.

    ``source`` is a generated ``*_pb2`` module defining one service, or a service
    descriptor. Raises ``KeyError`` when the service has no such method.
    """
    desc = service(source)
    if method not in desc.methods_by_name:
        raise KeyError(f"{desc.full_name} has no method {method!r}")
    return f"/{desc.full_name}/{method}"
