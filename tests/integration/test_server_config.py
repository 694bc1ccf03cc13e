"""``licentia-server --config``, ``check-config``, ``check-ledger`` and ``migrate``.

A config file sets every flag; the environment wins over it and a flag over both; an
unknown key or a value of the wrong type is refused naming it (and the nearest valid key),
and nothing is made. ``check-config`` prints what ``serve`` would run with, secrets
redacted; ``check-ledger`` runs the ledger's invariants against a store, read only.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from licentia.services import config
from licentia.services.app import DB_FILE
from licentia.services.server import _parser, main

from .exchange_harness import Exchange, register_advertiser, wait_for


@pytest.fixture(autouse=True)
def _no_licentia_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("LICENTIA_"):
            monkeypatch.delenv(k)


def _settings(out: str) -> dict[str, tuple[str, str]]:
    """check-config's lines: key -> (value, source)."""
    found = {}
    for line in out.splitlines():
        if line.startswith("#"):
            continue
        key, _, rest = line.partition(" = ")
        value, _, source = rest.partition("  # ")
        found[key] = (value, source)
    return found


def test_flags_win_over_the_environment_which_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "licentia.toml"
    cfg.write_text(
        'listen = "127.0.0.1:7711"\n'
        "max_term_days = 30\n"  # underscores or dashes
        "fee-bps = 500\n"
        "workers = 64\n"
        'services = ["registry", "exchange", "licences", "verification"]\n'
        'db = "postgresql://exchange:hunter2@db.example/licentia"\n'
        "payout-delay-hours = 1\n"
    )
    monkeypatch.setenv("LICENTIA_FEE_BPS", "700")
    monkeypatch.setenv("LICENTIA_WORKERS", "40")
    assert main(["check-config", "--config", str(cfg), "--workers", "50"]) == 0
    out = capsys.readouterr().out
    got = _settings(out)
    assert got["listen"] == ('"127.0.0.1:7711"', "file")
    assert got["max-term-days"] == ("30", "file")
    assert got["fee-bps"] == ("700", "LICENTIA_FEE_BPS")
    assert got["workers"] == ("50", "flag")
    assert got["services"] == ('"registry,exchange,licences,verification"', "file")
    assert got["payout-delay-hours"] == ("1.0", "file")
    assert got["currency"] == ('"EUR"', "default")
    # The password in the database URL is never printed.
    assert "hunter2" not in out
    assert got["db"] == ('"postgresql://exchange:***@db.example/licentia"', "file")
    # LICENTIA_CONFIG names the file as well.
    monkeypatch.setenv("LICENTIA_CONFIG", str(cfg))
    assert main(["check-config"]) == 0
    assert _settings(capsys.readouterr().out)["listen"] == ('"127.0.0.1:7711"', "file")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("workrs = 40\n", "unknown key 'workrs'; did you mean 'workers'?"),
        ("max_dayz = 3\n", "unknown key 'max_dayz'"),
        ('max-term-days = "30"\n', "max-term-days is a whole number"),
        ("follower = 1\n", "follower is true or false"),
        ("heartbeat-seconds = true\n", "heartbeat-seconds is a number"),
        ("listen = 7700\n", "listen is a string"),
        ("listen = [\n", "not TOML"),
        ("fee-bps = 9000\n", "--fee-bps is 0 to 5000"),  # the command's own check
    ],
)
def test_a_bad_config_file_is_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, says: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    data = tmp_path / "d"
    assert main(["check-config", "--config", str(cfg), "--data-dir", str(data)]) == 1
    assert says in capsys.readouterr().err
    assert main(["--config", str(cfg), "--data-dir", str(data), "--listen", "127.0.0.1:0"]) == 2
    assert says in capsys.readouterr().err
    assert not data.exists()  # refused before anything was made


def test_a_missing_config_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(tmp_path / "none.toml")]) == 1
    assert "none.toml" in capsys.readouterr().err


def test_every_flag_of_every_command_can_be_set_from_the_file() -> None:
    root = _parser()
    for name, sub in config.subcommands(root).items():
        for key, action in config.options(sub).items():
            if action.const is True:
                value: object = True
            elif action.type is int:
                value = 1
            elif action.type is float:
                value = 1.5
            else:
                value = "x"
            config.apply(root, name, {key.replace("-", "_"): value}, "t.toml", environ={})
            assert sub.get_default(action.dest) in (value, Path("x")), (name, key)


def test_serve_runs_from_the_config_file_alone(tmp_path: Path) -> None:
    cfg, port = tmp_path / "c.toml", tmp_path / "port"
    cfg.write_text(
        f'data-dir = "{tmp_path / "data"}"\nlisten = "127.0.0.1:0"\nport-file = "{port}"\n'
        "processes = 1\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICENTIA_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "licentia.services.server", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for(lambda: proc.poll() is not None or port.exists(), 30)
        assert proc.poll() is None
        assert (tmp_path / "data" / DB_FILE).exists()
    finally:
        proc.terminate()
        proc.wait(30)


def test_check_ledger_passes_on_a_sound_ledger_and_names_a_broken_balance(
    ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    register_advertiser(ex.party())  # a deposit: postings and balances
    assert main(["check-ledger", "--data-dir", str(ex.data_dir)]) == 0
    assert "the ledger is consistent" in capsys.readouterr().out
    with sqlite3.connect(ex.data_dir / DB_FILE) as db:
        db.execute("UPDATE balances SET balance = balance + 1 WHERE account_kind = 'advertiser'")
    assert main(["check-ledger", "--data-dir", str(ex.data_dir)]) == 1
    out = capsys.readouterr().out
    assert "its entries sum to" in out
    assert "NOT consistent" in out


def test_check_ledger_without_a_database_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-ledger", "--data-dir", str(tmp_path / "none")]) == 2
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_check_ledger_with_postgresql_unreachable_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 means an inconsistent ledger: a database it cannot reach is not that."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://licentia@127.0.0.1:{port}/licentia"
    assert main(["check-ledger", "--db", url, "--data-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert "cannot check the ledger" in err
    assert "unreachable" in err


def test_migrate_makes_the_sqlite_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["migrate", "--data-dir", str(data)]) == 0
    assert "is up to date" in capsys.readouterr().out
    assert (data / DB_FILE).exists()
    assert main(["rotate-key", "--data-dir", str(data)]) == 0  # a store the server can use


def test_check_ledger_on_a_store_behind_this_version_says_to_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read only, it migrates nothing: a store an older version left is refused with what to
    do, not read at its older schema (a traceback on the first missing table)."""
    data = tmp_path / "data"
    assert main(["migrate", "--data-dir", str(data)]) == 0
    with sqlite3.connect(data / DB_FILE) as db:  # as a version before m017 left it
        db.execute("DROP TABLE request_reserves")
        db.execute("DROP TABLE reserves")
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm017_reserves'")
    capsys.readouterr()
    assert main(["check-ledger", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert "m017_reserves" in err
    assert "migrate" in err
    assert "Traceback" not in err
    assert main(["migrate", "--data-dir", str(data)]) == 0
    assert main(["check-ledger", "--data-dir", str(data)]) == 0
