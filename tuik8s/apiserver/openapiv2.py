"""OpenAPI v2 (Swagger 2.0) at `/openapi/v2`, as JSON and as gnostic protobuf.

kubectl 1.32 still reads v2 in a few places, none of which looks at v3 first: a
`kind: List` (`apply`/`create -f` of a List, `edit` of several objects at once, which
edits a List) is validated item by item on the client against the v2 definitions;
`explain --output=plaintext-openapiv2` prints from them; and the field-validation check
falls back to v2 when v3 has no PATCH operation for a kind. Each loads the whole document
through client-go's `OpenAPISchema()`. That call asks *only* for
`application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and parses the body as the
gnostic `openapi.v2.Document` message, with no JSON fallback: a JSON answer fails to
parse. So the document is served in both forms, chosen by `Accept`, as upstream.

The document is derived from the v3 documents of `tuik8s.apiserver.openapi` (the same
operations and the same component schemas, under `#/definitions/`), built once with them,
serialized once in both forms and served as bytes with an ETag.

The protobuf is written directly in the wire format (`_Writer`): the field numbers of the
gnostic messages used here are a protocol fact, listed beside each encoder. Values of
`default`, `enum`, `example` and `x-*` extensions are gnostic `Any` messages carrying YAML
text; JSON is valid YAML, and it is what is written.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from email.utils import formatdate
from typing import Any

import orjson
from aiohttp import web

from tuik8s.api import schema
from tuik8s.apiserver import openapi

# What the server answers with. Go's mime parser rejects the `@` of the spelling clients
# ask for, so kube-openapi answers with the dotted spelling, and so must we.
PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
REQUESTED_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
_JSON = "application/json"
_V2_REF = "#/definitions/"

_lock = threading.Lock()
_json: dict[str, Any] | None = None
_bodies: dict[str, bytes] = {}
_gzipped: dict[str, bytes] = {}
_etags: dict[str, str] = {}
_built_at = 0.0


# --- public surface ------------------------------------------------------------------------


def build() -> None:
    """Build the document and both encodings once; safe from several threads."""
    global _json, _built_at
    if _json is not None:
        return
    with _lock:
        if _json is not None:
            return
        doc = document_from_v3()
        body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        proto = encode_document(doc)
        for mime, data in ((_JSON, body), (PROTOBUF, proto)):
            _bodies[mime] = data
            _gzipped[mime] = gzip.compress(data, compresslevel=6, mtime=0)
            _etags[mime] = '"' + hashlib.sha512(data).hexdigest().upper() + '"'
        _built_at = time.time()
        _json = doc


def is_built() -> bool:
    return _json is not None


def v2_document() -> dict[str, Any]:
    """The Swagger 2.0 document (shared and cached: do not mutate)."""
    build()
    assert _json is not None
    return _json


def v2_bytes(mime: str = _JSON) -> bytes:
    """The document as served for `mime` (`application/json` or `PROTOBUF`)."""
    build()
    return _bodies[mime]


def negotiate(accept: str) -> str | None:
    """The media type to answer `accept` with; None if it allows neither form (406).

    The first range (in the header's order) that names or covers a served form picks it:
    `application/json`, `*/*` and `application/*` get JSON; either spelling of the gnostic
    protobuf type gets protobuf, as kube-openapi's handler does. A request with no Accept
    at all gets JSON.
    """
    if not accept.strip():
        return _JSON
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in (_JSON, "*/*", "application/*"):
            return _JSON
        if media in (PROTOBUF, REQUESTED_PROTOBUF):
            return PROTOBUF
    return None


async def handle(request: web.Request) -> web.Response:
    """GET /openapi/v2: the document in the form `Accept` asks for, 304 on a matching ETag."""
    mime = negotiate(request.headers.get("Accept", ""))
    if mime is None:
        return web.json_response({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"only {_JSON} and {PROTOBUF} are served at /openapi/v2; "
                       f"send one of them in Accept",
            "reason": "NotAcceptable", "details": {}, "code": 406,
        }, status=406)
    await openapi.ensure_built()  # builds this document too, in a worker thread
    headers = {"Etag": _etags[mime], "Vary": "Accept", "Cache-Control": "no-cache, private",
               "Last-Modified": formatdate(_built_at, usegmt=True)}
    if request.headers.get("If-None-Match") == _etags[mime]:
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = mime
    # Compressed once at build: a 0.7 MB document is 0.1 MB gzipped (client-go asks for it).
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=_gzipped[mime], headers=headers)
    return web.Response(body=_bodies[mime], headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi/v2", handle)


# The server's warm-up (`openapi.ensure_built`) builds this document right after v3's.
openapi.also_build(is_built, build)


# --- from v3 to v2 -------------------------------------------------------------------------


def document_from_v3() -> dict[str, Any]:
    """Every group version's operations in one document; every component schema."""
    paths: dict[str, Any] = {}
    for path in openapi.v3_index()["paths"]:
        doc = openapi.v3_group_version(path)
        assert doc is not None
        for url, item in doc["paths"].items():
            paths[url] = _path_item(item)
    definitions = {name: _schema(body) for name, body in schema.schemas().items()}
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": dict(sorted(paths.items())),
        "definitions": definitions,
        "securityDefinitions": {"BearerToken": {
            "description": "Bearer Token authentication", "in": "header",
            "name": "authorization", "type": "apiKey"}},
        "security": [{"BearerToken": []}],
    }


def _schema(value: Any) -> Any:
    """A v3 schema in v2 terms: refs under `#/definitions/`, no `oneOf`, no `allOf` wrapper.

    IntOrString and Quantity become the strings with a format that upstream's v2 uses.
    """
    if isinstance(value, list):
        return [_schema(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    all_of = value.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        out.update(_schema(all_of[0]))
    for key, sub in value.items():
        if key == "allOf" and "$ref" in out:
            continue
        if key == "$ref" and isinstance(sub, str):
            out[key] = _V2_REF + sub.removeprefix(schema.REF_PREFIX)
        elif key == "oneOf":
            out.setdefault("type", "string")
        elif key in ("properties", "definitions"):
            out[key] = {name: _schema(s) for name, s in sub.items()}
        else:
            out[key] = _schema(sub)
    return out


def _path_item(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key == "parameters":
            out[key] = [_parameter(p) for p in value]
        else:
            out[key] = _operation(value)
    return out


def _operation(op: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    consumes: list[str] = []
    params = [_parameter(p) for p in op.get("parameters", [])]
    body = op.get("requestBody")
    if body is not None:
        content = body.get("content", {})
        consumes = list(content)
        body_schema = next(iter(content.values()), {}).get("schema", {"type": "object"})
        param = {"in": "body", "name": "body", "schema": _schema(body_schema)}
        if body.get("required"):
            param["required"] = True
        params.append(param)
    produces: list[str] = []
    responses: dict[str, Any] = {}
    for code, response in op.get("responses", {}).items():
        converted = {"description": response.get("description", "")}
        for mime, media in response.get("content", {}).items():
            if mime not in produces:
                produces.append(mime)
            converted.setdefault("schema", _schema(media.get("schema", {})))
        responses[code] = converted
    for key, value in op.items():
        if key not in ("parameters", "requestBody", "responses"):
            out[key] = value
    if consumes:
        out["consumes"] = consumes
    if params:
        out["parameters"] = params
    if produces:
        out["produces"] = produces
    out["responses"] = responses
    out["schemes"] = ["https"]
    return out


def _parameter(param: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in param.items() if k != "schema"}
    out.update(param.get("schema", {}))
    return out


# --- gnostic protobuf ----------------------------------------------------------------------


class _Writer:
    """Protocol buffers wire format, proto3 style: zero values are left out."""

    def __init__(self) -> None:
        self.out = bytearray()

    def _varint(self, n: int) -> None:
        n &= (1 << 64) - 1
        while n >= 0x80:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def string(self, field: int, value: str | None) -> None:
        if value:
            self.bytes(field, value.encode())

    def strings(self, field: int, values: list[str] | None) -> None:
        for value in values or []:
            self.bytes(field, value.encode(), force=True)

    def bytes(self, field: int, data: bytes, force: bool = False) -> None:
        if data or force:
            self._varint(field << 3 | 2)
            self._varint(len(data))
            self.out += data

    def message(self, field: int, data: bytes | None) -> None:
        """An embedded message; present (even empty) whenever `data` is not None."""
        if data is not None:
            self.bytes(field, data, force=True)

    def bool(self, field: int, value: Any) -> None:
        if value:
            self._varint(field << 3)
            self._varint(1)

    def int64(self, field: int, value: Any) -> None:
        if value:
            self._varint(field << 3)
            self._varint(int(value))

    def done(self) -> bytes:
        return bytes(self.out)


def _any(value: Any) -> bytes:
    """gnostic `Any`: yaml=2."""
    w = _Writer()
    w.bytes(2, orjson.dumps(value, option=orjson.OPT_SORT_KEYS), force=True)
    return w.done()


def _named_any(name: str, value: Any) -> bytes:
    """`NamedAny`: name=1, value=2."""
    w = _Writer()
    w.string(1, name)
    w.message(2, _any(value))
    return w.done()


def _extensions(w: _Writer, field: int, obj: dict[str, Any]) -> None:
    for key in sorted(obj):
        if key.startswith("x-"):
            w.message(field, _named_any(key, obj[key]))


def encode_document(doc: dict[str, Any]) -> bytes:
    """`Document`: swagger=1 info=2 paths=8 definitions=9 security=12
    security_definitions=13 vendor_extension=16."""
    w = _Writer()
    w.string(1, doc.get("swagger"))
    info = doc.get("info", {})
    iw = _Writer()  # Info: title=1 version=2 description=3
    iw.string(1, info.get("title"))
    iw.string(2, info.get("version"))
    iw.string(3, info.get("description"))
    w.message(2, iw.done())
    pw = _Writer()  # Paths: path=2 of NamedPathItem (name=1 value=2)
    for url, item in doc.get("paths", {}).items():
        nw = _Writer()
        nw.string(1, url)
        nw.message(2, _path_item_pb(item))
        pw.message(2, nw.done())
    w.message(8, pw.done())
    dw = _Writer()  # Definitions: additional_properties=1 of NamedSchema
    for name in sorted(doc.get("definitions", {})):
        dw.message(1, _named_schema(name, doc["definitions"][name]))
    w.message(9, dw.done())
    for requirement in doc.get("security", []):
        sw = _Writer()  # SecurityRequirement: additional_properties=1 of NamedStringArray
        for name, scopes in requirement.items():
            aw = _Writer()  # StringArray: value=1
            aw.strings(1, scopes)
            nw = _Writer()
            nw.string(1, name)
            nw.message(2, aw.done())
            sw.message(1, nw.done())
        w.message(12, sw.done())
    defs = doc.get("securityDefinitions")
    if defs:
        sw = _Writer()  # SecurityDefinitions: additional_properties=1
        for name, item in defs.items():
            kw = _Writer()  # ApiKeySecurity: type=1 name=2 in=3 description=4
            kw.string(1, item.get("type"))
            kw.string(2, item.get("name"))
            kw.string(3, item.get("in"))
            kw.string(4, item.get("description"))
            iw = _Writer()  # SecurityDefinitionsItem: api_key_security=2
            iw.message(2, kw.done())
            nw = _Writer()
            nw.string(1, name)
            nw.message(2, iw.done())
            sw.message(1, nw.done())
        w.message(13, sw.done())
    _extensions(w, 16, doc)
    return w.done()


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item_pb(item: dict[str, Any]) -> bytes:
    """`PathItem`: get=2 put=3 post=4 delete=5 options=6 head=7 patch=8 parameters=9
    vendor_extension=10."""
    w = _Writer()
    for method, field in _METHODS.items():
        if method in item:
            w.message(field, _operation_pb(item[method]))
    for param in item.get("parameters", []):
        w.message(9, _parameters_item(param))
    _extensions(w, 10, item)
    return w.done()


def _operation_pb(op: dict[str, Any]) -> bytes:
    """`Operation`: tags=1 summary=2 description=3 operation_id=5 produces=6 consumes=7
    parameters=8 responses=9 schemes=10 deprecated=11 vendor_extension=13."""
    w = _Writer()
    w.strings(1, op.get("tags"))
    w.string(2, op.get("summary"))
    w.string(3, op.get("description"))
    w.string(5, op.get("operationId"))
    w.strings(6, op.get("produces"))
    w.strings(7, op.get("consumes"))
    for param in op.get("parameters", []):
        w.message(8, _parameters_item(param))
    rw = _Writer()  # Responses: response_code=1 of NamedResponseValue (name=1 value=2)
    for code, response in op.get("responses", {}).items():
        resp = _Writer()  # Response: description=1 schema=2 (SchemaItem: schema=1)
        resp.string(1, response.get("description"))
        if "schema" in response:
            item = _Writer()
            item.message(1, _schema_pb(response["schema"]))
            resp.message(2, item.done())
        value = _Writer()  # ResponseValue: response=1
        value.message(1, resp.done())
        named = _Writer()
        named.string(1, code)
        named.message(2, value.done())
        rw.message(1, named.done())
    w.message(9, rw.done())
    w.strings(10, op.get("schemes"))
    w.bool(11, op.get("deprecated"))
    _extensions(w, 13, op)
    return w.done()


def _parameters_item(param: dict[str, Any]) -> bytes:
    """`ParametersItem`: parameter=1 (`Parameter`: body_parameter=1, non_body_parameter=2)."""
    pw = _Writer()
    if param.get("in") == "body":
        bw = _Writer()  # BodyParameter: description=1 name=2 in=3 required=4 schema=5
        bw.string(1, param.get("description"))
        bw.string(2, param.get("name"))
        bw.string(3, "body")
        bw.bool(4, param.get("required"))
        bw.message(5, _schema_pb(param.get("schema", {})))
        _extensions(bw, 6, param)
        pw.message(1, bw.done())
    else:
        pw.message(2, _non_body(param))
    w = _Writer()
    w.message(1, pw.done())
    return w.done()


def _non_body(param: dict[str, Any]) -> bytes:
    """`NonBodyParameter`: header=1 form_data=2 query=3 path=4 sub-schemas.

    Query: required=1 in=2 description=3 name=4 type=6 format=7 unique_items=20
    vendor_extension=23. Path: required=1 in=2 description=3 name=4 type=5 format=6
    unique_items=19 vendor_extension=22. (Header: as path; form data: as query.)
    """
    where = param.get("in", "query")
    query_like = where in ("query", "formData")
    w = _Writer()
    w.bool(1, param.get("required"))
    w.string(2, where)
    w.string(3, param.get("description"))
    w.string(4, param.get("name"))
    w.string(6 if query_like else 5, param.get("type"))
    w.string(7 if query_like else 6, param.get("format"))
    w.bool(20 if query_like else 19, param.get("uniqueItems"))
    _extensions(w, 23 if query_like else 22, param)
    which = {"header": 1, "formData": 2, "query": 3, "path": 4}.get(where, 3)
    out = _Writer()
    out.message(which, w.done())
    return out.done()


def _named_schema(name: str, body: dict[str, Any]) -> bytes:
    """`NamedSchema`: name=1 value=2."""
    w = _Writer()
    w.string(1, name)
    w.message(2, _schema_pb(body))
    return w.done()


def _schema_pb(s: dict[str, Any]) -> bytes:
    """`Schema`: _ref=1 format=2 title=3 description=4 default=5 maximum=7 minimum=9
    max_length=11 min_length=12 pattern=13 unique_items=16 required=19 enum=20
    additional_properties=21 type=22 items=23 all_of=24 properties=25 read_only=27
    example=30 vendor_extension=31."""
    w = _Writer()
    w.string(1, s.get("$ref"))
    w.string(2, s.get("format"))
    w.string(3, s.get("title"))
    w.string(4, s.get("description"))
    if "default" in s:
        w.message(5, _any(s["default"]))
    w.string(13, s.get("pattern"))
    w.bool(16, s.get("uniqueItems"))
    w.strings(19, s.get("required"))
    for value in s.get("enum", []):
        w.message(20, _any(value))
    extra = s.get("additionalProperties")
    if extra is not None:
        aw = _Writer()  # AdditionalPropertiesItem: schema=1 boolean=2
        if isinstance(extra, dict):
            aw.message(1, _schema_pb(extra))
        else:
            aw.bool(2, extra)
        w.message(21, aw.done())
    kind = s.get("type")
    if kind:
        tw = _Writer()  # TypeItem: value=1
        tw.strings(1, kind if isinstance(kind, list) else [kind])
        w.message(22, tw.done())
    items = s.get("items")
    if items is not None:
        iw = _Writer()  # ItemsItem: schema=1
        for item in items if isinstance(items, list) else [items]:
            iw.message(1, _schema_pb(item))
        w.message(23, iw.done())
    for part in s.get("allOf", []):
        w.message(24, _schema_pb(part))
    props = s.get("properties")
    if props is not None:
        pw = _Writer()  # Properties: additional_properties=1 of NamedSchema
        for name in sorted(props):
            pw.message(1, _named_schema(name, props[name]))
        w.message(25, pw.done())
    w.bool(27, s.get("readOnly"))
    if "example" in s:
        w.message(30, _any(s["example"]))
    _extensions(w, 31, s)
    return w.done()
