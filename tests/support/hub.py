"""A real hub for tests: config and keys in ``tmp_path``, run in a thread of its own (so sync
and async tests alike can call it) or as a ``swiftchain hub`` subprocess (to kill -9 it).

Registration goes through the hub's admin HTTP API, exactly as an operator's would::

    hub = running_hub                       # fixture
    key_path, key_id = hub.register_source("city-air", "station-1", ["city.air-quality"])
    # publish to hub.mqtt_url on swiftchain/v1/city-air/station-1/records,
    # read receipts on .../receipts, audit over hub.http_url; hub.log_key verifies notes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.keys import b64url_encode, load_private_key, public_key_b64, write_key_pair
from ledger.keys import key_id as key_id_of
from ledger.suite import DEFAULT_SUITE, Suite, suite_named, suite_of

from .broker import DIE_WITH_PARENT, free_port

if TYPE_CHECKING:
    from ledger.keystore import KeyStore

#: Bound on a hub's start (import, ledger open, listening, ready): a bound on a hang, wide
#: enough for a machine whose other core is busy.
STARTUP_S = 120.0

ADMIN_TOKEN = "test-admin-token"
#: The console script installed next to this interpreter.
SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
DEFAULT_ORG = "test-org"


def write_hub_config(
    directory: Path,
    *,
    mqtt_url: str,
    http_port: int | None = None,
    origin: str = "test.swiftchain/ledger",
    suite: Suite | str = DEFAULT_SUITE,
    **settings: Any,
) -> Path:
    """Write ``hub.toml`` and the hub's signing key ``hub.key`` into ``directory``.

    ``hub.key`` is a key of ``suite`` (a :class:`ledger.suite.Suite` or its name), which
    makes the hub's log one of that suite; a key already there is kept (a hub started
    again on its files).

    Extra keyword arguments become settings (``batch_max_ms=2``, ``mqtt_protocol="v311"``);
    one given as None is left out (``public_url=None``: a hub that does not know its URL).
    The MQTT client id and shared-subscription group are unique, so hubs of different
    tests never share a session or split a subscription.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "hub.key"
    if not key_path.exists():
        write_key_pair(key_path, suite=suite if isinstance(suite, Suite) else suite_named(suite))
    tag = uuid.uuid4().hex[:10]
    port = http_port if http_port is not None else free_port()
    values: dict[str, Any] = {
        "origin": origin,
        "db_path": "ledger.db",
        "signing_key": "hub.key",
        "http_host": "127.0.0.1",
        "http_port": port,
        "public_url": f"http://127.0.0.1:{port}",
        "admin_token": ADMIN_TOKEN,
        "mqtt_url": mqtt_url,
        "mqtt_client_id": f"hub-{tag}",
        "mqtt_share_group": f"hub{tag}",
        "mqtt_session_expiry_s": 300,
        "mqtt_reconnect_initial_s": 0.1,
        "mqtt_reconnect_max_s": 1.0,
        "drain_timeout_s": 5.0,
        **settings,
    }
    url = values.get("ledger_url")
    if isinstance(url, str) and url.startswith("postgres") and "key_store_master_key" not in values:
        values["key_store_master_key"] = str(_master_key(directory, key_path))
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
    path = directory / "hub.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _master_key(directory: Path, signing_key: Path) -> Path:
    """The master key a hub on PostgreSQL wraps its data keys under (its key store is a
    schema of the ledger's database): derived from its signing key, so that two hubs of one
    log, which share that, share this too (a standby opens the active hub's key store)."""
    path = directory / "keys.master"
    if not path.exists():
        secret = hashlib.sha256(b"swiftchain test master key\n" + signing_key.read_bytes())
        path.write_text(b64url_encode(secret.digest()) + "\n")
        path.chmod(0o600)
    return path


@dataclass
class HubHandle:
    """What a test needs of a running hub: its URLs, its log key, and registration."""

    config_path: Path
    http_url: str
    mqtt_url: str
    keys_dir: Path
    admin_token: str = ADMIN_TOKEN
    _orgs: set[str] = field(default_factory=set)

    @property
    def db_path(self) -> Path:
        """The SQLite file of a hub on SQLite (on PostgreSQL: where it would be)."""
        return self.config_path.parent / "ledger.db"

    @property
    def ledger_location(self) -> Path | str:
        """Where the hub's ledger is, as its settings say: a SQLite file's path, or the
        PostgreSQL URL of ``ledger_url``."""
        from gateway.settings import load_settings

        return load_settings(self.config_path).ledger_location

    @property
    def on_postgres(self) -> bool:
        return isinstance(self.ledger_location, str)

    @property
    def log_key(self) -> str:
        return self.get_text("/api/v1/ledger/key").strip()

    @property
    def signing_key_path(self) -> Path:
        from gateway.settings import load_settings

        return load_settings(self.config_path).signing_key

    @property
    def suite(self) -> Suite:
        """The hub's crypto suite: its signing key's (``write_hub_config(suite=...)``)."""
        return suite_of(load_private_key(self.signing_key_path))

    # -- HTTP helpers (blocking; the hub runs in another thread or process) --------------
    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.http_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.admin_token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw, status, ctype = resp.read(), resp.status, resp.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            raw, status, ctype = exc.read(), exc.code, exc.headers.get_content_type()
        return status, (json.loads(raw) if ctype == "application/json" else raw.decode())

    def get_json(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return body

    def get_text(self, path: str) -> str:
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        assert isinstance(body, str)
        return body

    def opened_entries(self, kind: str | None = None, start: int = 0) -> list[dict[str, Any]]:
        """The entries from ``start`` on (of ``kind``, or all, each with its ``kind`` and
        ``index``) as the hub knows them: each public leaf (from the API, page by page) with
        the fields of its opening from the hub's own file in place of its ``person``
        commitment. Checks on the way that the public leaf names nobody: a v2 leaf carries
        none of the fields its opening holds."""
        from ledger.sealed import PERSON, opened
        from ledger.store import LedgerReader

        found: list[tuple[int, dict[str, Any]]] = []
        for _ in range(1000):
            page = self.get_json(f"/api/v1/ledger/entries?start={start}&end={start + 1000}")
            found += [
                (e["index"], {**json.loads(base64.b64decode(e["leaf"])), "kind": e["kind"]})
                for e in page["entries"]
                if kind is None or e["kind"] == kind
            ]
            start += len(page["entries"])
            if not page["entries"] or start >= page["size"]:
                break
        with self.key_store() as keys, LedgerReader(self.ledger_location, keys=keys) as reader:
            openings = reader.openings([i for i, _ in found])
            suite = reader.suite
        views = []
        for index, leaf in found:
            held = openings.get(index)
            if held is not None:
                assert PERSON in leaf and not set(held.fields) & set(leaf), (index, leaf)
            views.append({**opened(leaf, held, suite), "index": index})
        return views

    def key_store(self) -> KeyStore:
        """The hub's key store, opened as the hub opens it (its settings), to read the
        ledger's sealed values with; a context manager."""
        from gateway.hub_ledger import open_key_store
        from gateway.settings import load_settings

        return open_key_store(load_settings(self.config_path))

    def source_payloads(self, pilot: str, source: str) -> list[tuple[int, Any]]:
        """(seq, payload) of one source's records whose bodies the hub's ledger holds, in
        seq order, opened with the hub's key store."""
        from ledger.store import LedgerReader

        with self.key_store() as keys, LedgerReader(self.ledger_location, keys=keys) as ledger:
            rows = ledger.conn.execute(
                "SELECT r.seq, r.idx FROM records r JOIN bodies b ON b.idx = r.idx"
                " WHERE r.pilot = ? AND r.source = ? ORDER BY r.seq",
                (pilot, source),
            ).fetchall()
            found: dict[int, bytes] = {}
            for start in range(0, len(rows), 1000):
                found.update(ledger.held_payloads([int(i) for _, i in rows[start : start + 1000]]))
        return [(int(seq), json.loads(found[int(i)])) for seq, i in rows if int(i) in found]

    def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.request("POST", "/api/v1/admin/registry/" + path, body)
        assert status == 201, (path, status, answer)
        assert isinstance(answer, dict)
        return answer

    # -- registry --------------------------------------------------------------------------
    def add_org(self, org: str = DEFAULT_ORG, name: str | None = None) -> None:
        if org in self._orgs:
            return
        status, answer = self.request(
            "POST", "/api/v1/admin/registry/orgs", {"org": org, "name": name or org}
        )
        assert status == 201 or (status == 409 and answer["error"] == "org_exists"), answer
        self._orgs.add(org)

    def new_key(self, name: str, suite: Suite | None = None) -> tuple[Path, str, str]:
        """A fresh key pair in the keys dir, of the hub's suite unless told: (private key
        path, key id, public key b64)."""
        path = self.keys_dir / f"{name}-{uuid.uuid4().hex[:6]}.key"
        key = write_key_pair(path, suite=suite or self.suite)
        return path, key_id_of(key.public_key()), public_key_b64(key.public_key())

    def register_source(
        self,
        pilot: str,
        source: str,
        types: list[str],
        *,
        org: str = DEFAULT_ORG,
        valid_from: str | None = None,
        valid_until: str | None = None,
    ) -> tuple[Path, str]:
        """Register ``pilot/source`` (and its org) with a new key; return (key path, key id)."""
        self.add_org(org)
        path, kid, public = self.new_key(f"{pilot}-{source}")
        body: dict[str, Any] = {
            "pilot": pilot,
            "source": source,
            "org": org,
            "types": types,
            "public_key": public,
        }
        if valid_from:
            body["valid_from"] = valid_from
        if valid_until:
            body["valid_until"] = valid_until
        self.admin("sources", body)
        return path, kid

    def rotate_key(self, pilot: str, source: str) -> tuple[Path, str]:
        path, kid, public = self.new_key(f"{pilot}-{source}")
        self.admin("keys/rotate", {"pilot": pilot, "source": source, "public_key": public})
        return path, kid

    def revoke_key(self, key_id: str, at: str | None = None) -> None:
        body = {"key_id": key_id} | ({"at": at} if at else {})
        self.admin("keys/revoke", body)

    def revoke_source(self, pilot: str, source: str) -> None:
        self.admin("sources/revoke", {"pilot": pilot, "source": source})

    def wait_ready(self, timeout: float = STARTUP_S) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                status, last = self.request("GET", "/readyz")
                if status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                last = exc
            time.sleep(0.05)
        raise TimeoutError(f"hub at {self.http_url} not ready after {timeout}s: {last}")


class ThreadHub(HubHandle):
    """A hub on an event loop in a thread of its own, serving real HTTP on 127.0.0.1."""

    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    app: Any = None

    def start(self) -> None:
        from aiohttp import web

        from gateway.app import create_app
        from gateway.settings import load_settings

        settings = load_settings(self.config_path)
        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stop = asyncio.Event()
            self.app = create_app(settings)
            runner = web.AppRunner(self.app, access_log=None)
            try:
                await runner.setup()
                site = web.TCPSite(runner, settings.http_host, settings.http_port)
                await site.start()
            except BaseException as exc:
                failure.append(exc)
                started.set()
                await runner.cleanup()
                return
            started.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.close()

        self._thread = threading.Thread(target=main, name="test-hub", daemon=True)
        self._thread.start()
        started.wait(STARTUP_S)
        if failure:
            raise failure[0]
        self.wait_ready()

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._thread = None

    @property
    def hub(self) -> Any:
        """The in-process ``gateway.hub.Hub`` (for white-box assertions)."""
        from gateway.app import HUB

        return self.app[HUB]


class ProcessHub(HubHandle):
    """``swiftchain hub --config ...`` as a child process."""

    proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        log = open(self.config_path.parent / "hub.log", "ab")
        self.proc = subprocess.Popen(
            [SWIFTCHAIN, "hub", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=DIE_WITH_PARENT,
        )
        if wait:
            self.wait_listening()
            self.wait_ready()

    def wait_listening(self, timeout: float = STARTUP_S) -> None:
        """Until the hub accepts connections; at once if the process exits instead."""
        assert self.proc is not None
        port = int(self.http_url.rsplit(":", 1)[1])
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                pass
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(f"hub exited with status {code}: {self.log_text()[-1500:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"hub not listening on {port} after {timeout}s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the hub, and wait until all its processes are gone (with front ends the
        supervisor is killed, and the kernel kills the others: a machine losing power)."""
        assert self.proc is not None
        children = self.children("sequencer") + self.children("front")
        self.proc.kill()
        self.proc.wait(60)
        self.proc = None
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in children):
            if time.monotonic() > deadline:
                raise TimeoutError(f"hub processes {children} outlived their supervisor")
            time.sleep(0.02)

    def wait_ready(self, timeout: float = STARTUP_S) -> None:
        """Until every front end (the ``Swiftchain-Front`` header names the one answering
        a connection) says ready: the kernel spreads new connections over them."""
        want = self.front_ends
        if want == 0:
            return super().wait_ready(timeout)
        port = int(self.http_url.rsplit(":", 1)[1])
        deadline = time.monotonic() + timeout
        ready: set[str] = set()
        last: Any = None
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/readyz")
                resp = conn.getresponse()
                last = resp.read()
                if resp.status == 200:
                    ready.add(resp.getheader("Swiftchain-Front") or "")
                    if len(ready) >= want:
                        return
                    continue
            except OSError as exc:
                last = exc
            finally:
                conn.close()
            time.sleep(0.05)
        raise TimeoutError(
            f"front ends {sorted(ready)} of {want} at {self.http_url} ready after {timeout}s:"
            f" {last!r}"
        )

    @property
    def front_ends(self) -> int:
        """How many front-end processes this hub runs (0: one process), as its settings
        (the config file, ``SWIFTCHAIN_HUB_WORKERS``) say."""
        from gateway.settings import load_settings

        return load_settings(self.config_path).front_ends

    def children(self, role: str) -> list[int]:
        """The pids of this hub's ``sequencer`` or ``front`` processes (none when the hub
        runs in one process)."""
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(stat[1]) == self.proc.pid and b"gateway.cluster.child" in argv:
                if argv[argv.index(b"gateway.cluster.child") + 1] == role.encode():
                    found.append(int(entry.name))
        return sorted(found)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.terminate()
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def stop(self) -> None:
        if self.proc is not None:
            self.kill()

    def log_text(self) -> str:
        return (self.config_path.parent / "hub.log").read_text(errors="replace")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _handle(
    cls: type[HubHandle],
    directory: Path,
    mqtt_url: str,
    *,
    suite: Suite | str = DEFAULT_SUITE,
    **settings: Any,
) -> Any:
    port = free_port()
    config = write_hub_config(directory, mqtt_url=mqtt_url, http_port=port, suite=suite, **settings)
    keys = directory / "keys"
    keys.mkdir(exist_ok=True)
    return cls(config, f"http://127.0.0.1:{port}", mqtt_url, keys)


@contextmanager
def thread_hub(
    directory: Path, mqtt_url: str, *, suite: Suite | str = DEFAULT_SUITE, **settings: Any
) -> Iterator[ThreadHub]:
    """A started :class:`ThreadHub` whose log is of ``suite`` (its hub key's)."""
    hub: ThreadHub = _handle(ThreadHub, directory, mqtt_url, suite=suite, **settings)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def process_hub(
    directory: Path, mqtt_url: str, *, suite: Suite | str = DEFAULT_SUITE, **settings: Any
) -> ProcessHub:
    """A :class:`ProcessHub` (not started) whose log is of ``suite`` (its hub key's)."""
    hub: ProcessHub = _handle(ProcessHub, directory, mqtt_url, suite=suite, **settings)
    return hub


def records_topic(pilot: str, source: str) -> str:
    return f"swiftchain/v1/{pilot}/{source}/records"


class MqttPeer:
    """A test-side agent: publishes records (or any bytes) and collects every receipt.

    ``async with MqttPeer(hub.mqtt_url) as peer: receipt = await peer.send(record)``
    """

    def __init__(
        self,
        mqtt_url: str,
        receipts: str = "swiftchain/v1/+/+/receipts",
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        from transport.mqtt import Endpoint

        endpoint = Endpoint.parse(mqtt_url)
        self.host, self.port, self.tls = endpoint.host, endpoint.port, tls
        self.receipts_filter = receipts
        self.receipts: list[tuple[str, dict[str, Any]]] = []
        self.by_id: dict[str | None, list[dict[str, Any]]] = {}
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._mqtt: Any = None

    async def __aenter__(self) -> MqttPeer:
        import aiomqtt

        self._changed = asyncio.Event()
        self._mqtt = aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"peer-{uuid.uuid4().hex[:8]}",
            max_inflight_messages=1000,
            tls_context=self.tls,
        )
        await self._mqtt.__aenter__()
        await self._mqtt.subscribe(self.receipts_filter, qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            await self._mqtt.__aexit__(None, None, None)
        except Exception:
            pass

    async def _read(self) -> None:
        assert self._changed is not None
        async for message in self._mqtt.messages:
            receipt = json.loads(message.payload)
            self.receipts.append((message.topic.value, receipt))
            self.by_id.setdefault(receipt.get("id"), []).append(receipt)
            self._changed.set()

    def publish_nowait(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 without awaiting the PUBACK (floods, paced city traffic): handed
        to paho under aiomqtt, whose own ``publish`` awaits each PUBACK."""
        self._mqtt._client.publish(topic, payload, qos=1)

    async def publish(self, topic: str, payload: bytes) -> None:
        await self._mqtt.publish(topic, payload, qos=1)

    async def send(
        self, record: Any, topic: str | None = None, wait_s: float = 10
    ) -> dict[str, Any]:
        """Publish a SignedRecord and wait for its next receipt."""
        h = record.header
        seen = len(self.by_id.get(h.id, []))
        await self.publish(topic or records_topic(h.pilot, h.source), record.to_wire())
        return await self.receipt(h.id, wait_s, after=seen)

    async def receipt(
        self, record_id: str | None, wait_s: float = 10, after: int = 0
    ) -> dict[str, Any]:
        assert self._changed is not None
        async with asyncio.timeout(wait_s):
            while len(self.by_id.get(record_id, [])) <= after:
                self._changed.clear()
                await self._changed.wait()
        return self.by_id[record_id][after]

    async def wait_for(self, count: int, wait_s: float = 30) -> None:
        """Until at least ``count`` receipts have arrived."""
        await self.wait_until(lambda: len(self.receipts) >= count, wait_s)

    async def wait_until(self, done: Callable[[], bool], wait_s: float = 30) -> None:
        """Until ``done()`` holds, checked after every receipt."""
        assert self._changed is not None
        async with asyncio.timeout(wait_s):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    def accepted(self) -> int:
        return sum(1 for _, r in self.receipts if r["status"] == "accepted")
