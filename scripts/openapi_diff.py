"""Dump the served OpenAPI document, and diff two dumps (issue 18 item 3).

    .venv/bin/python scripts/openapi_diff.py dump OUT.json     # GET /api/openapi.json
    .venv/bin/python scripts/openapi_diff.py dump-generated OUT.json  # server.http.openapi_gen
    .venv/bin/python scripts/openapi_diff.py diff OLD.json NEW.json

``dump`` builds the app with the test settings on a throw-away SQLite file (no migration, no
server) and writes what ``GET /api/openapi.json`` answers. ``diff`` prints what changed:
paths, methods and statuses added or removed (a removed one is what must never happen: the
exit status is then 1), and per schema (components and inline request bodies) the properties,
required fields, types and limits that changed. Description-only changes are counted, not
listed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

METHODS = ("get", "put", "post", "patch", "delete")
# Keywords that change what a schema accepts or returns (not its prose).
SHAPE_KEYS = (
    "type",
    "enum",
    "const",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "additionalProperties",
    "default",
)


def dump(out: str, generated: bool = False) -> None:
    """What GET /api/openapi.json answers (or, ``generated``, what server.http.openapi_gen
    makes of the same app)."""
    from server import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            env="test",
            database_url=f"sqlite:///{tmp}/dump.sqlite3",
            auto_migrate=False,
            scheduler=False,
            rate_limit_enabled=False,
        )
        if generated:
            from server.http.openapi_gen import openapi_document

            doc = json.loads(json.dumps(openapi_document(app)))
        else:
            with app.test_client() as client:
                r = client.get("/api/openapi.json")
                assert r.status_code == 200, r.status_code
                doc = r.get_json()
    Path(out).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"{out}: {len(doc['paths'])} paths, {len(_operations(doc))} operations")


def _operations(doc: dict) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _resolve(doc: dict, schema: dict | None) -> tuple[str, dict]:
    """A schema's name (its component, or "inline") and its body."""
    schema = schema or {}
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        return name, doc["components"]["schemas"].get(name, {})
    return "inline", schema


def _shape(schema: dict) -> dict:
    return {k: schema[k] for k in SHAPE_KEYS if k in schema}


def _flatten(doc: dict, schema: dict, prefix: str = "", seen: frozenset = frozenset()) -> dict:
    """``{json path: shape}`` of a schema and its properties (refs followed once)."""
    name, body = _resolve(doc, schema)
    if name in seen:
        return {prefix or "$": {"$ref": name}}
    seen = seen | {name} if name != "inline" else seen
    out = {prefix or "$": {**_shape(body), "required": sorted(body.get("required", []))}}
    for key, sub in (body.get("properties") or {}).items():
        out.update(_flatten(doc, sub, f"{prefix}.{key}", seen))
    for key in ("items",):
        if isinstance(body.get(key), dict):
            out.update(_flatten(doc, body[key], f"{prefix}[]", seen))
    for key in ("oneOf", "anyOf", "allOf"):
        for i, sub in enumerate(body.get(key) or []):
            out.update(_flatten(doc, sub, f"{prefix}<{key}{i}>", seen))
    return out


def _descriptions(value, path="") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("description", "summary") and isinstance(v, str):
                out[f"{path}/{k}"] = v
            else:
                out.update(_descriptions(v, f"{path}/{k}"))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_descriptions(v, f"{path}/{i}"))
        return out
    return {}


def _diff_flat(old: dict, new: dict) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            lines.append(f"    - {key} {old[key]}")
        elif key not in old:
            lines.append(f"    + {key} {new[key]}")
        elif old[key] != new[key]:
            changed = {
                k: (old[key].get(k), new[key].get(k))
                for k in set(old[key]) | set(new[key])
                if old[key].get(k) != new[key].get(k)
            }
            lines.append(
                f"    ~ {key} "
                + ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in sorted(changed.items()))
            )
    return lines


def diff(old_path: str, new_path: str) -> int:
    old = json.loads(Path(old_path).read_text())
    new = json.loads(Path(new_path).read_text())
    old_ops, new_ops = _operations(old), _operations(new)
    removed = sorted(set(old_ops) - set(new_ops))
    added = sorted(set(new_ops) - set(old_ops))
    old_paths, new_paths = set(old["paths"]), set(new["paths"])
    print(
        f"paths: {len(old_paths)} → {len(new_paths)}; operations: {len(old_ops)} → {len(new_ops)}"
    )
    for p in sorted(old_paths - new_paths):
        print(f"  REMOVED path {p}")
    for p in sorted(new_paths - old_paths):
        print(f"  added path {p}")
    for op in removed:
        print(f"  REMOVED operation {op[0]} {op[1]}")
    for op in added:
        print(f"  added operation {op[0]} {op[1]}")
    statuses_removed = statuses_added = 0
    for key in sorted(set(old_ops) & set(new_ops)):
        a = set(old_ops[key].get("responses", {}))
        b = set(new_ops[key].get("responses", {}))
        for status in sorted(a - b):
            statuses_removed += 1
            print(f"  REMOVED status {status} of {key[0]} {key[1]}")
        added_here = sorted(b - a)
        statuses_added += len(added_here)
        if added_here:
            print(f"  added statuses {', '.join(added_here)} to {key[0]} {key[1]}")
    print(f"statuses: {statuses_removed} removed, {statuses_added} added")

    # Request bodies, parameters and responses, per operation (what a client sees).
    print("schema changes (request bodies, parameters, 2xx bodies):")
    changed_ops = 0
    for key in sorted(set(old_ops) & set(new_ops)):
        lines = []
        for label, getter in (
            (
                "body",
                lambda op: (
                    ((op.get("requestBody") or {}).get("content") or {})
                    .get("application/json", {})
                    .get("schema")
                ),
            ),
        ):
            a, b = getter(old_ops[key]), getter(new_ops[key])
            sub = _diff_flat(_flatten(old, a) if a else {}, _flatten(new, b) if b else {})
            if sub:
                lines += [f"   {label}:"] + sub
        params = {}
        for doc, ops, side in ((old, old_ops, 0), (new, new_ops, 1)):
            item = doc["paths"][key[1]]
            for p in item.get("parameters", []) + ops[key].get("parameters", []):
                params.setdefault(f"{p['in']}:{p['name']}", [{}, {}])[side] = {
                    **_shape(p.get("schema", {})),
                    "required": p.get("required", False),
                }
        for name, (a, b) in sorted(params.items()):
            if a != b:
                lines.append(f"   param {name}: {a} → {b}")
        for status in sorted(
            set(old_ops[key].get("responses", {})) & set(new_ops[key].get("responses", {}))
        ):
            if not status.startswith("2"):
                continue
            ra = old_ops[key]["responses"][status].get("content") or {}
            rb = new_ops[key]["responses"][status].get("content") or {}
            if set(ra) != set(rb):
                lines.append(f"   {status} media types {sorted(ra)} → {sorted(rb)}")
            for media in set(ra) & set(rb):
                fa = _flatten(old, ra[media].get("schema"))
                fb = _flatten(new, rb[media].get("schema"))
                sub = _diff_flat(fa, fb)
                if sub:
                    lines += [f"   {status} {media}:"] + sub
        if lines:
            changed_ops += 1
            print(f"  {key[0]} {key[1]}")
            print("\n".join(lines))
    print(f"operations with schema changes: {changed_ops}")
    a, b = _descriptions(old), _descriptions(new)
    print(
        f"descriptions/summaries: {sum(1 for k in a if k in b and a[k] != b[k])} changed, "
        f"{len(set(b) - set(a))} added, {len(set(a) - set(b))} removed"
    )
    sa, sb = set(old["components"]["schemas"]), set(new["components"]["schemas"])
    print(f"component schemas: removed {sorted(sa - sb)}; added {sorted(sb - sa)}")
    lost = removed or statuses_removed or (old_paths - new_paths)
    return 1 if lost else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] in ("dump", "dump-generated"):
        dump(argv[1], generated=argv[0] == "dump-generated")
        return 0
    if len(argv) == 3 and argv[0] == "diff":
        return diff(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
