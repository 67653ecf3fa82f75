"""``REDIS_URL`` to a Redis client: one Redis, or the master a group of Sentinels names.

Two forms of URL are taken:

* ``redis://[[user]:password@]host[:port][/db]`` and ``rediss://…`` (TLS): one
  Redis, as redis-py and Celery read them;
* ``sentinel://[[user]:password@]host1[:port1][,host2[:port2]…][/db]?master=NAME[&sentinel_password=P]``:
  the Redis that the Sentinels at those addresses (port 26379 unless given)
  call the master of ``NAME``.  The user and password are those of the Redis
  servers; the Sentinels are asked with ``sentinel_password`` (their own
  ``requirepass``), or without one.

A Sentinel client asks the Sentinels where the master is when it connects, and
again when the server it holds stops answering, answers that it is now a
replica, or refuses a write for want of replicas (below), so a worker follows
a failover without a restart.  The Lua scripts need nothing more: redis-py's
``Script`` loads a script again when the new master answers NOSCRIPT.

Sentinel promotes a replica without stopping the old master: a client that
keeps its connection writes there until Sentinel turns it into a replica (up
to twenty seconds later), and those writes are then lost.  Run every server
with ``min-replicas-to-write`` as many as its replicas (docs/operations.md):
the old master then refuses writes (NOREPLICAS) the moment its replica is
promoted, and :class:`MasterConnection` takes that answer, like READONLY, as
the sign to ask the Sentinels again.

Celery is given a Sentinel group as one ``sentinel://`` URL (the first
Sentinel, with the password and database) and the whole list, with the
master's name, in transport options: worker/broker.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote

import redis
from redis.sentinel import Sentinel, SentinelManagedConnection

#: Where a Sentinel listens unless the URL says otherwise.
SENTINEL_PORT = 26379

#: Seconds to wait for one Sentinel before asking the next: an unreachable one must not hold a worker.
SENTINEL_TIMEOUT = 2.0

SCHEMES = ("redis://", "rediss://", "sentinel://")


class RedisUrlError(ValueError):
    """A malformed REDIS_URL.

    The message names the part that is wrong and repeats none of the URL: a
    password with an unencoded ``/`` or ``?`` would land in another part.
    """


@dataclass(frozen=True)
class SentinelGroup:
    """What a ``sentinel://`` URL says: where the Sentinels are, which master, which database."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    #: The Sentinels' own password (their requirepass), not the servers'.
    sentinel_password: str | None = None

    def sentinel_kwargs(self) -> dict[str, Any]:
        """How to ask a Sentinel: with a timeout (an unreachable one must not hold a process), and its password."""
        asking: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT}
        if self.sentinel_password:
            asking["password"] = self.sentinel_password
        return asking


def is_sentinel(url: str) -> bool:
    return url.startswith("sentinel://")


def check(url: str) -> None:
    """Raise RedisUrlError unless ``url`` is one of the forms above."""
    if not url.startswith(SCHEMES):
        scheme = url.split("://", 1)[0] + "://" if "://" in url else "no scheme"
        raise RedisUrlError(f"must start with redis:// or rediss:// (one Redis) or sentinel:// (a Sentinel group); got {scheme}")
    if is_sentinel(url):
        parse_sentinel(url)


def parse_sentinel(url: str) -> SentinelGroup:
    """The parts of a ``sentinel://`` URL; RedisUrlError naming what is wrong, never the password."""
    rest = url.removeprefix("sentinel://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    options = parse_qs(query, keep_blank_values=True)
    if set(options) - {"master", "sentinel_password"}:
        raise RedisUrlError(
            "a sentinel:// URL takes only the options master= and sentinel_password= (percent-encode / ? @ : & in a password)"
        )
    master = (options.get("master") or [""])[-1].strip()
    if not master:
        raise RedisUrlError("a sentinel:// URL must name its master: sentinel://host1:26379,host2:26379/0?master=mymaster")
    return SentinelGroup(
        sentinels=tuple(_address(entry, n) for n, entry in enumerate(hosts.split(","), start=1)),
        master=master,
        db=_db(path),
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=(options.get("sentinel_password") or [""])[-1] or None,
    )


def _address(entry: str, n: int) -> tuple[str, int]:
    entry = entry.strip()
    if entry.startswith("["):  # an IPv6 address: [::1]:26379
        host, _, port = entry[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = entry.partition(":")
    if not host or (port and not port.isdigit()) or (port and not 0 < int(port) < 65536):
        raise RedisUrlError(f"Sentinel {n} of the list is not host[:port] (Sentinels are separated by commas)")
    return host, int(port) if port else SENTINEL_PORT


def _db(path: str) -> int:
    path = path.strip("/")
    if path and not path.isdigit():
        raise RedisUrlError("the database after the hosts must be a number (percent-encode / ? @ : in the password)")
    return int(path or 0)


class MasterConnection(SentinelManagedConnection):
    """A connection to the master that lets go of a master that lost its replicas (NOREPLICAS).

    The error becomes a ConnectionError, which redis-py (and kombu) answer by
    connecting again, through the Sentinels, and retrying the command.
    """

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """redis-py's, reconnecting through the Sentinels, not to the server this connection last had.

        redis-py 8.1 reconnects a dropped connection here by its last address
        (``connect_check_health``), bypassing the Sentinels that ``connect``
        asks: a pipeline watching a key (kombu restores a message in such a
        transaction) then reconnected to the old master, now a replica, was
        refused (READONLY), and tried again forever: a worker's consumer spun
        there after a failover and took no message again.
        """
        if not self._sock:
            self.connect()
        super().send_packed_command(command, check_health)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except redis.ResponseError as exc:
            if self.connection_pool.is_master and str(exc).startswith("NOREPLICAS"):
                self.disconnect()
                raise redis.ConnectionError("the master has no replica to write to: a failover may be under way") from exc
            raise


#: How long a worker waits for a replica to hold what it wrote before it takes the write for lost (ms).
REPLICA_WAIT_MS = 1000


class NotOnReplica(redis.ConnectionError):
    """No replica acknowledged a write in time: on a master being replaced it is lost.

    A ConnectionError, so one of the errors a caller already meets when the
    master goes away, and answers by trying again (on the master the
    Sentinels then name).
    """


def replicas_to_wait_for(url: str) -> int:
    """How many replicas must hold a write a worker cannot afford to lose: one in a Sentinel group, none for one Redis.

    Sentinel promotes the replica without stopping the master: what the old
    master acknowledged in the last moment, before it saw its replica go
    (then ``min-replicas-to-write`` makes it refuse writes), never reached the
    new master.  An ingest written there and then acknowledged to the broker
    loses its events.  A Sentinel group has a replica by construction
    (docs/operations.md).
    """
    return 1 if is_sentinel(url) else 0


def wait_for_replicas(pipe: Any, replicas: int) -> None:
    """Queue a WAIT on ``pipe``: its answer, the pipeline's last, says how many replicas hold what it wrote."""
    if replicas:
        pipe.execute_command("WAIT", replicas, REPLICA_WAIT_MS)


def check_replicated(results: list[Any], replicas: int) -> list[Any]:
    """The pipeline's answers without WAIT's; NotOnReplica when fewer than ``replicas`` held its writes."""
    if not replicas:
        return results
    *answers, acknowledged = results
    if int(acknowledged) < replicas:
        raise NotOnReplica(f"{acknowledged} of {replicas} replica(s) acknowledged the writes within {REPLICA_WAIT_MS} ms")
    return answers


def connect(url: str, **kwargs: Any) -> redis.Redis:
    """A client on the Redis of ``url``; ``kwargs`` are redis-py's (decode_responses, timeouts…)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **kwargs)
    group = parse_sentinel(url)
    asking = group.sentinel_kwargs()
    for timeout in ("socket_connect_timeout", "socket_timeout"):
        asking[timeout] = kwargs.get(timeout) or asking[timeout]
    sentinel = Sentinel(list(group.sentinels), sentinel_kwargs=asking)
    credentials = {"db": group.db, "username": group.username, "password": group.password}
    client = sentinel.master_for(group.master, connection_class=MasterConnection, **credentials, **kwargs)
    return cast(redis.Redis, client)


def celery_broker_url(url: str) -> str:
    """The broker URL for kombu: ``url`` itself, or for a Sentinel group its first Sentinel with the credentials and database.

    Not kombu's ``;``-separated list of Sentinels: kombu answers a lost
    connection by switching to the next URL of such a list and, with it, to
    its own Sentinel transport in place of the relay's (``Connection.switch``).
    """
    if not is_sentinel(url):
        return url
    group = parse_sentinel(url)
    auth = ""
    if group.username or group.password:
        auth = f"{quote(group.username or '', safe='')}:{quote(group.password or '', safe='')}@"
    host, port = group.sentinels[0]
    return f"sentinel://{auth}{_netloc(host)}:{port}/{group.db}"


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host
