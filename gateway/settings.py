"""The hub's settings: a TOML file plus ``SWIFTCHAIN_HUB_*`` environment variables.

Environment variables win over the file, so one file can serve several deployments.
Relative paths in the file are relative to the file's own directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ledger import location
from ledger.envelope import MAX_RECORD_BYTES, describe_validation_error
from ledger.errors import StoreError
from ledger.postgres import is_url as is_pg_url
from ledger.postgres import redacted
from transport.mqtt import Endpoint, TlsFiles, broker_url

from .errors import ConfigError

ENV_PREFIX = "SWIFTCHAIN_HUB_"
_PATH_FIELDS = (
    "db_path",
    "sequencer_socket",
    "trust_policy",
    "signing_key",
    "dead_letter_path",
    "token_key",
    "key_store_master_key",
    "access_db_path",
    "pilot_definitions",
    "mqtt_tls_ca_file",
    "mqtt_tls_cert_file",
    "mqtt_tls_key_file",
)
#: Settings naming a store by a path or a URL: a relative path is relative to the file too.
_STORE_FIELDS = ("access_store", "dead_letter_store", "key_store")


#: The PostgreSQL schemas of the ledger, the access store and the dead letters unless their
#: URLs name one (as in gateway.hub_ledger, gateway.access.db and gateway.ingest.deadletters,
#: which the settings do not import; tests/unit/gateway/test_store_settings.py holds them
#: equal).
LEDGER_SCHEMA = "ledger"
ACCESS_SCHEMA = "access"
DEAD_LETTER_SCHEMA = "deadletters"
#: The key store's (ledger.keystore, which names it too).
KEY_STORE_SCHEMA = "keys"


def _store_location(value: str) -> str:
    """A store location as the settings take it: a path, ``sqlite:`` + path, or a
    PostgreSQL URL (checked now, so a typo fails at load, not at the first write)."""
    try:
        location.parse(value, default_schema=ACCESS_SCHEMA)
    except StoreError as exc:
        raise ValueError(str(exc)) from None
    return value


def _chosen(
    store: str | None, path: Path | None, ledger: Path | str, *, suffix: str, schema: str
) -> Path | str:
    if store is not None:
        return location.sqlite_path(store) or store
    if path is not None:
        return path
    return location.beside(ledger, suffix=suffix, schema=schema, ledger_schema=LEDGER_SCHEMA)


def _store_url(value: str) -> str:
    if is_pg_url(value) or value.startswith("sqlite:///"):
        return value
    raise ValueError("a ledger URL is postgresql://... or sqlite:///path")


class HubSettings(BaseSettings):
    """Everything a hub needs to run; every timeout and limit is a setting."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # -- the log -------------------------------------------------------------------------
    origin: Annotated[str, Field(pattern=r"^[^\s+]{1,128}$")] = "swiftchain.local/ledger"
    """Checkpoint origin line and signed-note key name (C2SP: no spaces or '+')."""
    db_path: Path = Path("ledger.db")
    """The ledger's SQLite file; with ``ledger_url``, only where the hub's own local files
    go by default (its channel socket, the access-token key)."""
    ledger_url: Annotated[str, AfterValidator(_store_url)] | None = None
    """The ledger on PostgreSQL (``postgresql://user@host/db``, with ``?schema=`` for the
    schema of its tables, ``ledger`` by default) or SQLite (``sqlite:///path``); unset: the
    SQLite file at ``db_path``."""
    lease_ttl_s: Annotated[float, Field(ge=0.5, le=300)] = 5.0
    """On PostgreSQL: how long the sequencer may go without renewing its lease before a
    standby hub takes the log over (a killed hub's is taken at once: its sessions end)."""
    signing_key: Path = Path("hub.key")
    """The hub's private key (PEM) that signs checkpoints: Ed25519 or SM2 (``swiftchain keys
    new --suite``). Its kind is the log's crypto suite (``ed25519-sha256``, ``sm2-sm3``),
    fixed when the ledger is created: a hub whose key is of another suite than its
    ledger's refuses to start."""
    pilots: list[str] = []
    """Pilots this hub serves; empty means: any pilot with a registered source."""
    max_page_count: Annotated[int, Field(ge=1)] | None = None
    """A quota on the ledger file, in SQLite pages (PRAGMA max_page_count); a commit past
    it fails and is retried, and nothing is acknowledged until the quota is raised."""
    key_store: Annotated[str, AfterValidator(_store_location)] | None = None
    """The data keys the ledger's bodies, openings and origins are sealed under
    (docs/storage.md, "Erasure by destroying keys"): a path or ``sqlite:///path``, or a
    ``postgresql://`` URL (schema ``keys`` unless it names one); beside the ledger by
    default (:meth:`key_store_location`). Every process that reads bodies opens it."""
    key_store_master_key: Path | None = None
    """A file holding the master key the data keys are stored wrapped under (``swiftchain
    keys master FILE`` makes one); required for a key store on PostgreSQL, optional on
    SQLite (where a key store made without one opens only without one, and the other way
    round)."""

    # -- HTTP ------------------------------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    admin_token: SecretStr | None = None
    """Bearer token for the admin API; the admin API is off without one."""

    # -- MQTT ------------------------------------------------------------------------------
    mqtt_url: Annotated[str, AfterValidator(broker_url)] = "mqtt://127.0.0.1:1883"
    """``mqtt://host:port``, or ``mqtts://host:port`` (8883 by default) for TLS."""
    mqtt_tls_ca_file: Path | None = None
    """PEM CA certificates the broker's certificate must chain to (the system's if unset).
    Any TLS file turns TLS on, as ``mqtts://`` does."""
    mqtt_tls_cert_file: Path | None = None
    """The hub's own PEM certificate, for brokers that require client certificates."""
    mqtt_tls_key_file: Path | None = None
    """Its private key, unless it is in ``mqtt_tls_cert_file``."""
    mqtt_tls_insecure: bool = False
    """Skip the check that the broker's certificate names its host (never in production)."""
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_client_id: Annotated[str, Field(min_length=1, max_length=64)] = "swiftchain-hub"
    mqtt_protocol: Literal["v5", "v311"] = "v5"
    mqtt_shared_subscription: bool = True
    """Subscribe through ``$share/<group>/...`` (off for brokers without shared subs)."""
    mqtt_share_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = "hub"
    mqtt_session_expiry_s: Annotated[int, Field(ge=0)] = 7 * 24 * 3600
    mqtt_keepalive_s: Annotated[int, Field(ge=5)] = 30
    mqtt_reconnect_initial_s: Annotated[float, Field(gt=0)] = 0.2
    mqtt_reconnect_max_s: Annotated[float, Field(gt=0)] = 15.0
    mqtt_max_inflight: Annotated[int, Field(ge=1)] = 1000

    # -- processes -----------------------------------------------------------------------
    workers: Annotated[int, Field(ge=0, le=64)] | None = None
    """Front-end processes (MQTT ingest and HTTP) beside the one sequencer process; None:
    one per core; 0: the whole hub in one process (embedded, as tests run it in a thread)."""
    sequencer_socket: Path | None = None
    """Where front ends reach the sequencer; defaults to ``<db_path>.seq.sock``."""

    # -- ingest and sequencing -----------------------------------------------------------
    max_record_bytes: Annotated[int, Field(ge=1024)] = MAX_RECORD_BYTES
    verify_workers: Annotated[int, Field(ge=0, le=64)] = 2
    """Signature-check threads (in each front end); 0: on the event loop, in the batch of
    records one turn of it took (the lightest, where the front-end processes already use
    every core)."""
    verify_chunk: Annotated[int, Field(ge=1, le=4096)] = 128
    batch_max_records: Annotated[int, Field(ge=1, le=100_000)] = 2000
    batch_max_ms: Annotated[float, Field(ge=0)] = 5.0
    checkpoint_interval_s: Annotated[float, Field(gt=0)] = 1.0
    dead_letter_store: Annotated[str, AfterValidator(_store_location)] | None = None
    """Where rejected messages are kept: a path or ``sqlite:///path`` (SQLite), or a
    ``postgresql://`` URL (schema ``deadletters`` unless it names one); beside the ledger
    by default (:meth:`dead_letter_location`). Apart from the log, so rejections never
    touch it."""
    dead_letter_path: Path | None = None
    """The older name of ``dead_letter_store``, for a path only."""
    dead_letter_max: Annotated[int, Field(ge=1)] = 10_000
    drain_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    use_uvloop: bool = True
    max_clock_skew_s: Annotated[int, Field(ge=0, le=3600)] = 300
    """How far ahead of the hub's clock a record's ``observed_at`` may be before it is
    rejected ``observed_in_future``: five minutes, Kerberos's customary skew allowance,
    covers a gateway whose clock drifts between NTP syncs."""

    # -- the alliance: witnesses ---------------------------------------------------------------
    trust_policy: Path | None = None
    """The alliance's trust policy (c2sp.org/tlog-policy text, or its YAML form): its
    witnesses with a URL get every new checkpoint to cosign, and its quorum decides which
    checkpoint receipts carry as ``cosigned``. None: no witnesses (docs/alliance.md)."""
    witness_interval_s: Annotated[float, Field(ge=0.05, le=3600)] = 1.0
    witness_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0

    # -- access: hospital auth, consents, data API ------------------------------------------
    token_key: Path | None = None
    """The hub's Ed25519 JWK that signs access tokens; separate from the log key, and made
    on first start if absent."""
    public_url: str | None = None
    """The hub's external base URL: the audience client assertions name
    (``<public_url>/oauth/token``) and the access tokens' issuer. Required once a client is
    registered (without it or ``token_audiences`` no token is issued); the issuer then
    defaults to the URL the request came in on."""
    token_audiences: Annotated[
        list[Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=256)]],
        Field(max_length=16),
    ] = []
    """Further token endpoint URLs a client assertion's ``aud`` may name, for a hub known by
    more than one name (``https://ledger.city.example/oauth/token``)."""
    access_store: Annotated[str, AfterValidator(_store_location)] | None = None
    """Registered clients, Consent resources, used assertion ids and revocations: a path or
    ``sqlite:///path`` (SQLite), or a ``postgresql://`` URL (schema ``access`` unless it
    names one); beside the ledger by default (:meth:`access_location`)."""
    access_db_path: Path | None = None
    """The older name of ``access_store``, for a path only."""
    pilot_definitions: Path | None = None
    """A directory of pilot YAML files; the packaged demonstration-zone pilots if unset."""
    access_token_lifetime_s: Annotated[int, Field(ge=10, le=300)] = 300
    retention_interval_s: Annotated[float, Field(gt=0)] = 3600.0
    """How often bodies past their pilot's retention are erased."""
    search_max_matches: Annotated[int, Field(ge=10)] = 5000
    """Most records one search may have to filter (narrow by date beyond that)."""
    enforce_consent: bool = True
    """Refuse at ingest a record about a person that its pilot's data type says needs
    consent, without a Consent in force in the book; off only for tests of other parts."""

    @property
    def mqtt_endpoint(self) -> Endpoint:
        return Endpoint.parse(self.mqtt_url)

    @property
    def mqtt_host(self) -> str:
        return self.mqtt_endpoint.host

    @property
    def mqtt_port(self) -> int:
        return self.mqtt_endpoint.port

    @property
    def mqtt_tls(self) -> TlsFiles | None:
        """The TLS files, or None when the link is plain MQTT."""
        files = (self.mqtt_tls_ca_file, self.mqtt_tls_cert_file, self.mqtt_tls_key_file)
        if not self.mqtt_endpoint.tls and all(f is None for f in files):
            return None
        return TlsFiles(*files, insecure=self.mqtt_tls_insecure)

    @property
    def ledger_location(self) -> Path | str:
        """Where the ledger is: a SQLite file's path, or a PostgreSQL URL."""
        url = self.ledger_url
        if url is None:
            return self.db_path
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite://"))
        return url

    @property
    def on_postgres(self) -> bool:
        return isinstance(self.ledger_location, str)

    @property
    def ledger_name(self) -> str:
        """The ledger's location for messages and logs (a URL without its password)."""
        where = self.ledger_location
        return str(where) if isinstance(where, Path) else redacted(where)

    @model_validator(mode="after")
    def _one_name_each(self) -> HubSettings:
        for new, old in (
            ("access_store", "access_db_path"),
            ("dead_letter_store", "dead_letter_path"),
        ):
            if getattr(self, new) is not None and getattr(self, old) is not None:
                raise ValueError(f"{new} and {old} are both set ({old} is its older name)")
        return self

    def access_location(self, ledger: Path | str | None = None) -> Path | str:
        """Where the access store is: ``access_store`` (or ``access_db_path``) if set, else
        beside the ledger at ``ledger`` (``ledger_location`` unless given): ``<ledger>.access``
        by a SQLite ledger, schema ``access`` of a PostgreSQL ledger's database."""
        return _chosen(
            self.access_store,
            self.access_db_path,
            ledger if ledger is not None else self.ledger_location,
            suffix=".access",
            schema=ACCESS_SCHEMA,
        )

    def dead_letter_location(self, ledger: Path | str | None = None) -> Path | str:
        """Where the dead letters are: ``dead_letter_store`` (or ``dead_letter_path``) if
        set, else beside the ledger at ``ledger`` (``ledger_location`` unless given):
        ``<ledger>.deadletter`` by a SQLite ledger, schema ``deadletters`` of a PostgreSQL
        ledger's database."""
        return _chosen(
            self.dead_letter_store,
            self.dead_letter_path,
            ledger if ledger is not None else self.ledger_location,
            suffix=".deadletter",
            schema=DEAD_LETTER_SCHEMA,
        )

    def key_store_location(self, ledger: Path | str | None = None) -> Path | str:
        """Where the key store is: ``key_store`` if set, else beside the ledger at
        ``ledger`` (``ledger_location`` unless given): ``<ledger>.keys`` by a SQLite ledger,
        schema ``keys`` of a PostgreSQL ledger's database."""
        return _chosen(
            self.key_store,
            None,
            ledger if ledger is not None else self.ledger_location,
            suffix=".keys",
            schema=KEY_STORE_SCHEMA,
        )

    @property
    def dead_letters(self) -> Path | str:
        return self.dead_letter_location()

    @property
    def access_db(self) -> Path | str:
        return self.access_location()

    @property
    def front_ends(self) -> int:
        """How many front-end processes to run (0: the hub in one process)."""
        if self.workers is not None:
            return self.workers
        return max(1, os.cpu_count() or 1)

    @property
    def sequencer_path(self) -> Path:
        if self.sequencer_socket is not None:
            return self.sequencer_socket
        return self.db_path.with_name(self.db_path.name + ".seq.sock")

    @property
    def token_key_path(self) -> Path:
        """Defaults to ``<db_path>.token.jwk``."""
        if self.token_key is not None:
            return self.token_key
        return self.db_path.with_name(self.db_path.name + ".token.jwk")

    @property
    def records_subscription(self) -> str:
        topic = "swiftchain/v1/+/+/records"
        if self.mqtt_shared_subscription:
            return f"$share/{self.mqtt_share_group}/{topic}"
        return topic

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


def load_settings(config: Path | None = None, **overrides: Any) -> HubSettings:
    """Read ``config`` (TOML) under the environment; raise ConfigError if anything is off."""
    if config is not None and not config.is_file():
        raise ConfigError(f"no hub config at {config}; write one (see docs) or pass --config")
    cls: type[HubSettings] = HubSettings
    if config is not None:
        cls = type(
            "HubSettingsFromFile",
            (HubSettings,),
            {
                "model_config": SettingsConfigDict(
                    **{**HubSettings.model_config, "toml_file": config}
                )
            },
        )
    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        where = f" in {config}" if config else ""
        raise ConfigError(f"bad hub settings{where}: {describe_validation_error(exc)}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read hub config {config}: {exc}") from None
    if config is not None:
        base = config.resolve().parent
        fixed: dict[str, Path | str] = {
            name: base / value
            for name in _PATH_FIELDS
            if isinstance(value := getattr(settings, name), Path) and not value.is_absolute()
        }
        for name in _STORE_FIELDS:
            where = getattr(settings, name)
            path = location.sqlite_path(where) if where is not None else None
            if path is not None and not path.is_absolute():
                fixed[name] = str(base / path)
        settings = HubSettings.model_validate({**settings.model_dump(), **fixed})
    return settings
