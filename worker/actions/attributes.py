"""UNKNOWN_ATTRIBUTES: custom attributes the workspace does not define, or cannot hold.

Intercom answers 400 to a contact or company write naming an attribute it does not define
(since API 2.0 they must be created first), and with it the whole identify fails.  Before
a write, the attributes are screened against the workspace's list (worker/store/attributes.py,
read with GET /data_attributes once for the fleet, and again after a 400 that names one):

- ``hold`` (default): the rest is written now; each unknown attribute, a value of the wrong
  type for a defined one, and a value Intercom can't hold (an object, a list) is held in
  Redis per contact or company, as a dead letter with reason ``unknown_attribute`` naming
  them, for ``intercom-relay attributes list`` and, once the attribute exists,
  ``intercom-relay dead-letters replay --reason unknown_attribute``
  (worker/actions/attribute_replay.py);
- ``create``: an unknown attribute is created (POST /data_attributes), its type inferred
  from the value, up to MAX_CREATED_ATTRIBUTES; beyond that, or for a value no type fits,
  it is held as above;
- ``fail``: no screening; Intercom's 400 dead-letters the whole event.
"""

from __future__ import annotations

from typing import Any

from worker.actions.common import ActionContext
from worker.intercom.errors import IntercomError, PermanentError


def screen(ctx: ActionContext, model: str, body: dict) -> tuple[dict, dict[str, Any]]:
    """The body with only the attributes Intercom will take, and the attributes held back."""
    custom = body.get("custom_attributes")
    if ctx.attributes is None or ctx.unknown_attributes == "fail" or not isinstance(custom, dict) or not custom:
        return body, {}
    known = known_attributes(ctx, model)
    send: dict[str, Any] = {}
    held: dict[str, Any] = {}
    for name, value in custom.items():
        data_type = None if name in ctx.refused_attributes else known.get(name)
        if data_type is None and ctx.unknown_attributes == "create" and name not in ctx.refused_attributes:
            data_type = _create(ctx, model, name, value, known)
        if data_type is not None and fits(data_type, value):
            send[name] = value
        else:
            held[name] = value
    if held:
        ctx.log.warning("%s attributes held, the workspace can't take them yet: %s", model, ", ".join(sorted(held)))
    screened = {k: v for k, v in body.items() if k != "custom_attributes"}
    if send:
        screened["custom_attributes"] = send
    return screened, held


def settle(ctx: ActionContext, model: str, target: str, body: dict, held: dict[str, Any]) -> None:
    """After the write: keep the held values for the target, and forget older held values of what was sent."""
    if ctx.attributes is None:
        return
    ctx.attributes.written(model, target, list(body.get("custom_attributes") or {}))
    if held:
        ctx.attributes.hold(model, target, held, person=ctx.user_id or ctx.anonymous_id)


def refused_attribute(ctx: ActionContext, model: str, exc: IntercomError) -> bool:
    """Whether a 400 named a custom attribute: then the list is read again and that attribute held.

    The caller writes once more; a known attribute never costs a failed call after this.
    """
    if ctx.attributes is None or ctx.unknown_attributes == "fail" or not isinstance(exc, PermanentError) or exc.status != 400:
        return False
    name = _attribute_named(exc.body)
    if name is None or name in ctx.refused_attributes:
        return False
    ctx.log.info("Intercom refused %s attribute %r; reading the workspace's attributes again", model, name)
    ctx.attributes.store(model, _read(ctx, model))
    ctx.refused_attributes.add(name)
    return True


def known_attributes(ctx: ActionContext, model: str) -> dict[str, str]:
    """name -> data_type, read from Intercom the first time the fleet needs it."""
    assert ctx.attributes is not None
    known = ctx.attributes.known(model)
    if known is None:
        known = _read(ctx, model)
        ctx.attributes.store(model, known)
    return known


def _read(ctx: ActionContext, model: str) -> dict[str, str]:
    listed = ctx.call(ctx.client.list_data_attributes, model)
    return {a["name"]: a.get("data_type") or "string" for a in listed.get("data") or [] if isinstance(a, dict) and a.get("custom")}


def _create(ctx: ActionContext, model: str, name: str, value: Any, known: dict[str, str]) -> str | None:
    """Create the attribute with the type its value implies; None past the cap or for no type."""
    assert ctx.attributes is not None
    data_type = infer_type(value)
    if data_type is None or ctx.attributes.created() >= ctx.max_created_attributes:
        return None
    try:
        ctx.call(ctx.client.create_data_attribute, name, model, data_type)
    except PermanentError as exc:
        # Most often another worker created it a moment ago ("You already have …"): read the list.
        listed = _read(ctx, model)
        ctx.attributes.store(model, listed)
        known.update(listed)
        if name not in listed:
            ctx.log.warning("could not create %s attribute %r: %s", model, name, exc)
        return listed.get(name)
    ctx.attributes.count_created()
    ctx.attributes.add(model, name, data_type)
    known[name] = data_type
    ctx.log.info("created %s attribute %r (%s)", model, name, data_type)
    return data_type


def infer_type(value: Any) -> str | None:
    """The data_type a new attribute gets from its first value; None for what Intercom can't hold."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def fits(data_type: str, value: Any) -> bool:
    """Whether an attribute of this type takes the value (null clears any)."""
    if value is None:
        return True
    if isinstance(value, (dict, list)):
        return False
    if isinstance(value, bool):
        return data_type == "boolean"
    if data_type in ("integer",):
        return isinstance(value, int)
    if data_type == "float":
        return isinstance(value, (int, float))
    if data_type == "boolean":
        return False
    if data_type in ("date", "datetime"):
        return isinstance(value, (int, str))
    return isinstance(value, str)  # string, options and any type Intercom adds later


def _attribute_named(body: Any) -> str | None:
    """The attribute a 400's error names (``field: custom_attributes.<name>``), if any."""
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        field = str((error or {}).get("field") or "")
        if field.startswith("custom_attributes."):
            return field.removeprefix("custom_attributes.")
    return None
