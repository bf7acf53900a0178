from __future__ import annotations

import json

import pytest

from gateway.errors import RegistryError
from gateway.registry.changes import (
    plan_key_revoke,
    plan_key_rotate,
    plan_org_add,
    plan_source_add,
    plan_source_revoke,
)
from gateway.registry.state import Registry, parse_time
from ledger.entries import RegistryEntry
from ledger.keys import Ed25519PrivateKey, generate_key, key_id, public_key_b64
from tests.support.registry import apply_all


def b64(key: Ed25519PrivateKey) -> str:
    return public_key_b64(key.public_key())


def test_source_add_puts_source_then_key_on_the_log(source_key: Ed25519PrivateKey) -> None:
    r = Registry()
    apply_all(r, plan_org_add(r, "city", name=None, actor="t"))
    entries = plan_source_add(
        r,
        pilot="p",
        source="s",
        org="city",
        types=["b.t", "a.t"],
        public_key=b64(source_key),
        actor="t",
    )
    leaves = [json.loads(e.leaf()) for e in entries]
    assert [x["action"] for x in leaves] == ["source.add", "key.add"]
    assert leaves[0]["detail"] == {"types": ["a.t", "b.t"]}
    # The fields the offline verifier reads.
    assert leaves[1]["key_id"] == key_id(source_key.public_key())
    assert leaves[1]["public_key"] == b64(source_key)
    assert (leaves[1]["pilot"], leaves[1]["source"]) == ("p", "s")
    assert all(isinstance(e, RegistryEntry) for e in entries)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda r, k: plan_org_add(r, "city", name=None, actor="t"), "org_exists"),
        (
            lambda r, k: plan_source_add(
                r, pilot="p", source="s", org="nope", types=["t"], public_key=b64(k), actor="t"
            ),
            "unknown_org",
        ),
        (
            lambda r, k: plan_source_add(
                r,
                pilot="city-air",
                source="station-1",
                org="city",
                types=["t"],
                public_key=b64(generate_key()),
                actor="t",
            ),
            "source_exists",
        ),
        (
            lambda r, k: plan_source_add(
                r, pilot="p", source="s", org="city", types=["t"], public_key=b64(k), actor="t"
            ),
            "key_exists",
        ),
        (
            lambda r, k: plan_source_add(
                r,
                pilot="p",
                source="s",
                org="city",
                types=[],
                public_key=b64(generate_key()),
                actor="t",
            ),
            "no_types",
        ),
        (
            lambda r, k: plan_source_add(
                r, pilot="p", source="s", org="city", types=["t"], public_key="abc", actor="t"
            ),
            "invalid_public_key",
        ),
        (
            lambda r, k: plan_source_add(
                r,
                pilot="P Q",
                source="s",
                org="city",
                types=["t"],
                public_key=b64(generate_key()),
                actor="t",
            ),
            "invalid_registry_change",
        ),
        (lambda r, k: plan_key_revoke(r, key="nope", actor="t"), "unknown_key"),
        (lambda r, k: plan_source_revoke(r, pilot="p", source="x", actor="t"), "unknown_source"),
        (
            lambda r, k: plan_key_revoke(r, key=key_id(k.public_key()), actor="t", at="yesterday"),
            "invalid_time",
        ),
    ],
)
def test_refused_changes(
    registry: Registry, source_key: Ed25519PrivateKey, change, code: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RegistryError) as err:
        change(registry, source_key)
    assert err.value.code == code


def test_rotation_ends_the_old_key_when_the_new_one_starts(
    registry: Registry, source_key: Ed25519PrivateKey
) -> None:
    new = generate_key()
    entries = plan_key_rotate(
        registry,
        pilot="city-air",
        source="station-1",
        public_key=b64(new),
        actor="t",
        valid_from="2026-06-01T00:00:00Z",
    )
    apply_all(registry, entries)
    old = registry.keys[key_id(source_key.public_key())]
    fresh = registry.keys[key_id(new.public_key())]
    assert old.revoked_at == "2026-06-01T00:00:00Z"
    assert old.valid_at(parse_time("2026-05-31T23:59:59.999Z"))
    assert not old.valid_at(parse_time("2026-06-01T00:00:00Z"))
    assert fresh.valid_at(parse_time("2026-06-01T00:00:00Z"))
    assert not fresh.valid_at(parse_time("2026-05-31T00:00:00Z"))


def test_replay_from_leaves_rebuilds_the_same_state(
    registry: Registry, source_key: Ed25519PrivateKey
) -> None:
    r = Registry()
    leaves = []
    for entries in (plan_org_add(r, "city", name="City", actor="t"),):
        leaves += entries
    apply_all(r, leaves)
    more = plan_source_add(
        r, pilot="p", source="s", org="city", types=["t"], public_key=b64(source_key), actor="t"
    )
    leaves += more
    revoke = plan_source_revoke(
        Registry.replay([(i, e.leaf()) for i, e in enumerate(leaves)]),
        pilot="p",
        source="s",
        actor="t",
    )
    leaves += revoke
    state = Registry.replay([(i, e.leaf()) for i, e in enumerate(leaves)])
    assert state.public_orgs()[0]["name"] == "City"
    assert state.public_sources()[0]["active"] is False
    assert state.public_keys()[0]["key_id"] == key_id(source_key.public_key())
    assert state.knows_pilot("p") and not state.knows_pilot("q")


def test_configured_pilots_limit_sources(source_key: Ed25519PrivateKey) -> None:
    r = Registry(configured_pilots=frozenset({"city-air"}))
    apply_all(r, plan_org_add(r, "city", name=None, actor="t"))
    assert r.knows_pilot("city-air")
    with pytest.raises(RegistryError) as err:
        plan_source_add(
            r,
            pilot="other",
            source="s",
            org="city",
            types=["t"],
            public_key=b64(source_key),
            actor="t",
        )
    assert err.value.code == "unknown_pilot"


def test_a_revocation_cannot_borrow_the_rotation_reason(registry: Registry) -> None:
    # "rotated" gives a key the pilot's late-delivery window; a revocation must not get it.
    kid = next(iter(registry.keys))
    with pytest.raises(RegistryError) as caught:
        plan_key_revoke(registry, key=kid, actor="t", reason="rotated")
    assert caught.value.code == "reserved_reason"
