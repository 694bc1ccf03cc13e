"""The gateway's OpenAPI 3.1 document, generated from the service descriptors.

Every message a served method takes or gives is a schema under ``components/schemas``,
named by its full protobuf name (``licentia.v1.GetTermsRequest``) and following the
protobuf JSON mapping the gateway speaks: fields by their JSON name (lowerCamelCase; the
gateway also accepts the proto names), 64-bit integers as decimal strings, ``bytes`` as
base64, enums by value name, repeated fields as arrays, maps as objects, every field
optional (an absent field is its zero value). The four request signature headers are the
security schemes a signed method requires together; a public method requires none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from licentia.errors import Reason
from licentia.request import KEY_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

from .rpc import Endpoint

__all__ = ["ERROR_SCHEMA", "SECURITY_SCHEMES", "document", "operation_id"]

_F = FieldDescriptor
_INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32 = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"}
_UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"}
_FLOAT = {
    "oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}
_SCALARS: dict[int, dict[str, Any]] = {
    _F.TYPE_DOUBLE: _FLOAT,
    _F.TYPE_FLOAT: _FLOAT,
    _F.TYPE_INT32: _INT32,
    _F.TYPE_SINT32: _INT32,
    _F.TYPE_SFIXED32: _INT32,
    _F.TYPE_UINT32: _UINT32,
    _F.TYPE_FIXED32: _UINT32,
    _F.TYPE_INT64: _INT64,
    _F.TYPE_SINT64: _INT64,
    _F.TYPE_SFIXED64: _INT64,
    _F.TYPE_UINT64: _UINT64,
    _F.TYPE_FIXED64: _UINT64,
    _F.TYPE_BOOL: {"type": "boolean"},
    _F.TYPE_STRING: {"type": "string"},
    _F.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
}

#: The request signature headers, one security scheme each (a signed method needs all four).
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "licentiaKey": {
        "type": "apiKey",
        "in": "header",
        "name": KEY_HEADER,
        "description": "the caller's public key, ed25519:… (docs/http.md)",
    },
    "licentiaTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": TIMESTAMP_HEADER,
        "description": "the signing time, decimal Unix seconds, within 60 s of the server's",
    },
    "licentiaNonce": {
        "type": "apiKey",
        "in": "header",
        "name": NONCE_HEADER,
        "description": "16 random bytes, base64url, never used twice",
    },
    "licentiaSignature": {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": "Ed25519 over the method, SHA-256 of the exact body, the timestamp and"
        " the nonce, domain licentia.v1.http-request, base64url (docs/http.md)",
    },
}

#: A refusal's body.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "reason", "message"],
            "properties": {
                "code": {"type": "string", "description": "the gRPC status code's name"},
                "reason": {"type": "string", "enum": [r.name for r in Reason]},
                "message": {"type": "string"},
            },
        }
    },
}


def operation_id(endpoint: Endpoint) -> str:
    """``Service.Method`` (e.g. ``RegistryService.GetTerms``)."""
    md = endpoint.descriptor
    return f"{md.containing_service.name}.{md.name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _field(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single(value, schemas)}
    one = _single(field, schemas)
    if field.is_repeated:
        return {"type": "array", "items": one}
    return one


def _single(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if field.message_type is not None:
        return _message(field.message_type, schemas)
    if field.enum_type is not None:
        return _enum(field.enum_type, schemas)
    return dict(_SCALARS[field.type])


def _enum(enum: EnumDescriptor, schemas: dict[str, Any]) -> dict[str, str]:
    if enum.full_name not in schemas:
        schemas[enum.full_name] = {"type": "string", "enum": [v.name for v in enum.values]}
    return _ref(enum.full_name)


def _message(message: Descriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    name = message.full_name
    if name.startswith("google.protobuf."):
        return {}  # a well-known type: its own JSON form (none of ours uses one today)
    if name not in schemas:
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {},
        }
        schemas[name] = schema  # before the fields: a message may contain itself
        for field in message.fields:
            schema["properties"][field.json_name] = _field(field, schemas)
        oneofs = [
            o
            for o in message.oneofs
            if not (len(o.fields) == 1 and o.name == f"_{o.fields[0].name}")  # proto3 optional
        ]
        if oneofs:
            schema["description"] = "; ".join(
                f"at most one of {', '.join(f.json_name for f in o.fields)}" for o in oneofs
            )
    return _ref(name)


def document(endpoints: Sequence[Endpoint], title: str, version: str = "v1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints`` as the gateway serves them.

    A method that streams requests from the client is left out (the gateway answers it
    with 501); a method with a response stream answers ``text/event-stream``."""
    schemas: dict[str, Any] = {"licentia.Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "whether the gateway serves",
                "security": [],
                "responses": {"200": {"description": "serving"}},
            }
        }
    }
    signed_security: list[dict[str, list[str]]] = [{name: [] for name in SECURITY_SCHEMES}]
    for endpoint in endpoints:
        md = endpoint.descriptor
        if md.client_streaming:
            continue
        request = _message(md.input_type, schemas)
        response = _message(md.output_type, schemas)
        if md.server_streaming:
            ok = {
                "description": f"a stream of server-sent events: each `data:` line is one"
                f" {md.output_type.full_name} in JSON; a refusal after the first is an"
                " `error` event whose data is a licentia.Error",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        else:
            ok = {
                "description": md.output_type.full_name,
                "content": {"application/json": {"schema": response}},
            }
        paths[f"/v1{endpoint.path}"] = {
            "post": {
                "operationId": operation_id(endpoint),
                "tags": [md.containing_service.full_name],
                "summary": f"{md.containing_service.name}.{md.name}"
                + ("" if endpoint.method.signed else " (public: unsigned)"),
                "security": signed_security if endpoint.method.signed else [],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": request}},
                },
                "responses": {
                    "200": ok,
                    "default": {
                        "description": "a refusal: the reason and a message for people",
                        "content": {"application/json": {"schema": _ref("licentia.Error")}},
                    },
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every RPC of the exchange over HTTP/JSON (the protobuf JSON"
            " mapping), generated from its protobuf service descriptors. See docs/http.md.",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }
