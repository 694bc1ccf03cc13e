"""Every licentia-wallet command's --json output parses and matches the documented schema
(docs/wallet-json.schema.json, docs/wallet-json.md), and so do its errors on stderr."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from licentia.clients.wallet.cli import parser
from licentia.clients.wallet.schema import command_schema, wallet_schema
from licentia.keys import PublicKey
from licentia.v1 import licences_pb2

from .exchange_harness import (
    PHOTO_SHA,
    Exchange,
    photo_use,
    register_advertiser,
    register_platform,
    report_use,
    request_licence,
)
from .wallet_harness import Wallet, set_up_assets_and_terms

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "wallet-json.schema.json"
#: Commands that print no JSON document: shell code.
NOT_JSON = {"completion"}


def _commands(ap: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    """Every leaf command of the parser, as typed (``rules list``)."""
    found: set[str] = set()
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = _commands(sub, f"{prefix}{name} ")
                found |= inner or {f"{prefix}{name}"}
    return found


def test_the_committed_schema_is_the_generated_one() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema == json.loads(json.dumps(wallet_schema())), (
        "regenerate: python -m licentia.clients.wallet.schema > docs/wallet-json.schema.json"
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["commands"]) == _commands(parser()) - NOT_JSON


class _Checked:
    """Runs wallets with --json and validates each document against its command's schema."""

    def __init__(self) -> None:
        self.schema = json.loads(SCHEMA_FILE.read_text())
        self.seen: set[str] = set()

    def __call__(self, w: Wallet, command: str, *argv: str) -> Any:
        code, out, err = w(*command.split(), *argv, "--json")
        assert code == 0, (command, err)
        doc = json.loads(out)
        jsonschema.validate(doc, command_schema(self.schema, command))
        self.seen.add(command)
        return doc

    def error(self, w: Wallet, *argv: str) -> dict[str, Any]:
        code, out, err = w(*argv, "--json")
        assert code != 0
        assert out == ""
        doc = json.loads(err)
        jsonschema.validate(doc, {"$defs": self.schema["$defs"], **self.schema["error"]})
        return doc["error"]  # type: ignore[no-any-return]


def test_every_command_prints_json_in_the_schema(
    instant_ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex, run = instant_ex, _Checked()
    w = Wallet(tmp_path / "laptop", ex.address, capsys)
    assert run(w, "init", "--yes", "--no-recovery")["public_key"].startswith("ed25519:")
    error = run.error(w, "licences")  # not registered yet
    assert error["reason"] == "UNKNOWN_KEY"
    assert error["message"].startswith("the exchange refused: UNKNOWN_KEY")
    assert error["hint"] == "register first: licentia-wallet register --handle NAME"
    assert run.error(w, "licences", "--limit", "3")["reason"] == "USAGE"
    me = run(w, "whoami")
    run(w, "register", "--handle", "alice", "--name", "Alice")
    assert run.error(w, "show", "00000000")["reason"] == "FAILED"
    set_up_assets_and_terms(w, tmp_path)
    phrase = run(w, "recovery add", "--yes")["recovery_phrase"]
    assert phrase.count(" ") == 11
    run(w, "status")
    run(w, "profile show")
    run(w, "profile set", "--show-name")
    photo = tmp_path / "voice.ogg"
    photo.write_bytes(b"a voice")
    run(w, "assets add", str(photo), "--category", "voice")
    assert len(run(w, "assets list")) == 2
    run(w, "terms show")
    terms = run(
        w, "terms set", "--categories", "image", "--purposes", "marketing", "--media",
        "online", "--territories", "EU", "--price-per-day", "1.00", "--max-days", "90",
    )  # fmt: skip
    assert terms["price_per_day_minor"] == 100  # a number, not "100"
    assert run(w, "opt-out")["objecting"] is True
    assert run(w, "status")["opted_out"] is True
    assert run(w, "opt-in")["objecting"] is False

    adv, platform = ex.party(), ex.party()
    register_advertiser(adv)
    register_platform(platform)
    key = PublicKey.from_text(me["public_key"]).raw
    first = request_licence(adv, key, max_uses=2, price_per_use=500).request
    second = request_licence(adv, key).request
    inbox = run(w, "inbox")
    assert {r["advertiser_organisation"] for r in inbox["requests"]} == {"Acme Ads"}
    licence = run(w, "approve", first.request_id.hex(), "--yes")
    run(w, "decline", second.request_id.hex())
    lid = licence["licence_id"]
    (listed,) = run(w, "licences")
    assert (listed["licence_id"], listed["licensee_organisation"]) == (lid, "Acme Ads")
    shown = run(w, "show", lid[:8])
    assert shown["licensee_organisation"] == "Acme Ads"
    assert shown["licensee_key"] == PublicKey(adv.key.public.raw).text
    adv.call(
        licences_pb2,
        "FetchAsset",
        licences_pb2.FetchAssetRequest(licence_id=bytes.fromhex(lid), sha256=PHOTO_SHA),
        licences_pb2.FetchAssetResponse,
    )
    (access,) = run(w, "accesses")
    assert access["licensee_organisation"] == "Acme Ads"
    report_use(platform, adv, licence["token"], photo_use())  # she earns per use
    rule = run(
        w, "rules add", "--categories", "image", "--purposes", "advertising", "--media",
        "online", "--territories", "FR", "--min-price-per-day", "2.00",
    )  # fmt: skip
    assert rule["rule"]["min_price_per_day_minor"] == 200
    run(w, "rules list")
    run(w, "rules withdraw", rule["rule"]["rule_id"][:8])
    run(w, "revoke", lid)
    run(w, "payouts add", "FR76 0001")
    run(w, "payouts add", "FR76 0002")
    run(w, "payouts cancel", "FR76 0002")
    assert len(run(w, "payouts list")) == 2
    available = run(w, "earnings")["available_minor"]
    assert available > 0
    run(w, "withdraw", f"{available // 100}.{available % 100:02d}", "--to", "FR76 0001")
    export = run(w, "export")
    assert export["profile"]["objecting"] is False  # the objection state
    assert len(export["standing_rules"]) == 1
    assert export["ledger"]  # her payments
    assert export["payout_destinations"]
    assert run(w, "audit")["problems"] == []
    checked = run(w, "check", str(photo))  # her declared voice, re-posted with no licence
    assert (checked["verdict"], checked["asset_label"]) == ("your_asset", "voice.ogg")
    run(w, "erase", "--sha256", hashlib.sha256(photo.read_bytes()).hexdigest(), "--yes")

    phone = Wallet(tmp_path / "phone", ex.address, capsys)
    code = run(w, "devices add", "--no-wait")["code"]
    run(phone, "join", code, "--name", "phone")
    fp = run(w, "devices approve", code, "--yes")["fingerprint"]
    assert len(run(w, "devices list")["keys"]) == 3  # laptop, phone, paper
    run(w, "devices revoke-consents", fp, "--yes")
    run(w, "devices remove", fp, "--retired", "--yes")

    new = Wallet(tmp_path / "new", ex.address, capsys)
    words = tmp_path / "words"
    words.write_text(phrase + "\n")
    run(new, "recover", "--phrase-file", str(words), "--retired")
    run(new, "delete-account", "--yes", "--receipt", str(tmp_path / "receipt.json"))
    assert run.seen == _commands(parser()) - NOT_JSON


def test_the_mapping_by_example() -> None:
    from licentia.clients.wallet.render import _dict
    from licentia.v1 import records_pb2, vocabulary_pb2

    terms = records_pb2.Terms(
        categories=[vocabulary_pb2.DATA_CATEGORY_IMAGE],
        refused_purposes=[vocabulary_pb2.PURPOSE_DIRECT_MARKETING],
        price_per_day_minor=2**53 + 1,
        max_term_seconds=86400,
    )
    doc = _dict(terms)
    assert doc["categories"] == ["image"]  # as typed on the command line
    assert doc["refused_purposes"] == ["direct-marketing"]
    assert doc["max_term_seconds"] == 86400  # a number
    assert doc["price_per_day_minor"] == str(2**53 + 1)  # beyond a double's exact integers
    assert doc["media"] == []  # zero values present
    assert doc["currency"] == ""
    request = records_pb2.LicenceRequest(request_id=b"\x01" * 16, advertiser_key=b"\x02" * 32)
    doc = _dict(request)
    assert doc["request_id"] == "01" * 16
    assert doc["advertiser_key"] == PublicKey(b"\x02" * 32).text
    assert doc["state"] == "REQUEST_STATE_UNSPECIFIED"
