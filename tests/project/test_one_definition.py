"""One definition for each value: enums mirror the generated ones, method paths come from the
service descriptors, and nothing spells either out by hand again."""

from __future__ import annotations

import enum
import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import licentia.v1
from licentia import methods
from licentia.v1 import (
    ledger_pb2,
    licences_pb2,
    reason_pb2,
    records_pb2,
    registry_pb2,
    verification_pb2,
    vocabulary_pb2,
)

ROOT = Path(__file__).resolve().parents[2]

#: Every Python enum of the project that mirrors a proto enum: (module, class) -> the
#: generated enum and the prefix its value names carry.
MIRRORS: dict[tuple[str, str], tuple[object, str]] = {
    ("licentia.errors", "Reason"): (reason_pb2.Reason, "REASON_"),
    ("licentia.vocabulary", "DataCategory"): (vocabulary_pb2.DataCategory, "DATA_CATEGORY_"),
    ("licentia.vocabulary", "Purpose"): (vocabulary_pb2.Purpose, "PURPOSE_"),
    ("licentia.vocabulary", "Medium"): (vocabulary_pb2.Medium, "MEDIUM_"),
    ("licentia.states", "PartyRole"): (records_pb2.PartyRole, "PARTY_ROLE_"),
    ("licentia.states", "RequestState"): (records_pb2.RequestState, "REQUEST_STATE_"),
    ("licentia.states", "LicenceState"): (records_pb2.LicenceState, "LICENCE_STATE_"),
    ("licentia.states", "TerminationCause"): (licences_pb2.TerminationCause, "TERMINATION_CAUSE_"),
    # a string enum: its values are the names, which is how the ledger stores them
    ("licentia.services.ledger", "Kind"): (ledger_pb2.PostingKind, "POSTING_KIND_"),
}

#: The packages whose modules are searched for enums.
PACKAGES = ("licentia", "licentia.services", "licentia.clients")


def _modules() -> list[ModuleType]:
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(package)
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            if info.name.startswith("licentia.v1"):
                continue  # generated code
            found.append(importlib.import_module(info.name))
    return found


def _project_enums() -> set[tuple[str, str]]:
    return {
        (module.__name__, name)
        for module in _modules()
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, enum.Enum)
        and value.__module__ == module.__name__
    }


@pytest.mark.parametrize("where", sorted(MIRRORS), ids=".".join)
def test_python_enums_mirror_the_proto(where: tuple[str, str]) -> None:
    proto = MIRRORS[where]
    py = getattr(importlib.import_module(where[0]), where[1])
    pb, prefix = proto
    wire = {
        name.removeprefix(prefix): num
        for name, num in pb.items()  # type: ignore[attr-defined]
        if num != 0
    }
    if issubclass(py, enum.IntEnum):
        assert {m.name: m.value for m in py} == wire
    else:
        assert {m.name: m.value for m in py} == {name: name for name in wire}


def test_every_enum_of_the_project_is_a_checked_mirror() -> None:
    """A new enum (a copy of a proto enum, say) fails here until it is in MIRRORS; a copy of
    one already there is refused outright: each proto enum has one Python definition."""
    assert _project_enums() == set(MIRRORS)
    protos = [pb for pb, _ in MIRRORS.values()]
    assert len({id(pb) for pb in protos}) == len(protos)


def test_the_record_states_are_the_ones_the_services_and_the_sdk_use() -> None:
    states = importlib.import_module("licentia.states")
    model = importlib.import_module("licentia.services.model")
    sdk = importlib.import_module("licentia.clients.advertiser")
    assert model.Role is states.PartyRole
    assert model.RequestState is states.RequestState
    assert model.Cause is states.TerminationCause
    assert sdk.RequestState is states.RequestState
    assert sdk.LicenceState is states.LicenceState
    assert sdk.TerminationCause is states.TerminationCause


# -- method paths ------------------------------------------------------------------------------


def test_a_method_path_comes_from_the_descriptor() -> None:
    assert (
        methods.path(licences_pb2, "RevokeLicence") == "/licentia.v1.LicenceService/RevokeLicence"
    )
    verification = verification_pb2.DESCRIPTOR.services_by_name["VerificationService"]
    assert methods.path(verification, "Verify") == "/licentia.v1.VerificationService/Verify"
    assert methods.service(registry_pb2).full_name == "licentia.v1.RegistryService"


def test_a_method_path_refuses_what_the_service_does_not_have() -> None:
    with pytest.raises(KeyError, match="RevokeLicense"):
        methods.path(licences_pb2, "RevokeLicense")
    with pytest.raises(ValueError, match="0 services"):
        methods.path(records_pb2, "GetProfile")


def test_every_generated_method_has_its_path() -> None:
    """The committed ``*_grpc.py`` stubs name the same paths as the helper, for every method."""
    for info in pkgutil.iter_modules(licentia.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"licentia.v1.{info.name}")
        stub = (ROOT / "proto" / "licentia" / "v1" / f"{info.name}_grpc.py").read_text()
        for svc in module.DESCRIPTOR.services_by_name.values():
            for md in svc.methods:
                assert f"'{methods.path(svc, md.name)}'" in stub


#: The quote before the path is what makes it a hand-written string (docstrings may name a
#: path in backquotes).
HAND_WRITTEN = re.compile("[\"']/" + re.escape("licentia.v1."))
#: This file states, once, what the helper's paths look like.
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()


def test_no_method_path_is_written_by_hand() -> None:
    found = []
    for top in ("proto/licentia", "transport", "services", "clients", "tests", "bench", "demo"):
        for file in sorted((ROOT / top).rglob("*.py")):
            rel = file.relative_to(ROOT).as_posix()
            if file.name.endswith(("_pb2.py", "_pb2_grpc.py")) or rel == SELF:
                continue
            for n, line in enumerate(file.read_text().splitlines(), 1):
                if HAND_WRITTEN.search(line):
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert found == [], "use licentia.methods.path:\n" + "\n".join(found)


# -- declared public APIs ----------------------------------------------------------------------

#: The packages a caller imports from, each with its ``__all__``.
API_PACKAGES = (
    "licentia.services",
    "licentia.services.store",
    "licentia.transport",
    "licentia.clients.advertiser",
    "licentia.clients.holder",
    "licentia.clients.verifier",
    "licentia.clients.auditor",
)


def _core_modules() -> list[ModuleType]:
    package = importlib.import_module("licentia")
    return [
        importlib.import_module(info.name)
        for info in pkgutil.iter_modules(package.__path__, "licentia.")
        if not info.ispkg
    ]


@pytest.mark.parametrize("name", API_PACKAGES)
def test_each_package_declares_its_public_api(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__all__
    for exported in package.__all__:
        assert hasattr(package, exported), exported


def test_each_core_module_declares_every_public_class_and_function() -> None:
    for module in _core_modules():
        declared = set(module.__all__)
        assert all(hasattr(module, n) for n in declared), module.__name__
        defined = {
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
            and (isinstance(v, type) or callable(v))
        }
        assert defined <= declared, (module.__name__, sorted(defined - declared))
