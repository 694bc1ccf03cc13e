"""licentia-wallet as a person meets it: global flags in either position, Ctrl-C and Ctrl-D at
a prompt, one prompt order, new passphrases asked again, TLS by default, --version and shell
completion."""

from __future__ import annotations

import builtins
import getpass
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from licentia.clients.wallet.cli import main
from licentia.keys import PublicKey
from licentia.services.app import build
from licentia.services.deps import Settings
from licentia.services.runtime import ServerSettings, start
from licentia.v1 import licences_pb2

from .exchange_harness import PHOTO_SHA, Exchange, register_advertiser, request_licence
from .wallet_harness import PASS, Wallet, ready_wallet


class _Terminal(io.StringIO):
    """A stdin that says it is a terminal (the prompts are faked beside it)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def env_wallet(
    tmp_path: Path,
    ex: Exchange,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Wallet:
    """A registered wallet that is also the default one (LICENTIA_WALLET, LICENTIA_SERVER):
    a global flag that were ignored would fall back to it, and the command succeed."""
    w = Wallet(tmp_path, ex.address, capsys)
    assert w("init", "--yes", "--no-recovery")[0] == 0
    assert w("register", "--handle", "dora")[0] == 0
    monkeypatch.setenv("LICENTIA_WALLET", str(w.path))
    monkeypatch.setenv("LICENTIA_SERVER", ex.address)
    monkeypatch.delenv("LICENTIA_TLS_CA", raising=False)
    return w


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("position", ["before", "after"])
def test_every_global_flag_counts_before_and_after_the_command(
    position: str, env_wallet: Wallet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(flags: list[str], *command: str) -> tuple[int, str, str]:
        argv = [*flags, *command] if position == "before" else [*command, *flags]
        return _run(capsys, *argv)

    plain = ["--insecure", "--passphrase-file", str(env_wallet.pass_file)]
    assert run(plain, "licences")[0] == 0  # the defaults work: the flags below change them
    missing = tmp_path / "nowhere" / "w.json"
    code, out, err = run(["--wallet", str(missing)], "whoami")
    assert (code, out) == (1, "")
    assert str(missing) in err
    code, _, err = run([*plain, "--server", "127.0.0.1:1"], "licences")
    assert code == 3
    assert "could not reach the exchange at 127.0.0.1:1" in err
    code, out, _ = run(["--json"], "whoami")
    assert code == 0
    assert json.loads(out)["public_key"].startswith("ed25519:")
    code, _, err = run(["--insecure", "--passphrase-file", str(tmp_path / "no-pass")], "licences")
    assert code == 1
    assert "cannot read the passphrase file" in err
    # TLS unless --insecure: the test exchange speaks plain gRPC, so the handshake fails
    code, _, err = run(["--passphrase-file", str(env_wallet.pass_file)], "licences")
    assert code == 3
    assert "--insecure" in err
    code, _, err = run([*plain[1:], "--tls-ca", str(tmp_path / "no-ca.pem")], "licences")
    assert code == 1
    assert "cannot read --tls-ca" in err
    code, _, err = run(["--insecure", "--tls-ca", str(tmp_path / "no-ca.pem")], "whoami")
    assert code == 0  # whoami talks to nobody
    code, out, _ = run(["--version"], "licences")
    assert code == 0
    assert out.startswith("licentia-wallet ")


def test_a_global_flag_after_the_command_wins_over_one_before(
    env_wallet: Wallet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "--wallet", str(env_wallet.path), "whoami", "--wallet", "/x.json")
    assert code == 1
    assert "/x.json" in err
    code, _, err = _run(capsys, "profile", "show", "--wallet", "/y.json")  # nested commands too
    assert code == 1
    assert "/y.json" in err


def test_ctrl_c_and_ctrl_d_at_a_prompt_end_quietly(
    env_wallet: Wallet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal())

    def interrupt(prompt: str = "") -> str:
        raise KeyboardInterrupt

    def end_of_input(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", interrupt)
    code, out, err = _run(capsys, "licences", "--insecure")
    assert (code, out) == (130, "")
    assert "Traceback" not in err
    assert err.strip() == ""
    code, _, err = _run(capsys, "licences", "--insecure", "--json")
    assert code == 130
    assert json.loads(err) == {"error": {"reason": "INTERRUPTED", "message": "interrupted"}}
    monkeypatch.setattr(getpass, "getpass", end_of_input)
    code, out, err = _run(capsys, "licences", "--insecure")
    assert (code, out) == (1, "")
    assert err == "licentia-wallet: error: no answer (end of input): nothing was done\n"
    # at a yes/no question, after the passphrase
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": PASS)
    monkeypatch.setattr(builtins, "input", end_of_input)
    code, _, err = _run(capsys, "erase", "--insecure")
    assert code == 1
    assert err.count("\n") == 1
    assert "no answer" in err
    monkeypatch.setattr(builtins, "input", interrupt)
    assert _run(capsys, "erase", "--insecure")[0] == 130


def test_the_passphrase_is_asked_before_any_yes_no_question(
    env_wallet: Wallet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def passphrase(prompt: str = "") -> str:
        asked.append("passphrase")
        return PASS

    def question(prompt: str = "") -> str:
        asked.append("question")
        return "n"

    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(getpass, "getpass", passphrase)
    monkeypatch.setattr(builtins, "input", question)
    code, _, err = _run(capsys, "erase", "--insecure")
    assert code == 1
    assert "nothing done" in err
    assert asked == ["passphrase", "question"]


def test_a_new_passphrase_too_short_or_mismatched_is_asked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = tmp_path / "w.json"
    typed = iter(["short", "long enough one", "not the same", "long enough one", "long enough one"])
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    code, _, err = _run(capsys, "init", "--no-recovery", "--wallet", str(wallet))
    assert code == 0, err
    assert "at least" in err
    assert "differ: try again" in err
    assert wallet.exists()
    # three wrong tries end it, and nothing is made
    typed = iter(["a", "b", "c"])
    code, _, err = _run(capsys, "init", "--no-recovery", "--wallet", str(tmp_path / "x.json"))
    assert code == 1
    assert "nothing was done" in err
    assert not (tmp_path / "x.json").exists()

    # init on an existing wallet says so before asking anything
    def never(prompt: str = "") -> str:
        raise AssertionError("asked")

    monkeypatch.setattr(getpass, "getpass", never)
    code, _, err = _run(capsys, "init", "--wallet", str(wallet))
    assert code == 1
    assert "exists" in err


def test_version_and_completion(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--version"], ["inbox", "--version"], ["rules", "list", "--version"]):
        code, out, _ = _run(capsys, *argv)
        assert code == 0, argv
        assert out.startswith("licentia-wallet ")
    code, out, _ = _run(capsys, "completion", "bash")
    assert code == 0
    assert "complete " in out
    assert "licentia-wallet" in out
    code, _, err = _run(capsys, "completion", "cmd.exe")
    assert code == 2
    assert "invalid choice" in err
    code, _, err = _run(capsys, "completion", "cmd.exe", "--json")
    assert code == 2
    assert json.loads(err)["error"]["reason"] == "USAGE"


def _openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_exchange(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real exchange speaking TLS with a certificate of a test CA: (address, CA file)."""
    d = tmp_path / "pki"
    d.mkdir()
    ca_key, ca, key, csr, cert = (
        d / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    )
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
    )
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=localhost",
    )
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    log = logging.getLogger("licentia.test")
    app = build(tmp_path / "tls-data", settings=Settings(heartbeat_seconds=0.5), log=log)
    server = start(
        ServerSettings(address="127.0.0.1:0", max_workers=16, tls_cert=cert, tls_key=key),
        app.handlers,
        app.service_names,
        log,
    )
    try:
        yield server.address, ca
    finally:
        server.stop(0.5)
        app.close()


def test_the_wallet_talks_tls_to_an_exchange_it_trusts(
    tls_exchange: tuple[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address, ca = tls_exchange
    monkeypatch.delenv("LICENTIA_TLS_CA", raising=False)
    w = tmp_path / "w.json"
    pass_file = tmp_path / "pass"
    pass_file.write_text(PASS + "\n")
    base = ["--wallet", str(w), "--server", address, "--passphrase-file", str(pass_file)]
    assert _run(capsys, "init", "--yes", "--no-recovery", *base)[0] == 0
    code, _, err = _run(capsys, "register", "--handle", "tess", *base, "--tls-ca", str(ca))
    assert code == 0, err
    # the system's CA store does not know the test CA: refused, nothing sent in clear
    code, _, err = _run(capsys, "profile", "show", *base)
    assert code == 3
    assert f"could not reach the exchange at {address}" in err
    # plain text to a TLS exchange fails too
    assert _run(capsys, "profile", "show", *base, "--insecure")[0] == 3
    monkeypatch.setenv("LICENTIA_TLS_CA", str(ca))
    code, out, err = _run(capsys, "profile", "show", *base)
    assert code == 0, err
    assert "tess" in out


def test_a_terms_file_with_an_unknown_key_is_refused_with_the_nearest_name(
    env_wallet: Wallet, tmp_path: Path
) -> None:
    toml = tmp_path / "terms.toml"
    toml.write_text(
        'categories = ["image"]\npurposes = ["advertising"]\nmedia = ["online"]\n'
        'territories = ["FR"]\nprice_per_day = "1.00"\nmax_dayz = 30\n'
    )
    code, out, err = env_wallet("terms", "set", "--file", str(toml))
    assert (code, out) == (1, "")
    assert "unknown key 'max_dayz' (did you mean 'max_days'?)" in err
    assert env_wallet("terms", "show")[1].startswith("No terms yet")  # nothing was sent
    toml.write_text(toml.read_text().replace("max_dayz = 30\n", "colour = 'blue'\n"))
    code, _, err = env_wallet("terms", "set", "--file", str(toml))
    assert code == 1
    assert "unknown key 'colour' (valid: categories, purposes" in err
    toml.write_text(toml.read_text().replace("colour = 'blue'\n", "max_days = 30\n"))
    assert env_wallet.json("terms", "set", "--file", str(toml))["max_term_seconds"] == 30 * 86400


def test_advertisers_are_named_by_organisation_and_the_objection_is_shown(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = ready_wallet(tmp_path, ex.address, capsys)
    adv = ex.party()
    register_advertiser(adv, org="Maison Dupont")
    short = PublicKey(adv.key.public.raw).text[:20] + "…"
    me = PublicKey.from_text(w.json("whoami")["public_key"]).raw
    asked = request_licence(adv, me).request
    assert f"Who:         Maison Dupont ({short})" in w("inbox")[1]
    lid = w.json("approve", asked.request_id.hex(), "--yes")["licence_id"]
    assert f"Maison Dupont ({short})" in w("licences")[1]
    code, out, _ = w("show", lid[:8])
    assert code == 0
    assert f"Who:         Maison Dupont ({short})" in out
    assert "licensee ed25519:" not in out
    adv.call(
        licences_pb2,
        "FetchAsset",
        licences_pb2.FetchAssetRequest(licence_id=bytes.fromhex(lid), sha256=PHOTO_SHA),
        licences_pb2.FetchAssetResponse,
    )
    assert f"by Maison Dupont ({short})" in w("accesses")[1]
    assert "Requests: open" in w("status")[1]
    assert w("opt-out")[0] == 0
    code, out, _ = w("status")
    assert "Requests: you have opted out" in out
    assert "opted out" in w("profile", "show")[1]


def test_the_shell_completes_commands_and_global_flags(tmp_path: Path) -> None:
    """What bash asks of the real program (argcomplete's protocol), and what it answers."""
    answer = tmp_path / "completions"

    def complete(line: str) -> list[str]:
        env = {
            **os.environ,
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_IFS": "\v",
            "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
        }
        cmd = [sys.executable, "-m", "licentia.clients.wallet.cli"]
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return answer.read_text().split("\v")

    assert complete("licentia-wallet rul") == ["rules "]
    assert complete("licentia-wallet rules li") == ["list "]
    assert "--insecure " in complete("licentia-wallet inbox --ins")


def test_init_without_a_terminal_refuses_before_showing_a_phrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script that forgot --yes is refused, and no recovery phrase (a secret, for a wallet
    that will not exist) is printed into its log first."""
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal
    pass_file = tmp_path / "pass"
    pass_file.write_text(PASS + "\n")
    wallet = tmp_path / "w.json"
    argv = ["init", "--wallet", str(wallet), "--passphrase-file", str(pass_file)]
    code, out, err = _run(capsys, *argv)
    assert code == 1
    assert "no terminal to check that you wrote the words down" in err
    assert "--yes" in err
    assert "recovery phrase" not in out + err.split("error:")[0], (out, err)
    assert not wallet.exists()
