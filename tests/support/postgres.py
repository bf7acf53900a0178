"""PostgreSQL for the tests: the machine's server when one answers on 127.0.0.1:5432 (trust
auth), else a cluster of the test session's own, made with ``initdb`` and ``pg_ctl`` in a
temporary folder on a free loopback port; without either, the tests that need one skip with
the reason.

Each test gets a database of its own (:func:`fresh_database`), dropped after it. Tests that
stop, kill or freeze the server start a :class:`Cluster` of their own, never the machine's.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.broker import DIE_WITH_PARENT, free_port

#: The machine's server, as these machines run it.
MACHINE_URL = os.environ.get("SWIFTCHAIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
_BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)


def pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in _BIN_DIRS:
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=True) as c:
            c.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _as_postgres() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when the tests run as root (initdb refuses root)."""
    if os.getuid() != 0:
        return None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = pwd.getpwnam("nobody")
    return user.pw_uid, user.pw_gid


@dataclass
class Cluster:
    """A PostgreSQL cluster of the test's own: ``start``, ``stop``, ``kill``, ``freeze``."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        ids = _as_postgres()

        def demote() -> None:
            if DIE_WITH_PARENT is not None:
                DIE_WITH_PARENT()
            if ids is not None:
                os.setgid(ids[1])
                os.setuid(ids[0])

        subprocess.run(args, check=True, capture_output=True, preexec_fn=demote, timeout=120)

    def init(self) -> None:
        initdb = pg_tool("initdb")
        if initdb is None:
            raise FileNotFoundError("initdb")
        self.directory.mkdir(parents=True, exist_ok=True)
        ids = _as_postgres()
        if ids is not None:
            os.chown(self.directory, *ids)
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "max_connections = 60\nshared_buffers = 32MB\n"
            )

    def start(self, timeout: float = 30.0) -> None:
        """The server in the foreground of a child process (so that ``kill`` and ``freeze``
        reach it), waited for until it answers."""
        postgres = pg_tool("postgres")
        assert postgres is not None
        ids = _as_postgres()

        def demote() -> None:
            if DIE_WITH_PARENT is not None:
                DIE_WITH_PARENT()
            if ids is not None:
                os.setgid(ids[1])
                os.setuid(ids[0])

        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [postgres, "-D", str(self.data)], stdout=log, stderr=log, preexec_fn=demote
        )
        deadline = time.monotonic() + timeout
        while not answers(self.url, timeout=1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: {self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """A fast shutdown (SIGINT: sessions are cut, what is committed stays)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the postmaster's whole group of backends: a crash; recovery replays WAL."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            # The backends notice their postmaster is gone and exit.
            for _ in range(100):
                if not (self.data / "postmaster.pid").exists():
                    break
                time.sleep(0.05)
            (self.data / "postmaster.pid").unlink(missing_ok=True)
        self.process = None

    def log_tail(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def can_make_cluster() -> bool:
    return pg_tool("initdb") is not None and pg_tool("postgres") is not None


@contextmanager
def own_cluster(directory: Path | None = None) -> Iterator[Cluster]:
    """A started cluster in ``directory`` (a new temporary one by default), stopped after."""
    temp = None
    if directory is None:
        temp = tempfile.mkdtemp(prefix="swiftchain-pg-")
        directory = Path(temp)
    cluster = Cluster(directory)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def server_url() -> tuple[str | None, str]:
    """The machine's server URL, or (None, why not)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed"
    if answers(MACHINE_URL):
        return MACHINE_URL, ""
    return None, f"nothing answers at {MACHINE_URL}"


def with_database(server: str, name: str) -> str:
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on ``server`` for one test: its URL; dropped after."""
    import psycopg

    name = "swiftchain_t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def tables_naming(url: str, needles: Sequence[str]) -> list[str]:
    """The tables (``schema.table``, every schema but the system's) of the database at
    ``url`` with a row naming one of ``needles``, as text or in a ``bytea`` column's bytes
    (a row as text shows those in hex). Its logical content: what the server's files still
    hold of deleted rows is not looked at."""
    import psycopg
    from psycopg import sql

    wanted = [*needles, *(n.encode().hex() for n in needles)]
    found = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            " ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL(
                "SELECT EXISTS (SELECT 1 FROM {} t WHERE strpos(t::text, n) > 0)"
                " FROM unnest(%s::text[]) AS n"
            ).format(sql.Identifier(schema, table))
            if any(row[0] for row in conn.execute(query, (wanted,)).fetchall()):
                found.append(f"{schema}.{table}")
    return found


# -- a full disk ---------------------------------------------------------------------------

#: The small filesystem's size to begin with: a new database takes ~2 MB of it.
SMALL_DISK_BYTES = 64 * 1024 * 1024


@dataclass
class SmallDisk:
    """A tmpfs holding a tablespace, made smaller or larger while the server uses it: the
    PostgreSQL equivalent of a SQLite ledger's ``max_page_count`` quota (a relation file
    that cannot grow fails its INSERT with SQLSTATE 53100, ``disk_full``)."""

    path: Path

    def used(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def resize(self, size: int) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def fill(self, spare: int = 0) -> None:
        """No room left but ``spare`` bytes (rounded to the filesystem's pages)."""
        self.resize(self.used() + spare)

    def clear(self) -> None:
        """Room again, as an operator gives it: the disk's first size, and at least half
        that beyond what it holds now. (What it holds may by now be near the first size: the
        commits refused on the full disk leave their dead tuples in the tables until a
        vacuum, the more of them the longer the agents resend; a chaos run under a loaded
        machine once found no room left after going back to 64 MB.)"""
        self.resize(max(SMALL_DISK_BYTES, self.used() + SMALL_DISK_BYTES // 2))


def small_disk_unavailable() -> str | None:
    """Why :func:`databases_on_small_disk` cannot run here, or None."""
    if not can_make_cluster():
        return "no initdb/postgres to start a cluster of the test's own"
    if os.geteuid() != 0:
        return "mounting a small tmpfs for a tablespace needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


@contextmanager
def databases_on_small_disk(*names: str) -> Iterator[tuple[dict[str, str], SmallDisk]]:
    """A cluster of the test's own (never the machine's: a full tablespace fails its
    checkpoints too) with database ``names[0]`` on a :class:`SmallDisk` and the others on
    its ordinary disk: ``({name: url}, disk)``. Raises OSError or CalledProcessError when
    the tmpfs cannot be mounted (a container without CAP_SYS_ADMIN)."""
    import psycopg

    with own_cluster() as cluster:
        disk = SmallDisk(cluster.directory / "small-disk")
        disk.path.mkdir()
        options = f"size={SMALL_DISK_BYTES},mode=0700"
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk.path)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        try:
            ids = _as_postgres()
            if ids is not None:
                os.chown(disk.path, *ids)
            with psycopg.connect(cluster.url, autocommit=True) as admin:
                admin.execute(f"CREATE TABLESPACE small LOCATION '{disk.path}'")
                for n, name in enumerate(names):
                    where = " TABLESPACE small" if n == 0 else ""
                    admin.execute(f'CREATE DATABASE "{name}"{where}')
            yield {name: with_database(cluster.url, name) for name in names}, disk
        finally:
            cluster.stop()
            subprocess.run(["umount", "-l", str(disk.path)], capture_output=True, timeout=30)
