"""The company cache: a company_id's Intercom id, and what was last sent for the company.

Filled by Identify Company's upserts and read by the next one: a group whose
company body the cache already holds, for a contact known to be attached,
makes no call (SKIP_UNCHANGED, worker/actions/unchanged.py).  Forgotten when
Intercom says the company is gone, so that the next group makes it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis as redis_lib

from worker.store import keys

#: As long as the contact cache: a company deleted in Intercom's UI is noticed
#: at the next attach that fails, or after this long.
DEFAULT_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class CachedCompany:
    """A company's Intercom id, and the record of what was last sent for it."""

    id: str
    sent: str | None = None


class CompanyCache:
    """company_id -> Intercom company, in Redis (a ``decode_responses=True`` client)."""

    def __init__(self, redis: redis_lib.Redis, *, ttl: int = DEFAULT_TTL_SECONDS) -> None:
        self.redis = redis
        self.ttl = ttl

    def get(self, company_id: str) -> CachedCompany | None:
        found = cast(dict[str, str], self.redis.hgetall(keys.company(company_id)))  # a decode_responses client
        return CachedCompany(found["id"], found.get("sent")) if found.get("id") else None

    def remember(self, company_id: str, intercom_id: str, sent: str | None) -> None:
        pipe = self.redis.pipeline()
        pipe.delete(keys.company(company_id))
        pipe.hset(keys.company(company_id), mapping={"id": intercom_id, **({"sent": sent} if sent else {})})
        pipe.expire(keys.company(company_id), self.ttl)
        pipe.execute()

    def forget(self, company_id: str) -> None:
        self.redis.delete(keys.company(company_id))
