"""Server reflection under both names clients ask for: ``grpc.reflection.v1`` and
``grpc.reflection.v1alpha``.

The installed grpcio-reflection serves only ``v1alpha``, while current grpcurl and Postman
ask for ``v1`` first. The two protocols are the same messages under another package name
(the same fields, numbers and types), so one servicer answers both: the ``v1`` method is
registered with the ``v1alpha`` messages' (de)serializers. So that a client can describe the
``v1`` service itself too, its file descriptor is derived from the ``v1alpha`` one (package
and names renamed) and added to the default descriptor pool, which reflection reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import (  # type: ignore[import-untyped]
    reflection,
    reflection_pb2,
    reflection_pb2_grpc,
)

V1ALPHA = "grpc.reflection.v1alpha"
V1 = "grpc.reflection.v1"
#: The full names of the two reflection services.
V1ALPHA_SERVICE: str = reflection.SERVICE_NAME
V1_SERVICE = f"{V1}.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add the ``v1`` reflection file to ``pool``, derived from ``v1alpha`` (once)."""
    try:
        pool.FindServiceByName(V1_SERVICE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = _V1_FILE, V1
    proto.ClearField("options")
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(f".{V1ALPHA}."):
                field.type_name = f".{V1}." + field.type_name[len(V1ALPHA) + 2 :]
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(f".{V1ALPHA}.", f".{V1}.")
            method.output_type = method.output_type.replace(f".{V1ALPHA}.", f".{V1}.")
    pool.Add(proto)


def enable(server: grpc.Server, service_names: Sequence[str]) -> None:
    """Serve reflection of ``service_names`` (and of both reflection services) on
    ``server`` under ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``."""
    _register_v1_descriptor(descriptor_pool.Default())
    servicer = reflection.ReflectionServicer((*service_names, V1_SERVICE, V1ALPHA_SERVICE))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": v1}),)
    )
