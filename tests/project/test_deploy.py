"""deploy/: the systemd unit (checked by ``systemd-analyze``), the Containerfile (read, not
built: no network in the tests) and the sample config (checked by ``check-config``).
The PostgreSQL roles are tested against a real server in
tests/integration/test_deploy_postgres.py."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from licentia.services.server import main as server_main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "licentia.service"
#: Where the unit expects the package (a venv in /opt/licentia).
INSTALLED = "/opt/licentia/bin/"
SANDBOX = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "DynamicUser": "yes",
    "StateDirectory": "licentia",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
}


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    return unit


def _scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def test_the_unit_is_sandboxed_and_runs_a_console_script() -> None:
    service = _unit()["Service"]
    for key, value in SANDBOX.items():
        assert service.get(key) == value, key
    for key in ("ExecStart", "ExecStartPre"):
        program = service[key].split()[0]
        assert program.startswith(INSTALLED)
        assert program.removeprefix(INSTALLED) in _scripts()
    assert "check-config" in service["ExecStartPre"]
    # Settings live in the config file: a LICENTIA_* variable in the unit would win over it.
    variables = [line for line in UNIT.read_text().splitlines() if line.startswith("Environment=")]
    assert variables == ["Environment=LICENTIA_CONFIG=/etc/licentia/licentia.toml"]


def test_the_unit_leaves_proc_stat_to_the_metrics_and_keeps_the_tls_key_secret() -> None:
    service = _unit()["Service"]
    assert service.get("ProtectProc") == "invisible"
    # ProcSubset=pid hides /proc/stat: prometheus-client's process metrics would vanish.
    assert "ProcSubset" not in service
    # The key is a secret: no comment may call its directory's contents public.
    assert "no secret in it" not in UNIT.read_text()
    assert "LoadCredential=server.key:" in UNIT.read_text()
    assert "0600" in UNIT.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit_and_rates_it_exposed_little(tmp_path: Path) -> None:
    # The unit names the installed program; point it at this checkout's, which exists.
    bin_dir = Path(sys.executable).parent
    unit = tmp_path / "licentia.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, f"{bin_dir}/"))
    assert (bin_dir / "licentia-server").exists()
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert "licentia.service" not in verified.stderr, verified.stderr  # no warning about it
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert found, security.stdout[-2000:] + security.stderr
    assert float(found.group(1)) <= 2.0  # systemd's "OK" band


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_containerfile_pins_its_base_runs_unprivileged_and_starts_the_server() -> None:
    steps = _instructions()
    (base,) = [rest for word, rest in steps if word == "FROM"]
    # A full release (x.y.z) or a digest: never a moving tag such as python:3 or :latest.
    assert re.search(r":\d+\.\d+\.\d+[-\w]*(@sha256:[0-9a-f]{64})?$", base), base
    assert "slim" in base
    users = [rest for word, rest in steps if word == "USER"]
    assert users, "no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    (entry,) = [rest for word, rest in steps if word == "ENTRYPOINT"]
    program = json.loads(entry)[0]
    assert program in _scripts()
    assert program == "licentia-server"
    # The package is installed from the files it copies, and those exist.
    assert any(word == "RUN" and "pip install /src" in rest for word, rest in steps)
    for word, rest in steps:
        if word == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
    # Every source tree the package is built from (pyproject's package-dir) is copied in.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    trees = {d.split("/")[0] for d in project["tool"]["setuptools"]["package-dir"].values()}
    copied = {src for w, rest in steps if w == "COPY" for src in rest.split()[:-1]}
    assert trees <= copied, trees - copied
    assert project["project"]["readme"] in copied
    # The user step comes after every step that needs root.
    assert [w for w, _ in steps].index("USER") > max(
        i for i, (w, _) in enumerate(steps) if w == "RUN"
    )


def test_the_sample_config_is_one_check_config_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("server.pem", "server.key"):
        (tmp_path / name).write_text("-")
    sample = (DEPLOY / "licentia.toml").read_text()
    cfg = tmp_path / "licentia.toml"
    cfg.write_text(sample.replace("/run/credentials/licentia.service", str(tmp_path)))
    monkeypatch.delenv("LICENTIA_PROCESSES", raising=False)
    assert server_main(["check-config", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert 'listen = "0.0.0.0:7700"  # file' in out
    # Its TLS files unreadable: check-config says so and exits 1.
    (tmp_path / "server.key").unlink()
    assert server_main(["check-config", "--config", str(cfg)]) == 1
    assert "server.key: cannot be read" in capsys.readouterr().err
