"""The alliance's trust policy for a log, and its pure evaluation on a cosigned checkpoint.

A policy (c2sp.org/tlog-policy, "What is a policy?") names the logs it accepts (by their
note verifier key, whose name is the log's origin), the witnesses it knows (by a name local
to the policy and their cosignature/v1 verifier key, optionally the member organisation that
operates each), groups of witnesses and groups, and the quorum: one witness or group that
must "witness" a checkpoint. A group witnesses it when at least k of its n members do.

The text form is tlog-policy's own::

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <name>...
    quorum <name>|none

:func:`parse_policy` reads it (every problem with its line), :func:`format_policy` writes it.
The YAML form in the pilot definitions' style is read by ``pilots.trust`` into the same
:class:`TrustPolicy` through :class:`PolicyBuilder`, which holds every rule of the spec.

:func:`evaluate` takes a policy and a signed checkpoint note and says, without I/O or a
clock (``now`` is a parameter), whose cosignatures verify and whether the quorum is met, with
the reasons when it is not. Cosignatures are checked by :mod:`ledger.cosignature`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .checkpoint import SIG_PREFIX, NoteVerifier, parse_checkpoint, verify_checkpoint
from .cosignature import (
    CosignatureError,
    CosignatureMismatch,
    CosignerVerifier,
    note_body,
    parse_cosignature_line,
    verify_cosignature,
)
from .errors import CheckpointError, PolicyError

__all__ = [
    "MAX_FUTURE_S",
    "NONE",
    "Group",
    "GroupCheck",
    "Log",
    "PolicyBuilder",
    "QuorumReport",
    "TrustPolicy",
    "Witness",
    "WitnessCheck",
    "evaluate",
    "format_policy",
    "parse_policy",
]

#: The predefined quorum name that requires no cosignature (tlog-policy, "Defining the
#: quorum"); it is never a group member.
NONE = "none"
#: A cosignature timestamped more than this many seconds after ``now`` is refused
#: (tlog-cosignature: "verifiers MAY reject cosignatures with timestamps in the future");
#: the margin absorbs clock skew between a witness and the verifier.
MAX_FUTURE_S = 300
#: Implementation limits (tlog-policy recommends supporting at least 32 of each).
MAX_LOGS = 64
MAX_WITNESSES = 256
MAX_GROUPS = 256
MAX_POLICY_BYTES = 256 * 1024

# Names are whitespace-free (tlog-policy, "Structure": items are separated by spaces and
# tabs); non-ASCII is allowed and opaque.
_NAME = re.compile(r"^[^\s]+$")
_DECIMAL = re.compile(r"^[1-9][0-9]{0,5}$")
_URL = re.compile(r"^[^\s]{1,2048}$")


@dataclass(frozen=True)
class Log:
    """A log the policy accepts: its note verifier key (type 0x01), whose name is the log's
    origin line (tlog-policy, "Defining a log")."""

    verifier: NoteVerifier
    url: str | None = None

    @property
    def origin(self) -> str:
        return self.verifier.name


@dataclass(frozen=True)
class Witness:
    """A known witness: its name in this policy, its cosignature/v1 key (type 0x04), and
    optionally its URL and the member organisation that operates it."""

    name: str
    key: CosignerVerifier
    url: str | None = None
    operator: str | None = None


@dataclass(frozen=True)
class Group:
    """Witnesses when at least ``threshold`` of its ``members`` (witnesses or groups) do."""

    name: str
    threshold: int
    members: tuple[str, ...]
    keyword: Literal["all", "any"] | None = None
    """How the threshold was written, when it was a keyword (kept for :func:`format_policy`)."""


@dataclass(frozen=True)
class TrustPolicy:
    """Build one with :func:`parse_policy`, ``pilots.trust.load_trust_policy`` or
    :class:`PolicyBuilder` (which check every rule); the constructor checks nothing."""

    logs: tuple[Log, ...]
    witnesses: tuple[Witness, ...]
    groups: tuple[Group, ...]
    quorum: str

    def witness(self, name: str) -> Witness | None:
        return next((w for w in self.witnesses if w.name == name), None)

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def log_for(self, origin: str) -> tuple[Log, ...]:
        return tuple(log for log in self.logs if log.origin == origin)

    def describe_quorum(self) -> str:
        """The quorum in words: ``2 of (hospital-a, hospital-b, city-cdc)``."""
        return _describe(self, self.quorum)


def _describe(policy: TrustPolicy, name: str) -> str:
    if name == NONE:
        return "no cosignature"
    group = policy.group(name)
    if group is None:
        return name
    parts = ", ".join(_describe(policy, m) for m in group.members)
    how = group.keyword or str(group.threshold)
    return f"{name}: {how} of ({parts})"


class PolicyBuilder:
    """A policy built line by line, each step checked against c2sp.org/tlog-policy:

    - names (witnesses and groups share one namespace) are unique and never ``none``;
    - no two logs, and no two witnesses, wrap the same public key ("duplicate" vkeys);
    - a group has n >= 1 members and 1 <= k <= n, and names only what is defined before it;
    - each name is a group member at most once ("so that each witness can contribute to a
      group, or to the quorum in particular, in only one way");
    - exactly one quorum, naming ``none`` or something defined before it.

    Each method raises PolicyError (one problem, no line) when its step breaks a rule; the
    parsers add the line."""

    def __init__(self) -> None:
        self.logs: list[Log] = []
        self.witnesses: list[Witness] = []
        self.groups: list[Group] = []
        self.quorum: str | None = None
        self._names: set[str] = set()
        self._member_of: dict[str, str] = {}

    def _check_name(self, name: str, what: str) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise PolicyError(f"{what} name {name!r} is empty or holds whitespace")
        if name == NONE:
            raise PolicyError(f"'{NONE}' is predefined (the empty quorum): pick another name")
        if name in self._names:
            raise PolicyError(f"the name {name!r} is already defined")

    @staticmethod
    def _check_url(url: str | None) -> None:
        if url is not None and (not isinstance(url, str) or not _URL.match(url)):
            raise PolicyError(f"URL {url!r} is empty, too long or holds whitespace")

    def add_log(self, verifier: NoteVerifier, url: str | None = None) -> Log:
        self._check_url(url)
        raw = verifier.public_key.public_bytes_raw()
        for other in self.logs:
            if other.verifier.public_key.public_bytes_raw() == raw:
                raise PolicyError(
                    f"log key {verifier.name} wraps the same public key as log "
                    f"{other.origin}: duplicate logs are not allowed"
                )
        if len(self.logs) >= MAX_LOGS:
            raise PolicyError(f"more than {MAX_LOGS} logs")
        log = Log(verifier, url)
        self.logs.append(log)
        return log

    def add_witness(
        self,
        name: str,
        key: CosignerVerifier,
        url: str | None = None,
        operator: str | None = None,
    ) -> Witness:
        self._check_name(name, "witness")
        self._check_url(url)
        raw = key.public_key.public_bytes_raw()
        for other in self.witnesses:
            if other.key.public_key.public_bytes_raw() == raw:
                raise PolicyError(
                    f"witness {name} has the same public key as witness {other.name}: "
                    "duplicate witnesses are not allowed"
                )
        if len(self.witnesses) >= MAX_WITNESSES:
            raise PolicyError(f"more than {MAX_WITNESSES} witnesses")
        witness = Witness(name, key, url, operator)
        self.witnesses.append(witness)
        self._names.add(name)
        return witness

    def add_group(
        self,
        name: str,
        threshold: int | Literal["all", "any"],
        members: Iterable[str],
    ) -> Group:
        self._check_name(name, "group")
        listed = tuple(members)
        if not listed:
            raise PolicyError(f"group {name} lists no members (at least one is needed)")
        seen: set[str] = set()
        for member in listed:
            if member == NONE:
                raise PolicyError(f"'{NONE}' cannot be a group member")
            if member not in self._names:
                raise PolicyError(
                    f"group {name}: {member!r} is not a witness or group defined before it"
                )
            if member in seen:
                raise PolicyError(f"group {name} lists {member} twice")
            if member in self._member_of:
                raise PolicyError(
                    f"group {name}: {member} is already a member of group "
                    f"{self._member_of[member]} (a name is a group member at most once)"
                )
            seen.add(member)
        keyword: Literal["all", "any"] | None = None
        if threshold == "all":
            keyword, k = "all", len(listed)
        elif threshold == "any":
            keyword, k = "any", 1
        elif type(threshold) is int:
            k = threshold
        else:
            raise PolicyError(f"group {name}: threshold {threshold!r} is not all, any or k")
        if not 1 <= k <= len(listed):
            raise PolicyError(
                f"group {name}: threshold {k} is not between 1 and its {len(listed)} member(s)"
            )
        if len(self.groups) >= MAX_GROUPS:
            raise PolicyError(f"more than {MAX_GROUPS} groups")
        group = Group(name, k, listed, keyword)
        self.groups.append(group)
        self._names.add(name)
        for member in listed:
            self._member_of[member] = name
        return group

    def set_quorum(self, name: str) -> None:
        if self.quorum is not None:
            raise PolicyError(f"a second quorum line (the quorum is already {self.quorum})")
        if name != NONE and name not in self._names:
            raise PolicyError(f"quorum {name!r} is not a witness or group defined before it")
        self.quorum = name

    def build(self) -> TrustPolicy:
        if self.quorum is None:
            raise PolicyError("no quorum: add a quorum line (quorum none for no witnesses)")
        return TrustPolicy(
            tuple(self.logs), tuple(self.witnesses), tuple(self.groups), self.quorum
        )


# -- the text form (c2sp.org/tlog-policy, "Policy file syntax and structure") -------------


def parse_policy(text: str | bytes, *, file: str | None = None) -> TrustPolicy:
    """Read a policy in tlog-policy's text form. PolicyError lists every problem found,
    each with its line (``file`` names the policy in messages)."""
    if isinstance(text, bytes):
        if len(text) > MAX_POLICY_BYTES:
            raise PolicyError(f"larger than {MAX_POLICY_BYTES} bytes", file=file)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            # The spec allows any high-bit octets; we read policies as UTF-8 (it
            # recommends UTF-8 for non-ASCII text), so other encodings are refused.
            raise PolicyError(f"not UTF-8 text (byte {exc.start})", file=file) from None
    if not isinstance(text, str):
        raise PolicyError("a policy is text", file=file)
    if len(text) > MAX_POLICY_BYTES:
        raise PolicyError(f"larger than {MAX_POLICY_BYTES} bytes", file=file)
    builder = PolicyBuilder()
    problems: list[tuple[int | None, str]] = []
    last_line = 0
    for number, line in enumerate(text.split("\n"), start=1):
        last_line = number
        try:
            _policy_line(builder, line)
        except (PolicyError, CheckpointError) as exc:
            problems.append((number, _plain(exc)))
    if not problems:
        try:
            return builder.build()
        except PolicyError as exc:
            problems.append((last_line, _plain(exc)))
    raise PolicyError(problems, file=file)


def _plain(exc: Exception) -> str:
    if isinstance(exc, PolicyError) and len(exc.problems) == 1:
        return exc.problems[0][1]
    return str(exc)


def _policy_line(builder: PolicyBuilder, line: str) -> None:
    # Only tab and newline among the control characters (tlog-policy, "Character set").
    bad = next((c for c in line if (c < " " and c != "\t") or c == "\x7f"), None)
    if bad is not None:
        hint = " (Windows line ends? save the file with LF only)" if bad == "\r" else ""
        raise PolicyError(f"control character {bad!r} is not allowed{hint}")
    items = line.replace("\t", " ").split()
    if not items or items[0].startswith("#"):
        return
    keyword, args = items[0], items[1:]
    if keyword == "log":
        if len(args) not in (1, 2):
            raise PolicyError("a log line reads: log <vkey> [<url>]")
        builder.add_log(NoteVerifier.parse(args[0]), args[1] if len(args) == 2 else None)
    elif keyword == "witness":
        if len(args) not in (2, 3):
            raise PolicyError("a witness line reads: witness <name> <vkey> [<url>]")
        key = CosignerVerifier.parse(args[1])
        builder.add_witness(args[0], key, args[2] if len(args) == 3 else None)
    elif keyword == "group":
        if len(args) < 3:
            raise PolicyError("a group line reads: group <name> all|any|<k> <name>...")
        name, how, members = args[0], args[1], args[2:]
        threshold: int | Literal["all", "any"]
        if how in ("all", "any"):
            threshold = "all" if how == "all" else "any"
        elif _DECIMAL.match(how):
            threshold = int(how)
        else:
            raise PolicyError(
                f"group {name}: threshold {how!r} is not all, any or a decimal number >= 1"
            )
        builder.add_group(name, threshold, members)
    elif keyword == "quorum":
        if len(args) != 1:
            raise PolicyError("a quorum line reads: quorum <name>")
        builder.set_quorum(args[0])
    else:
        raise PolicyError(
            f"unknown keyword {keyword!r}: a line starts with log, witness, group, quorum or #"
        )


def format_policy(policy: TrustPolicy) -> str:
    """The policy in tlog-policy's text form (:func:`parse_policy` reads it back to an equal
    policy, but for the witnesses' operators, which that form does not hold: they become
    comments)."""
    lines: list[str] = []
    for log in policy.logs:
        lines.append(" ".join(p for p in ("log", log.verifier.encode(), log.url) if p))
    for w in policy.witnesses:
        if w.operator:
            lines.append(f"# {w.name} is operated by {w.operator}")
        lines.append(" ".join(p for p in ("witness", w.name, w.key.encode(), w.url) if p))
    for g in policy.groups:
        how = g.keyword or str(g.threshold)
        lines.append(f"group {g.name} {how} {' '.join(g.members)}")
    lines.append(f"quorum {policy.quorum}")
    return "\n".join(lines) + "\n"


# -- evaluation --------------------------------------------------------------------------

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
        if previous is None or previous.status == "cosigned" and check.status == "invalid":
            found[witness.name] = check
    checks = tuple(
        found.get(w.name, WitnessCheck(w.name, w.operator, "absent")) for w in policy.witnesses
    )
    witnessed = {c.name for c in checks if c.status == "cosigned"}
    groups = _groups(policy, witnessed)
    quorum_met = policy.quorum == NONE or policy.quorum in witnessed or any(
        g.name == policy.quorum and g.met for g in groups
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
