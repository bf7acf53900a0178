"""What bench/suites.py compares is like for like: every SM2 library it times verifies the
ledger's own signatures, its Ed25519 rows are read against the reference's figures and its
SM2 rows against the Ed25519 ones, and what it says of the GIL is what the libraries do."""

from __future__ import annotations

from functools import partial

import pytest

from bench import limits, suites
from bench.report import figure_rows
from bench.suites import Rate, SuiteRates
from ledger import keys
from ledger.suite import ED25519_SHA256, SM2_SM3

from .test_report import CRYPTO_JSON


@pytest.mark.parametrize("name", ["gmalglib", "tongsuopy"])
def test_an_sm2_library_timed_verifies_the_ledgers_signatures(name: str) -> None:
    # gmalglib is the suite's, tongsuopy a dev dependency: both are always here. A library
    # that computed Z_A otherwise (another id, no Z_A) would be timed doing other work.
    rates, candidate = suites.set_up(name)
    assert candidate is not None, rates.skipped
    assert candidate.verifies_ours
    assert rates.version


def test_every_candidate_is_set_up_or_skipped_with_a_note() -> None:
    # The optional ones (gmssl_pyx, gmssl-fast, gmssl) are not dependencies: where they are
    # not installed the bench goes on without them and its row says why.
    for name in suites.CANDIDATES:
        rates, candidate = suites.set_up(name)
        if candidate is None:
            assert rates.skipped.startswith("skipped: not importable ("), name
            (row,) = suites.candidate_figures([rates])
            assert row.result == rates.skipped
        else:
            assert candidate.verifies_ours, name


def test_the_r_s_signature_is_re_encoded_as_der_integers() -> None:
    # A high bit set needs a 0x00 so that the INTEGER stays positive; leading zeros go.
    r, s = b"\x80" + b"\x01" * 31, b"\x00\x00" + b"\x7f" * 30
    der = suites._der(r + s)
    assert der == b"\x30" + bytes([4 + 33 + 30]) + b"\x02\x21\x00" + r + b"\x02\x1e" + s[2:]


def _rate(per_s: float) -> Rate:
    return Rate(per_s, per_s, per_s)


def test_ed25519_rows_read_against_the_reference_sm2_rows_beside_ed25519() -> None:
    ed = SuiteRates(ED25519_SHA256, _rate(10_055), _rate(12_918), _rate(23_000), True)
    sm = SuiteRates(SM2_SM3, _rate(5_000), _rate(1_300), _rate(1_290), False)
    figures = suites.suite_figures(ed, sm)
    refs = {("crypto", 1): limits.parse("crypto", CRYPTO_JSON)}
    rows = {r[1]: r for r in figure_rows([{"name": "suites", "round": 1, "rows": figures}], refs)}
    sign = rows["ed25519-sha256 sign, 300 B (ledger.keys.sign): cryptography"]
    assert sign[3:5] == ("20,110 signs/s", "0.50")
    verify = rows["ed25519-sha256 verify, 300 B (FastVerifier.is_valid): libsodium (PyNaCl)"]
    assert verify[3:5] == ("25,836 verifies/s", "0.50")
    sm_verify = rows[
        "sm2-sm3 verify, 300 B (FastVerifier.is_valid): gmalglib; beside: ed25519-sha256's"
    ]
    assert sm_verify[2:5] == ("1,300/s (769.2 µs)", "12,918/s", "0.10")
    threads = next(r for m, r in rows.items() if m.startswith("sm2-sm3 verify on 2 threads"))
    assert threads[2].endswith("0.99x one thread; holds the GIL")
    ceiling = next(r for m, r in rows.items() if m.startswith("ceiling"))
    assert ceiling[2:5] == ("1,300 records/s", "12,918 records/s", "0.10")


def test_libsodium_verify_releases_the_gil_and_gmalglib_verify_holds_it() -> None:
    # What the bench states beside its two-thread figures, and why a hub spreads SM2
    # verification over processes. A wide window, well inside the raised switch interval.
    check = partial(suites.releases_gil, window_s=0.2, interval_s=1.0)
    verifiers = {}
    for suite in (ED25519_SHA256, SM2_SM3):
        key = keys.generate_key(suite)
        verifier = keys.FastVerifier(key.public_key())
        verifiers[suite.name] = partial(verifier.is_valid, keys.sign(key, b"m"), b"m")
    assert check(verifiers[ED25519_SHA256.name])
    assert not check(verifiers[SM2_SM3.name])
