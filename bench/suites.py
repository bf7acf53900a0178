"""Crypto suites (``make bench`` row ``suites``): what each suite's signatures and tree
hashes cost on one core, and the SM2 and SM3 libraries the ``sm2-sm3`` suite could use.

- sign/s and verify/s of ``ed25519-sha256`` and ``sm2-sm3`` through the ledger's own code
  (``ledger.keys.sign``, ``ledger.keys.FastVerifier.is_valid``), on one thread and on two;
  the Ed25519 figures are read by bench/report.py against the reference's bench_crypto.py
  (cryptography's sign, PyNaCl's verify on one thread and on two) run just before, the SM2
  ones against the Ed25519 ones of the same run;
- the ceiling: records/s per core that verifying the signature alone allows (1 / verify
  time), SM2 beside Ed25519;
- the SM2 candidates, each skipped with a note when it does not import: gmalglib (the
  suite's, :mod:`ledger.sm2`), tongsuopy, gmssl_pyx, gmssl-fast, and the pure-Python gmssl
  (a few iterations); each is checked first to verify a :mod:`ledger.sm2` signature, i.e.
  to compute GM/T 0003.2 section 5.5's Z_A with GM/T 0009's default id as ours does;
- tree hashing (RFC 9162 section 2.1.1): leaf and node hashes/s of ``SHA256_TREE`` and
  ``SM3_TREE`` (:mod:`ledger.hashing`), and SM3 (GM/T 0004) of 33, 65 and 301 bytes through
  cryptography (``sm3_digest``), gmalglib and ``hashlib.new("sm3")`` when this Python's
  OpenSSL has it.

Messages are 300 bytes (a record header's size); every rate is the median of 3 timed runs
of ~0.25 s each, after a calibration, the runs of the figures compared with each other
interleaved (one of each in turn). Whether a verify releases the GIL is checked directly
(:func:`releases_gil`), not read from the two-thread rate, which a busy machine flattens.
``--suites-only`` (the report's later round) measures only the suites' own rows, ~5 s;
everything, ~30 s.

    .venv/bin/python -m bench.suites [--suites-only] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import import_module, metadata
from pathlib import Path

from gmalglib.sm2 import SM2 as GmSm2
from gmalglib.sm3 import SM3 as GmSm3

from bench.figures import Figure, ratio_text, write_figures
from ledger import keys
from ledger.hashing import SHA256_TREE, SM3_TREE, TreeHash, sm3_digest
from ledger.sm2 import DEFAULT_ID, Sm2PrivateKey
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite

#: What is signed: 300 bytes, a record header's size (its JCS is ~300-400 bytes).
MESSAGE = hashlib.shake_256(b"swiftchain bench/suites.py").digest(300)
REPEATS = 3
RUN_S = 0.25
#: Calibration: the smallest batch timed is at least this long.
CALIBRATE_S = 0.02
MOST_OPS = 1 << 22
THREADS = 2

Op = Callable[[], object]


@dataclass(frozen=True)
class Rate:
    """Operations per second: the median of the timed runs, and their extremes."""

    per_s: float
    low: float
    high: float

    @property
    def us(self) -> float:
        return 1e6 / self.per_s

    def text(self) -> str:
        return f"{self.per_s:,.0f}/s ({self.us:.1f} µs)"


def looped(op: Op) -> Callable[[int], int]:
    """A run of ``n`` calls of ``op`` in this thread."""

    def run(n: int) -> int:
        for _ in range(n):
            op()
        return n

    return run


def threaded(op: Op, threads: int = THREADS) -> Callable[[int], int]:
    """A run of ``n`` calls of ``op`` shared by ``threads`` threads started together."""

    def run(n: int) -> int:
        each = max(1, n // threads)
        workers = [threading.Thread(target=looped(op), args=(each,)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return each * threads

    return run


@dataclass(frozen=True)
class Timed:
    """A run to time and the number of operations it is given."""

    run: Callable[[int], int]
    n: int


def calibrated(run: Callable[[int], int], seconds: float = RUN_S) -> Timed:
    """``run`` with a batch size that takes ~``seconds`` (from a batch of >= CALIBRATE_S)."""
    n = 1
    while True:
        started = time.perf_counter()
        done = run(n)
        elapsed = time.perf_counter() - started
        if elapsed >= CALIBRATE_S or n >= MOST_OPS:
            break
        n *= 4
    return Timed(run, max(1, min(MOST_OPS, round(done * seconds / max(elapsed, 1e-9)))))


def interleaved(timed: dict[str, Timed], repeats: int = REPEATS) -> dict[str, Rate]:
    """Time every run ``repeats`` times, one of each in turn (a, b, c, a, b, c, ...): on a
    shared machine, figures taken side by side compare far better than figures taken in
    blocks seconds apart. The median of each run's rates."""
    rates: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(repeats):
        for name, t in timed.items():
            started = time.perf_counter()
            done = t.run(t.n)
            rates[name].append(done / (time.perf_counter() - started))
    return {name: Rate(statistics.median(got), min(got), max(got)) for name, got in rates.items()}


def releases_gil(op: Op, window_s: float = 0.03, interval_s: float = 0.2) -> bool:
    """Whether ``op`` lets another thread run Python while it works, told apart on a busy
    machine too: a second thread counts (it needs the GIL for every step) while this one
    calls ``op`` for ``window_s`` with the interpreter's switch interval raised to
    ``interval_s``, so that nothing but ``op`` releasing the GIL lets the counter move."""
    count = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    previous = sys.getswitchinterval()
    counter = threading.Thread(target=spin, daemon=True)
    counter.start()
    try:
        for _ in range(1000):
            if count[0]:
                break
            time.sleep(0.001)
        sys.setswitchinterval(interval_s)
        time.sleep(0.001)  # the counter's next wait for the GIL is at the new interval
        before = count[0]
        started = time.perf_counter()
        while time.perf_counter() - started < window_s:
            op()
        moved = count[0] - before
    finally:
        sys.setswitchinterval(previous)
        stop.set()
        counter.join(5)
    return moved > 0


# -- the suites, through the ledger's own code ---------------------------------------------


@dataclass(frozen=True)
class SuiteRates:
    suite: Suite
    sign: Rate
    verify: Rate
    verify_threads: Rate
    releases_gil: bool


def measure_suites(suites: tuple[Suite, ...]) -> list[SuiteRates]:
    """Sign, verify and verify on THREADS threads of each suite, all interleaved."""
    timed: dict[str, Timed] = {}
    verifies: dict[str, Op] = {}
    for suite in suites:
        key = keys.generate_key(suite)
        signature = keys.sign(key, MESSAGE)
        verifier = keys.FastVerifier(key.public_key())
        # A verify that failed fast would be timed as a fast one: check both answers first.
        assert verifier.is_valid(signature, MESSAGE)
        assert not verifier.is_valid(signature, MESSAGE[:-1] + b"?")
        verify = verifies[suite.name] = partial(verifier.is_valid, signature, MESSAGE)
        timed[f"{suite.name} sign"] = calibrated(looped(partial(keys.sign, key, MESSAGE)))
        timed[f"{suite.name} verify"] = calibrated(looped(verify))
        timed[f"{suite.name} verify_threads"] = calibrated(threaded(verify))
    rates = interleaved(timed)
    return [
        SuiteRates(
            suite,
            sign=rates[f"{suite.name} sign"],
            verify=rates[f"{suite.name} verify"],
            verify_threads=rates[f"{suite.name} verify_threads"],
            releases_gil=releases_gil(verifies[suite.name]),
        )
        for suite in suites
    ]


def sm2_verify_ceiling() -> float:
    """SM2 verifies/s on one core through the ledger's own code, now: the ceiling SM2
    verification alone puts on a hub's ingest per core (bench/ingest.py --suite)."""
    key = keys.generate_key(SM2_SM3)
    verifier = keys.FastVerifier(key.public_key())
    verify = partial(verifier.is_valid, keys.sign(key, MESSAGE), MESSAGE)
    assert verify()
    return interleaved({"verify": calibrated(looped(verify))})["verify"].per_s


#: How each suite signs and verifies in the ledger (ledger/keys.py, ledger/sm2.py).
LIBRARY = {
    ED25519_SHA256.name: ("cryptography", "libsodium (PyNaCl)"),
    SM2_SM3.name: ("gmalglib", "gmalglib"),
}
#: The reference figure (bench/limits.py) each Ed25519 row is read against.
REFERENCE = {
    "sign": "crypto.sign_per_s",
    "verify": "crypto.verify_per_s",
    "verify_threads": "crypto.verify_x2_threads_per_s",
}
UNIT = {"sign": "signs/s", "verify": "verifies/s", "verify_threads": "verifies/s"}


def gil_text(one: Rate, two: Rate, releases: bool | None) -> str:
    """Two threads' rate beside one thread's, and whether the verify releases the GIL."""
    gain = f"{two.per_s / one.per_s:.2f}x one thread"
    if releases is None:
        return gain
    return f"{gain}; {'releases' if releases else 'holds'} the GIL"


def suite_figures(ed: SuiteRates, sm: SuiteRates) -> list[Figure]:
    """The suites' rows: Ed25519's read against the reference, SM2's beside Ed25519's."""
    rows = []
    for what, label in (
        ("sign", "sign, 300 B (ledger.keys.sign)"),
        ("verify", "verify, 300 B (FastVerifier.is_valid)"),
        ("verify_threads", f"verify on {THREADS} threads, 300 B (FastVerifier.is_valid)"),
    ):
        lib = 0 if what == "sign" else 1
        for of in (ed, sm):
            got: Rate = getattr(of, what)
            result = got.text()
            if what == "verify_threads":
                result += f", {gil_text(of.verify, of.verify_threads, of.releases_gil)}"
            measure = f"{of.suite.name} {label}: {LIBRARY[of.suite.name][lib]}"
            if of is ed:
                rows.append(
                    Figure(
                        measure,
                        result,
                        target="report",
                        value=got.per_s,
                        unit=UNIT[what],
                        reference=REFERENCE[what],
                    )
                )
                continue
            base: Rate = getattr(ed, what)
            rows.append(
                Figure(
                    f"{measure}; beside: {ed.suite.name}'s",
                    result,
                    target="report",
                    beside=f"{base.per_s:,.0f}/s",
                    ratio=ratio_text([got.per_s / base.per_s]),
                )
            )
    rows.append(
        Figure(
            "ceiling: records/s per core that signature verification alone allows "
            f"(1 / verify time), {sm.suite.name}; beside: {ed.suite.name}'s",
            f"{sm.verify.per_s:,.0f} records/s",
            target="report",
            beside=f"{ed.verify.per_s:,.0f} records/s",
            ratio=ratio_text([sm.verify.per_s / ed.verify.per_s]),
        )
    )
    return rows


# -- the SM2 candidates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """An SM2 library's sign and verify of MESSAGE, ready to time."""

    sign: Op
    verify: Op
    #: Whether its verify accepts a :mod:`ledger.sm2` signature (same Z_A, same id).
    verifies_ours: bool
    #: Pure Python: a few timed iterations, and no two-thread run (it holds the GIL).
    pure: bool = False


def _ours() -> tuple[Sm2PrivateKey, bytes]:
    key = Sm2PrivateKey.generate()
    return key, key.sign(MESSAGE)


def _der(signature: bytes) -> bytes:
    """r || s as the DER SEQUENCE of two INTEGERs (GM/T 0009 section 7.3)."""

    def integer(raw: bytes) -> bytes:
        raw = raw.lstrip(b"\x00") or b"\x00"
        if raw[0] & 0x80:
            raw = b"\x00" + raw
        return bytes([2, len(raw)]) + raw

    body = integer(signature[:32]) + integer(signature[32:])
    return bytes([0x30, len(body)]) + body


def _gmalglib() -> Candidate:
    scalar, point = GmSm2().generate_keypair()
    signer, checker = GmSm2(sk=scalar, uid=DEFAULT_ID), GmSm2(pk=point, uid=DEFAULT_ID)
    signature = signer.sign(MESSAGE)
    assert checker.verify(MESSAGE, signature)
    key, ours = _ours()
    mine = GmSm2(pk=key.public_key().public_bytes_raw(), uid=DEFAULT_ID)
    return Candidate(
        partial(signer.sign, MESSAGE),
        partial(checker.verify, MESSAGE, signature),
        bool(mine.verify(MESSAGE, ours)),
    )


def _tongsuopy() -> Candidate:
    ec = import_module("tongsuopy.crypto.asymciphers.ec")
    hashes = import_module("tongsuopy.crypto.hashes")
    algorithm = ec.ECDSA(hashes.SM3())
    private = ec.generate_private_key(ec.SM2())
    public = private.public_key()
    signature = private.sign(MESSAGE, algorithm)
    public.verify(signature, MESSAGE, algorithm)  # raises if it does not verify
    key, ours = _ours()
    mine = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SM2(), key.public_key().public_bytes_raw()
    )
    try:
        mine.verify(_der(ours), MESSAGE, algorithm)
        verifies_ours = True
    except Exception:
        verifies_ours = False
    return Candidate(
        partial(private.sign, MESSAGE, algorithm),
        partial(public.verify, signature, MESSAGE, algorithm),
        verifies_ours,
    )


def _gmssl_pyx() -> Candidate:
    lib = import_module("gmssl_pyx")
    public, private = lib.sm2_key_generate()  # 64-byte x || y, 32-byte scalar
    signature = lib.sm2_sign(private, public, MESSAGE)
    assert lib.sm2_verify(public, MESSAGE, signature)
    key, ours = _ours()
    point = key.public_key().public_bytes_raw()[1:]
    return Candidate(
        partial(lib.sm2_sign, private, public, MESSAGE),
        partial(lib.sm2_verify, public, MESSAGE, signature),
        bool(lib.sm2_verify(point, MESSAGE, _der(ours))),
    )


def _gmssl_fast() -> Candidate:
    lib = import_module("gmssl_fast")
    signer = lib.SM2.generate()
    checker = lib.SM2(public_key=signer.public_key_hex)
    signature = signer.sign(MESSAGE)
    assert checker.verify(MESSAGE, signature)
    key, ours = _ours()
    mine = lib.SM2(public_key=key.public_key().public_bytes_raw().hex())
    return Candidate(
        partial(signer.sign, MESSAGE),
        partial(checker.verify, MESSAGE, signature),
        bool(mine.verify(MESSAGE, ours)),
    )


def _gmssl() -> Candidate:
    lib = import_module("gmssl.sm2")
    key, ours = _ours()  # gmssl makes no keys: it is given ours, in hex
    crypt = lib.CryptSM2(
        private_key=key.private_bytes_raw().hex(),
        public_key=key.public_key().public_bytes_raw()[1:].hex(),
    )
    signature = crypt.sign_with_sm3(MESSAGE)
    assert crypt.verify_with_sm3(signature, MESSAGE)
    return Candidate(
        partial(crypt.sign_with_sm3, MESSAGE),
        partial(crypt.verify_with_sm3, signature, MESSAGE),
        bool(crypt.verify_with_sm3(ours.hex(), MESSAGE)),
        pure=True,
    )


#: name shown -> (distribution, how to set it up).
CANDIDATES: dict[str, tuple[str, Callable[[], Candidate]]] = {
    "gmalglib": ("gmalglib", _gmalglib),
    "tongsuopy": ("tongsuopy", _tongsuopy),
    "gmssl_pyx": ("gmssl-pyx", _gmssl_pyx),
    "gmssl-fast": ("gmssl-fast", _gmssl_fast),
    "gmssl (pure Python)": ("gmssl", _gmssl),
}
#: A pure-Python candidate's timed runs: a few iterations each.
PURE_RUN_S = 0.1


@dataclass
class CandidateRates:
    name: str
    version: str = ""
    skipped: str = ""
    verifies_ours: bool = False
    releases_gil: bool | None = None
    sign: Rate | None = None
    verify: Rate | None = None
    verify_threads: Rate | None = None


def set_up(name: str) -> tuple[CandidateRates, Candidate | None]:
    """The candidate ``name``, or None and why it is skipped."""
    distribution, setup = CANDIDATES[name]
    out = CandidateRates(name)
    try:
        candidate = setup()
        out.version = metadata.version(distribution)
    except ImportError as exc:
        out.skipped = f"skipped: not importable ({exc})"
        return out, None
    except Exception as exc:
        out.skipped = f"skipped: its own signature does not verify ({type(exc).__name__})"
        return out, None
    out.verifies_ours = candidate.verifies_ours
    return out, candidate


def measure_candidates(names: list[str]) -> list[CandidateRates]:
    """Each candidate's sign, verify and verify on THREADS threads, all interleaved."""
    found, timed = [], {}
    for name in names:
        out, candidate = set_up(name)
        found.append(out)
        if candidate is None:
            continue
        seconds = PURE_RUN_S if candidate.pure else RUN_S
        timed[f"{name} sign"] = calibrated(looped(candidate.sign), seconds)
        timed[f"{name} verify"] = calibrated(looped(candidate.verify), seconds)
        if not candidate.pure:
            timed[f"{name} verify_threads"] = calibrated(threaded(candidate.verify))
            out.releases_gil = releases_gil(candidate.verify)
    rates = interleaved(timed)
    for out in found:
        out.sign = rates.get(f"{out.name} sign")
        out.verify = rates.get(f"{out.name} verify")
        out.verify_threads = rates.get(f"{out.name} verify_threads")
    return found


def candidate_figures(found: list[CandidateRates]) -> list[Figure]:
    base = next((c for c in found if c.name == "gmalglib" and c.sign and c.verify), None)
    rows = []
    for c in found:
        measure = f"SM2 library {c.name} {c.version}".rstrip()
        measure += f": sign / verify / verify on {THREADS} threads, 300 B"
        if c.skipped or c.sign is None or c.verify is None:
            rows.append(Figure(measure, c.skipped, target="report"))
            continue
        threads = "- (pure Python: holds the GIL)"
        if c.verify_threads is not None:
            threads = f"{c.verify_threads.text()}, "
            threads += gil_text(c.verify, c.verify_threads, c.releases_gil)
        ours = "verifies" if c.verifies_ours else "does NOT verify"
        result = f"{c.sign.text()} / {c.verify.text()} / {threads}; {ours} ledger.sm2's signatures"
        ratio = ""
        if base is not None and base is not c:
            assert base.sign is not None and base.verify is not None
            ratio = (
                f"sign {c.sign.per_s / base.sign.per_s:.2f}, "
                f"verify {c.verify.per_s / base.verify.per_s:.2f} (of gmalglib's)"
            )
        rows.append(Figure(measure, result, target="report", ratio=ratio))
    return rows


# -- tree hashing ---------------------------------------------------------------------------


def _gmalglib_sm3(data: bytes) -> bytes:
    return GmSm3(data).digest()


def _hashlib_sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def _hashlib_sm3_copier() -> Callable[[bytes], bytes]:
    prototype = hashlib.new("sm3")

    def digest(data: bytes) -> bytes:
        h = prototype.copy()
        h.update(data)
        return h.digest()

    return digest


#: A key id's input is 65 bytes (an SM2 point) and a node's; 33, a leaf of a 32-byte digest.
SM3_SIZES = (33, 65, 301)
CRYPTOGRAPHY_SM3 = "cryptography (ledger.hashing.sm3_digest)"
GMALGLIB_SM3 = "gmalglib.sm3.SM3"


def sm3_implementations() -> dict[str, Callable[[bytes], bytes]]:
    """Each SM3 at hand, name -> digest function; hashlib's only if this OpenSSL has it."""
    found: dict[str, Callable[[bytes], bytes]] = {
        CRYPTOGRAPHY_SM3: sm3_digest,
        GMALGLIB_SM3: _gmalglib_sm3,
    }
    try:
        hashlib.new("sm3")
    except ValueError:
        return found
    found['hashlib.new("sm3")'] = _hashlib_sm3
    found['hashlib.new("sm3"), a prototype .copy()'] = _hashlib_sm3_copier()
    return found


def measure_hashes() -> tuple[dict[str, Rate], dict[str, dict[int, Rate]]]:
    """Leaf and node hashes/s of each tree, and each SM3 on SM3_SIZES, interleaved."""
    left, right = SHA256_TREE.leaf(b"left"), SHA256_TREE.leaf(b"right")
    timed: dict[str, Timed] = {}
    tree: TreeHash
    for tree in (SHA256_TREE, SM3_TREE):
        timed[f"{tree.name} leaf"] = calibrated(looped(partial(tree.leaf, MESSAGE)))
        timed[f"{tree.name} node"] = calibrated(looped(partial(tree.node, left, right)))
    digests = sm3_implementations()
    for name, digest in digests.items():
        for size in SM3_SIZES:
            data = MESSAGE[:size]
            assert digest(data) == sm3_digest(data), name
            timed[f"{name} {size}"] = calibrated(looped(partial(digest, data)))
    rates = interleaved(timed)
    sm3 = {name: {size: rates[f"{name} {size}"] for size in SM3_SIZES} for name in digests}
    return rates, sm3


def hash_figures(rates: dict[str, Rate], sm3: dict[str, dict[int, Rate]]) -> list[Figure]:
    sha_leaf, sha_node = rates["sha256 leaf"], rates["sha256 node"]
    sm3_leaf, sm3_node = rates["sm3 leaf"], rates["sm3 node"]
    rows = [
        Figure("SHA256_TREE leaf hash, 0x00 + 300 B", sha_leaf.text(), target="report"),
        Figure(
            "SHA256_TREE node hash, 0x01 + 32 B + 32 B",
            sha_node.text(),
            target="report",
            value=sha_node.per_s,
            unit="hashes/s",
            reference="crypto.node_hash_per_s",
        ),
        Figure(
            "SM3_TREE leaf hash, 0x00 + 300 B; beside: SHA256_TREE's",
            sm3_leaf.text(),
            target="report",
            beside=f"{sha_leaf.per_s:,.0f}/s",
            ratio=ratio_text([sm3_leaf.per_s / sha_leaf.per_s]),
        ),
        Figure(
            "SM3_TREE node hash, 0x01 + 32 B + 32 B; beside: SHA256_TREE's",
            sm3_node.text(),
            target="report",
            beside=f"{sha_node.per_s:,.0f}/s",
            ratio=ratio_text([sm3_node.per_s / sha_node.per_s]),
        ),
    ]
    base = sm3[CRYPTOGRAPHY_SM3]
    sizes = " / ".join(str(s) for s in SM3_SIZES)
    for name, got in sm3.items():
        ratio = ""
        if name != CRYPTOGRAPHY_SM3:
            ratio = " / ".join(f"{got[s].per_s / base[s].per_s:.2f}" for s in SM3_SIZES)
            ratio += " (of cryptography's)"
        rows.append(
            Figure(
                f"SM3 of {sizes} B, {name}",
                " / ".join(got[s].text() for s in SM3_SIZES),
                target="report",
                ratio=ratio,
            )
        )
    return rows


def sm3_verdict(sm3: dict[str, dict[int, Rate]]) -> str:
    """Whether gmalglib's SM3 is clearly faster than cryptography's on 33 and 65 bytes."""
    base, gm = sm3[CRYPTOGRAPHY_SM3], sm3[GMALGLIB_SM3]
    small = [gm[s].per_s / base[s].per_s for s in (33, 65)]
    long = gm[301].per_s / base[301].per_s
    clearly = "clearly faster" if min(small) >= 1.3 else "not clearly faster"
    return (
        f"gmalglib's SM3 is {small[0]:.2f}x / {small[1]:.2f}x cryptography's on 33 / 65 bytes "
        f"({long:.2f}x on 301): {clearly} on node-sized input"
    )


# -- the run --------------------------------------------------------------------------------


def show(figures: list[Figure]) -> None:
    width = max(len(f.measure) for f in figures)
    print()
    for f in figures:
        extra = f"  [beside {f.beside}: {f.ratio}]" if f.beside else ""
        if f.ratio and not f.beside:
            extra = f"  [{f.ratio}]"
        print(f"{f.measure:<{width}}  {f.result}{extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suites-only",
        action="store_true",
        help="only the suites' sign and verify through the ledger's code (the later round)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (for make bench)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    started = time.monotonic()
    print(
        f"Crypto suites benchmark: single core, {len(MESSAGE)}-byte messages, {os.cpu_count()} "
        f"CPUs, load average {load:.2f} at start",
        flush=True,
    )
    ed, sm = measure_suites((ED25519_SHA256, SM2_SM3))
    figures = suite_figures(ed, sm)
    verdict = ""
    if not args.suites_only:
        figures += candidate_figures(measure_candidates(list(CANDIDATES)))
        rates, sm3 = measure_hashes()
        figures += hash_figures(rates, sm3)
        verdict = sm3_verdict(sm3)
    figures.append(
        Figure(
            "load average (1 min) at start / end; seconds",
            f"{load:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
            f"{time.monotonic() - started:.0f} s",
            target="report",
        )
    )
    show(figures)
    if verdict:
        print(f"\n{verdict}")
    if args.json:
        write_figures(args.json, figures)


if __name__ == "__main__":
    main()
