"""Configuration: a YAML file, the seed's environment variables, and CLI overrides.

Precedence, lowest first: YAML file < environment < CLI flags. Hospitals from
``HOSPITAL_<n>_*`` variables are merged into the YAML list by id (an env hospital whose id is
already in the YAML overrides the keys it sets; a new id adds a hospital). Every problem is
collected and reported at once, naming the key and the fix; nothing is read or written until the
configuration is valid.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from passport_sync.errors import ConfigError

RecordType = Literal["condition", "medication", "test", "visit", "image"]

DEFAULT_CONFIG_PATHS = (Path("hospitals.yaml"), Path("/etc/passport-sync/hospitals.yaml"))
CONFIG_ENV = "PASSPORT_SYNC_CONFIG"
MEDICAL_HISTORY_LINKS_ENV = "PASSPORT_SYNC_MEDICAL_HISTORY_LINKS"
DEFAULT_DATABASE = "patientpassport"

_ENV_HOSPITAL = re.compile(r"^HOSPITAL_(\d+)_(ID|NAME|DB_HOST|DB_PORT|DB_NAME|DB_USER|DB_PASSWORD|ENABLED|TIMEZONE)$")
_ENV_HOSPITAL_KEYS = {
    "ID": ("id",),
    "NAME": ("name",),
    "DB_HOST": ("db", "host"),
    "DB_PORT": ("db", "port"),
    "DB_NAME": ("db", "name"),
    "DB_USER": ("db", "user"),
    "DB_PASSWORD": ("db", "password"),
    "ENABLED": ("enabled",),
    "TIMEZONE": ("timezone",),
}


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]", "localhost.localdomain"}


def is_loopback_host(host: str) -> bool:
    """A loopback name, or any loopback address (127.0.0.0/8, ::1)."""
    name = host.strip().lower().rstrip(".")
    if name in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})$")


def parse_timezone(value: str) -> tzinfo:
    """An IANA zone name (``Africa/Kigali``) or a fixed offset (``+02:00``); ValueError otherwise."""
    text = value.strip()
    match = _OFFSET.match(text)
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        if offset > timedelta(hours=14):
            raise ValueError(f"time zone offset {value!r} is out of range")
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Africa/Kigali or an offset such as +02:00"
        ) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TLSMode = Literal["required", "preferred", "disabled"]


class TLSOptions(_Strict):
    """How the MySQL server's certificate is verified, and the client certificate to present."""

    # The CA that signed the server's certificate; without it, the system's trust store.
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    # False: the certificate must still chain to the CA, but may name another host. An explicit
    # escape hatch for servers whose certificate does not name the host we connect to.
    verify_identity: bool = True

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TLSOptions:
        if bool(self.cert) != bool(self.key):
            raise ValueError("set both cert and key (the client certificate and its private key), or neither")
        return self


class DatabaseConfig(_Strict):
    """How to reach one hospital's OpenMRS MySQL/MariaDB database (a SELECT-only user)."""

    host: str
    port: int = Field(default=3306, ge=1, le=65535)
    name: str = "openmrs"
    user: str
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    connect_timeout_seconds: int = Field(default=10, ge=1, le=600)
    read_timeout_seconds: int = Field(default=300, ge=1, le=86400)
    # required: TLS with a verified certificate, or no connection. preferred (the default without
    # an ssl block): TLS when the server offers it (verified only when an ssl block is given),
    # else plaintext; test-connection warns about both. disabled: plaintext.
    tls: TLSMode | None = None
    ssl: TLSOptions | None = None

    @property
    def tls_mode(self) -> TLSMode:
        if self.tls is not None:
            return self.tls
        return "required" if self.ssl is not None else "preferred"

    @property
    def tls_options(self) -> TLSOptions:
        return self.ssl or TLSOptions()

    @model_validator(mode="after")
    def _one_password_source(self) -> DatabaseConfig:
        given = [k for k in ("password", "password_env", "password_file") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"set only one of {', '.join(given)}")
        return self

    @property
    def on_this_machine(self) -> bool:
        """Whether ``host`` is a loopback name or address: plaintext there crosses no network."""
        return is_loopback_host(self.host)

    def identity(self) -> tuple[str, int, str]:
        """Which database this is: server, port and database name (the loopback names are one)."""
        host = self.host.strip().lower().rstrip(".")
        return ("localhost" if host in _LOOPBACK else host, self.port, self.name)

    def resolved_password(self) -> SecretStr:
        """The password from whichever source is configured (inline, env var or file)."""
        if self.password is not None:
            return self.password
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError([f"db.password_env: environment variable {self.password_env} is not set"])
            return SecretStr(value)
        if self.password_file:
            path = _expand_credentials(self.password_file)
            try:
                return SecretStr(path.read_text(encoding="utf-8").rstrip("\r\n"))
            except OSError as exc:
                raise ConfigError(
                    [f"db.password_file: cannot read {path} ({exc.strerror}); check the path and permissions"]
                ) from None
        return SecretStr("")


class NationalIdType(_Strict):
    """Which ``patient_identifier_type`` holds the national ID: by uuid, else by SQL LIKE name."""

    name: str = "%National%ID%"
    uuid: str | None = None


class HospitalConfig(_Strict):
    """One hospital: its Patient Passport id and its OpenMRS database."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=2, max_length=100)
    enabled: bool = True
    db: DatabaseConfig
    # None: the OpenMRS database server's own offset, read at the start of every run.
    timezone: str | None = None
    national_id_type: NationalIdType | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timezone(value)
        return value

    def zone(self) -> tzinfo | None:
        """The configured time zone, or None to use the database server's."""
        return parse_timezone(self.timezone) if self.timezone else None


class RetryConfig(_Strict):
    attempts: int = Field(default=5, ge=1, le=50)
    initial_wait_seconds: float = Field(default=1.0, ge=0, le=600)
    max_wait_seconds: float = Field(default=30.0, ge=0, le=3600)


class CategoryOverrides(_Strict):
    """Category overrides: by concept uuid or exact concept name, and by concept class name."""

    concepts: dict[str, RecordType] = Field(default_factory=dict)
    classes: dict[str, RecordType] = Field(default_factory=dict)
    # The original design's keyword table on concept names ("...DRUG..." -> medication): off, since
    # "Drug allergies" is not a medication; an operator may opt in.
    keywords: bool = False
    # Questions of class Diagnosis that are not "this patient's diagnosis" (about a relative, about
    # the past), by uuid or exact name: they stay observations, never the patient's condition.
    # CIEL's "Family history diagnosis" (160592) by default.
    not_own_diagnoses: list[str] = Field(default_factory=lambda: ["160592AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])


class GroupOptions(_Strict):
    """Obs groups whose members each make sense alone (a lab panel, vitals) keep one record per
    member; any other group (family history, an allergy captured as observations) is one record.
    By the group concept's class, or its uuid or exact name."""

    separate_classes: list[str] = Field(default_factory=lambda: ["LabSet", "Test"])
    separate_concepts: list[str] = Field(default_factory=list)

    def separate(self, concept_class: str | None, concept_uuid: str | None, concept_name: str) -> bool:
        return (
            concept_class in self.separate_classes
            or (concept_uuid or "") in self.separate_concepts
            or concept_name in self.separate_concepts
        )


class SourceSwitches(_Strict):
    """Which clinical sources outside ``obs`` to sync; unset means: where the table exists."""

    diagnoses: bool | None = None
    conditions: bool | None = None
    allergies: bool | None = None
    drug_orders: bool | None = None

    def enabled(self, source: str) -> bool | None:
        """True/False when configured for this source (diagnosis, condition, ...), else None."""
        key = {"diagnosis": "diagnoses", "condition": "conditions", "allergy": "allergies"}.get(source, source + "s")
        value: bool | None = getattr(self, key, None)
        return value


def _ciel(concept_id: int) -> str:
    """The uuid of a CIEL concept: its id padded with A to 36 characters."""
    return str(concept_id).ljust(36, "A")


class LegacyDiagnosisConcepts(_Strict):
    """The emrapi "Diagnosis Concept Set" obs group (pre-2.2 and RefApp sites), by concept uuid
    (CIEL by default). Each such group becomes one diagnosis record, not one per member."""

    enabled: bool = True
    set: str = _ciel(159947)
    coded: str = _ciel(1284)
    non_coded: str = _ciel(161602)
    order: str = _ciel(159946)
    primary: str = _ciel(159943)
    secondary: str = _ciel(159944)
    certainty: str = _ciel(159394)
    confirmed: str = _ciel(159392)
    presumed: str = _ciel(159393)


class SyncOptions(_Strict):
    batch_size: int = Field(default=1000, ge=1, le=50_000)
    interval_minutes: int = Field(default=5, ge=1, le=1440)
    detailed_logs: bool = False
    # Append each synced record's id to its patient's ``medicalHistory``, as the original design
    # did. Off: the app's pages read ``medicalrecords`` and nothing reads these links (its legacy
    # endpoint resolves them against another collection), while each one rewrites a patient
    # document that grows without bound. Turn on only for a deployment whose own code reads them.
    medical_history_links: bool = False
    locale: str = "en"
    national_id_type: NationalIdType = NationalIdType()
    late_commit_window_minutes: int = Field(default=1440, ge=0, le=60 * 24 * 30)
    void_lookback_minutes: int = Field(default=60, ge=0, le=60 * 24 * 30)
    lock_ttl_seconds: int = Field(default=300, ge=10, le=86400)
    # Hospitals synced at once by sync-all: each has its own connections, pipeline and lock.
    workers: int = Field(default=4, ge=1, le=64)
    placeholder_email_domain: str = Field(default="placeholder.example.org", pattern=r"^\w+([.-]?\w+)*(\.\w{2,3})+$")
    retry: RetryConfig = RetryConfig()
    categories: CategoryOverrides = CategoryOverrides()
    groups: GroupOptions = GroupOptions()
    sources: SourceSwitches = SourceSwitches()
    legacy_diagnosis_concepts: LegacyDiagnosisConcepts = LegacyDiagnosisConcepts()


class ReconcileOptions(_Strict):
    # sync-all reconciles a slice each run so that a full pass ends at least this often.
    full_pass_hours: float = Field(default=24, gt=0, le=24 * 90)
    # Primary keys per checksummed range: a differing range re-reads at most this many rows.
    range_size: int = Field(default=1000, ge=10, le=1_000_000)


class MongoConfig(_Strict):
    uri: SecretStr = SecretStr("mongodb://127.0.0.1:27017/patientpassport")
    server_selection_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)
    # Demo only: each command starts the embedded MongoDB (the demo extra) on this folder
    # (relative to the configuration file) instead of connecting to uri's server.
    embedded_data_dir: Path | None = None

    @field_validator("uri")
    @classmethod
    def _uri_is_a_mongodb_uri(cls, uri: SecretStr) -> SecretStr:
        problem = mongo_uri_problem(uri.get_secret_value())
        if problem:
            raise ValueError(problem)
        return uri

    @property
    def hosts(self) -> str:
        """The URI's host list, without credentials: what messages name."""
        return mongo_hosts(self.uri.get_secret_value())


class Settings(BaseSettings):
    """The whole validated configuration."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    mongodb: MongoConfig = MongoConfig()
    sync: SyncOptions = SyncOptions()
    reconcile: ReconcileOptions = ReconcileOptions()
    hospitals: list[HospitalConfig] = Field(default_factory=list)
    source_path: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The seed's variable names do not follow a prefix scheme; load_settings maps them.
        return (init_settings,)

    @model_validator(mode="after")
    def _unique_hospitals(self) -> Settings:
        seen: dict[str, int] = {}
        for index, hospital in enumerate(self.hospitals):
            if hospital.id in seen:
                raise ValueError(
                    f"hospitals[{index}].id: duplicate hospital id {hospital.id!r} "
                    f"(also hospitals[{seen[hospital.id]}]); give each hospital its own id"
                )
            seen[hospital.id] = index
        databases: dict[tuple[str, int, str], int] = {}
        for index, hospital in enumerate(self.hospitals):
            key = hospital.db.identity()
            if key in databases:
                other = self.hospitals[databases[key]]
                raise ValueError(
                    f"hospitals[{index}].db: the same OpenMRS database as hospitals[{databases[key]}] "
                    f"({other.id!r}): {hospital.db.host}:{hospital.db.port}/{hospital.db.name}; one OpenMRS "
                    "database is one hospital (two entries would copy each record twice): remove one entry"
                )
            databases[key] = index
        return self

    @property
    def database_name(self) -> str:
        """The MongoDB database: the URI's path, default ``patientpassport``."""
        return mongo_database_name(self.mongodb.uri.get_secret_value())

    def enabled_hospitals(self) -> list[HospitalConfig]:
        return [h for h in self.hospitals if h.enabled]

    def national_id_type_for(self, hospital: HospitalConfig) -> NationalIdType:
        return hospital.national_id_type or self.sync.national_id_type


def _mongo_authority(uri: str) -> str:
    rest = uri.partition("://")[2]
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    # The last "@": a password may hold an unescaped "@".
    return authority.rsplit("@", 1)[1] if "@" in authority else authority


def mongo_hosts(uri: str) -> str:
    """``host:port[,host:port]`` of a MongoDB URI, never its user or password."""
    return _mongo_authority(uri) or "<no host>"


def mongo_uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not a MongoDB connection string, or None. The message never quotes it."""
    scheme, sep, _ = uri.partition("://")
    if not sep or scheme not in ("mongodb", "mongodb+srv"):
        return "not a MongoDB URI; write it as mongodb://HOST:PORT/DATABASE (or mongodb+srv://HOST/DATABASE)"
    hosts = _mongo_authority(uri)
    if not hosts or any(not h or h.startswith(":") for h in hosts.split(",")):
        return "the MongoDB URI names no host; write it as mongodb://HOST:PORT/DATABASE"
    if scheme == "mongodb+srv" and ("," in hosts or ":" in hosts.rsplit("]", 1)[-1]):
        return "a mongodb+srv:// URI names one host without a port"
    return _mongo_tls_option_problem(uri)


# The MongoDB URI's TLS switches (lower-cased): true or false, nothing else. pymongo only warns
# about ``tls=yes`` and connects in plaintext; here it is a configuration error.
_MONGO_TLS_FLAGS = {
    "tls": "tls",
    "ssl": "ssl",
    "tlsinsecure": "tlsInsecure",
    "tlsallowinvalidcertificates": "tlsAllowInvalidCertificates",
    "tlsallowinvalidhostnames": "tlsAllowInvalidHostnames",
    "tlsdisableocspendpointcheck": "tlsDisableOCSPEndpointCheck",
    "tlsdisablecertificaterevocationcheck": "tlsDisableCertificateRevocationCheck",
}
_MONGO_TLS_FILES = {
    "tlscafile": "tlsCAFile",
    "tlscertificatekeyfile": "tlsCertificateKeyFile",
    "tlscertificatekeyfilepassword": "tlsCertificateKeyFilePassword",
    "tlscrlfile": "tlsCRLFile",
}


def mongo_uri_options(uri: str) -> dict[str, str]:
    """The options of a MongoDB URI's query string, by lower-cased name (the last one given wins)."""
    tail = uri.partition("://")[2].rsplit("@", 1)[-1]  # the last "@": a password may hold one
    options: dict[str, str] = {}
    for part in re.split(r"[&;]", tail.partition("?")[2]):
        if part:
            key, _, value = part.partition("=")
            options[unquote(key).strip().lower()] = unquote(value).strip()
    return options


def _mongo_tls_option_problem(uri: str) -> str | None:
    for key, value in mongo_uri_options(uri).items():
        if key in _MONGO_TLS_FLAGS and value.lower() not in ("true", "false"):
            name = _MONGO_TLS_FLAGS[key]
            return (
                f"the MongoDB URI option {name}={value} is not true or false (MongoDB would connect without"
                f" TLS); write {name}=true or {name}=false"
            )
        if key.startswith(("tls", "ssl")) and key not in _MONGO_TLS_FLAGS and key not in _MONGO_TLS_FILES:
            known = ", ".join(sorted({*_MONGO_TLS_FLAGS.values(), *_MONGO_TLS_FILES.values()} - {"ssl"}))
            return f"the MongoDB URI has an unknown TLS option {key!r}; check its spelling (the TLS options: {known})"
    return None


def mongo_tls_state(uri: str) -> tuple[bool, bool, bool]:
    """(encrypted, certificate verified, host name checked) of connections made with this URI, as
    its options ask for them (mongodb+srv:// means TLS unless tls=false)."""
    options = mongo_uri_options(uri)
    # pymongo turns TLS on by itself when a certificate file is named.
    implied = uri.startswith("mongodb+srv://") or any(key in options for key in _MONGO_TLS_FILES)
    default = "true" if implied else "false"
    encrypted = options.get("tls", options.get("ssl", default)).lower() == "true"
    insecure = options.get("tlsinsecure", "false").lower() == "true"
    verified = not insecure and options.get("tlsallowinvalidcertificates", "false").lower() != "true"
    host_checked = verified and options.get("tlsallowinvalidhostnames", "false").lower() != "true"
    return encrypted, encrypted and verified, encrypted and host_checked


def mongo_hosts_are_loopback(uri: str) -> bool:
    """Whether every host of the URI is this machine (plaintext there never crosses a network)."""
    hosts = [h.rsplit(":", 1)[0] if h.count(":") == 1 else h.rsplit("]:", 1)[0] + ("]" if "]:" in h else "")
             for h in mongo_hosts(uri).split(",")]  # fmt: skip
    return all(is_loopback_host(h) for h in hosts)


def mongo_uri_has_password(uri: str) -> bool:
    rest = uri.partition("://")[2].split("/", 1)[0]
    return "@" in rest and ":" in rest.rsplit("@", 1)[0]


def mongo_database_in_path(uri: str) -> str | None:
    """The database named in a MongoDB URI's path, or None."""
    rest = uri.split("://", 1)[-1]
    path = rest.split("/", 1)[1] if "/" in rest else ""
    return path.split("?", 1)[0] or None


def mongo_database_name(uri: str) -> str:
    """The database named in a MongoDB URI's path, else ``patientpassport``."""
    return mongo_database_in_path(uri) or DEFAULT_DATABASE


def redact_uri(uri: str) -> str:
    """A MongoDB URI with any user:password removed, for messages."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "<unparseable uri>"
    # Cut at the last "@": this is called for URIs pymongo rejected, typically because the
    # password holds an unescaped "@", "/" or ":", so the first "@" or "/" is not a boundary.
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}://{rest}"


def _expand_credentials(path: Path) -> Path:
    """Resolve ``$CREDENTIALS_DIRECTORY/name`` style paths (systemd LoadCredential)."""
    return Path(os.path.expandvars(str(path)))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *anchor": construct_mapping merges it; explicit keys may override it
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def find_config_path(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """``--config``, else ``$PASSPORT_SYNC_CONFIG``, else ./hospitals.yaml, else /etc/…; or None."""
    if explicit is not None:
        return explicit
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    return None


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse the YAML file; a clear ConfigError for a missing, unreadable or malformed file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found; pass --config PATH or set {CONFIG_ENV}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read it ({exc.__class__.__name__})"]) from None
    syntax_error = ""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        syntax_error = f"{path}:{where}: {problem}; fix the YAML syntax"
    if syntax_error:
        # Raised outside the except block: the YAML error quotes the line, which may hold a
        # password, and must not ride along as this exception's __context__.
        raise ConfigError([syntax_error])
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping with keys mongodb, sync, hospitals"])
    return data


def _world_readable(path: Path) -> bool:
    # Group-readable is how the service user reads the installer's root:passport-sync 0640
    # files; only "other" users are a leak.
    try:
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def world_readable_secret_warnings(path: Path, raw: Mapping[str, Any]) -> list[str]:
    """Warnings for secrets that every user of the machine can read: inline passwords in the
    YAML file (database or MongoDB), and password files."""
    warnings: list[str] = []
    fix = "(0640 with the service user's group is fine)"
    hospitals = [h for h in raw.get("hospitals") or [] if isinstance(h, dict) and isinstance(h.get("db"), dict)]
    mongodb = raw.get("mongodb") if isinstance(raw.get("mongodb"), dict) else {}
    uri = mongodb.get("uri") if isinstance(mongodb, dict) else None
    if _world_readable(path):
        if any(h["db"].get("password") for h in hospitals):
            warnings.append(
                f"{path} holds an inline database password and is readable by every user; "
                f"run 'chmod o-rwx {path}' {fix} or use password_file/password_env"
            )
        if isinstance(uri, str) and mongo_uri_has_password(uri):
            warnings.append(
                f"{path} holds the MongoDB password (in mongodb.uri) and is readable by every user; "
                f"run 'chmod o-rwx {path}' {fix} or set MONGODB_URI in a private environment file"
            )
    for h in hospitals:
        password_file = h["db"].get("password_file")
        if isinstance(password_file, str):
            secret = _expand_credentials(Path(password_file))
            if _world_readable(secret):
                warnings.append(
                    f"{secret} (password_file of hospital {h.get('id')}) is readable by every user; "
                    f"run 'chmod o-rwx {secret}' {fix}"
                )
    return warnings


def env_overlay(environ: Mapping[str, str]) -> dict[str, Any]:
    """The parts of the configuration given by the seed's environment variables."""
    overlay: dict[str, Any] = {}
    sync: dict[str, Any] = {}
    if "OPENMRS_MAX_RECORDS" in environ:
        sync["batch_size"] = environ["OPENMRS_MAX_RECORDS"]
    if "OPENMRS_SYNC_INTERVAL" in environ:
        sync["interval_minutes"] = environ["OPENMRS_SYNC_INTERVAL"]
    if "OPENMRS_DETAILED_LOGS" in environ:
        sync["detailed_logs"] = environ["OPENMRS_DETAILED_LOGS"]
    if MEDICAL_HISTORY_LINKS_ENV in environ:
        sync["medical_history_links"] = environ[MEDICAL_HISTORY_LINKS_ENV]
    if sync:
        overlay["sync"] = sync
    if environ.get("MONGODB_URI"):
        overlay["mongodb"] = {"uri": environ["MONGODB_URI"]}

    numbered: dict[int, dict[str, Any]] = {}
    for key, value in environ.items():
        match = _ENV_HOSPITAL.match(key)
        if not match:
            continue
        entry = numbered.setdefault(int(match.group(1)), {})
        path = _ENV_HOSPITAL_KEYS[match.group(2)]
        target = entry
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    if numbered:
        overlay["hospitals_env"] = [numbered[n] | {"_env_index": n} for n in sorted(numbered)]
    return overlay


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


EnvNames = dict[tuple[Any, ...], str]


def merge_hospitals(
    yaml_hospitals: list[Any], env_hospitals: list[dict[str, Any]], env_names: EnvNames | None = None
) -> tuple[list[Any], list[str]]:
    """Env hospitals override YAML hospitals with the same id and add the others.

    ``env_names`` receives, for each key an environment variable set, its place in the merged
    configuration (``("hospitals", 0, "db", "port")``) and the variable's name, so a problem is
    reported by the name the operator typed (``HOSPITAL_1_DB_PORT``).
    """
    merged = list(yaml_hospitals)
    problems: list[str] = []
    by_id = {h.get("id"): i for i, h in enumerate(merged) if isinstance(h, dict)}
    env_ids: dict[Any, int] = {}
    for entry in env_hospitals:
        n = entry.pop("_env_index")
        if "id" not in entry:
            problems.append(f"HOSPITAL_{n}_ID: not set; every HOSPITAL_{n}_* group needs an id")
            continue
        if entry["id"] in env_ids:
            problems.append(
                f"HOSPITAL_{n}_ID: duplicate hospital id {entry['id']!r} (also HOSPITAL_{env_ids[entry['id']]}_ID); "
                "give each hospital its own id"
            )
            continue
        env_ids[entry["id"]] = n
        if entry["id"] in by_id:
            index = by_id[entry["id"]]
            merged[index] = _deep_merge(merged[index], entry)
        else:
            index = by_id[entry["id"]] = len(merged)
            merged.append(entry)
        if env_names is not None:
            for suffix, path in _ENV_HOSPITAL_KEYS.items():
                target: Any = entry
                for part in path:
                    target = target.get(part) if isinstance(target, dict) else None
                if target is not None:
                    env_names[("hospitals", index, *path)] = f"HOSPITAL_{n}_{suffix}"
    return merged, problems


_ENV_SETTINGS = {
    ("sync", "batch_size"): "OPENMRS_MAX_RECORDS",
    ("sync", "interval_minutes"): "OPENMRS_SYNC_INTERVAL",
    ("sync", "detailed_logs"): "OPENMRS_DETAILED_LOGS",
    ("sync", "medical_history_links"): MEDICAL_HISTORY_LINKS_ENV,
    ("mongodb", "uri"): "MONGODB_URI",
}


def _describe(error: Mapping[str, Any], env_names: EnvNames) -> str:
    loc = tuple(error.get("loc", ()))
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else str(part)
    kind = error.get("type", "")
    # Never echo the offending value: it may be a password.
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    variable = env_names.get(loc)
    if variable:
        # Named as the operator wrote it: HOSPITAL_1_DB_PORT, not hospitals[0].db.port.
        return f"{variable}: {message} (environment variable; {key} in the YAML file)"
    if kind == "missing":
        return f"{key}: required; add it to the YAML file or set its environment variable"
    if kind == "extra_forbidden":
        return f"{key}: unknown key; remove it or check its spelling (see hospitals.example.yaml)"
    return f"{key}: {message}" if key else message


def load_settings(
    config_path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    warnings: list[str] | None = None,
) -> Settings:
    """Build the validated Settings, or raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    path = find_config_path(config_path, environ)
    raw: dict[str, Any] = read_yaml(path) if path is not None else {}
    if path is not None and warnings is not None:
        warnings.extend(world_readable_secret_warnings(path, raw))

    overlay = env_overlay(environ)
    env_hospitals = overlay.pop("hospitals_env", [])
    merged = _deep_merge(raw, overlay)
    yaml_hospitals = merged.get("hospitals") or []
    problems: list[str] = []
    if not isinstance(yaml_hospitals, list):
        problems.append("hospitals: must be a list of hospitals (each item starting with '- id:')")
        yaml_hospitals = []
    env_names: EnvNames = {loc: name for loc, name in _ENV_SETTINGS.items() if environ.get(name)}
    hospitals, env_problems = merge_hospitals(yaml_hospitals, env_hospitals, env_names)
    problems.extend(env_problems)
    merged["hospitals"] = hospitals
    if overrides:
        merged = _deep_merge(merged, overrides)
    if path is not None:
        merged["source_path"] = path

    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        problems.extend(_describe(e, env_names) for e in exc.errors(include_input=False))
    if problems:
        raise ConfigError(problems)
    return settings


def check_passwords(hospitals: list[HospitalConfig]) -> None:
    """Resolve the password of each hospital about to be used; ConfigError naming every failure.

    Only the hospitals a command selects are checked: a per-hospital systemd unit holds only its
    own credential, and must not fail because another hospital's credential is absent.
    """
    problems: list[str] = []
    for hospital in hospitals:
        try:
            hospital.db.resolved_password()
        except ConfigError as exc:
            problems.extend(f"hospitals[{hospital.id}].{p}" for p in exc.problems)
    if problems:
        raise ConfigError(problems)
