"""The JSON Schema of ``licentia-wallet --json``: what each command prints (docs/wallet-json.md).

The messages' schemas are generated from the protobuf descriptors, with the wallet's mapping
(:func:`licentia.clients.wallet.render._dict`): the .proto field names, every field present
(but unset sub-messages), enums by name, 64-bit integers as numbers (strings beyond 2**53),
public keys ``ed25519:…`` and other bytes in hex. The documents the wallet builds itself
(``whoami``, ``init``, ``devices list``, ``audit``, …) are described here by hand.
``python -m licentia.clients.wallet.schema`` prints the schema; the committed
``docs/wallet-json.schema.json`` is checked to be the same (tests/integration/test_wallet_json.py).
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from licentia.v1 import ledger_pb2, licence_pb2, records_pb2, registry_pb2

from .render import _INT64, VOCABULARY, _name, is_key_field

Schema = dict[str, Any]

KEY: Schema = {"type": "string", "pattern": "^ed25519:[A-Za-z0-9_-]{43}$"}
HEX: Schema = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
INT64: Schema = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]+$"}]}
_SCALAR: dict[int, Schema] = {
    FieldDescriptor.TYPE_INT32: {"type": "integer"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "minimum": 0},
    FieldDescriptor.TYPE_SINT32: {"type": "integer"},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "minimum": 0},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_DOUBLE: {"type": ["number", "string"]},
    FieldDescriptor.TYPE_FLOAT: {"type": ["number", "string"]},
}


def _ref(desc: Any) -> Schema:
    return {"$ref": f"#/$defs/{desc.full_name}"}


class _Builder:
    """The ``$defs`` of the messages reached from the ones asked for."""

    def __init__(self) -> None:
        self.defs: dict[str, Schema] = {}

    def message(self, desc: Any, extra: dict[str, Schema] | None = None) -> Schema:
        """``desc``'s schema: a reference, or (with ``extra`` properties the wallet adds)
        the message's object with them."""
        if desc.full_name not in self.defs:
            self.defs[desc.full_name] = {}  # recursion stops here
            self.defs[desc.full_name] = self._object(desc)
        if not extra:
            return _ref(desc)
        base = self._object(desc)
        base["properties"] = {**base["properties"], **extra}
        return base

    def _object(self, desc: Any) -> Schema:
        props: dict[str, Schema] = {}
        required: list[str] = []
        for field in desc.fields:
            one = self._field(field)
            props[field.name] = {"type": "array", "items": one} if field.is_repeated else one
            if field.is_repeated or not field.has_presence:
                required.append(field.name)
        return {
            "type": "object",
            "description": f"{desc.full_name}, in the wallet's JSON mapping",
            "properties": props,
            "required": sorted(required),
            "additionalProperties": False,
        }

    def _field(self, field: Any) -> Schema:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return {"anyOf": [KEY, {"const": ""}]} if is_key_field(field.name) else HEX
        if field.type in _INT64:
            return INT64
        if field.type == FieldDescriptor.TYPE_ENUM:
            assert field.enum_type is not None
            kind = VOCABULARY.get(field.enum_type.full_name)
            names = [v.name for v in field.enum_type.values]
            if kind is not None:  # as typed; the unspecified value keeps its .proto name
                names = [names[0], *(_name(member) for member in kind)]
            return {"type": "string", "enum": names}
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None
            return self.message(field.message_type)
        return _SCALAR[field.type]


def _obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """A document the wallet builds: these properties (and perhaps more later)."""
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": sorted(required),
    }


def _list(item: Schema) -> Schema:
    return {"type": "array", "items": item}


def wallet_schema() -> Schema:
    """The schema: ``$defs`` for every message, and under ``commands`` each command's
    document (its name as typed: ``rules list``)."""
    b = _Builder()
    m = b.message
    string, integer, boolean = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
    licensee_name = {"licensee_organisation": string}
    licence = m(records_pb2.LicenceRecord.DESCRIPTOR)
    rule = m(
        records_pb2.StandingRuleRecord.DESCRIPTOR,
        {"rule": m(licence_pb2.StandingRule.DESCRIPTOR)},
    )
    profile = m(records_pb2.Profile.DESCRIPTOR)
    destination = m(ledger_pb2.PayoutDestination.DESCRIPTOR)
    new_wallet = {"wallet": string, "public_key": KEY, "fingerprint": string}
    removed_key = _obj({"public_key": KEY, "fingerprint": string, "name": string})
    review = {
        "since": integer,
        "licences": _list(m(records_pb2.LicenceRecord.DESCRIPTOR, licensee_name)),
        "rules": _list(rule),
        "truncated": boolean,
        "revoked": boolean,
    }
    commands: dict[str, Schema] = {
        "init": _obj(new_wallet, {"recovery_phrase": string}),
        "whoami": _obj({"public_key": KEY, "account": KEY}),
        "register": m(records_pb2.Profile.DESCRIPTOR, {"recovery_key_added": boolean}),
        "profile show": profile,
        "profile set": profile,
        "recovery add": _obj({"recovery_key_added": boolean}, {"recovery_phrase": string}),
        "join": _obj({**new_wallet, "account": KEY, "expires_at": integer}),
        "recover": _obj(
            {**new_wallet, "account": KEY, "removed": _list(removed_key), "cause": string},
            {"recovery_phrase": string},
        ),
        "devices list": _obj(
            {
                "account": KEY,
                "sequence": integer,
                "keys": _list(_obj({"public_key": KEY, "fingerprint": string, "name": string})),
                "removed": _list(removed_key),
            }
        ),
        "devices add": _obj({"code": string, "expires_at": integer}),
        "devices approve": _obj({"added": KEY, "fingerprint": string}, {"sequence": integer}),
        "devices remove": _obj(
            {"removed": KEY, "fingerprint": string, "cause": string, "sequence": integer},
            review,
        ),
        "devices revoke-consents": _obj({"key": KEY, **review}),
        "assets add": m(records_pb2.AssetRecord.DESCRIPTOR),
        "assets list": _list(m(records_pb2.AssetRecord.DESCRIPTOR)),
        "terms set": m(records_pb2.Terms.DESCRIPTOR),
        "terms show": {"anyOf": [{"type": "null"}, m(records_pb2.Terms.DESCRIPTOR)]},
        "opt-out": profile,
        "opt-in": profile,
        "status": _obj({"public_key": KEY, "account": KEY, "handle": string, "opted_out": boolean}),
        "inbox": _obj(
            {
                "requests": _list(m(records_pb2.LicenceRequest.DESCRIPTOR)),
                "notices": _list(m(records_pb2.Notice.DESCRIPTOR)),
            }
        ),
        "approve": licence,
        "decline": m(records_pb2.LicenceRequest.DESCRIPTOR),
        "licences": _list(m(records_pb2.LicenceRecord.DESCRIPTOR, licensee_name)),
        "show": m(records_pb2.LicenceRecord.DESCRIPTOR, {**licensee_name, "pseudonym": boolean}),
        "revoke": _obj(
            {"licence": licence, "receipt": m(records_pb2.SignedTerminationReceipt.DESCRIPTOR)}
        ),
        "check": _obj(
            {
                "file": _obj(
                    {
                        "sha256": HEX,
                        "state": {
                            "enum": ["none", "trusted", "valid_untrusted", "invalid", "unreadable"]
                        },
                        "detail": string,
                        "organisation": string,
                        "signer": string,
                        "signer_verified": boolean,
                        "licence_id": {"anyOf": [{"type": "null"}, HEX]},
                        "licence_verified": boolean,
                    }
                ),
                "verdict": {"enum": ["yours", "not_yours", "your_asset", "no_licence", "unlisted"]},
                "licence": {"anyOf": [{"type": "null"}, licence]},
                "licensee_organisation": string,
                "valid": boolean,
                "credentials_ok": boolean,
                "reasons": _list(string),
                "asset_label": string,
                "revoked": {
                    "anyOf": [
                        {"type": "null"},
                        m(records_pb2.SignedTerminationReceipt.DESCRIPTOR),
                    ]
                },
            }
        ),
        "accesses": _list(m(records_pb2.AssetAccess.DESCRIPTOR, licensee_name)),
        "audit": _obj({"problems": _list(string)}),
        "earnings": m(
            ledger_pb2.GetStatementResponse.DESCRIPTOR, {"payout_destinations": _list(destination)}
        ),
        "withdraw": m(ledger_pb2.WithdrawResponse.DESCRIPTOR),
        "payouts add": destination,
        "payouts list": _list(destination),
        "payouts cancel": destination,
        "export": m(registry_pb2.ExportDataResponse.DESCRIPTOR),
        "rules add": rule,
        "rules list": _list(rule),
        "rules withdraw": rule,
        "erase": m(registry_pb2.EraseAssetsResponse.DESCRIPTOR),
        "delete-account": _obj(
            {
                "signed_receipt_base64": string,
                "signed_receipt": m(registry_pb2.SignedErasureReceipt.DESCRIPTOR),
                "receipt": m(registry_pb2.ErasureReceipt.DESCRIPTOR),
            }
        ),
    }
    error = _obj(
        {"error": _obj({"reason": string, "message": string}, {"hint": string})},
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://licentia.example/schemas/wallet-json.schema.json",
        "title": "licentia-wallet --json",
        "description": "What each command prints on stdout with --json (under 'commands', by"
        " the command as typed), and the error document printed on stderr ('error').",
        "commands": commands,
        "error": error,
        "$defs": dict(sorted(b.defs.items())),
    }


def command_schema(schema: Schema, command: str) -> Schema:
    """A schema that validates ``command``'s document against the whole one's ``$defs``."""
    return {"$defs": schema["$defs"], **schema["commands"][command]}


if __name__ == "__main__":
    print(json.dumps(wallet_schema(), indent=2, sort_keys=True))
