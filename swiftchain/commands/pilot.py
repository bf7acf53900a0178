"""`swiftchain pilot` verbs: check pilot definition files, list and show pilots."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from ledger.policy import TrustPolicy
from pilots import Pilot, PilotDefinitionError, get_pilot, load_pilot, load_pilots
from pilots.policy import allowed_purposes
from pilots.trust import is_trust_policy, load_trust_policy

from .errors import friendly


@click.group()
def pilot() -> None:
    """Check, list and show pilot definitions: members, data types and policies."""


@pilot.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check(files: tuple[Path, ...], as_json: bool) -> None:
    """Validate each pilot definition or trust policy FILE and explain every problem at
    its file:line:column; exit 1 when any file is invalid. A file with a top-level
    `quorum:` key, or in c2sp.org/tlog-policy's text form, is read as a trust policy.

    Example: swiftchain pilot check pilots/definitions/*.yaml alliance-policy.yaml
    """
    results: list[_Checked] = []
    seen: dict[str, Path] = {}
    for path in files:
        if _is_policy(path):
            try:
                policy = load_trust_policy(path)
            except PilotDefinitionError as exc:
                results.append(_Checked(path, None, [str(p) for p in exc.problems]))
                continue
            results.append(_Checked(path, None, [], policy))
            continue
        try:
            loaded = load_pilot(path)
        except PilotDefinitionError as exc:
            results.append(_Checked(path, None, [str(p) for p in exc.problems]))
            continue
        if loaded.id in seen:
            problem = f"{path}: id: pilot {loaded.id!r} is already defined in {seen[loaded.id]}"
            results.append(_Checked(path, None, [problem]))
            continue
        seen[loaded.id] = path
        results.append(_Checked(path, loaded, []))
    bad = sum(1 for r in results if r.problems)
    if as_json:
        click.echo(json.dumps({"ok": bad == 0, "files": [r.as_dict() for r in results]}, indent=2))
    else:
        for r in results:
            if r.policy is not None:
                click.echo(f"ok       {r.file}: trust policy ({_policy_counts(r.policy)})")
                continue
            if r.pilot is not None:
                counts = ", ".join(
                    _plural(n, what)
                    for n, what in (
                        (len(r.pilot.members), "member"),
                        (len(r.pilot.data_types), "data type"),
                        (len(r.pilot.read), "read rule"),
                    )
                )
                click.echo(f"ok       {r.file}: pilot {r.pilot.id} ({counts})")
                continue
            click.echo(f"INVALID  {r.file}", err=True)
            for line in r.problems:
                click.echo(f"  {line}", err=True)
        click.echo(f"{len(files)} file(s) checked, {bad} invalid.", err=bad > 0)
        if bad:
            click.echo("Fix each problem at the line shown, then run this check again.", err=True)
    if bad:
        sys.exit(1)


def _is_policy(path: Path) -> bool:
    try:
        return is_trust_policy(path, path.read_bytes())
    except OSError:
        return False  # the pilot loader says why it cannot be read


def _policy_counts(policy: TrustPolicy) -> str:
    return ", ".join(
        [
            _plural(len(policy.logs), "log"),
            f"{len(policy.witnesses)} witness" + ("" if len(policy.witnesses) == 1 else "es"),
            _plural(len(policy.groups), "group"),
            f"quorum {policy.describe_quorum()}",
        ]
    )


@dataclass(frozen=True)
class _Checked:
    file: Path
    pilot: Pilot | None
    problems: list[str]
    policy: TrustPolicy | None = None

    def as_dict(self) -> dict[str, object]:
        if self.policy is not None:
            return {
                "file": str(self.file),
                "ok": True,
                "trust_policy": True,
                "logs": len(self.policy.logs),
                "witnesses": len(self.policy.witnesses),
                "groups": len(self.policy.groups),
                "quorum": self.policy.quorum,
            }
        if self.pilot is None:
            return {"file": str(self.file), "ok": False, "problems": self.problems}
        return {"file": str(self.file), "ok": True, "pilot": self.pilot.id, **_counts(self.pilot)}


@pilot.command("list")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Load every *.yaml in DIR instead of the pilots shipped with Swiftchain.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the pilots as JSON.")
@friendly
def list_pilots(directory: Path | None, as_json: bool) -> None:
    """List the pilots (those shipped with Swiftchain, or those in --dir) with their
    members and data types.

    Example: swiftchain pilot list --dir my-pilots/
    """
    pilots = load_pilots(directory)
    if as_json:
        click.echo(
            json.dumps(
                [{"id": p.id, "name": p.name, **_counts(p)} for p in pilots.values()], indent=2
            )
        )
        return
    width = max((len(p) for p in pilots), default=2)
    for p in pilots.values():
        types = ", ".join(t.id + (" (consent)" if t.consent_required else "") for t in p.data_types)
        click.echo(f"{p.id:<{width}}  {p.name}")
        click.echo(f"{'':<{width}}  {len(p.members)} members; {types}")


@pilot.command("show")
@click.argument("pilot_id")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Look in every *.yaml in DIR instead of the pilots shipped with Swiftchain.",
)
@friendly
def show(pilot_id: str, directory: Path | None) -> None:
    """Show one pilot: its members and who may read which data type for what purpose.

    Example: swiftchain pilot show chronic-care
    """
    p = get_pilot(load_pilots(directory), pilot_id)
    click.echo(f"{p.name} ({p.id}) — {p.zone}")
    click.echo("members:")
    for m in p.members:
        click.echo(f"  {m.org:<28} {m.kind:<18} {', '.join(m.roles)}")
    click.echo("data types:")
    for t in p.data_types:
        flags = ["personal"] * t.personal + ["consent required"] * t.consent_required
        click.echo(f"  {t.id:<28} retention {t.retention}  {', '.join(flags)}")
    click.echo("reads (purposes of use; ETREAT = break-glass):")
    for m in p.members:
        for t in p.data_types:
            purposes = sorted(allowed_purposes(p, m.org, t.id))
            if purposes:
                click.echo(f"  {m.org:<28} {t.id:<28} {', '.join(purposes)}")


def _counts(p: Pilot) -> dict[str, object]:
    return {
        "members": len(p.members),
        "data_types": len(p.data_types),
        "read_rules": len(p.read),
        "publish_rules": len(p.publish),
    }


def _plural(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")
