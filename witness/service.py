"""The witness: an add-checkpoint request in, cosignature lines out, the state advanced in
between (c2sp.org/tlog-witness). Blocking (signatures, an SQLite commit): the HTTP server
calls it from an executor. The witness's own key may be Ed25519 or SM2, whatever the suite
of the logs it witnesses (ledger.cosignature)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ledger.cosignature import CosignerSigner, CosignerVerifier

from .decide import decide
from .errors import Inconsistent
from .home import open_home
from .request import parse_add_checkpoint
from .store import WitnessStore


class Witness:
    def __init__(
        self,
        signer: CosignerSigner,
        store: WitnessStore,
        *,
        clock: Callable[[], float] = time.time,
        before_persist: Callable[[], object] | None = None,
    ) -> None:
        self.signer = signer
        self.store = store
        self._clock = clock
        # Tests only: runs between the decision and the compare-and-swap, to race requests.
        self._before_persist = before_persist

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        clock: Callable[[], float] = time.time,
        before_persist: Callable[[], object] | None = None,
    ) -> Witness:
        signer, store = open_home(directory)
        return cls(signer, store, clock=clock, before_persist=before_persist)

    @property
    def verifier(self) -> CosignerVerifier:
        return self.signer.verifier

    def close(self) -> None:
        self.store.close()

    def _now(self) -> int:
        # A cosignature/v1 timestamp is never 0 (tlog-witness, add-checkpoint).
        return max(1, int(self._clock()))

    def add_checkpoint(self, body: bytes) -> str:
        """The cosignature line(s) for the checkpoint in ``body``, once the witness has
        recorded it as the latest for its log; a ``Rejection`` otherwise."""
        request = parse_add_checkpoint(body)
        origin = request.signed.checkpoint.origin
        view = self.store.log_view(origin)
        try:
            accepted = decide(request, view)
        except Inconsistent as exc:
            # Validly signed by the log, yet inconsistent with what was cosigned: evidence of
            # a split view, kept (tlog-witness: the witness MAY log it, MUST NOT cosign it).
            # A 409 is not kept: it is how a log learns the witness's size.
            self.store.record_refusal(
                origin, self._now(), exc.status, exc.detail, body.decode("utf-8")
            )
            raise
        assert view is not None
        timestamp = self._now()
        line = self.signer.cosign(accepted.body, timestamp).line()
        # What the monitoring read serves: the body, the log's verified signatures, ours.
        note = accepted.body.decode("utf-8") + "\n" + "".join(accepted.log_signatures) + line
        if self._before_persist is not None:
            self._before_persist()
        cp = accepted.checkpoint
        self.store.advance(view, cp.size, cp.root_hash, note, timestamp)
        return line
