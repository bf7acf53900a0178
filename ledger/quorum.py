"""A cosigned checkpoint judged against a trust policy (:mod:`ledger.policy`), purely.

:func:`evaluate` takes a policy and a signed checkpoint note and says, without I/O or a
clock (``now`` is a parameter), whether a log of the policy signed it, whose cosignatures
verify and whether the quorum is met, with the reasons when it is not. Cosignatures are
checked by :mod:`ledger.cosignature` (c2sp.org/tlog-cosignature).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .checkpoint import NoteVerifier, parse_checkpoint, verify_checkpoint
from .cosignature import (
    CosignatureError,
    CosignatureMismatch,
    note_body,
    parse_cosignature_line,
    verify_cosignature,
)
from .errors import CheckpointError, PolicyError
from .policy import NONE, TrustPolicy, Witness

__all__ = ["MAX_FUTURE_S", "GroupCheck", "QuorumReport", "WitnessCheck", "evaluate"]

#: A cosignature timestamped more than this many seconds after ``now`` is refused
#: (tlog-cosignature: "verifiers MAY reject cosignatures with timestamps in the future");
#: the margin absorbs clock skew between a witness and the verifier.
MAX_FUTURE_S = 300

WitnessStatus = Literal["cosigned", "absent", "invalid"]


@dataclass(frozen=True)
class WitnessCheck:
    """What the note holds from one witness of the policy."""

    name: str
    operator: str | None
    status: WitnessStatus
    timestamp: int | None = None
    """The verified cosignature's timestamp (POSIX seconds), when ``cosigned``."""
    detail: str = ""


@dataclass(frozen=True)
class GroupCheck:
    name: str
    threshold: int
    members: tuple[str, ...]
    witnessed_by: tuple[str, ...]
    """The members that witnessed the checkpoint."""

    @property
    def met(self) -> bool:
        return len(self.witnessed_by) >= self.threshold


@dataclass(frozen=True)
class QuorumReport:
    """A checkpoint note judged against a policy. ``ok`` means: signed by a log of the
    policy, no known key's signature fails, and the quorum is met."""

    origin: str
    size: int
    root_hash: bytes
    quorum: str
    quorum_met: bool
    log_key: str | None
    """The vkey of the log key whose signature verified (None when none did)."""
    log_problem: str | None
    witnesses: tuple[WitnessCheck, ...]
    groups: tuple[GroupCheck, ...]
    ignored_lines: int
    """Signature lines of keys the policy does not know (neither its logs nor witnesses)."""
    policy: TrustPolicy

    @property
    def cosigned(self) -> tuple[str, ...]:
        """The witnesses whose cosignature verifies."""
        return tuple(w.name for w in self.witnesses if w.status == "cosigned")

    @property
    def invalid(self) -> tuple[WitnessCheck, ...]:
        return tuple(w for w in self.witnesses if w.status == "invalid")

    @property
    def ok(self) -> bool:
        return self.log_problem is None and not self.invalid and self.quorum_met

    def reasons(self) -> list[str]:
        """Why the checkpoint is not accepted, most basic first (empty when ``ok``)."""
        out: list[str] = []
        if self.log_problem is not None:
            out.append(self.log_problem)
        for w in self.invalid:
            out.append(
                f"the cosignature of witness {w.name} {w.detail}: a note with a failing "
                "signature by a known key is rejected whole (c2sp.org/signed-note)"
            )
        if not self.quorum_met:
            out.append(self._unmet(self.quorum))
            out.extend(self._unmet(g.name) for g in self._unmet_groups(self.quorum))
        return out

    def _unmet(self, name: str) -> str:
        group = next((g for g in self.groups if g.name == name), None)
        if group is None:
            w = next(w for w in self.witnesses if w.name == name)
            why = "has not cosigned this checkpoint" if w.status == "absent" else w.detail
            return f"quorum {name} not met: witness {name} {why}"
        lacking = [m for m in group.members if m not in group.witnessed_by]
        prefix = "quorum" if name == self.quorum else "group"
        return (
            f"{prefix} {name} not met: {len(group.witnessed_by)} of the {group.threshold} "
            f"needed of {len(group.members)} ({', '.join(group.members)}) witnessed it; "
            f"missing: {', '.join(lacking)}"
        )

    def _unmet_groups(self, name: str) -> list[GroupCheck]:
        """The unmet groups under ``name``, depth first (the quorum itself excluded)."""
        group = next((g for g in self.groups if g.name == name), None)
        if group is None:
            return []
        found: list[GroupCheck] = []
        for member in group.members:
            inner = next((g for g in self.groups if g.name == member), None)
            if inner is not None and not inner.met:
                found.append(inner)
                found.extend(self._unmet_groups(member))
        return found

    def summary(self) -> list[str]:
        """The report as lines of text, for a terminal."""
        lines = [f"checkpoint {self.origin} at size {self.size:,}"]
        lines.append(
            f"  log signature  {'ok' if self.log_problem is None else 'FAILED'}"
            + (f" ({self.log_key})" if self.log_key else "")
        )
        for w in self.witnesses:
            who = f"{w.name}" + (f" ({w.operator})" if w.operator else "")
            if w.status == "cosigned":
                lines.append(f"  witness {who}: cosigned at {w.timestamp}")
            elif w.status == "absent":
                lines.append(f"  witness {who}: no cosignature")
            else:
                lines.append(f"  witness {who}: INVALID, {w.detail}")
        if self.ignored_lines:
            lines.append(f"  {self.ignored_lines} signature line(s) of unknown keys ignored")
        verdict = "met" if self.quorum_met else "NOT met"
        lines.append(f"  quorum {verdict}: {self.policy.describe_quorum()}")
        return lines

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "origin": self.origin,
            "size": self.size,
            "log_key": self.log_key,
            "log_problem": self.log_problem,
            "quorum": self.quorum,
            "quorum_met": self.quorum_met,
            "cosigned": list(self.cosigned),
            "witnesses": [
                {
                    "name": w.name,
                    "operator": w.operator,
                    "status": w.status,
                    "timestamp": w.timestamp,
                    "detail": w.detail or None,
                }
                for w in self.witnesses
            ],
            "groups": [
                {
                    "name": g.name,
                    "threshold": g.threshold,
                    "members": list(g.members),
                    "witnessed_by": list(g.witnessed_by),
                    "met": g.met,
                }
                for g in self.groups
            ],
            "ignored_lines": self.ignored_lines,
            "reasons": self.reasons(),
        }


def evaluate(
    policy: TrustPolicy,
    note: str,
    *,
    now: int | None = None,
    max_future_s: int = MAX_FUTURE_S,
    log_key: NoteVerifier | None = None,
) -> QuorumReport:
    """Judge signed checkpoint ``note`` against ``policy``.

    The note must be signed by a log of the policy whose origin is the note's (or by
    ``log_key``, when given: a hub checking its own checkpoints, or a policy that lists no
    log). Every signature line whose name and key ID are a policy witness's is verified as a
    cosignature/v1 over this note's body; a timestamp later than ``now + max_future_s`` is
    refused (``now`` None: not checked). Other lines are ignored (c2sp.org/signed-note:
    "verifiers MUST ignore signatures from unknown keys"). Two valid lines by one witness
    count once. CheckpointError when ``note`` is not a signed checkpoint at all.
    """
    if not isinstance(policy, TrustPolicy):
        raise PolicyError("a checkpoint is evaluated against a TrustPolicy")
    signed = parse_checkpoint(note)
    checkpoint = signed.checkpoint
    body = note_body(note)
    not_after = None if now is None else now + max_future_s

    verified_log, log_problem, log_ids = _check_log(policy, note, checkpoint.origin, log_key)

    lines = note.partition("\n\n")[2][:-1].split("\n")
    by_key = {(w.key.name, w.key.key_id): w for w in policy.witnesses}
    found: dict[str, WitnessCheck] = {}
    ignored = 0
    for (name, key_id, _sig), line in zip(signed.signatures, lines, strict=True):
        witness = by_key.get((name, key_id))
        if witness is None:
            ignored += (name, key_id) not in log_ids
            continue
        check = _check_cosignature(witness, body, line, not_after)
        previous = found.get(witness.name)
        # A valid line wins over an absent one; a failing one wins over both.
        if previous is None or (previous.status == "cosigned" and check.status == "invalid"):
            found[witness.name] = check
    checks = tuple(
        found.get(w.name, WitnessCheck(w.name, w.operator, "absent")) for w in policy.witnesses
    )
    witnessed = {c.name for c in checks if c.status == "cosigned"}
    groups = _groups(policy, witnessed)
    quorum_met = (
        policy.quorum == NONE
        or policy.quorum in witnessed
        or any(g.name == policy.quorum and g.met for g in groups)
    )
    return QuorumReport(
        origin=checkpoint.origin,
        size=checkpoint.size,
        root_hash=checkpoint.root_hash,
        quorum=policy.quorum,
        quorum_met=quorum_met,
        log_key=verified_log,
        log_problem=log_problem,
        witnesses=checks,
        groups=groups,
        ignored_lines=ignored,
        policy=policy,
    )


def _check_log(
    policy: TrustPolicy, note: str, origin: str, log_key: NoteVerifier | None
) -> tuple[str | None, str | None, set[tuple[str, bytes]]]:
    """(the vkey that verified, the problem, the (name, key ID) of every log key tried)."""
    candidates = [log_key] if log_key is not None else [log.verifier for log in policy.logs]
    ids = {(v.name, v.key_hash) for v in candidates}
    if not candidates:
        return None, "the policy names no log, so the checkpoint's signer cannot be checked", ids
    matching = [v for v in candidates if v.name == origin]
    if not matching:
        known = ", ".join(sorted({v.name for v in candidates}))
        return None, f"origin {origin!r} is not a log of the policy (it accepts: {known})", ids
    problems = []
    for verifier in matching:
        try:
            verify_checkpoint(note, verifier)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        return verifier.encode(), None, ids
    return None, f"the log's signature does not verify: {'; '.join(problems)}", ids


def _check_cosignature(
    witness: Witness, body: bytes, line: str, not_after: int | None
) -> WitnessCheck:
    try:
        cosignature = parse_cosignature_line(line)
        timestamp = verify_cosignature(body, cosignature, witness.key, not_after=not_after)
    except CosignatureMismatch as exc:
        detail = str(exc).removeprefix(f"cosignature by {witness.key.name} ")
        return WitnessCheck(witness.name, witness.operator, "invalid", detail=detail)
    except CosignatureError as exc:
        detail = f"is malformed: {exc}"
        return WitnessCheck(witness.name, witness.operator, "invalid", detail=detail)
    return WitnessCheck(witness.name, witness.operator, "cosigned", timestamp)


def _groups(policy: TrustPolicy, witnessed: set[str]) -> tuple[GroupCheck, ...]:
    # Groups name only what is defined before them, so one pass in order settles each.
    met: dict[str, bool] = {name: True for name in witnessed}
    checks = []
    for group in policy.groups:
        by = tuple(m for m in group.members if met.get(m, False))
        check = GroupCheck(group.name, group.threshold, group.members, by)
        met[group.name] = check.met
        checks.append(check)
    return tuple(checks)
