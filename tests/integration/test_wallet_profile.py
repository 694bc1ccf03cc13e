"""``licentia-wallet profile``: the holder chooses whether advertisers see her display name in
her offers (they do not by default), and they never see her handle."""

from __future__ import annotations

from pathlib import Path

import pytest

from licentia.v1 import exchange_pb2

from .exchange_harness import Exchange, register_advertiser
from .wallet_harness import Wallet, set_up


def test_the_name_is_shown_only_when_she_chooses_it(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    w = Wallet(tmp_path, ex.address, capsys)
    assert w("init", "--yes")[0] == 0
    set_up(w, tmp_path)  # registered with the name "Alice", not shown
    adv = ex.party()
    register_advertiser(adv)

    def shown() -> list[str]:
        offers = adv.call(
            exchange_pb2,
            "SearchOffers",
            exchange_pb2.SearchOffersRequest(),
            exchange_pb2.SearchOffersResponse,
        ).offers
        return [o.display_name for o in offers]

    code, out, _ = w("profile", "show")
    assert code == 0
    assert "Handle: alice (never shown to advertisers)" in out
    assert "Alice (not shown" in out
    assert shown() == [""]
    code, out, _ = w("profile", "set", "--show-name")
    assert code == 0
    assert "Alice (shown to advertisers in your offers)" in out
    assert shown() == ["Alice"]
    assert w.json("profile", "set", "--name", "Alice Martin")["show_display_name"] is True
    assert shown() == ["Alice Martin"]
    assert w.json("profile", "set", "--hide-name")["display_name"] == "Alice Martin"
    assert shown() == [""]
    assert w.json("profile", "set", "--no-name", "--show-name").get("display_name", "") == ""
    assert shown() == [""]
    # Nothing to change, or two choices at once: misuse, nothing changed.
    code, _, err = w("profile", "set")
    assert code == 2
    assert "say what to change" in err
    code, _, _ = w("profile", "set", "--show-name", "--hide-name")
    assert code == 2
    code, _, _ = w("profile", "set", "--name", "A", "--no-name")
    assert code == 2
    assert w.json("profile", "show")["show_display_name"] is True


def test_registering_with_show_name_shows_it_at_once(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    w = Wallet(tmp_path, ex.address, capsys)
    assert w("init", "--yes")[0] == 0
    doc = w.json("register", "--handle", "bea", "--name", "Bea", "--show-name")
    assert doc["show_display_name"] is True
    assert doc["display_name"] == "Bea"
