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

:func:`ledger.quorum.evaluate` judges a cosigned checkpoint against a policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .checkpoint import NoteVerifier
from .cosignature import CosignerVerifier
from .errors import CheckpointError, PolicyError

__all__ = [
    "NONE",
    "Group",
    "KnockOn",
    "Log",
    "PolicyBuilder",
    "TrustPolicy",
    "Witness",
    "format_policy",
    "parse_policy",
]

#: The predefined quorum name that requires no cosignature (tlog-policy, "Defining the
#: quorum"); it is never a group member.
NONE = "none"
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


class KnockOn(PolicyError):
    """A reference to a name whose own definition was refused (already reported)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} was not defined (see its own line)")


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
        self._failed: set[str] = set()

    def failed(self, name: str) -> None:
        """Note that the definition of ``name`` was refused: later references to it raise
        :class:`KnockOn`, which a parser drops (one mistake, one message)."""
        if name not in self._names:
            self._failed.add(name)

    def check_member(self, group: str, member: str) -> None:
        """Could ``member`` join a group now? (Defined before, not ``none``, in no group.)"""
        if member == NONE:
            raise PolicyError(f"'{NONE}' cannot be a group member")
        self._check_defined(member, f"group {group}:")
        if member in self._member_of:
            raise PolicyError(
                f"group {group}: {member} is already a member of group "
                f"{self._member_of[member]} (a name is a group member at most once)"
            )

    def _check_defined(self, name: str, what: str) -> None:
        if name not in self._names:
            if name in self._failed:
                raise KnockOn(name)
            raise PolicyError(f"{what} {name!r} is not a witness or group defined before it")

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
            self.check_member(name, member)
            if member in seen:
                raise PolicyError(f"group {name} lists {member} twice")
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
        if name != NONE:
            self._check_defined(name, "quorum")
        self.quorum = name

    def build(self) -> TrustPolicy:
        if self.quorum is None:
            raise PolicyError("no quorum: add a quorum line (quorum none for no witnesses)")
        return TrustPolicy(tuple(self.logs), tuple(self.witnesses), tuple(self.groups), self.quorum)


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
            if not isinstance(exc, KnockOn):
                problems.append((number, _plain(exc)))
            items = line.split()
            if len(items) > 1 and items[0] in ("witness", "group"):
                builder.failed(items[1])
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
