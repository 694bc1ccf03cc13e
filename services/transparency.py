"""TransparencyService: the public log's checkpoints, entries and proofs.

The store appends every issuance, revocation and issuer-key event to the log in the event's
own transaction (:meth:`~.store.sqlite.SqliteStore._log`); this servicer only reads, and
signs checkpoints with the exchange's log key (``log.key`` in the data directory).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from licentia.checkpoint import Checkpoint, sign_checkpoint, vkey
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.v1 import transparency_pb2

from .deps import Deps
from .rpc import Call, Method

#: Entries one GetEntries call returns at most.
MAX_ENTRIES = 1000


def evidence(call: Call) -> bytes:
    """The signed call as received (a serialized ``SignedCall``): logged with what it caused,
    so that anyone can check that the holder asked for it."""
    if call.signed is None:
        return b""
    return transparency_pb2.SignedCall(
        method=call.method,
        body=call.body,
        key=call.signed.key.raw,
        timestamp=call.signed.timestamp,
        nonce=call.signed.nonce,
        signature=call.signed.signature,
    ).SerializeToString(deterministic=True)


class TransparencyService:
    """The servicer of the public log (every method is public)."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.key: PrivateKey | None = deps.log_key
        self.origin = deps.settings.log_origin
        self.verifier_key = vkey(self.origin, self.key.public) if self.key is not None else ""
        self._lock = threading.Lock()
        self._signed: tuple[int, bytes, str] | None = None

    def methods(self) -> Mapping[str, Method]:
        """The handlers, by method name."""
        return {
            "GetCheckpoint": Method(self.get_checkpoint, signed=False),
            "GetEntries": Method(self.get_entries, signed=False),
            "GetInclusionProof": Method(self.get_inclusion_proof, signed=False),
            "GetConsistencyProof": Method(self.get_consistency_proof, signed=False),
        }

    def get_checkpoint(
        self, req: transparency_pb2.GetCheckpointRequest, call: Call
    ) -> transparency_pb2.GetCheckpointResponse:
        """The latest checkpoint, signed (signed once per tree size)."""
        if self.key is None:
            raise LicentiaError(Reason.NOT_SERVED, "this replica holds no log key")
        size, root = self.d.store.log_head()
        with self._lock:
            if self._signed is None or self._signed[:2] != (size, root):
                note = sign_checkpoint(Checkpoint(self.origin, size, root), self.origin, self.key)
                self._signed = (size, root, note)
            note = self._signed[2]
        return transparency_pb2.GetCheckpointResponse(
            checkpoint=note, verifier_key=self.verifier_key
        )

    def get_entries(
        self, req: transparency_pb2.GetEntriesRequest, call: Call
    ) -> Iterator[transparency_pb2.GetEntriesResponse]:
        """Entries ``[start, end)`` in order, at most :data:`MAX_ENTRIES`."""
        size = self.d.store.log_size()
        end = min(req.end or size, size, req.start + MAX_ENTRIES)
        if req.start > size or (req.end and req.end < req.start):
            raise LicentiaError(
                Reason.INVALID_REQUEST, f"the range must lie within the tree ({size} entries)"
            )
        for index, entry, at in self.d.store.log_entries(req.start, end):
            yield transparency_pb2.GetEntriesResponse(index=index, entry=entry, appended_at=at)

    def get_inclusion_proof(
        self, req: transparency_pb2.GetInclusionProofRequest, call: Call
    ) -> transparency_pb2.GetInclusionProofResponse:
        """The audit path of one entry (or of a licence's issuance entry)."""
        index = req.index
        if req.licence_id:
            found = (
                self.d.store.log_index_of_licence(req.licence_id)
                if len(req.licence_id) == 16
                else None
            )
            if found is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such licence in the log")
            index = found
        size, proof, entry = self.d.store.log_inclusion(index, req.tree_size)
        return transparency_pb2.GetInclusionProofResponse(
            index=index, tree_size=size, proof=proof, entry=entry
        )

    def get_consistency_proof(
        self, req: transparency_pb2.GetConsistencyProofRequest, call: Call
    ) -> transparency_pb2.GetConsistencyProofResponse:
        """The proof that the tree of ``old_size`` is a prefix of the tree of ``new_size``."""
        return transparency_pb2.GetConsistencyProofResponse(
            proof=self.d.store.log_consistency(req.old_size, req.new_size)
        )
