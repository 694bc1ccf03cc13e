"""The wallet's uploads: a file checked before any passphrase is asked, and a progress bar on
stderr for long transfers (no dependency), shown only once a transfer has taken more than a
second, so quick ones print nothing."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from licentia import keys

from .session import OperationFailedError, Session

#: A transfer shorter than this shows no bar (seconds).
QUIET_SECONDS = 1.0
WIDTH = 30


class ProgressBar:
    """``bar(done, total)`` after each step of a transfer of ``total`` bytes: redraws one
    line on ``stream`` (stderr), ending it when the transfer is done."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.shown and time.monotonic() - self.started < QUIET_SECONDS:
            return
        self.shown = True
        out = self.stream or sys.stderr
        part = done / total if total else 1.0
        filled = int(WIDTH * part)
        out.write(
            f"\r{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {int(part * 100):3d}%"
            f" {done / 2**20:.1f}/{total / 2**20:.1f} MiB"
        )
        if done >= total:
            out.write("\n")
        out.flush()


def check_upload(s: Session, path: Path) -> None:
    """Refuse, before any passphrase is asked, a file the exchange would not store: not a
    file, empty, or over the exchange's cap (read from its public GetAssetLimits)."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise OperationFailedError(f"cannot read {path}: {e.strerror}") from None
    if not path.is_file():
        raise OperationFailedError(f"{path} is not a file")
    if size == 0:
        raise OperationFailedError(f"{path} is empty: nothing to upload")
    cap = s.connect(keys.PrivateKey.generate()).asset_limits().max_asset_bytes  # public: unsigned
    if size > cap:
        raise OperationFailedError(
            f"{path.name} is {size} bytes ({size / 2**20:.1f} MiB); this exchange stores at"
            f" most {cap} bytes ({cap / 2**20:.1f} MiB): nothing was sent"
        )
