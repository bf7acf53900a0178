"""The agent: the outbox, the intake, the sources, the MQTT link and the receipt checks,
wired together and run as one TaskGroup until cancelled (SIGINT/SIGTERM: the process layer,
``runtime.process``, turns them into cancellation)."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.checkpoint import NoteVerifier
from ledger.errors import CheckpointError, KeyFileError, PolicyError
from ledger.keys import load_public_key
from ledger.policy import TrustPolicy, parse_policy
from ledger.suite import DEFAULT_SUITE, Suite
from transport.backoff import backoff_delay

from .datatypes import TypeRegistry
from .errors import ConfigError, HubUnavailable
from .hub import HubClient
from .intake import Intake
from .link import Link, client_options
from .logs import log
from .outbox import AsyncOutbox, Outbox
from .pseudonym import Pseudonymiser, load_pseudonym_key
from .receipts import ProofPolicy, ReceiptJudge
from .relay import Relay
from .reseal import reseal
from .settings import BrokerSettings, EdgeSettings, RelaySettings
from .settling import InclusionChecker, QuorumSettler, Settler
from .signer import Signer
from .sources.directory import DirectorySource
from .sources.sensors import SensorSource
from .sources.stream import StreamSource, file_lines, stdin_lines

logger = logging.getLogger("edge.agent")

HUB_KEY_META = "hub_verifier_key"
_DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def configured_verifier(settings: EdgeSettings) -> NoteVerifier | None:
    """The hub key pinned in the settings (string or file), if any."""
    text = settings.hub.verifier_key
    if text is None and settings.hub.verifier_key_file is not None:
        try:
            text = settings.hub.verifier_key_file.read_text()
        except OSError as exc:
            raise ConfigError(
                f"cannot read hub key {settings.hub.verifier_key_file}: {exc.strerror}"
            ) from None
    if text is None:
        return None
    try:
        return NoteVerifier.parse(text)
    except CheckpointError as exc:
        raise ConfigError(f"the hub verifier key in the settings is not one: {exc}") from None


def check_hub_suite(verifier: NoteVerifier, suite: Suite, where: str) -> NoteVerifier:
    """``verifier`` if the hub's log is of ``suite`` (the agent's: its signing key's), else
    ConfigError: the hub accepts only records signed in its log's suite, and the agent checks
    the hub's proofs in its own suite's tree, so an agent and a hub of two suites cannot work
    together. ``where`` says where the hub key came from."""
    found = verifier.suite
    if found is not suite:
        raise ConfigError(
            f"the hub's log key ({where}) is of the {found.name} crypto suite, but this"
            f" agent's key_file is an {suite.key_kind} key ({suite.name}): an agent signs in"
            f" its hub's suite; give it an {found.key_kind} key (`swiftchain keys new --suite"
            f" {found.key_kind}`) registered with the hub, or pin the key of a {suite.name} hub"
        )
    return verifier


async def pin_verifier(
    settings: EdgeSettings,
    outbox: AsyncOutbox,
    hub: HubClient,
    suite: Suite = DEFAULT_SUITE,
) -> NoteVerifier:
    """The hub's verifier key: from the settings, else pinned earlier, else fetched from the
    hub now (trust on first use, logged) and pinned in the outbox. Waits for the hub.
    ConfigError, whatever its source, if the key is not of the agent's ``suite``
    (:func:`check_hub_suite`); a fetched one is not pinned then."""
    configured = configured_verifier(settings)
    if configured is not None:
        return check_hub_suite(configured, suite, "[hub] verifier_key")
    stored = await outbox.call(Outbox.meta, HUB_KEY_META)
    if stored is not None:
        return check_hub_suite(NoteVerifier.parse(stored), suite, "pinned in the outbox")
    attempt = 0
    while True:
        try:
            text = await hub.verifier_key()
            verifier = NoteVerifier.parse(text)
            break
        except (HubUnavailable, CheckpointError) as exc:
            delay = backoff_delay(
                attempt, initial=settings.backoff.initial, maximum=settings.backoff.maximum
            )
            attempt += 1
            log(
                logger,
                logging.WARNING,
                "hub.key_unavailable",
                error=str(exc),
                retry_in=round(delay, 3),
            )
            await asyncio.sleep(delay)
    check_hub_suite(verifier, suite, f"fetched from {settings.hub.url}")
    await outbox.call(Outbox.set_meta, HUB_KEY_META, verifier.encode())
    log(
        logger,
        logging.WARNING,
        "hub.key_pinned_on_first_use",
        key=verifier.encode(),
        hint="pin it in [hub] verifier_key to stop trusting the network for it",
    )
    return verifier


@dataclass
class Agent:
    """A running agent's parts (tests and the bench reach in through these)."""

    settings: EdgeSettings
    outbox: AsyncOutbox
    intake: Intake
    hub: HubClient
    receipts: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    link: Link | None = None
    settler: Settler | None = None
    checker: InclusionChecker | None = None
    #: Set when the agent requires the quorum (``hub.require_quorum``).
    quorum: QuorumSettler | None = None
    trust_policy: TrustPolicy | None = None
    stream: StreamSource | None = None
    directory: DirectorySource | None = None
    sensors: SensorSource | None = None
    http_port: int | None = None
    metrics_port: int | None = None
    verifier: NoteVerifier | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Run every part until cancelled. Settings found wrong on the way (a hub key of
        another suite, fetched on first use) are a ConfigError of their own, not in a group,
        for the CLI to show as one message."""
        try:
            await self._run()
        except* ConfigError as group:
            raise _first(group) from None

    async def _run(self) -> None:
        s = self.settings
        async with AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
            tg.create_task(self.intake.run(), name="intake")
            if s.http.enabled:
                self.http_port = await stack.enter_async_context(_http_site(self.intake, s))
            if s.metrics_port is not None:
                from .metrics import metrics_site  # prometheus and aiohttp only when used

                self.metrics_port = await stack.enter_async_context(
                    metrics_site(self, s.metrics_host, s.metrics_port)
                )
                log(
                    logger,
                    logging.INFO,
                    "metrics.listening",
                    host=s.metrics_host,
                    port=self.metrics_port,
                )
            if s.directory.enabled:
                self.directory = DirectorySource(
                    self.intake,
                    s.directory.path,
                    done=s.directory.done,
                    failed=s.directory.failed,
                    poll_interval=s.directory.poll_interval,
                    settle=s.directory.settle,
                    max_file_bytes=s.directory.max_file_bytes,
                    default_type=s.directory.default_type,
                )
                tg.create_task(self.directory.run(), name="directory")
            if s.stream.enabled:
                self.stream = StreamSource(
                    self.intake,
                    default_type=s.stream.default_type,
                    acks=sys.stdout if s.stream.acks else None,
                    batch=s.stream.batch,
                )
                lines = stdin_lines() if s.stream.path == "-" else file_lines(Path(s.stream.path))
                tg.create_task(self.stream.run(lines), name="stream")
            if s.sensors.enabled:
                self.sensors = SensorSource(
                    self.intake,
                    broker=_sensor_broker(s),
                    client_id=f"{s.client_id}-sensors",
                    topics=s.sensors.topics,
                    error_topic=s.sensors.error_topic,
                    backoff=s.backoff,
                    batch=s.sensors.batch,
                )
                tg.create_task(self.sensors.run(), name="sensors")
            self.ready.set()
            log(logger, logging.INFO, "agent.started", pilot=s.pilot, source=s.source)
            # Receipts can be checked only with the hub's key; until it is known, records
            # wait in the outbox.
            self.verifier = await pin_verifier(s, self.outbox, self.hub, self.intake.signer.suite)
            policy = ProofPolicy(s.hub.proof_check, s.hub.proof_sample_rate)
            if self.trust_policy is not None:
                # Every record is proven in a checkpoint that meets the policy before it
                # counts as delivered: the judge hands each one's index and leaf hash on.
                policy = ProofPolicy("always")
                self.quorum = QuorumSettler(
                    self.outbox,
                    self.hub,
                    self.trust_policy,
                    self.verifier,
                    interval=s.hub.quorum_poll_interval,
                    maximum=s.hub.quorum_poll_max,
                )
            self.link = Link(
                broker=s.broker,
                client_id=s.client_id,
                records_topic=s.records_topic,
                receipts_topic=s.receipts_topic,
                outbox=self.outbox,
                stored=self.intake.stored,
                receipts=self.receipts,
                publish=s.publish,
                backoff=s.backoff,
            )
            self.settler = Settler(
                self.outbox,
                ReceiptJudge(self.verifier, policy),
                self.receipts,
                self.link,
                self.quorum,
            )
            self.checker = InclusionChecker(self.outbox, self.hub, self.verifier)
            tg.create_task(self.link.run(), name="link")
            tg.create_task(self.settler.run(), name="settler")
            tg.create_task(self.checker.run(), name="inclusion")
            if self.quorum is not None:
                tg.create_task(self.quorum.run(), name="quorum")


def _first(group: BaseExceptionGroup[ConfigError]) -> ConfigError:
    """The first error in a (nested) exception group."""
    found = group.exceptions[0]
    return _first(found) if isinstance(found, BaseExceptionGroup) else found


def _sensor_broker(s: EdgeSettings) -> BrokerSettings:
    if s.sensors.url is None:
        return s.broker
    return s.broker.model_copy(
        update={
            "url": s.sensors.url,
            "username": s.sensors.username,
            "password": s.sensors.password,
        }
    )


@asynccontextmanager
async def _http_site(intake: Intake, s: EdgeSettings) -> AsyncIterator[int]:
    from aiohttp import web

    from .sources.http import create_app  # the aiohttp server only when it is used

    runner = web.AppRunner(
        create_app(intake, max_body_bytes=s.http.max_body_bytes), access_log=None
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, s.http.host, s.http.port)
        await site.start()
        port = _bound_port(runner)
        log(logger, logging.INFO, "http.listening", host=s.http.host, port=port)
        yield port
    finally:
        await runner.cleanup()


def _bound_port(runner: Any) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise ConfigError("the HTTP source is not listening on a TCP port")


def load_trust_policy(settings: EdgeSettings) -> TrustPolicy | None:
    """The agent's trust policy when it requires the quorum (tlog-policy text form); None
    when it does not. ConfigError with every problem and its line when the file is bad."""
    path = settings.hub.trust_policy
    if not settings.hub.require_quorum or path is None:
        return None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read hub.trust_policy {path}: {exc.strerror}") from None
    try:
        return parse_policy(raw, file=str(path))
    except PolicyError as exc:
        raise ConfigError(f"hub.trust_policy is not a usable tlog-policy: {exc}") from None


def load_relay(
    pilot: str, source: str, settings: RelaySettings, suite: Suite = DEFAULT_SUITE
) -> Relay | None:
    """The devices this agent relays, their keys read from the files the settings name
    (``[relay] devices`` wins over a same-named file of ``devices_dir``), each of the agent's
    ``suite`` (ConfigError if not); None if none."""
    if not settings.enabled:
        return None
    files: dict[str, Path] = {}
    if settings.devices_dir is not None:
        if not settings.devices_dir.is_dir():
            raise ConfigError(f"[relay] devices_dir {settings.devices_dir} is not a directory")
        try:
            found = sorted(settings.devices_dir.glob("*.pub"))
        except OSError as exc:
            raise ConfigError(
                f"cannot read devices_dir {settings.devices_dir}: {exc.strerror}"
            ) from None
        # `swiftchain keys new hd-1.key` writes hd-1.key.pub: that is device hd-1 too.
        files.update((p.name.removesuffix(".pub").removesuffix(".key"), p) for p in found)
    files.update(settings.devices)
    keys = {}
    for device, path in sorted(files.items()):
        if not _DEVICE_ID.match(device):
            raise ConfigError(f"{path}: {device!r} is not a source id (a-z 0-9 . _ -)")
        try:
            keys[device] = load_public_key(path)
        except KeyFileError as exc:
            raise ConfigError(f"device {device}: {exc}") from None
    return Relay(pilot, source, keys, suite)


@asynccontextmanager
async def open_agent(settings: EdgeSettings) -> AsyncIterator[Agent]:
    """Load keys and types, open the outbox and the hub client; close them on exit."""
    signer = Signer.from_key_file(settings.pilot, settings.source, settings.key_file)
    registry = TypeRegistry.from_settings(settings.types, settings.type_models)
    pseudonymiser = None
    if settings.pseudonym_key_file is not None:
        pseudonymiser = Pseudonymiser(
            load_pseudonym_key(settings.pseudonym_key_file), settings.pilot
        )
    relay = load_relay(settings.pilot, settings.source, settings.relay, signer.suite)
    trust_policy = load_trust_policy(settings)
    configured = configured_verifier(settings)  # fail early on a bad pinned key
    if configured is not None:
        check_hub_suite(configured, signer.suite, "[hub] verifier_key")  # or one of a suite
    client_options(settings.broker, settings.client_id)  # and on unusable TLS files
    outbox = await AsyncOutbox.open(settings.outbox_path)
    try:
        stored = await outbox.call(Outbox.meta, HUB_KEY_META)
        if configured is None and stored is not None:
            try:
                pinned = NoteVerifier.parse(stored)
            except CheckpointError as exc:
                raise ConfigError(f"the hub key pinned in the outbox is not one: {exc}") from None
            check_hub_suite(pinned, signer.suite, "pinned in the outbox")
        # A new key in the settings: what the outbox still holds is re-sealed with it before
        # anything is published (the hub judges a key when it receives a record).
        resealed, revived = await outbox.call(reseal, signer)
        if resealed or revived:
            log(
                logger,
                logging.WARNING,
                "outbox.resealed",
                key=signer.key_id,
                records=resealed,
                dead_letters_back=revived,
            )
        async with HubClient(settings.hub.url, timeout=settings.hub.request_timeout) as hub:
            intake = Intake(
                outbox,
                signer,
                registry,
                pseudonymiser,
                default_consent=settings.default_consent,
                max_batch=max(settings.publish.window, 1000),
                relay=relay,
            )
            yield Agent(settings, outbox, intake, hub, trust_policy=trust_policy)
    finally:
        await outbox.close()


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas (one per thread by default): the outbox and sealing threads
    would otherwise each hold a mostly empty arena, tens of MB of RSS on a small gateway."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


async def run_agent(settings: EdgeSettings) -> None:
    """Run the agent the settings describe until cancelled."""
    async with open_agent(settings) as agent:
        await agent.run()
