"""The receipt wire model (hub -> agent on ``.../receipts``) and the queue that sends them.

A receipt is what delivery means: QoS 1 only gets a message to the broker. Receipts are
sent strictly after the commit they report. If the broker link is down, queued receipts are
dropped: the agent resends the record and gets ``duplicate`` with the original index.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..metrics import HubMetrics

Status = Literal["accepted", "duplicate", "rejected"]


class Receipt(BaseModel):
    """``{id, status, index?, leaf_hash?, checkpoint?, reason?, detail?}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(max_length=64)] | None
    """The record's id; null when the message could not be parsed at all."""
    status: Status
    index: Annotated[int, Field(ge=0)] | None = None
    leaf_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    checkpoint: str | None = None
    """Signed note whose tree covers ``index`` (accepted, duplicate)."""
    cosigned: str | None = None
    """The newest checkpoint that meets the trust policy's witness quorum (with its
    cosignatures), when the hub has witnesses and one met it; it may be of a smaller tree
    than ``index`` (docs/alliance.md)."""
    reason: str | None = None
    detail: Annotated[str, Field(max_length=1024)] | None = None

    def wire(self) -> bytes:
        return receipt_wire(
            self.id,
            self.status,
            self.index,
            self.leaf_hash,
            self.checkpoint,
            self.cosigned,
            self.reason,
            self.detail,
        )


def receipt_wire(
    record_id: str | None,
    status: str,
    index: int | None = None,
    leaf_hash: str | None = None,
    checkpoint: str | None = None,
    cosigned: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> bytes:
    """A receipt's JSON, fields in the model's order, nulls left out (but ``id``): built
    without the model, once per record (``model_dump`` cost twice as much here)."""
    fields: dict[str, object] = {"id": record_id, "status": status}
    if index is not None:
        fields["index"] = index
    if leaf_hash is not None:
        fields["leaf_hash"] = leaf_hash
    if checkpoint is not None:
        fields["checkpoint"] = checkpoint
    if cosigned is not None:
        fields["cosigned"] = cosigned
    if reason is not None:
        fields["reason"] = reason
    if detail is not None:
        fields["detail"] = detail
    return json.dumps(fields, separators=(",", ":")).encode()


def rejected(record_id: str | None, reason: str, detail: str) -> Receipt:
    return Receipt(id=record_id, status="rejected", reason=reason, detail=detail[:1024])


Publish = Callable[[str, bytes], bool]
"""Hand one QoS 1 message to the broker link; False when there is no connection."""


class ReceiptQueue:
    """Receipts waiting for the broker link, bounded so a long outage cannot eat memory."""

    def __init__(self, metrics: HubMetrics, max_queued: int = 100_000) -> None:
        self._queue: deque[tuple[str, str, bytes]] = deque()
        self._metrics = metrics
        self._max = max_queued
        self._publish: Publish | None = None
        #: The published counter of each status (``labels`` costs a lookup per call).
        self._published = {
            s: metrics.receipts.labels(s) for s in ("accepted", "duplicate", "rejected")
        }

    def attach(self, publish: Publish | None) -> None:
        """Set (or clear, on disconnect) the link's publish function, and flush to it."""
        self._publish = publish
        self.flush()

    def send(self, topic: str, receipt: Receipt) -> None:
        self.send_wire(topic, receipt.status, receipt.wire())

    def send_wire(self, topic: str, status: str, payload: bytes) -> None:
        """Queue a receipt already in its wire form (:func:`receipt_wire`)."""
        self._queue.append((topic, status, payload))
        if len(self._queue) > self._max:
            self._queue.popleft()
            self._metrics.receipts_dropped.inc()
        self.flush()

    def flush(self) -> None:
        publish = self._publish
        if publish is None:
            return
        queue, published = self._queue, self._published
        while queue:
            topic, status, payload = queue[0]
            if not publish(topic, payload):
                return
            queue.popleft()
            published[status].inc()

    def __len__(self) -> int:
        return len(self._queue)
