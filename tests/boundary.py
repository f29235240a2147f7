"""The pydantic models that cross the workflow boundary, and the rule they follow: they only gain
fields with defaults, and their bounds only loosen.

A running job's history holds these models as JSON: its input (`VideoRequest`, `EvalRequest`, …),
every activity's request and result, update arguments and results. When a worker replays the
history (after a restart, a deploy, or to answer a query) today's models must still accept what an
earlier release wrote, or the job is stuck. So, compared with the checked-in snapshot
(`boundary_models.json`, their JSON schemas in validation mode):

- a field removed, or added (or made) required, breaks: add it with a default instead;
- a type changed breaks unless it only widens (`int` → `float`, `X` → `X | None`);
- a bound tightened breaks (`ge`/`gt`/`le`/`lt`, `min_length`/`max_length`, `pattern`, a
  `Literal` or enum value removed, extra fields forbidden): keep the bound.

`make histories` refreshes the snapshot when nothing breaks; `make schema-snapshot` writes it
whatever changed (once no run of the old code remains, or Worker Versioning pins old runs).
The models are found from the code: each workflow's run/query/update/signal signatures and every
activity method's, then every model their fields name.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

SNAPSHOT = Path(__file__).parent / "boundary_models.json"
REFRESH = (
    "If the change is meant to be compatible, add a default / keep the bound; refresh the"
    " snapshot with `make histories` (compatible changes) or `make schema-snapshot` (any change,"
    " once no run of the old code remains)."
)
LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
EXACT = ("pattern", "multipleOf", "format")
NOISE = ("title", "description", "default", "examples", "deprecated")


def _signatures() -> list[Any]:
    """Every workflow and activity function whose arguments or result cross the boundary: found
    in the `workflows` and `activities` packages, so a new one is covered without a list here."""
    import activities
    import workflows

    fns: list[Any] = []
    for package in (workflows, activities):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module):
                if getattr(obj, "__module__", None) != module.__name__:
                    continue  # imported from elsewhere: found in its own module
                fns += _functions(obj)
    return fns


def _functions(obj: Any) -> list[Any]:
    from temporalio import workflow

    if inspect.isclass(obj) and hasattr(obj, "__temporal_workflow_definition"):
        defn = workflow._Definition.must_from_class(obj)
        return [
            defn.run_fn,
            *(q.fn for q in defn.queries.values()),
            *(u.fn for u in defn.updates.values()),
            *(s.fn for s in defn.signals.values()),
        ]
    members = inspect.getmembers(obj, inspect.isfunction) if inspect.isclass(obj) else [("", obj)]
    return [fn for _, fn in members if hasattr(fn, "__temporal_activity_definition")]


def _models_in(tp: Any, found: dict[str, type[BaseModel]]) -> None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        key = f"{tp.__module__}.{tp.__qualname__}"
        if key in found:
            return
        found[key] = tp
        for name, info in tp.model_fields.items():
            _models_in(typing.get_type_hints(tp).get(name, info.annotation), found)
        return
    for arg in typing.get_args(tp):
        _models_in(arg, found)
    if isinstance(tp, types.UnionType):
        for arg in tp.__args__:
            _models_in(arg, found)


def boundary_models() -> dict[str, type[BaseModel]]:
    """`module.Class` → model, for every model that crosses the workflow boundary."""
    found: dict[str, type[BaseModel]] = {}
    for fn in _signatures():
        for name, hint in typing.get_type_hints(fn).items():
            if name != "self":
                _models_in(hint, found)
    return dict(sorted(found.items()))


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's own JSON schema (validation mode): nested models stay `$ref`s, checked on
    their own."""
    schema = model.model_json_schema(mode="validation")
    schema.pop("$defs", None)
    return _without_prose(schema)


def _without_prose(schema: Any) -> Any:
    """Titles and descriptions dropped: rewording a docstring is not a change to the snapshot."""
    if isinstance(schema, dict):
        return {
            k: _without_prose(v)
            if k != "properties"
            else {f: _without_prose(p) for f, p in v.items()}
            for k, v in schema.items()
            if k not in ("title", "description")
        }
    if isinstance(schema, list):
        return [_without_prose(v) for v in schema]
    return schema


def current_schemas() -> dict[str, dict[str, Any]]:
    return {key: schema_of(model) for key, model in boundary_models().items()}


def load_snapshot() -> dict[str, dict[str, Any]]:
    return json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}


def write_snapshot() -> None:
    SNAPSHOT.write_text(json.dumps(current_schemas(), indent=1, sort_keys=True) + "\n")


# --- the comparison -------------------------------------------------------------------------


def problems(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[str]:
    """What in `new` would refuse payloads `old` accepted, one line per model field."""
    found: list[str] = []
    for key in sorted(old.keys() & new.keys()):
        found += model_problems(key.rsplit(".", 1)[-1], old[key], new[key])
    return found


def model_problems(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for field in sorted(old_props.keys() - new_props.keys()):
        found.append(
            f"{name}.{field}: field removed (running jobs' payloads still carry it; keep it,"
            " with a default)"
        )
    for field in sorted(new_req - old_req):
        if field in old_props:
            found.append(f"{name}.{field}: now required (keep its default)")
        else:
            found.append(f"{name}.{field}: field added without a default (give it a default)")
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        found.append(f"{name}: now forbids extra fields (keep extra fields allowed)")
    for field in sorted(old_props.keys() & new_props.keys()):
        found += [
            f"{name}.{field}: {p}" for p in schema_problems(old_props[field], new_props[field])
        ]
    return found


def _clean(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):  # `true`: anything
        return {}
    schema = {k: v for k, v in schema.items() if k not in NOISE}
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    return schema


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [_clean(b) for b in schema[key]]
    return [schema]


def _label(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return "one of " + ", ".join(map(repr, schema["enum"]))
    return str(schema.get("type", "any"))


def schema_problems(old: Any, new: Any) -> list[str]:
    """Why `new` accepts less than `old` ([] when it accepts at least as much)."""
    old, new = _clean(old), _clean(new)
    old_branches, new_branches = _branches(old), _branches(new)
    if len(old_branches) > 1 or len(new_branches) > 1:
        found = []
        for branch in old_branches:
            tried = [schema_problems(branch, candidate) for candidate in new_branches]
            if all(tried):
                same = [t for t, c in zip(tried, new_branches, strict=True) if _kin(branch, c)]
                found += same[0] if same else [f"type changed: {_label(branch)} no longer accepted"]
        return found
    if old.get("$ref") != new.get("$ref"):
        return [f"type changed from {_label(old)} to {_label(new)} (keep the type)"]
    found = []
    old_type, new_type = old.get("type"), new.get("type")
    widened = old_type == "integer" and new_type == "number"
    if new_type is not None and old_type != new_type and not widened:
        return [f"type changed from {old_type or 'any'} to {new_type} (keep the type)"]
    for key in LOWER:
        if key in new and (key not in old or new[key] > old[key]):
            found.append(f"bound tightened: {key} {old.get(key)} → {new[key]} (keep the bound)")
    for key in UPPER:
        if key in new and (key not in old or new[key] < old[key]):
            found.append(f"bound tightened: {key} {old.get(key)} → {new[key]} (keep the bound)")
    for key in EXACT:
        if key in new and new[key] != old.get(key):
            found.append(f"bound tightened: {key} {old.get(key)!r} → {new[key]!r} (keep the bound)")
    if "enum" in new:
        gone = [v for v in old.get("enum", []) if v not in new["enum"]]
        if "enum" not in old:
            found.append(f"now limited to {_label(new)} (keep it open)")
        elif gone:
            found.append(f"values removed: {', '.join(map(repr, gone))} (keep them)")
    for key in ("items", "additionalProperties"):
        if isinstance(new.get(key), dict):
            found += [f"{key}: {p}" for p in schema_problems(old.get(key, {}), new[key])]
    old_items, new_items = old.get("prefixItems", []), new.get("prefixItems", [])
    if len(old_items) != len(new_items):
        found.append(f"tuple of {len(old_items)} items now of {len(new_items)} (keep its length)")
    for i, (o, n) in enumerate(zip(old_items, new_items, strict=False)):
        found += [f"item {i}: {p}" for p in schema_problems(o, n)]
    return found


def _kin(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether `new` is the same kind of value as `old` (so its problems say more than "type")."""
    if "$ref" in old or "$ref" in new:
        return old.get("$ref") == new.get("$ref")
    return old.get("type") == new.get("type")
