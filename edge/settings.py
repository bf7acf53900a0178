"""The agent's settings: one TOML file (``swiftchain edge --config edge.toml``) and
``SWIFTCHAIN_EDGE_*`` environment variables, which win over the file (nested fields with
``__``: ``SWIFTCHAIN_EDGE_BROKER__PASSWORD``). Relative paths are relative to the file.

Example ``edge.toml``::

    pilot = "air-quality"
    source = "station-12"
    key_file = "keys/station-12.key"
    outbox_path = "state/outbox.db"

    [broker]
    url = "mqtt://127.0.0.1:1883"

    [hub]
    url = "http://127.0.0.1:8080"
    verifier_key = "swiftchain.example/log+1a2b3c4d+AQ..."

    [stream]
    enabled = true
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ledger.envelope import describe_validation_error
from transport.mqtt import Endpoint, TlsFiles, broker_url

from .errors import ConfigError

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Seconds = Annotated[float, Field(gt=0, le=86_400)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsSettings(_Section):
    #: PEM CA certificates the broker's certificate must chain to (the system's if unset).
    ca_file: Path | None = None
    #: The agent's own PEM certificate, for brokers that require client certificates.
    cert_file: Path | None = None
    #: Its private key, unless it is in ``cert_file``.
    key_file: Path | None = None
    #: Skip the broker's hostname check (never in production).
    insecure: bool = False


class BrokerSettings(_Section):
    """The MQTT broker records go to and receipts come from."""

    url: Annotated[str, AfterValidator(broker_url)] = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    #: "mqtts://" in the URL or any TLS field turns TLS on.
    tls: TlsSettings | None = None
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    #: Defaults to ``swiftchain-edge-{pilot}-{source}``; fixed so that the broker keeps the
    #: session (and queued receipts) while the agent is away.
    client_id: str | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    connect_timeout: Seconds = 10.0

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.parse(self.url)

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def uses_tls(self) -> bool:
        return self.endpoint.tls or self.tls is not None

    @property
    def tls_files(self) -> TlsFiles | None:
        """The TLS files, or None when the link is plain MQTT."""
        if not self.uses_tls:
            return None
        t = self.tls or TlsSettings()
        return TlsFiles(t.ca_file, t.cert_file, t.key_file, insecure=t.insecure)


class HubSettings(_Section):
    url: str = "http://127.0.0.1:8080"
    #: The hub's signed-note verifier key, pinned. Without it (and without the file) the
    #: agent fetches the key from the hub once and pins it (trust on first use, logged).
    verifier_key: str | None = None
    verifier_key_file: Path | None = None
    #: Check the inclusion proof of every accepted record, a random sample, or none.
    proof_check: Literal["always", "sampled", "never"] = "sampled"
    proof_sample_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    request_timeout: Seconds = 10.0
    #: Count an accepted record as delivered only once a checkpoint that meets
    #: ``trust_policy`` covers it and its inclusion in that checkpoint is proven (fail
    #: closed: until then it waits in the outbox, "awaiting quorum"). Off by default.
    require_quorum: bool = False
    #: The agent's trust policy in the text form of c2sp.org/tlog-policy.
    trust_policy: Path | None = None
    #: While records await quorum, ask the hub for its cosigned checkpoint this often...
    quorum_poll_interval: Seconds = 2.0
    #: ...and back off up to this long while the hub does not answer.
    quorum_poll_max: Seconds = 60.0

    @model_validator(mode="after")
    def _quorum_needs_policy(self) -> HubSettings:
        if self.require_quorum and self.trust_policy is None:
            raise ValueError("hub.require_quorum needs hub.trust_policy (a tlog-policy file)")
        if self.quorum_poll_max < self.quorum_poll_interval:
            raise ValueError("hub.quorum_poll_max is at least hub.quorum_poll_interval")
        return self

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a hub URL reads http(s)://host:port")
        return value.rstrip("/")


class PublishSettings(_Section):
    """The in-flight window and republishing of records that got no receipt."""

    #: Records published and awaiting a receipt at most.
    window: Annotated[int, Field(ge=1, le=100_000)] = 1000
    #: A record without a receipt is published again after this long, then after twice
    #: as long, and so on up to ``republish_max``.
    republish_after: Seconds = 30.0
    republish_max: Seconds = 600.0


class BackoffSettings(_Section):
    """Reconnect delays: exponential with full jitter (AWS Architecture Blog, 2015)."""

    initial: Seconds = 0.5
    maximum: Seconds = 30.0
    multiplier: Annotated[float, Field(ge=1, le=10)] = 2.0


class HttpSourceSettings(_Section):
    """A local HTTP endpoint where a hospital system POSTs FHIR resources or Bundles."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8090
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024


class DirectorySourceSettings(_Section):
    """A watched directory of .json / .ndjson files; each moves to done/ or failed/."""

    enabled: bool = False
    path: Path = Path("inbox")
    done: Path | None = None
    failed: Path | None = None
    poll_interval: Seconds = 1.0
    #: A file must be unchanged this long before it is read (writers should rename in).
    settle: Annotated[float, Field(ge=0, le=3600)] = 0.5
    max_file_bytes: Annotated[int, Field(ge=1024)] = 32 * 1024 * 1024
    #: Type of bare objects that are neither a FHIR resource nor ``{"type", "payload"}``.
    default_type: str | None = None


class StreamSourceSettings(_Section):
    """NDJSON lines on stdin (``path = "-"``) or from a file or named pipe."""

    enabled: bool = False
    path: str = "-"
    default_type: str | None = None
    #: Write one JSON line per stored record to stdout (id, seq, line number).
    acks: bool = True
    #: Lines committed together in one outbox transaction at most.
    batch: Annotated[int, Field(ge=1, le=10_000)] = 500


class SensorTopic(_Section):
    topic: str
    #: Type of bare sensor messages on this topic (wrapped ones name their own).
    type: str | None = None


class SensorSourceSettings(_Section):
    """Local MQTT sensor topics (gateway devices, simulators)."""

    enabled: bool = False
    #: Defaults to the broker of [broker].
    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    topics: list[SensorTopic] = Field(default_factory=list)
    #: Errors go back to the sender on ``{error_topic}/{original topic}``.
    error_topic: str = "swiftchain-edge/errors"
    batch: Annotated[int, Field(ge=1, le=10_000)] = 500


class RelaySettings(_Section):
    """Personal devices (patients' home gateways) whose sealed readings this agent relays
    under its own source and key (edge/relay.py). Their keys are the relay's to know: the
    hub's public registry never lists them."""

    #: Device source id -> its public key file (PEM, ``<id>.key.pub`` of ``swiftchain keys
    #: new``): Ed25519 or SM2, of the agent's own suite (its ``key_file``'s).
    devices: dict[Slug, Path] = Field(default_factory=dict)
    #: A directory of ``<device id>.pub`` (or ``.key.pub``) files, one a device, read at start.
    devices_dir: Path | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.devices) or self.devices_dir is not None


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWIFTCHAIN_EDGE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    pilot: Slug
    source: Slug
    key_file: Path
    #: The pilot's pseudonymisation key (at least 32 bytes); needed for personal data.
    pseudonym_key_file: Path | None = None
    outbox_path: Path = Path("edge-outbox.db")
    #: Consent id used for personal records whose sender names none.
    default_consent: str | None = None
    #: The pilot's data types; empty means every type the agent knows.
    types: list[str] = Field(default_factory=list)
    #: Extra types: type id -> "package.module:PydanticModel".
    type_models: dict[str, str] = Field(default_factory=dict)

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    hub: HubSettings = Field(default_factory=HubSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    http: HttpSourceSettings = Field(default_factory=HttpSourceSettings)
    directory: DirectorySourceSettings = Field(default_factory=DirectorySourceSettings)
    stream: StreamSourceSettings = Field(default_factory=StreamSourceSettings)
    sensors: SensorSourceSettings = Field(default_factory=SensorSourceSettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    log: LogSettings = Field(default_factory=LogSettings)
    #: Run on uvloop when it is installed (about a third more records a second).
    use_uvloop: bool = True
    #: Serve Prometheus ``/metrics`` on this port (0: any free one); None: no metrics.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    #: Loopback by default: only a scraper on this machine reaches the metrics.
    metrics_host: str = "127.0.0.1"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments, then the environment, then the TOML file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"swiftchain-edge-{self.pilot}-{self.source}"

    @property
    def records_topic(self) -> str:
        return f"swiftchain/v1/{self.pilot}/{self.source}/records"

    @property
    def receipts_topic(self) -> str:
        return f"swiftchain/v1/{self.pilot}/{self.source}/receipts"


def load_settings(path: Path | None = None, **overrides: Any) -> EdgeSettings:
    """Settings from ``path`` (TOML), the environment and ``overrides``; ConfigError if bad.

    Relative paths in the file are taken relative to the file's directory.
    """
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"no config file at {path}; write one (see `swiftchain edge --help`)")
    config = SettingsConfigDict(**{**EdgeSettings.model_config, "toml_file": path})
    from_file: type[EdgeSettings] = type(
        "EdgeSettingsFromFile", (EdgeSettings,), {"model_config": config}
    )
    try:
        settings = from_file(**overrides)
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        raise ConfigError(f"bad edge settings{where}: {describe_validation_error(exc)}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    base = Path(path).parent if path is not None else Path.cwd()
    return resolve_paths(settings, base)


def _under(base: Path, p: Path | None) -> Path | None:
    return None if p is None else (p if p.is_absolute() else base / p)


def resolve_paths(s: EdgeSettings, base: Path) -> EdgeSettings:
    directory = s.directory.model_copy(
        update={
            "path": _under(base, s.directory.path),
            "done": _under(base, s.directory.done),
            "failed": _under(base, s.directory.failed),
        }
    )
    tls = s.broker.tls
    if tls is not None:
        tls = tls.model_copy(
            update={
                "ca_file": _under(base, tls.ca_file),
                "cert_file": _under(base, tls.cert_file),
                "key_file": _under(base, tls.key_file),
            }
        )
    relay = s.relay.model_copy(
        update={
            "devices": {d: _under(base, p) for d, p in s.relay.devices.items()},
            "devices_dir": _under(base, s.relay.devices_dir),
        }
    )
    stream = s.stream
    if stream.path != "-":
        stream = stream.model_copy(update={"path": str(_under(base, Path(stream.path)))})
    return s.model_copy(
        update={
            "key_file": _under(base, s.key_file),
            "pseudonym_key_file": _under(base, s.pseudonym_key_file),
            "outbox_path": _under(base, s.outbox_path),
            "broker": s.broker.model_copy(update={"tls": tls}),
            "hub": s.hub.model_copy(
                update={
                    "verifier_key_file": _under(base, s.hub.verifier_key_file),
                    "trust_policy": _under(base, s.hub.trust_policy),
                }
            ),
            "directory": directory,
            "stream": stream,
            "relay": relay,
        }
    )
