"""Realistic sample streams of Segment events, with the Intercom state they must produce.

Used by the demo, the end-to-end tests and the benchmarks.  A stream holds
users, leads (some converted into users later), several identifies per person
with changing traits, tracks (some with revenue) and groups; the
``adversarial`` ordering sends half the people's tracks and groups before
their identify.  ``expected_state()`` says what Intercom must hold once every
event is delivered, in terms that do not depend on Intercom's ids.

Traits are chosen so that the end state is exact whatever the interleaving of
*different* people: a company's traits never change, and a lead's identify
carries no trait that the user identify of the same person also sets.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

EVENT_NAMES = ["Signed Up", "Viewed Page", "Order Completed", "Plan Upgraded", "Invite.Sent", "Feature Used"]
PLANS = ["free", "pro", "business"]
START = 1_767_225_600  # 2026-01-01T00:00:00Z


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def intercom_event_name(name: str) -> str:
    """Intercom's form of an event name: case-insensitive, '.' and '$' become '-'."""
    return name.lower().replace(".", "-").replace("$", "-")


@dataclass
class Person:
    index: int
    kind: str  # "user", "lead", or "converted" (a lead that becomes a user)
    events: list[dict] = field(default_factory=list)

    @property
    def user_id(self) -> str | None:
        return f"user-{self.index}" if self.kind in ("user", "converted") else None

    @property
    def anonymous_id(self) -> str | None:
        return f"anon-{self.index}" if self.kind in ("lead", "converted") else None

    @property
    def email(self) -> str:
        return f"person{self.index}@example.com"

    @property
    def key(self) -> str:
        """How the expected state names this person's contact."""
        return self.user_id or self.anonymous_id or ""


@dataclass
class SampleStream:
    people: int = 100
    companies: int = 10
    tracks_per_person: int = 6
    identifies_per_person: int = 2
    groups_per_person: int = 1
    adversarial: bool = False
    seed: int = 7
    lead_share: float = 0.2
    converted_share: float = 0.2
    events: list[dict] = field(default_factory=list, init=False)
    persons: list[Person] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        clock = [START]
        for i in range(self.people):
            roll = rng.random()
            kind = "lead" if roll < self.lead_share else "converted" if roll < self.lead_share + self.converted_share else "user"
            person = Person(i, kind)
            self._person_events(person, rng, clock)
            self.persons.append(person)
        self.events = self._interleave(rng)

    # -- building ------------------------------------------------------------
    def _person_events(self, p: Person, rng: random.Random, clock: list[int]) -> None:
        def tick() -> int:
            clock[0] += 1
            return clock[0]

        identifies = [
            self._identify(p, v, tick(), lead_phase=(p.kind == "converted" and v == 0))
            for v in range(self.identifies_per_person if p.kind != "converted" else max(2, self.identifies_per_person))
        ]
        tracks = [
            self._track(p, rng, tick(), converted=(p.kind == "converted" and n >= self.tracks_per_person // 2))
            for n in range(self.tracks_per_person)
        ]
        groups = [self._group(p, rng, tick()) for _ in range(self.groups_per_person if p.kind != "lead" else 0)]
        if p.kind == "converted":
            # As a lead: identify (lead), the first tracks; then the identify that converts, the rest.
            half = self.tracks_per_person // 2
            p.events = [identifies[0], *tracks[:half], *identifies[1:], *tracks[half:], *groups]
        else:
            p.events = [identifies[0], *tracks, *identifies[1:], *groups]

    def _base(self, p: Person, kind: str, ts: int, *, as_lead: bool = False) -> dict:
        event = {
            "type": kind,
            "messageId": str(uuid.UUID(int=random.Random(f"{self.seed}-{p.index}-{ts}").getrandbits(128))),
            "timestamp": iso(ts),
        }
        if p.anonymous_id:
            event["anonymousId"] = p.anonymous_id
        if p.user_id and not as_lead:
            event["userId"] = p.user_id
        return event

    def _identify(self, p: Person, version: int, ts: int, *, lead_phase: bool) -> dict:
        as_lead = p.kind == "lead" or lead_phase
        event = self._base(p, "identify", ts, as_lead=as_lead)
        if as_lead:
            event["traits"] = {"email": p.email}
        else:
            event["traits"] = {"email": p.email, "name": f"Person {p.index} v{version}", "createdAt": iso(START - 86400 * (p.index % 300))}
        return event

    def _track(self, p: Person, rng: random.Random, ts: int, *, converted: bool) -> dict:
        as_lead = p.kind == "lead" or (p.kind == "converted" and not converted)
        event = self._base(p, "track", ts, as_lead=as_lead)
        event["event"] = rng.choice(EVENT_NAMES)
        props: dict = {"source": rng.choice(["web", "ios", "android"]), "step": rng.randint(1, 9)}
        if event["event"] == "Order Completed":
            props.update(revenue=round(rng.uniform(5, 200), 2), currency="EUR")
        event["properties"] = props
        return event

    def _group(self, p: Person, rng: random.Random, ts: int) -> dict:
        company = rng.randrange(self.companies)
        event = self._base(p, "group", ts)
        event["groupId"] = f"company-{company}"
        event["traits"] = {"name": f"Company {company}", "plan": PLANS[company % len(PLANS)], "employees": 10 + company}
        return event

    def _interleave(self, rng: random.Random) -> list[dict]:
        """Merge the people's events into one stream, each person's order kept (or, adversarially, broken)."""
        queues = []
        for p in self.persons:
            events = list(p.events)
            if self.adversarial and p.index % 2 == 0:
                first_identify = events.pop(0)
                events.insert(rng.randint(len(events) // 2, len(events)), first_identify)
            queues.append(events)
        stream: list[dict] = []
        while queues:
            q = rng.choice(queues)
            stream.append(q.pop(0))
            if not q:
                queues.remove(q)
        return stream

    # -- what Intercom must hold ----------------------------------------------
    def expected_state(self) -> dict:
        """Contacts by person key, events per contact, companies and attachments."""
        contacts, events, attachments = {}, {}, set()
        companies = {}
        order = {id(e): n for n, e in enumerate(self.events)}
        for p in self.persons:
            identifies = sorted((e for e in p.events if e["type"] == "identify"), key=lambda e: order[id(e)])
            traits: dict = {}
            for e in identifies:
                traits.update(e["traits"])
            role = "lead" if p.kind == "lead" else "user"
            contacts[p.key] = {"role": role, "external_id": p.user_id, "email": p.email, "name": traits.get("name")}
            events[p.key] = sorted((intercom_event_name(e["event"]), _ts(e["timestamp"])) for e in p.events if e["type"] == "track")
            for e in p.events:
                if e["type"] == "group":
                    companies[e["groupId"]] = e["traits"]["name"]
                    attachments.add((p.key, e["groupId"]))
        return {"contacts": contacts, "events": events, "companies": companies, "attachments": sorted(attachments)}


def _ts(value: str) -> int:
    return int(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
