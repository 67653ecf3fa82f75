"""The workspace as Intercom keeps it: contacts, companies, data events, attachments, merges.

Pure in-memory model, no HTTP: each operation takes an already schema-checked request body
and returns the response body, or raises `ApiError` carrying Intercom's status, error code and
message. Behaviour is cited to sections of docs/intercom-api.md; where Intercom documents
nothing, the choice is marked "undocumented" and kept plausible rather than tuned to any client.

Search sees the past: every write appends a snapshot of the contact, and a search at time t
reads each contact as it was at ``t - search_lag`` (docs/intercom-api.md, Search), so a
brand-new contact is invisible and a fresh change is not yet searchable. Merged and deleted contacts
leave search at once (SearchContacts, "Merged Contacts").

Not thread-safe by itself: the runtime holds a lock around every call.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import search
from .attributes import AttributeRefused, DataAttributes
from .config import FakeConfig

#: Contact keys that are set verbatim from create/update bodies (create_contact_request).
CONTACT_FIELDS = (
    "role external_id email email_verified phone name avatar signed_up_at last_seen_at owner_id unsubscribed_from_emails"
).split()

#: Company keys that are set verbatim from create_or_update_company_request.
COMPANY_FIELDS = "name plan size website industry remote_created_at".split()

ROLES = ("user", "lead")

#: monthly_spend "has an upper limit of 2**31-1" (docs/intercom-api.md, Companies).
MAX_MONTHLY_SPEND = 2**31 - 1

#: "We currently limit the number of tracked metadata keys to 10 per event" (docs/intercom-api.md, Events).
MAX_METADATA_KEYS = 10

#: contact_companies lists "up to 10" companies inline (spec, contact_companies).
INLINE_LIST_LIMIT = 10

MERGE_NOT_DUPLICATES = (
    "Contacts can only be merged when they are duplicates (matching email or phone). "
    "Pass skip_duplicate_validation=true to override this check."
)


class ApiError(Exception):
    """An Intercom error answer: HTTP status, error code, message, optional extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.field = field


def user_not_found() -> ApiError:
    """The 404 seen from /events (docs/intercom-api.md, Events); reused for unknown contact ids (undocumented)."""
    return ApiError(404, "not_found", "User Not Found")


@dataclass(slots=True)
class Snapshot:
    """A contact as search sees it from `time` on: its searchable fields and a frozen copy
    (rendered only when returned, to keep a large workspace small in memory)."""

    time: float
    doc: dict[str, Any]
    contact: Contact


@dataclass(slots=True)
class Contact:
    """A lead or user. Times are Unix seconds; `written_at` keeps sub-second precision."""

    id: str
    role: str
    created_at: int
    updated_at: int
    external_id: str | None = None
    email: str | None = None
    email_verified: bool | None = None
    phone: str | None = None
    name: str | None = None
    avatar: str | None = None
    signed_up_at: int | None = None
    last_seen_at: int | None = None
    owner_id: str | None = None
    unsubscribed_from_emails: bool | None = None
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    company_ids: dict[str, None] = field(default_factory=dict)  # ordered set
    merged_into: str | None = None
    merged_at: int | None = None
    deleted: bool = False
    merge_history: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Neither merged away nor deleted."""
        return not self.deleted and self.merged_into is None


@dataclass(slots=True)
class Company:
    """A company, upserted by the client's `company_id`."""

    id: str
    company_id: str
    created_at: int
    updated_at: int
    name: str | None = None
    plan: str | None = None
    size: int | None = None
    website: str | None = None
    industry: str | None = None
    monthly_spend: int = 0
    remote_created_at: int | None = None
    last_request_at: int | None = None
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    contact_ids: dict[str, None] = field(default_factory=dict)  # ordered set


@dataclass
class Event:
    """A stored data event (de-duplicated on contact + normalised name + created_at)."""

    event_name: str
    original_name: str
    created_at: int
    metadata: dict[str, Any]
    ignored_metadata_keys: list[str]
    received_at: float

    def to_json(self) -> dict[str, Any]:
        """The shape /_fake/state shows."""
        return {
            "event_name": self.event_name,
            "original_name": self.original_name,
            "created_at": self.created_at,
            "metadata": self.metadata,
            "ignored_metadata_keys": self.ignored_metadata_keys,
            "received_at": self.received_at,
        }


def normalise_event_name(name: str) -> str:
    """Names are case-insensitive; ``.`` and ``$`` become ``-`` (docs/intercom-api.md, Events)."""
    return name.lower().replace(".", "-").replace("$", "-")


def _blank_to_none(value: Any) -> Any:
    """Undocumented: an empty external_id or email is treated as absent."""
    return None if value == "" else value


def _email_key(email: str | None) -> str | None:
    return email.lower() if email else None


class IdFactory:
    """24-hex ids like Intercom's (ObjectId-shaped): creation second + random base + counter."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._counter = secrets.randbits(40)

    def next(self) -> str:
        """A new id; ids made later sort after earlier ones."""
        self._counter += 1
        return f"{int(self._clock()):08x}{self._counter:016x}"[-24:]


class WorkspaceState:
    """One Intercom workspace. Call `reset()` to empty it."""

    def __init__(self, config: FakeConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget every contact, company, event and merge."""
        self.ids = IdFactory(self.clock)
        self.contacts: dict[str, Contact] = {}
        self.companies: dict[str, Company] = {}
        self.company_by_company_id: dict[str, str] = {}
        self.events: dict[str, list[Event]] = {}
        self.event_keys: dict[str, set[tuple[str, int]]] = {}
        self.merges: list[dict[str, Any]] = []
        self.duplicate_events = 0
        self.data_attributes = DataAttributes(self.clock)
        # Live lookups over active contacts.
        self.user_by_external_id: dict[str, str] = {}
        self.contacts_by_email: dict[str, dict[str, None]] = {}
        # Search index: field -> value -> the id(s) that ever had that value (a superset, so
        # the lagged snapshot decides); it only narrows the scan.
        self.search_index: dict[str, dict[str, str | set[str]]] = {}

    # ----------------------------------------------------------------- contacts

    def get_contact(self, contact_id: str, include_merge_history: bool = False) -> dict[str, Any]:
        """GET /contacts/{id}: 200, 404, or 410 for a merged-away contact."""
        return self.render_contact(self.live_contact(contact_id), include_merge_history)

    def live_contact(self, contact_id: str) -> Contact:
        """The active contact with this id, else 404 (unknown/deleted) or 410 (merged).

        In 2.16 a merged contact answers 410 ``contact_merged`` with a canonical Link to the
        contact it was merged into (docs/intercom-api.md, Contacts). 404 for unknown ids is undocumented.
        """
        contact = self.contacts.get(contact_id)
        if contact is None or contact.deleted:
            raise user_not_found()
        if contact.merged_into is not None:
            raise ApiError(
                410,
                "contact_merged",
                f"Contact {contact_id} has been merged into {contact.merged_into}",
                headers={"Link": f'</contacts/{contact.merged_into}>; rel="canonical"'},
            )
        return contact

    def create_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /contacts: a new lead or user, or 409 when a user with those details exists."""
        fields = self._contact_fields(body)
        role = fields.get("role") or "user"
        fields["role"] = role
        self._check_contact_rules(role, fields.get("external_id"), body)
        if role == "user":
            self._refuse_conflict(fields.get("external_id"), fields.get("email"), exclude=None)
        now = int(self.clock())
        contact = Contact(id=self.ids.next(), created_at=now, updated_at=now, **fields)
        contact.custom_attributes = dict(body.get("custom_attributes") or {})
        self.contacts[contact.id] = contact
        self._index(contact)
        self._snapshot(contact)
        return self.render_contact(contact)

    def update_contact(self, contact_id: str, body: dict[str, Any], include_merge_history: bool = False) -> dict[str, Any]:
        """PUT /contacts/{id}: change fields; lead → user allowed, user → lead refused."""
        contact = self.live_contact(contact_id)
        fields = self._contact_fields(body)
        role = fields.get("role", contact.role)
        if contact.role == "user" and role == "lead":
            # Undocumented: Intercom has no way to turn a user back into a lead.
            raise ApiError(400, "parameter_invalid", "A user cannot be converted to a lead", field="role")
        external_id = fields.get("external_id", contact.external_id)
        self._check_contact_rules(role, external_id, body)
        if role == "user":
            email = fields.get("email", contact.email)
            self._refuse_conflict(external_id, email, exclude=contact.id)
        self._unindex(contact)
        for key, value in fields.items():
            setattr(contact, key, value)
        contact.custom_attributes.update(body.get("custom_attributes") or {})
        contact.updated_at = int(self.clock())
        self._index(contact)
        self._snapshot(contact)
        return self.render_contact(contact, include_merge_history)

    def delete_contact(self, contact_id: str) -> dict[str, Any]:
        """DELETE /contacts/{id}: 200 contact_deleted."""
        contact = self.live_contact(contact_id)
        self._unindex(contact)
        contact.deleted = True
        for company_id in contact.company_ids:
            self.companies[company_id].contact_ids.pop(contact.id, None)
        return {"type": "contact", "id": contact.id, "external_id": contact.external_id, "deleted": True}

    def _contact_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        """The plain fields of a create/update body, blanks treated as absent."""
        fields = {k: body[k] for k in CONTACT_FIELDS if k in body}
        for key in ("external_id", "email"):
            if key in fields:
                fields[key] = _blank_to_none(fields[key])
        return fields

    def _check_contact_rules(self, role: str, external_id: str | None, body: dict[str, Any]) -> None:
        """Rules beyond the schema, in the order a client would hit them."""
        if role not in ROLES:
            # The enum is only in the prose (docs/intercom-api.md, Contacts); the code is undocumented.
            raise ApiError(400, "parameter_invalid", "role must be one of: user, lead", field="role")
        if body.get("email_verified") is not None and not body.get("email"):
            # "Must be supplied together with an email … otherwise 400" (docs/intercom-api.md, Contacts).
            raise ApiError(400, "parameter_invalid", "email_verified requires email", field="email_verified")
        if role == "lead" and external_id:
            # Undocumented (docs/intercom-api.md, Undocumented behaviour): Segment says "External
            # IDs cannot be set if the role is lead", and find_by_external_id "only supports
            # users". Modelled as a 400.
            raise ApiError(
                400,
                "parameter_invalid",
                "External IDs cannot be set if the role is lead",
                field="external_id",
            )
        self.check_custom_attributes(body.get("custom_attributes"), "contact")

    def check_custom_attributes(self, attributes: dict[str, Any] | None, model: str) -> None:
        """Attributes must exist in the workspace first, typed ones with a value of their type
        (docs/intercom-api.md, Data attributes; fake_intercom/attributes.py)."""
        try:
            self.data_attributes.check(model, attributes, self._untyped(model))
        except AttributeRefused as exc:
            raise ApiError(400, "parameter_invalid", exc.message, field=exc.field) from exc

    def _untyped(self, model: str) -> tuple[str, ...]:
        """The config's attribute names of a model (untyped: any scalar)."""
        return self.config.contact_attributes if model == "contact" else self.config.company_attributes

    def list_data_attributes(self, model: str | None) -> dict[str, Any]:
        """GET /data_attributes: both models unless one is named; 422 for any other model."""
        if model not in (None, "contact", "company"):
            raise ApiError(422, "parameter_invalid", f"{model} is not a valid model", field="model")
        models = [model] if model else ["contact", "company"]
        data = [item for m in models for item in self.data_attributes.list(m, self._untyped(m))]
        return {"type": "list", "data": data}

    def create_data_attribute(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /data_attributes: 200 with the new attribute, or 400 parameter_invalid."""
        try:
            return self.data_attributes.create(body, {m: self._untyped(m) for m in ("contact", "company")})
        except AttributeRefused as exc:
            raise ApiError(400, "parameter_invalid", exc.message, field=exc.field) from exc

    def _refuse_conflict(self, external_id: str | None, email: str | None, exclude: str | None) -> None:
        """409 when an active user already has this external_id, or this email and one side has
        no external_id (docs/intercom-api.md, Contacts; the 409 of POST /contacts is described in
        https://github.com/intercom/Intercom-OpenAPI/pull/543). Leads never conflict.
        """
        existing = self._conflicting_user(external_id, email, exclude)
        if existing is not None:
            raise ApiError(409, "conflict", f"A contact matching those details already exists with id={existing.id}")

    def _conflicting_user(self, external_id: str | None, email: str | None, exclude: str | None) -> Contact | None:
        if external_id:
            found = self.user_by_external_id.get(external_id)
            if found and found != exclude:
                return self.contacts[found]
        for contact_id in self.contacts_by_email.get(_email_key(email) or "", {}):
            other = self.contacts[contact_id]
            if other.id == exclude or other.role != "user":
                continue
            if external_id is None or other.external_id is None:
                return other
        return None

    def _index(self, contact: Contact) -> None:
        """Add an active contact to the live lookups."""
        if not contact.active:
            return
        if contact.role == "user" and contact.external_id:
            self.user_by_external_id[contact.external_id] = contact.id
        if contact.email:
            self.contacts_by_email.setdefault(_email_key(contact.email) or "", {})[contact.id] = None

    def _unindex(self, contact: Contact) -> None:
        """Remove a contact from the live lookups (before a change, merge or delete)."""
        if contact.external_id and self.user_by_external_id.get(contact.external_id) == contact.id:
            del self.user_by_external_id[contact.external_id]
        if contact.email:
            self.contacts_by_email.get(_email_key(contact.email) or "", {}).pop(contact.id, None)

    # ----------------------------------------------------------------- rendering

    def render_contact(self, contact: Contact, include_merge_history: bool = False) -> dict[str, Any]:
        """The `contact` object of the 2.16 spec (the fields a sync uses, the rest null)."""
        url = f"/contacts/{contact.id}"
        companies = [{"type": "company", "id": cid, "url": f"/companies/{cid}"} for cid in contact.company_ids]
        obj: dict[str, Any] = {
            "type": "contact",
            "id": contact.id,
            "workspace_id": self.config.workspace_id,
            "external_id": contact.external_id,
            "role": contact.role,
            "email": contact.email,
            "email_domain": contact.email.rpartition("@")[2].lower() if contact.email else None,
            "phone": contact.phone,
            "name": contact.name,
            "avatar": {"type": "avatar", "image_url": contact.avatar} if contact.avatar else None,
            "owner_id": contact.owner_id,
            "social_profiles": {"type": "list", "data": []},
            "has_hard_bounced": False,
            "marked_email_as_spam": False,
            "unsubscribed_from_emails": bool(contact.unsubscribed_from_emails),
            "created_at": contact.created_at,
            "updated_at": contact.updated_at,
            "signed_up_at": contact.signed_up_at,
            "last_seen_at": contact.last_seen_at,
            "last_replied_at": None,
            "last_contacted_at": None,
            "last_email_opened_at": None,
            "last_email_clicked_at": None,
            "language_override": None,
            "browser": None,
            "browser_version": None,
            "browser_language": None,
            "os": None,
            "location": {"type": "location", "country": None, "region": None, "city": None, "country_code": None, "continent_code": None},
            "custom_attributes": dict(contact.custom_attributes),
            "tags": _addressable_list([], f"{url}/tags"),
            "notes": _addressable_list([], f"{url}/notes"),
            "companies": _addressable_list(companies, f"{url}/companies"),
            "enabled_push_messaging": None,
        }
        if include_merge_history and contact.role == "user":
            obj["merge_history"] = list(contact.merge_history)
        return obj

    def render_company(self, company: Company) -> dict[str, Any]:
        """The `company` object of the 2.16 spec; `plan` is an object, `{}` when unset."""
        return {
            "type": "company",
            "id": company.id,
            "company_id": company.company_id,
            "app_id": self.config.workspace_id,
            "name": company.name,
            "plan": {"type": "plan", "id": _plan_id(company.plan), "name": company.plan} if company.plan else {},
            "size": company.size,
            "website": company.website,
            "industry": company.industry,
            "monthly_spend": company.monthly_spend,
            "remote_created_at": company.remote_created_at,
            "created_at": company.created_at,
            "updated_at": company.updated_at,
            "last_request_at": company.last_request_at,
            "user_count": sum(1 for cid in company.contact_ids if self.contacts[cid].active),
            "session_count": 0,
            "custom_attributes": dict(company.custom_attributes),
            "tags": {"type": "tag.list", "tags": []},
            "segments": {"type": "segment.list", "segments": []},
        }

    # ----------------------------------------------------------------- search

    def _snapshot(self, contact: Contact) -> None:
        """Record the contact as search will see it once `search_lag` has passed."""
        now = self.clock()
        doc = self._searchable(contact)
        frozen = dataclasses.replace(
            contact,
            custom_attributes=dict(contact.custom_attributes),
            company_ids=dict(contact.company_ids),
            merge_history=[],
            snapshots=[],
        )
        contact.snapshots.append(Snapshot(now, doc, frozen))
        for name in ("external_id", "email"):  # ids need no index: `contacts` is one
            if doc.get(name) is not None:
                self._index_value(name, search.index_key(name, doc[name]), contact.id)
        # Keep only what a search may still see: the newest snapshot older than the lag, and
        # everything newer.
        horizon = now - self.config.search_lag
        keep_from = 0
        for i, snap in enumerate(contact.snapshots):
            if snap.time <= horizon:
                keep_from = i
        del contact.snapshots[:keep_from]

    def _index_value(self, name: str, key: str, contact_id: str) -> None:
        """Remember that `contact_id` had this value; one id is kept bare, more in a set
        (most values belong to one contact, and a set costs 200 bytes)."""
        entries = self.search_index.setdefault(name, {})
        held = entries.get(key)
        if held is None:
            entries[key] = contact_id
        elif isinstance(held, str):
            if held != contact_id:
                entries[key] = {held, contact_id}
        else:
            held.add(contact_id)

    def _searchable(self, contact: Contact) -> dict[str, Any]:
        """The fields search filters on, sparse (None left out, see search.FIELD_DEFAULTS);
        emails lower-cased, since they are matched case-insensitively."""
        email = _email_key(contact.email)
        doc: dict[str, Any] = {
            "id": contact.id,
            "role": contact.role,
            "name": contact.name,
            "avatar": contact.avatar,
            "owner_id": contact.owner_id,
            "email": email,
            "email_domain": email.rpartition("@")[2] if email else None,
            "phone": contact.phone,
            "external_id": contact.external_id,
            "created_at": contact.created_at,
            "signed_up_at": contact.signed_up_at,
            "updated_at": contact.updated_at,
            "last_seen_at": contact.last_seen_at,
            "unsubscribed_from_emails": contact.unsubscribed_from_emails or None,
        }
        for name, value in contact.custom_attributes.items():
            doc[f"custom_attributes.{name}"] = value
        return {k: v for k, v in doc.items() if v is not None}

    def _visible(self, contact: Contact, horizon: float) -> Snapshot | None:
        """The contact as of `horizon`, or None if it did not exist in the index yet."""
        if not contact.active:
            return None
        for snap in reversed(contact.snapshots):
            if snap.time <= horizon:
                return snap
        return None

    def search_contacts(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /contacts/search → contact_list; raises search.SearchError for a bad query."""
        query = body["query"]
        predicate = search.compile_query(query)
        sort_field, descending = search.parse_sort(body.get("sort"))
        page = search.parse_pagination(body.get("pagination"))
        horizon = self.clock() - self.config.search_lag
        matches = [
            snap for contact in self._candidates(query) if (snap := self._visible(contact, horizon)) is not None and predicate(snap.doc)
        ]
        ordered = search.sort_items(matches, sort_field, descending, doc=lambda s: s.doc)
        chunk, pages = search.paginate(ordered, page)
        data = [self.render_contact(s.contact) for s in chunk]
        return {"type": "list", "data": data, "total_count": len(ordered), "pages": pages}

    def _candidates(self, query: Any) -> Iterable[Contact]:
        """Contacts that may match: from the index when the query allows, else all of them."""
        keys = search.index_candidates(query)
        if keys is None:
            return list(self.contacts.values())
        ids: set[str] = set()
        for name, key in keys:
            held = key if name == "id" else self.search_index.get(name, {}).get(key)
            if isinstance(held, str):
                ids.add(held)
            elif held:
                ids |= held
        return [self.contacts[i] for i in ids if i in self.contacts]

    # ----------------------------------------------------------------- merge

    def merge_contacts(self, body: dict[str, Any], include_merge_history: bool = False) -> dict[str, Any]:
        """POST /contacts/merge: fold a lead into a user (docs/intercom-api.md, Contacts)."""
        lead = self.live_contact(body["from"])
        user = self.live_contact(body["into"])
        self._check_merge(lead, user, bool(body.get("skip_duplicate_validation")))
        now = int(self.clock())
        self._move_events(lead.id, user.id)
        for company_id in lead.company_ids:
            self._attach(user, self.companies[company_id])
        self._unindex(user)
        # Undocumented: which attributes survive. The user's values win; the lead fills gaps.
        for key in ("email", "phone", "name", "avatar"):
            if getattr(user, key) is None and getattr(lead, key) is not None:
                setattr(user, key, getattr(lead, key))
        for key, value in lead.custom_attributes.items():
            user.custom_attributes.setdefault(key, value)
        self._unindex(lead)
        lead.merged_into, lead.merged_at = user.id, now
        for company_id in lead.company_ids:
            self.companies[company_id].contact_ids.pop(lead.id, None)
        user.merge_history.append({"type": "merge_history", "source_contact_id": lead.id, "source_contact_role": "lead", "merged_at": now})
        user.updated_at = now
        self._index(user)
        self._snapshot(user)
        self.merges.append({"from": lead.id, "into": user.id, "merged_at": now})
        return self.render_contact(user, include_merge_history)

    def _check_merge(self, lead: Contact, user: Contact, skip_validation: bool) -> None:
        """`from` must be a lead and `into` a user (codes undocumented); then the 2.16
        duplicate validation: they must share an email or a phone unless skipped."""
        if lead.id == user.id:
            raise ApiError(400, "parameter_invalid", "A contact cannot be merged into itself")
        if lead.role != "lead":
            raise ApiError(400, "parameter_invalid", "The contact to merge from must be a lead", field="from")
        if user.role != "user":
            raise ApiError(400, "parameter_invalid", "The contact to merge into must be a user", field="into")
        same_email = lead.email is not None and _email_key(lead.email) == _email_key(user.email)
        same_phone = lead.phone is not None and lead.phone == user.phone
        if not (skip_validation or same_email or same_phone):
            raise ApiError(400, "invalid_merge", MERGE_NOT_DUPLICATES)

    def _move_events(self, from_id: str, into_id: str) -> None:
        """The lead's events become the user's; ones the user already has stay single."""
        target = self.events.setdefault(into_id, [])
        keys = self.event_keys.setdefault(into_id, set())
        for event in self.events.pop(from_id, []):
            key = (event.event_name, event.created_at)
            if key not in keys:
                keys.add(key)
                target.append(event)
        self.event_keys.pop(from_id, None)

    # ----------------------------------------------------------------- events

    def create_event(self, body: dict[str, Any]) -> bool:
        """POST /events: store the event; False when it was a duplicate (still 202)."""
        contact = self._event_contact(body)
        name = normalise_event_name(body["event_name"])
        created_at = body["created_at"]
        keys = self.event_keys.setdefault(contact.id, set())
        if (name, created_at) in keys:
            # "Duplicated events are responded to using the normal 202 Accepted" (docs/intercom-api.md, Events).
            self.duplicate_events += 1
            return False
        metadata = body.get("metadata") or {}
        names = list(metadata)
        keys.add((name, created_at))
        self.events.setdefault(contact.id, []).append(
            Event(
                event_name=name,
                original_name=body["event_name"],
                created_at=created_at,
                # "The first 10 metadata keys are determined by the order in which they are sent."
                metadata={k: metadata[k] for k in names[:MAX_METADATA_KEYS]},
                ignored_metadata_keys=names[MAX_METADATA_KEYS:],
                received_at=self.clock(),
            )
        )
        return True

    def _event_contact(self, body: dict[str, Any]) -> Contact:
        """Resolve id | user_id | email to a contact, else 404 "User Not Found".

        Undocumented choices: `id` wins over `user_id` over `email`, with no fallback when the
        chosen one misses; `email` only finds users (leads need `id`: docs/intercom-api.md, Events) and
        among several users picks the earliest created; a merged-away id is not found.
        """
        found: Contact | None = None
        if body.get("id") is not None:
            found = self.contacts.get(body["id"])
        elif body.get("user_id") is not None:
            contact_id = self.user_by_external_id.get(body["user_id"])
            found = self.contacts.get(contact_id) if contact_id else None
        elif body.get("email") is not None:
            users = [
                self.contacts[cid]
                for cid in self.contacts_by_email.get(_email_key(body["email"]) or "", {})
                if self.contacts[cid].role == "user"
            ]
            found = min(users, key=lambda c: (c.created_at, c.id)) if users else None
        if found is None or not found.active:
            raise user_not_found()
        return found

    # ----------------------------------------------------------------- companies

    def upsert_company(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /companies: create, or update the company with this `company_id`."""
        company_id = body.get("company_id")
        if not company_id:
            # Undocumented: the spec requires nothing, but the upsert key is company_id.
            raise ApiError(400, "parameter_not_found", "company_id not specified", field="company_id")
        self.check_custom_attributes(body.get("custom_attributes"), "company")
        spend = body.get("monthly_spend")
        if spend is not None and int(spend) > MAX_MONTHLY_SPEND:
            # Documented limit; the answer to exceeding it is undocumented.
            raise ApiError(400, "bad_request", "bad 'monthly_spend' parameter", field="monthly_spend")
        now = int(self.clock())
        company = self._company_by_company_id(company_id)
        if company is None:
            company = Company(id=self.ids.next(), company_id=company_id, created_at=now, updated_at=now)
            self.companies[company.id] = company
            self.company_by_company_id[company_id] = company.id
        for key in COMPANY_FIELDS:
            if key in body:
                setattr(company, key, body[key])
        if spend is not None:
            company.monthly_spend = int(spend)  # "this will truncate floats"
        company.custom_attributes.update(body.get("custom_attributes") or {})
        if body.get("update_last_request_at"):
            company.last_request_at = now
        company.updated_at = now
        return self.render_company(company)

    def _company_by_company_id(self, company_id: str) -> Company | None:
        found = self.company_by_company_id.get(company_id)
        return self.companies[found] if found else None

    def attach_company(self, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /contacts/{id}/companies: idempotent; 404 company_not_found; 1000-cap 400.

        An unknown contact answers 404 not_found "User Not Found" (undocumented).
        """
        contact = self.live_contact(contact_id)
        company = self.companies.get(body["id"])
        if company is None:
            raise ApiError(404, "company_not_found", "Company Not Found")
        if company.id not in contact.company_ids:
            if len(contact.company_ids) >= self.config.company_attachment_limit:
                raise ApiError(
                    400,
                    "contact_company_limit_exceeded",
                    f"Contact has reached the maximum of {self.config.company_attachment_limit} company associations",
                )
            self._attach(contact, company)
            self._snapshot(contact)
        return self.render_company(company)

    def _attach(self, contact: Contact, company: Company) -> None:
        contact.company_ids[company.id] = None
        company.contact_ids[contact.id] = None

    # ----------------------------------------------------------------- seeding and admins

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """A workspace made before the relay (POST /_fake/seed): contacts, companies, attributes.

        Seeded contacts skip the API's rules (a real workspace may hold two users with one
        email) and are searchable at once, as years-old contacts are.  ``data_attributes``
        is a list of ``{model, name, data_type}``; a contact may name ``company_ids`` (the
        seeded companies' ``company_id``) it is attached to.
        """
        for item in body.get("data_attributes") or []:
            self.data_attributes.define(item["model"], item["name"], item.get("data_type"))
        companies = [self._seed_company(item) for item in body.get("companies") or []]
        contacts = [self._seed_contact(item) for item in body.get("contacts") or []]
        return {"contacts": contacts, "companies": companies}

    def _seed_company(self, item: dict[str, Any]) -> str:
        now = int(item.get("created_at") or self.clock())
        company = Company(id=self.ids.next(), company_id=str(item["company_id"]), created_at=now, updated_at=now)
        for key in COMPANY_FIELDS:
            if key in item:
                setattr(company, key, item[key])
        company.custom_attributes = dict(item.get("custom_attributes") or {})
        self.companies[company.id] = company
        self.company_by_company_id[company.company_id] = company.id
        return company.id

    def _seed_contact(self, item: dict[str, Any]) -> str:
        fields = self._contact_fields(item)
        fields.setdefault("role", "user")
        now = int(item.get("created_at") or self.clock())
        contact = Contact(id=self.ids.next(), created_at=now, updated_at=now, **fields)
        contact.custom_attributes = dict(item.get("custom_attributes") or {})
        self.contacts[contact.id] = contact
        for company_id in item.get("company_ids") or []:
            self._attach(contact, self.companies[self.company_by_company_id[str(company_id)]])
        self._index(contact)
        self._snapshot(contact)
        contact.snapshots[-1].time = self.clock() - self.config.search_lag  # already indexed
        return contact.id

    def admin_delete(self, body: dict[str, Any]) -> dict[str, Any]:
        """An admin deletes a contact (``{"contact": id}``) or a company (``{"company": id}``)."""
        if "contact" in body:
            return self.delete_contact(str(body["contact"]))
        company = self.companies.pop(str(body.get("company")), None)
        if company is None:
            raise ApiError(404, "company_not_found", "Company Not Found")
        self.company_by_company_id.pop(company.company_id, None)
        for contact_id in company.contact_ids:
            self.contacts[contact_id].company_ids.pop(company.id, None)
        return {"type": "company", "id": company.id, "deleted": True}

    def admin_merge(self, body: dict[str, Any]) -> dict[str, Any]:
        """An admin merges a lead into a user in Intercom's UI (no duplicate validation)."""
        return self.merge_contacts({"from": str(body["from"]), "into": str(body["into"]), "skip_duplicate_validation": True})

    # ----------------------------------------------------------------- inspection

    def to_json(self) -> dict[str, Any]:
        """Everything, in a shape easy to assert on (GET /_fake/state)."""
        contacts = [self._contact_json(c) for c in self.contacts.values()]
        return {
            "contacts": contacts,
            "events": {cid: [e.to_json() for e in evs] for cid, evs in self.events.items()},
            "companies": [self._company_json(c) for c in self.companies.values()],
            "attachments": [{"contact_id": c.id, "company_id": cid} for c in self.contacts.values() if c.active for cid in c.company_ids],
            "merges": list(self.merges),
            "custom_attributes": {
                "contacts": list(self.config.contact_attributes),
                "companies": list(self.config.company_attributes),
            },
            "counts": self.counts(),
        }

    def counts(self) -> dict[str, int]:
        """Totals for dashboards and quick assertions."""
        contacts = list(self.contacts.values())
        return {
            "contacts": sum(c.active for c in contacts),
            "users": sum(c.active and c.role == "user" for c in contacts),
            "leads": sum(c.active and c.role == "lead" for c in contacts),
            "merged": sum(c.merged_into is not None for c in contacts),
            "deleted": sum(c.deleted for c in contacts),
            "companies": len(self.companies),
            "events": sum(len(evs) for evs in self.events.values()),
            "duplicate_events": self.duplicate_events,
        }

    def _contact_json(self, contact: Contact) -> dict[str, Any]:
        data = {key: getattr(contact, key) for key in ("id", *CONTACT_FIELDS)}
        data.update(
            custom_attributes=dict(contact.custom_attributes),
            created_at=contact.created_at,
            updated_at=contact.updated_at,
            merged=contact.merged_into is not None,
            merged_into=contact.merged_into,
            merged_at=contact.merged_at,
            deleted=contact.deleted,
            company_ids=list(contact.company_ids),
            event_count=len(self.events.get(contact.id, [])),
        )
        return data

    def _company_json(self, company: Company) -> dict[str, Any]:
        data = self.render_company(company)
        data["contact_ids"] = list(company.contact_ids)
        return data


def _addressable_list(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """``{type: list, data, url, total_count, has_more}``, at most 10 items inline."""
    return {
        "type": "list",
        "data": data[:INLINE_LIST_LIMIT],
        "url": url,
        "total_count": len(data),
        "has_more": len(data) > INLINE_LIST_LIMIT,
    }


def _plan_id(plan: str) -> str:
    """A stable numeric-looking id for a plan name (the response wants an id)."""
    return str(zlib.crc32(plan.encode()) % 1_000_000)
