"""Settings, read once from the environment and passed in.

Every value is checked when the process starts; a bad value stops it with a
message naming the variable.  Nothing here is read at import time: call
``Settings.from_env()``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Mapping

from worker.cpu import allowed_cpus

#: Intercom's regional API hosts (developers.intercom.com, "regional hosting").
REGIONS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}

#: The API version whose request and response shapes this project follows.
INTERCOM_VERSION = "2.16"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default: the one place a default is written.

    ``from_env`` reads each from its environment variable (README, "Settings").
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    # repr=False: the token must never reach a log line or a traceback.
    access_token: str = field(default="", repr=False)
    region: str = "us"
    api_url: str = REGIONS["us"]
    mappings_file: str | None = None
    # RETRY_WINDOW_SECONDS: Segment retries a failing event for 4 hours before it gives up; so do we.
    retry_window: float = 4 * 3600
    # PARK_HOLD_SECONDS: how long a track or group for a never-identified person waits for an identify.
    park_hold: float = 24 * 3600
    # RATE_LIMIT_SHARE: our share of the token's per-window limit; lower it to leave room for
    # the workspace's other apps.
    rate_share: float = 1.0
    # MAX_BACKLOG: back-pressure; the ingestion API answers 503 beyond this many unfinished events.
    max_backlog: int = 5_000_000
    # MAX_BACKLOG_BYTES: back-pressure on Redis's memory: the ingestion API answers 503 while Redis's
    # used_memory is over this many bytes. None (unset): 90% of Redis's own maxmemory, or no bound
    # when Redis has none; 0: no bound (producers/enqueue.py, docs/operations.md "Redis sizing").
    max_backlog_bytes: int | None = None
    # ACCEPT_DURABILITY: local | replica: what a 200 from the door promises. replica: the events are
    # also on at least one Redis replica (WAIT), else the door answers 503 (docs/ingestion.md).
    accept_durability: str = "local"
    # ACCEPT_REPLICA_TIMEOUT_MS: how long the door waits for a replica's acknowledgement (replica).
    accept_replica_timeout_ms: int = 1000
    write_keys: tuple[str, ...] = field(default=(), repr=False)
    # ADMIN_KEYS: comma-separated user:password pairs that open the pipeline console (/console);
    # none (the default) leaves it closed. repr=False: a password must never reach a log line.
    admin_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # CORS_ORIGINS: the web pages (origins) whose browsers may send to the ingestion API, or "*";
    # none (the default) refuses every browser request and sends no CORS header.
    cors_origins: tuple[str, ...] = ()
    # INTERCOM_TIMEOUT_SECONDS: the longest one call to Intercom may take.
    http_timeout: float = 30.0
    log_format: str = "text"
    # LEASE_SECONDS: seconds without a sign of life before a running delivery is taken for
    # lost and sent again. A worker renews its deliveries' leases every few seconds, however long
    # a call takes (worker/liveness.py); a worker that dies is noticed sooner, after 10 s of silence
    # (worker/timers.py: the timers that depend on each other, and how).
    lease_seconds: float = 15.0
    # DISPATCH_SECONDS: a sent task normally starts within seconds; one not started after this
    # long is taken for lost and its lane's head is sent again. A task is lost when its worker
    # dies after closing one head and before sending the next, or dies holding prefetched
    # messages (the broker restores those only after its visibility timeout). A duplicate costs
    # one claim that finds the lane busy or its delivery gone; keep it above the queue's usual wait.
    dispatch_seconds: float = 60.0
    # PAUSE_PROBE_SECONDS: how often a destination paused for a refused token (401) is probed
    # with GET /me, and how long its lanes sleep meanwhile.
    pause_probe_seconds: float = 30.0
    # SKIP_UNCHANGED: an identify whose mapped body equals what was last sent for its contact
    # makes no call, nor a group whose company is unchanged and whose attachment is known.
    skip_unchanged: bool = True
    # LAST_SEEN_RESOLUTION_SECONDS: last_seen_at moving by less than this alone is no change.
    last_seen_resolution: float = 300.0
    # MERGE_LEADS_BY_EMAIL: a user identify merges into the user the leads in Intercom that share
    # its email (made before the relay, or by the Messenger), not only those in the relay's cache.
    merge_leads_by_email: bool = True
    # STRICT_FIELDS: a mapped value that can't be converted (an unparseable signed_up_at) fails the
    # whole event; when false only that field is dropped, logged and counted.
    strict_fields: bool = False
    # UNKNOWN_ATTRIBUTES: hold | create | fail: what a custom attribute the workspace does not define
    # (or a value it can't take) does to a write (worker/actions/attributes.py).
    unknown_attributes: str = "hold"
    # MAX_CREATED_ATTRIBUTES: how many attributes UNKNOWN_ATTRIBUTES=create may make in the workspace.
    max_created_attributes: int = 50
    # DELETION_AUDIT_DAYS: how long a deletion's audit record (no traits) is kept.
    deletion_audit_days: float = 365.0
    # WORKER_CPU: "off", "auto" or a CPU number: pin a worker process to one CPU (worker/cpu.py).
    worker_cpu: str = "off"

    @property
    def token_id(self) -> str:
        """A short, stable, non-secret name for the access token.

        Redis keys of the fleet-wide rate budget and the pause flag are per
        token; they carry this digest, never the token itself.
        """
        return hashlib.sha256(self.access_token.encode()).hexdigest()[:12]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_token: bool = False) -> Settings:
        env = os.environ if env is None else env
        region, api_url = _region_and_api_url(env)
        token = env.get("INTERCOM_ACCESS_TOKEN", "").strip()
        if require_token and not token:
            raise SettingsError("INTERCOM_ACCESS_TOKEN is not set; create an access token in Intercom's Developer Hub")
        mark = next((m for m in PLACEHOLDER_MARKS if m in token.lower()), None)
        if mark:  # copied from .env.example: every call would answer 401
            raise SettingsError(
                f"INTERCOM_ACCESS_TOKEN is a placeholder (it contains {mark!r}); create an access token in Intercom's Developer Hub"
            )
        default = cls()
        redis_url = _redis_url(env, default.redis_url)
        mappings_file = env.get("MAPPINGS_FILE", "").strip() or None
        if mappings_file and not os.path.isfile(mappings_file):
            raise SettingsError(f"MAPPINGS_FILE names {mappings_file!r}, which is not a readable file")
        log_format = env.get("LOG_FORMAT", "text").strip().lower()
        if log_format not in ("text", "json"):
            raise SettingsError(f"LOG_FORMAT must be text or json; got {log_format!r}")
        write_keys = tuple(k.strip() for k in env.get("WRITE_KEYS", "").split(",") if k.strip())
        return cls(
            redis_url=redis_url,
            access_token=token,
            region=region,
            api_url=api_url.rstrip("/"),
            mappings_file=mappings_file,
            retry_window=_number(env, "RETRY_WINDOW_SECONDS", default.retry_window, minimum=0),
            park_hold=_number(env, "PARK_HOLD_SECONDS", default.park_hold, minimum=0),
            rate_share=_number(env, "RATE_LIMIT_SHARE", default.rate_share, minimum=0.01, maximum=1.0),
            max_backlog=int(_number(env, "MAX_BACKLOG", default.max_backlog, minimum=1)),
            max_backlog_bytes=_max_backlog_bytes(env),
            accept_durability=_accept_durability(env),
            accept_replica_timeout_ms=int(_number(env, "ACCEPT_REPLICA_TIMEOUT_MS", default.accept_replica_timeout_ms, minimum=1)),
            write_keys=write_keys,
            admin_keys=_admin_keys(env, write_keys),
            cors_origins=_cors_origins(env),
            http_timeout=_number(env, "INTERCOM_TIMEOUT_SECONDS", default.http_timeout, minimum=0.1),
            log_format=log_format,
            lease_seconds=_number(env, "LEASE_SECONDS", default.lease_seconds, minimum=1),
            dispatch_seconds=_number(env, "DISPATCH_SECONDS", default.dispatch_seconds, minimum=1),
            pause_probe_seconds=_number(env, "PAUSE_PROBE_SECONDS", default.pause_probe_seconds, minimum=1),
            skip_unchanged=_flag(env, "SKIP_UNCHANGED", default.skip_unchanged),
            last_seen_resolution=_number(env, "LAST_SEEN_RESOLUTION_SECONDS", default.last_seen_resolution, minimum=0),
            merge_leads_by_email=_flag(env, "MERGE_LEADS_BY_EMAIL", default.merge_leads_by_email),
            strict_fields=_flag(env, "STRICT_FIELDS", default.strict_fields),
            unknown_attributes=_unknown_attributes(env),
            max_created_attributes=int(_number(env, "MAX_CREATED_ATTRIBUTES", default.max_created_attributes, minimum=0)),
            deletion_audit_days=_number(env, "DELETION_AUDIT_DAYS", default.deletion_audit_days, minimum=1),
            worker_cpu=_worker_cpu(env),
        )


def _region_and_api_url(env: Mapping[str, str]) -> tuple[str, str]:
    region = env.get("INTERCOM_REGION", "us").strip().lower() or "us"
    if region not in REGIONS:
        raise SettingsError(f"INTERCOM_REGION must be one of {', '.join(REGIONS)}; got {region!r}")
    api_url = env.get("INTERCOM_API_URL", "").strip() or REGIONS[region]
    if not api_url.startswith(("http://", "https://")):
        raise SettingsError(f"INTERCOM_API_URL must be an http(s) URL; got {api_url!r}")
    return region, api_url


def _redis_url(env: Mapping[str, str], default: str) -> str:
    """One Redis (redis://, rediss://) or a Sentinel group (sentinel://…?master=NAME): worker/store/connect.py."""
    from worker.store.connect import RedisUrlError, check  # noqa: PLC0415 - the URL forms live with the client they build

    redis_url = env.get("REDIS_URL", default).strip()
    # Celery's Redis transport takes no unix:// URL, so neither do we.  The
    # error names what is wrong, never the URL: it may carry Redis's password.
    try:
        check(redis_url)
    except RedisUrlError as exc:
        raise SettingsError(f"REDIS_URL {exc}") from None
    return redis_url


def _cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """CORS_ORIGINS as a browser writes an Origin header: scheme://host[:port], lower case."""
    origins = []
    for raw in env.get("CORS_ORIGINS", "").split(","):
        origin = raw.strip().lower().rstrip("/")
        if not origin:
            continue
        scheme, _, rest = origin.partition("://")
        if origin != "*" and (scheme not in ("http", "https") or not rest or "/" in rest or "*" in rest):
            raise SettingsError(
                f"CORS_ORIGINS: each entry must be * or an origin like https://app.example.com[:port], with no path; got {raw.strip()!r}"
            )
        origins.append(origin)
    return tuple(origins)


#: The shortest console password accepted: the console can replay and purge dead letters.
MIN_ADMIN_PASSWORD = 12

#: The shortest write key the door accepts.  Segment's own write keys are 32 random
#: characters; 24 still leaves 144 bits when drawn by secrets.token_urlsafe, and refuses
#: every word, name or short phrase a person would type instead of generating one.
MIN_WRITE_KEY = 24

#: Words that mark a value as a placeholder copied from .env.example or a tutorial, not a secret
#: (matched anywhere, ignoring case).  A generated key holds none of them.
PLACEHOLDER_MARKS = ("replace-with", "replace_with", "changeme", "change-me", "placeholder", "example")

#: How to make a real key, said by every refusal.
GENERATE_HINT = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def secret_weakness(value: str, minimum: int) -> str | None:
    """Why ``value`` cannot serve as a secret, or None.  The reason never quotes the value."""
    lowered = value.lower()
    mark = next((m for m in PLACEHOLDER_MARKS if m in lowered), None)
    if mark:
        return f"is a placeholder (it contains {mark!r})"
    if len(value) < minimum:
        return f"is shorter than {minimum} characters"
    if len(set(value)) == 1:
        return "is one character repeated"
    return None


def check_write_keys(write_keys: tuple[str, ...]) -> None:
    """Refuse a write key that is short, a placeholder or one repeated character.

    Called by the door (producers/http.py, ``create_app``), not by ``from_env``: a worker
    never takes a write key and must not be stopped by one.  An error names the entry by
    position, never the key.
    """
    for n, key in enumerate(write_keys, start=1):
        weakness = secret_weakness(key, MIN_WRITE_KEY)
        if weakness:
            raise SettingsError(
                f"WRITE_KEYS: entry {n} {weakness}; a write key needs at least {MIN_WRITE_KEY} random characters; {GENERATE_HINT}"
            )


def _admin_keys(env: Mapping[str, str], write_keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """ADMIN_KEYS as (user, password) pairs; an error names the entry by position, never its password."""
    pairs = []
    for n, raw in enumerate((entry.strip() for entry in env.get("ADMIN_KEYS", "").split(",")), start=1):
        if not raw:
            continue
        user, sep, password = raw.partition(":")
        if not (sep and user.strip() and password):
            raise SettingsError(f"ADMIN_KEYS: entry {n} must be user:password")
        weakness = secret_weakness(password, MIN_ADMIN_PASSWORD)
        if weakness:
            raise SettingsError(
                f"ADMIN_KEYS: the password of entry {n} ({user.strip()!r}) {weakness}; "
                f"a password needs at least {MIN_ADMIN_PASSWORD} characters; {GENERATE_HINT}"
            )
        if password in write_keys:
            # A write key sits in every page that sends events; it must never open the console.
            raise SettingsError(f"ADMIN_KEYS: the password of entry {n} ({user.strip()!r}) is also a write key")
        pairs.append((user.strip(), password))
    return tuple(pairs)


def _worker_cpu(env: Mapping[str, str]) -> str:
    raw = env.get("WORKER_CPU", "").strip().lower() or "off"
    if raw in ("off", "auto"):
        return raw
    allowed = allowed_cpus()
    if not raw.isdigit() or int(raw) not in allowed:
        raise SettingsError(f"WORKER_CPU must be off, auto or one of this machine's CPUs {allowed}; got {raw!r}")
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false; got {raw!r}")


#: Redis's memory units (redis.conf): 1k is 1000 bytes, 1kb is 1024.
_MEMORY_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 2**10, "m": 10**6, "mb": 2**20, "g": 10**9, "gb": 2**30}


def _max_backlog_bytes(env: Mapping[str, str]) -> int | None:
    """MAX_BACKLOG_BYTES in bytes, written as Redis writes maxmemory (2gb, 1500mb, 2000000000); None when unset."""
    raw = env.get("MAX_BACKLOG_BYTES", "").strip().lower()
    if not raw:
        return None
    number = raw.rstrip("bkmg")
    unit = raw[len(number) :]
    if not number.isdigit() or unit not in _MEMORY_UNITS:
        raise SettingsError(f"MAX_BACKLOG_BYTES must be bytes, with or without a redis.conf unit (2000000000, 1500mb, 2gb); got {raw!r}")
    return int(number) * _MEMORY_UNITS[unit]


def _accept_durability(env: Mapping[str, str]) -> str:
    """ACCEPT_DURABILITY, local or replica."""
    value = env.get("ACCEPT_DURABILITY", "").strip().lower() or "local"
    if value not in ("local", "replica"):
        raise SettingsError(f"ACCEPT_DURABILITY must be local or replica; got {value!r}")
    return value


def _unknown_attributes(env: Mapping[str, str]) -> str:
    """UNKNOWN_ATTRIBUTES, one of hold, create, fail."""
    value = env.get("UNKNOWN_ATTRIBUTES", "").strip().lower() or "hold"
    if value not in ("hold", "create", "fail"):
        raise SettingsError(f"UNKNOWN_ATTRIBUTES must be hold, create or fail; got {value!r}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float | None = None) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number; got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise SettingsError(f"{name} must be {bound}; got {raw!r}")
    return value
