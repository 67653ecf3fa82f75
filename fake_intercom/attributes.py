"""Data attributes: the workspace's custom attributes, typed, and the checks a write meets.

Follows docs/intercom-api.md, "Data attributes": ``GET /data_attributes`` lists the standard
and custom attributes of a model (not paged); ``POST /data_attributes`` creates one, answering
200 with it, or 400 ``parameter_invalid`` for a taken name (across both models), a standard
name, a bad name or a bad ``data_type``.

Attribute names given in the config (``contact_attributes``, ``company_attributes``) are
*untyped*: they accept any scalar.  Attributes made through
``POST /data_attributes`` (or seeded typed) are checked: a value of the wrong type, or a list
or object, is refused with 400 ``parameter_invalid`` naming ``custom_attributes.<name>``
(the code is Intercom's pattern for bad parameters; the message is undocumented, #23).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

MODELS = ("contact", "company")
DATA_TYPES = ("string", "integer", "float", "boolean", "date", "datetime")

#: A few standard attributes per model: their names cannot be taken by a custom one.
STANDARD = {
    "contact": ("name", "email", "phone", "external_id", "role", "signed_up_at", "last_seen_at", "owner_id"),
    "company": ("name", "company_id", "plan", "size", "website", "industry", "monthly_spend", "remote_created_at"),
}
_MODEL_WORDS = {"contact": "people", "company": "company"}

#: "Your name for this attribute must only contain alphanumeric characters, currency symbols,
#: and hyphens" — spaces allowed too, since Intercom's own examples use them (#24).
_NAME = re.compile(r"^[\w\- $€£¥]+$")


class AttributeRefused(Exception):
    """A refused write or definition: the message and the field it names."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class DataAttribute:
    """One custom attribute; ``data_type`` None for the untyped ones of the config."""

    id: int
    model: str
    name: str
    data_type: str | None
    created_at: int
    description: str = ""

    def render(self) -> dict[str, Any]:
        """The ``data_attribute`` object."""
        return {
            "type": "data_attribute",
            "id": self.id,
            "model": self.model,
            "name": self.name,
            "full_name": f"custom_attributes.{self.name}",
            "label": self.name,
            "description": self.description,
            "data_type": self.data_type or "string",
            "options": [],
            "api_writable": True,
            "ui_writable": True,
            "messenger_writable": False,
            "custom": True,
            "archived": False,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "admin_id": "1",
        }


def standard_attribute(model: str, name: str) -> dict[str, Any]:
    """A standard attribute as GET /data_attributes lists it (no id)."""
    return {
        "type": "data_attribute",
        "model": model,
        "name": name,
        "full_name": name,
        "label": name,
        "data_type": "string",
        "api_writable": True,
        "custom": False,
        "archived": False,
    }


class DataAttributes:
    """The typed custom attributes of one workspace, besides the config's untyped names."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.defined: dict[tuple[str, str], DataAttribute] = {}
        self._next_id = 1

    def list(self, model: str, untyped: tuple[str, ...]) -> list[dict[str, Any]]:
        """GET /data_attributes?model=…: standard, then the config's names, then the created ones."""
        listed = [standard_attribute(model, name) for name in STANDARD[model]]
        listed += [DataAttribute(0, model, name, None, 0).render() for name in untyped if (model, name) not in self.defined]
        listed += [a.render() for (m, _), a in self.defined.items() if m == model]
        return listed

    def create(self, body: dict[str, Any], untyped: dict[str, tuple[str, ...]]) -> dict[str, Any]:
        """POST /data_attributes: define one, or AttributeRefused with Intercom's message."""
        model, name, data_type = body.get("model"), body.get("name"), body.get("data_type")
        if model not in MODELS:
            raise AttributeRefused("Model isn't an option", "model")
        if data_type not in DATA_TYPES:
            raise AttributeRefused("Data Type isn't an option", "data_type")
        if not isinstance(name, str) or not name.strip() or not _NAME.match(name):
            raise AttributeRefused(
                "Your name for this attribute must only contain alphanumeric characters, currency symbols, and hyphens", "name"
            )
        if name.lower() in STANDARD[model]:
            word = _MODEL_WORDS[model]
            raise AttributeRefused(
                f"'{name.title()}' is one of our standard attributes for your {word} data. "
                f"To save this as new {word} data, use a different name.",
                "name",
            )
        for other in MODELS:
            if (other, name) in self.defined or name in untyped[other]:
                raise AttributeRefused(
                    f"You already have '{name}' in your {_MODEL_WORDS[other]} data. "
                    f"To save this as new {_MODEL_WORDS[model]} data, use a different name.",
                    "name",
                )
        return self.define(model, name, data_type, str(body.get("description") or "")).render()

    def define(self, model: str, name: str, data_type: str | None, description: str = "") -> DataAttribute:
        """Add an attribute without the checks (seeding, and the create above)."""
        attribute = DataAttribute(self._next_id, model, name, data_type, int(self.clock()), description)
        self._next_id += 1
        self.defined[(model, name)] = attribute
        return attribute

    def check(self, model: str, values: dict[str, Any] | None, untyped: tuple[str, ...]) -> None:
        """Every attribute must exist, and a typed one must get a value of its type (or null)."""
        for name, value in (values or {}).items():
            attribute = self.defined.get((model, name))
            if attribute is None and name not in untyped:
                raise AttributeRefused(f"Custom attribute '{name}' does not exist", f"custom_attributes.{name}")
            if attribute is not None and attribute.data_type and not holds(attribute.data_type, value):
                raise AttributeRefused(f"Custom attribute '{name}' must be of type {attribute.data_type}", f"custom_attributes.{name}")


def holds(data_type: str, value: Any) -> bool:
    """Whether an attribute of this type takes the value (null always clears it)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return data_type == "boolean"
    if data_type == "string":
        return isinstance(value, str)
    if data_type == "integer":
        return isinstance(value, int)
    if data_type == "float":
        return isinstance(value, (int, float))
    if data_type in ("date", "datetime"):
        # Undocumented (#23): Unix seconds or an ISO 8601 string are taken.
        return isinstance(value, (int, str))
    return False
