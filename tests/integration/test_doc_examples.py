"""Every ```python block of README.md and docs/*.md runs, against a real local exchange.

The convention (README, "The advertiser SDK"): the blocks of one file run in order as one
session (one namespace, like a notebook), each file in a fresh working directory; examples
address the exchange named by ``LICENTIA_SERVER`` (this test's exchange; ``localhost:7700``
for a reader). The exchange holds a holder who offers a photo (image, marketing, online and
social, EU) under a standing rule, so a request within it is issued at once, and
``LICENTIA_ADVERTISER_KEY`` names an advertiser, registered by an earlier run, that the
operator has credited since (with
``licentia-server deposit``, as the README says). ``LICENTIA_KEY_PASSPHRASE`` lets key files
be created without a terminal. A failure names the file and the line of the block; the
traceback's line numbers are the file's.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from licentia.clients.advertiser import Advertiser
from licentia.clients.keyfile import seed_text
from licentia.keys import PrivateKey
from licentia.services.server import main as server_main

from .exchange_harness import (
    Exchange,
    add_standing_rule,
    photo_rule,
    register_holder,
    start_exchange,
)
from .readme_harness import DOCS, ROOT, python_blocks

WITH_EXAMPLES = [p for p in DOCS if python_blocks(p)]


def test_the_readme_has_examples() -> None:
    """The test finds the README's examples (a fence it cannot read would skip them)."""
    assert ROOT / "README.md" in WITH_EXAMPLES
    assert len(python_blocks(ROOT / "README.md")) >= 4


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Exchange, PrivateKey]]:
    """A local exchange with a holder offering a photo under a standing rule, and an
    advertiser key the operator credited."""
    ex = start_exchange(tmp_path_factory.mktemp("exchange") / "data")
    try:
        holder = ex.party()
        register_holder(holder, "demo")
        add_standing_rule(holder, photo_rule(holder.key.public, int(time.time())))
        advertiser = PrivateKey.generate()
        with Advertiser.connect(ex.address, advertiser) as adv:  # a first run registered it
            adv.register("Acme Ads", "FR")
        # The operator's deposit, exactly as the README shows it.
        deposit = [advertiser.public.text, "500000", "BANK-REF-0001"]
        argv = ["deposit", *deposit, "--data-dir", str(ex.data_dir), "--connect", ex.address]
        assert server_main(argv) == 0
        yield ex, advertiser
    finally:
        ex.stop()


@pytest.mark.parametrize("doc", WITH_EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_example_runs(
    doc: Path,
    world: tuple[Exchange, PrivateKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ex, advertiser = world
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LICENTIA_SERVER", ex.address)
    monkeypatch.setenv("LICENTIA_ADVERTISER_KEY", seed_text(advertiser))
    monkeypatch.setenv("LICENTIA_KEY_PASSPHRASE", "correct horse battery")
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    name = str(doc.relative_to(ROOT))
    for line, code in python_blocks(doc):
        # Padded so that the traceback's line numbers are the document's.
        source = "\n" * (line - 1) + code
        try:
            exec(compile(source, str(doc), "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - any failure of an example is reported
            pytest.fail(
                f"{name}, the python block at line {line}: {type(e).__name__}: {e}\n"
                + "".join(traceback.format_exception(e)[-6:]),
                pytrace=False,
            )
    if doc.name == "README.md":
        # The story went the whole way: licensed, presented, allowed once, then a replay.
        out = capsys.readouterr().out.splitlines()
        assert any(line.startswith("lpr1.") for line in out), out
        assert "ALLOW" in out, out
        assert "use 1 reported" in out, out
        assert "DENY REPLAYED" in out, out
        assert "licensed-photo.jpg held" in out, out  # a declared asset, uploaded bare
        assert "banner-signed.png allow" in out, out  # the creative signed with its licence
        assert not (tmp_path / "acme.key").exists()  # LICENTIA_ADVERTISER_KEY came first
        assert (tmp_path / "photoshare.key").stat().st_mode & 0o777 == 0o600
