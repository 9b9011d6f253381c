#!/usr/bin/env python3
"""An OriginLink exchange peer written from docs/protocol.md alone, not from our Rust code.

It plays the KH member's node in a region whose gateway and TH node are real `originlink`
processes: it signs envelopes with KH's node key (JWS ES256 over the RFC 8785 header, with
jwcrypto), pins every TLS peer to the certificate the signed trust list names, sends every
message type to the TH node directly and through the gateway, runs its own HTTPS endpoint at
KH's URL to receive what TH sends back (a `status.update`, a `verification.request`), answers
a verification with a `verification.response`, and checks every documented refusal code.

Each check prints one line, `ok` or `FAIL`; the last line is `N passed, M failed`, and the exit
status is 1 when anything failed. When the spec and the implementation disagree, a check
fails and says which section of the spec it read.

Usage: client.py REGION_DIR ORIGINLINK_BINARY
"""

import base64
import hashlib
import http.client
import http.server
import json
import os
import queue
import ssl
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from jwcrypto import jwk, jws

REGION, BINARY = sys.argv[1], sys.argv[2]
RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f"  -- {detail}"), flush=True)
    return ok


# --- The region: URLs, keys and the signed trust list (spec: "Transport", "Trust list"). ---

with open(os.path.join(REGION, "region.json")) as f:
    region = json.load(f)
with open(os.path.join(REGION, "trust-list.json")) as f:
    trust = json.load(f)
KEYS = os.path.join(REGION, "KH", "keys")
MY_CERT, MY_KEY = os.path.join(KEYS, "tls.crt"), os.path.join(KEYS, "tls.key")
with open(MY_KEY, "rb") as f:
    SIGNING_KEY = jwk.JWK.from_pem(f.read())


def member(country):
    return next(m for m in trust["members"] if m["country"] == country)


def der_to_pem(der):
    b = base64.b64encode(der).decode()
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) + "\n-----END CERTIFICATE-----\n"


TH_CERT = base64.b64decode(member("TH")["nodes"][0]["tls_cert"])
GW_CERT = base64.b64decode(trust["gateways"][0]["tls_cert"])
TH_KEY = jwk.JWK.from_pem(der_to_pem(TH_CERT).encode())


def hostport(url):
    host, port = url.removeprefix("https://").rstrip("/").rsplit(":", 1)
    return host, int(port)


TH = hostport(region["nodes"]["TH"]["url"])
GW = hostport(region["gateway_url"])
KH_LISTEN = hostport(region["nodes"]["KH"]["url"])

# --- HTTP over pinned mutual TLS. ---


def request(peer, pinned, method, path, body=None, client_cert=True, headers=None):
    """One request on a new connection; returns (status, parsed JSON or text)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # pinned below, as the spec says: the exact certificate
    ctx.set_alpn_protocols(["http/1.1"])
    if client_cert:
        ctx.load_cert_chain(MY_CERT, MY_KEY)
    conn = http.client.HTTPSConnection(peer[0], peer[1], context=ctx, timeout=30)
    conn.connect()
    if conn.sock.getpeercert(binary_form=True) != pinned:
        raise RuntimeError("the server's certificate is not the one the trust list names")
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data.decode("utf-8", "replace")


# --- Envelopes (spec: "The envelope"). ---


def jcs(value):
    # RFC 8785 for what envelopes hold (strings, numbers, objects, null): sorted keys, no
    # whitespace, UTF-8 without escaping beyond JSON's own, and numbers as ECMAScript writes
    # them (so 1.0 is `1`; envelopes hold no other fractions).
    def numbers(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: numbers(x) for k, x in v.items()}
        if isinstance(v, list):
            return [numbers(x) for x in v]
        return v
    return json.dumps(numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign(header_members, key=None, alg="ES256"):
    """Detached compact JWS over the canonical header members (all but payload, signature)."""
    protected = json.dumps({"alg": alg}, separators=(",", ":"))
    s = jws.JWS(jcs(header_members))
    s.add_signature(key or SIGNING_KEY, alg=alg, protected=protected)
    h, _, sig = s.serialize(compact=True).split(".")
    return f"{h}..{sig}"


def now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(kind, to, payload, payload_type="application/json", certificate=None, correlation_id=None,
             sender="KH", edit=None, key=None, alg="ES256"):
    env = {
        "format": "originlink-envelope/1",
        "id": str(uuid7()),
        "from": {"country": sender, "node": "KH-CONFORMANCE"},
        "to": {"country": to},
        "type": kind,
        "payload_type": payload_type,
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "created_at": now_rfc3339(),
    }
    if certificate is not None:
        env["certificate"] = certificate
    if correlation_id is not None:
        env["correlation_id"] = correlation_id
    if edit:
        edit(env)
    env["signature"] = sign(env, key, alg)
    env["payload"] = base64.b64encode(payload).decode()
    return env


def uuid7():
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return uuid.UUID(int=value)


def batch(*envs):
    return json.dumps({"messages": list(envs)}).encode()


def push(peer, pinned, *envs):
    return request(peer, pinned, "POST", "/exchange/v1/messages", batch(*envs))


def manifest(raws, edit=None):
    """A version 2 manifest (spec: "Batches with a manifest") over envelopes as they will
    travel, byte for byte, signed like an envelope with KH's node key."""
    m = {
        "format": "originlink-manifest/1",
        "id": str(uuid7()),
        "from": {"country": "KH", "node": "KH-CONFORMANCE"},
        "created_at": now_rfc3339(),
        "envelopes": [hashlib.sha256(r).hexdigest() for r in raws],
    }
    if edit:
        edit(m)
    m["signature"] = sign(m)
    return json.dumps(m).encode()


def push_v2(peer, pinned, manifests, raws):
    body = b'{"manifests":[' + b",".join(manifests) + b'],"messages":[' + b",".join(raws) + b"]}"
    return request(peer, pinned, "POST", "/exchange/v2/messages", body)


def raw_members(body, name):
    """The elements of the top-level array `name` of a JSON object, each as its exact bytes."""
    text = body.decode()
    decoder = json.JSONDecoder()
    obj = json.loads(text)
    if name not in obj:
        return []
    i = text.index(f'"{name}"') + len(name) + 2
    i = text.index("[", i) + 1
    out = []
    while True:
        while text[i] in " \t\r\n,":
            i += 1
        if text[i] == "]":
            return [t.encode() for t in out]
        _, end = decoder.raw_decode(text, i)
        out.append(text[i:end])
        i = end


def signed_certificate(seq, version_note=None):
    """A KH certificate of origin signed with KH's document-signing key by `originlink sign`
    (XML-DSig is the certificate's own signature, not the protocol's)."""
    xml = subprocess.run([BINARY, "example", "--agreement", "ATIGA", "--from", "KH", "--to", "TH", "--seq", str(seq)],
                         check=True, capture_output=True).stdout
    signed = subprocess.run([BINARY, "sign", "--key", os.path.join(KEYS, "signing.key"), "--cert",
                             os.path.join(KEYS, "signing.crt"), "-"], input=xml, check=True, capture_output=True).stdout
    number = xml.split(b"<cbc:ID>", 1)[1].split(b"<", 1)[0].decode()
    return number, signed


def ack_of(status, body, what):
    if status != 200 or not isinstance(body, dict) or len(body.get("acks", [])) != 1:
        check(what, False, f"HTTP {status}: {body}")
        return {}
    return body["acks"][0]


def expect_ack(what, peer, pinned, env, result, code=None, field=None):
    a = ack_of(*push(peer, pinned, env), what)
    ok = a.get("id") == env["id"] and a.get("result") == result
    if code is not None:
        ok = ok and a.get("code") == code
    if field is not None:
        ok = ok and a.get("field") == field
    check(what, ok, f"expected {result} {code or ''} {field or ''}, got {a}")
    return a


# --- KH's own endpoint: what the gateway pushes to KH (spec: "Endpoints", "Acknowledgement"). ---

INBOX = queue.Queue()
MANIFESTS = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        peer = self.connection.getpeercert(binary_form=True)
        acks = []
        if self.path not in ("/exchange/v1/messages", "/exchange/v2/messages"):
            self.answer(404, {"code": "NOT_FOUND", "message": "no such resource"})
            return
        if peer != GW_CERT:
            self.answer(401, {"code": "CLIENT_CERT_UNKNOWN", "message": "not the gateway"})
            return
        # Version 2: the hashes the manifests list, each manifest verified with the node
        # certificate of its sender (TH here) by jwcrypto.
        vouched = {}
        for m in raw_members(body, "manifests") if self.path.endswith("v2/messages") else []:
            obj = json.loads(m)
            ok = obj.get("from", {}).get("country") == "TH" and verify_detached(obj, TH_KEY)
            MANIFESTS.append((ok, obj))
            for h in obj.get("envelopes", []) if ok else []:
                vouched[h] = True
        for raw in raw_members(body, "messages"):
            env = json.loads(raw)
            env["_vouched"] = hashlib.sha256(raw).hexdigest() in vouched
            acks.append({"id": env["id"], "result": "delivered"})
            INBOX.put(env)
        self.answer(200, {"acks": acks})

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve_kh():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(MY_CERT, MY_KEY)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cadata=GW_CERT)
    ctx.set_alpn_protocols(["http/1.1"])
    server = http.server.ThreadingHTTPServer(KH_LISTEN, Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def received(kind, pred=lambda e: True, seconds=60):
    """The next envelope of `kind` pushed to KH (others are kept aside), or None."""
    deadline = time.time() + seconds
    aside = []
    found = None
    while time.time() < deadline and found is None:
        try:
            e = INBOX.get(timeout=0.5)
        except queue.Empty:
            continue
        if e["type"] == kind and pred(e):
            found = e
        else:
            aside.append(e)
    for e in aside:
        INBOX.put(e)
    return found


def verify_detached(obj, key):
    """Whether the detached JWS in `signature` verifies over the RFC 8785 form of the other
    members (a manifest)."""
    members = {k: v for k, v in obj.items() if k != "signature"}
    try:
        h, _, sig = obj["signature"].split(".")
        s = jws.JWS()
        s.deserialize(f"{h}.{b64url(jcs(members))}.{sig}")
        s.verify(key)
        return True
    except Exception:  # noqa: BLE001 - any failure is "does not verify"
        return False


def verify_from_th(env):
    """Checks an envelope from TH as the spec says: the payload hash, then the detached JWS
    over the canonical header with TH's node certificate from the trust list."""
    payload = base64.b64decode(env["payload"])
    if hashlib.sha256(payload).hexdigest() != env["payload_sha256"]:
        return False, "payload hash"
    members = {k: v for k, v in env.items() if k not in ("payload", "signature", "_vouched")}
    h, _, sig = env["signature"].split(".")
    s = jws.JWS()
    s.deserialize(f"{h}.{b64url(jcs(members))}.{sig}")
    try:
        s.verify(TH_KEY)
    except Exception as e:  # noqa: BLE001 - report any verification failure
        return False, f"signature: {e}"
    return True, payload


def main():
    serve_kh()

    # 1. Transport and whole-request refusals at a node (spec: "Transport").
    s, b = request(TH, TH_CERT, "POST", "/exchange/v1/messages", batch(), client_cert=False)
    check("node: no client certificate is 401 CLIENT_CERT_REQUIRED", s == 401 and b.get("code") == "CLIENT_CERT_REQUIRED", f"{s} {b}")
    s, b = request(TH, TH_CERT, "POST", "/exchange/v1/messages", b"not json")
    check("node: a body that is not a batch is 400 BATCH_MALFORMED", s == 400 and b.get("code") == "BATCH_MALFORMED", f"{s} {b}")
    s, b = request(TH, TH_CERT, "POST", "/exchange/v1/messages", b'{"messages": []}')
    check("node: an empty batch is 400 BATCH_EMPTY", s == 400 and b.get("code") == "BATCH_EMPTY", f"{s} {b}")

    # 2. certificate.issued straight to TH, and its replay (spec: "Promises", "Message types").
    number, xml = signed_certificate(101)
    ref = {"country": "KH", "number": number, "version": 1}
    issued = envelope("certificate.issued", "TH", xml, "application/xml", ref)
    expect_ack("node: certificate.issued is delivered", TH, TH_CERT, issued, "delivered")
    a = ack_of(*push(TH, TH_CERT, issued), "node: a replay")
    check("node: a replay is acknowledged as a duplicate", a.get("result") == "delivered" and a.get("duplicate") is True, f"{a}")

    # 3. Encodings the spec's formats allow (RFC 3339 forms, JSON numbers, hex case).
    variants = {
        "created_at with +00:00": lambda e: e.update(created_at=e["created_at"].replace("Z", "+00:00")),
        "created_at with lower-case t and z": lambda e: e.update(created_at=e["created_at"].replace("T", "t").replace("Z", "z")),
        "created_at with milliseconds (Java Instant)": lambda e: e.update(created_at=e["created_at"][:23] + "Z"),
        "correlation_id null": lambda e: e.update(correlation_id=None),
        "payload_sha256 in upper case": lambda e: e.update(payload_sha256=e["payload_sha256"].upper()),
        "certificate.version 1.0": lambda e: e["certificate"].update(version=1.0),
    }
    for i, (what, edit) in enumerate(variants.items()):
        n, doc = signed_certificate(200 + i)
        env = envelope("certificate.issued", "TH", doc, "application/xml", {"country": "KH", "number": n, "version": 1}, edit=edit)
        expect_ack(f"node: accepts {what}", TH, TH_CERT, env, "delivered")

    # 4. Per-envelope refusals, each with its code and field (spec: "Per-envelope refusal codes").
    seqs = iter(range(300, 400))

    def fresh(edit_before=None, edit_after=None, **kw):
        n, doc = signed_certificate(next(seqs))
        env = envelope("certificate.issued", "TH", doc, "application/xml", {"country": "KH", "number": n, "version": 1}, edit=edit_before, **kw)
        if edit_after:
            edit_after(env)
        return env

    refusals = [
        ("a header changed after signing", fresh(edit_after=lambda e: e.update(created_at="2020-01-01T00:00:00.000000Z")), "ENVELOPE_SIGNATURE_INVALID", "signature"),
        ("another payload", fresh(edit_after=lambda e: e.update(payload=base64.b64encode(b"<x/>").decode())), "PAYLOAD_HASH_MISMATCH", "payload_sha256"),
        ("sent as TH by KH's client", fresh(edit_before=lambda e: e["from"].update(country="TH")), "SENDER_MISMATCH", "from"),
        ("to a country that is not this node's", fresh(edit_before=lambda e: e["to"].update(country="VN")), "RECIPIENT_UNKNOWN", "to"),
        ("an unknown type", fresh(edit_before=lambda e: e.update(type="certificate.teleported")), "MESSAGE_TYPE_UNKNOWN", "type"),
        ("another protocol version", fresh(edit_before=lambda e: e.update(format="originlink-envelope/9")), "ENVELOPE_FORMAT_UNKNOWN", "format"),
        ("an unknown member", fresh(edit_before=lambda e: e.update(colour="blue")), "ENVELOPE_MALFORMED", "colour"),
        ("another country's certificate", fresh(edit_before=lambda e: e["certificate"].update(country="TH")), "ISSUER_MISMATCH", "certificate"),
    ]
    for what, env, code, field in refusals:
        expect_ack(f"node: refuses {what} with {code}", TH, TH_CERT, env, "refused", code, field)
    status = json.dumps({"status": "accepted", "code": "1"}).encode()
    stranger = envelope("status.update", "TH", status, certificate={"country": "TH", "number": "TH-2026-999999", "version": 1})
    expect_ack("node: refuses a status about a certificate never sent to KH (STATUS_FROM_WRONG_PEER)", TH, TH_CERT, stranger, "refused", "STATUS_FROM_WRONG_PEER", "from")
    ask = json.dumps({"questions": ["Who made it?"], "deadline": "2030-01-01T00:00:00Z"}).encode()
    own = envelope("verification.request", "TH", ask, certificate={"country": "KH", "number": number, "version": 1})
    expect_ack("node: refuses a verification request about a certificate TH did not issue", TH, TH_CERT, own, "refused", "RECIPIENT_UNKNOWN", "certificate")
    # The form of members (spec: "The envelope", "Per-envelope refusal codes").
    forms = [
        ("a fractional certificate.version", fresh(edit_before=lambda e: e["certificate"].update(version=1.5)), "ENVELOPE_MALFORMED", "certificate/version"),
        ("a hash that is not 64 hex digits", fresh(edit_after=lambda e: e.update(payload_sha256="xyz")), "ENVELOPE_MALFORMED", "payload_sha256"),
        ("a JWS that is not detached compact", fresh(edit_after=lambda e: e.update(signature="not-a-jws")), "ENVELOPE_MALFORMED", "signature"),
        ("an alg other than ES256/RS256", fresh(edit_after=lambda e: e.update(signature=b64url(b'{"alg":"ES384"}') + ".." + b64url(os.urandom(96)))),
         "ENVELOPE_SIGNATURE_ALGORITHM_NOT_ALLOWED", "signature"),
        ("a date that is not RFC 3339", fresh(edit_before=lambda e: e.update(created_at="02/12/2026 10:00")), "ENVELOPE_MALFORMED", "created_at"),
    ]
    for what, env, code, field in forms:
        expect_ack(f"node: refuses {what} with {code} on {field}", TH, TH_CERT, env, "refused", code, field)
    # A duplicate member name cannot be written with a dict: the raw text is.
    dup = fresh()
    raw = json.dumps(dup)[:-1] + ', "type": "certificate.replaced"}'
    s, b = request(TH, TH_CERT, "POST", "/exchange/v1/messages", ('{"messages":[' + raw + "]}").encode())
    a = b.get("acks", [{}])[0] if isinstance(b, dict) else {}
    check("node: refuses a duplicate member name with ENVELOPE_MALFORMED", s == 200 and a.get("result") == "refused" and a.get("code") == "ENVELOPE_MALFORMED", f"{s} {b}")
    odd = json.dumps({"status": "accepted", "code": "1", "colour": "blue"}).encode()
    body_env = envelope("status.update", "TH", odd, certificate={"country": "TH", "number": "TH-2026-999999", "version": 1})
    expect_ack("node: refuses an unknown body member with PAYLOAD_MALFORMED", TH, TH_CERT, body_env, "refused", "PAYLOAD_MALFORMED", "payload/colour")

    # 5. Replaced, then revoked (spec: "Message types").
    _, v2 = signed_certificate(101)
    replaced = envelope("certificate.replaced", "TH", v2, "application/xml", {"country": "KH", "number": number, "version": 2})
    expect_ack("node: certificate.replaced is delivered", TH, TH_CERT, replaced, "delivered")
    revoked = envelope("certificate.revoked", "TH", json.dumps({"reason": "conformance"}).encode(), certificate={"country": "KH", "number": number, "version": 2})
    expect_ack("node: certificate.revoked is delivered", TH, TH_CERT, revoked, "delivered")

    # 5b. Version 2 (spec: "Batches with a manifest"): one manifest for two certificates; a
    # manifest changed after signing vouches for nothing (the envelope's own signature is
    # checked instead); a manifest that is not one refuses the request.
    raws = []
    for k in range(2):
        n2, d2 = signed_certificate(500 + k)
        raws.append(json.dumps(envelope("certificate.issued", "TH", d2, "application/xml", {"country": "KH", "number": n2, "version": 1})).encode())
    s, b = push_v2(TH, TH_CERT, [manifest(raws)], raws)
    check("node v2: two envelopes under one manifest are delivered", s == 200 and [a.get("result") for a in b.get("acks", [])] == ["delivered", "delivered"] and "manifests" not in b, f"{s} {b}")
    n3, d3 = signed_certificate(502)
    raw3 = json.dumps(envelope("certificate.issued", "TH", d3, "application/xml", {"country": "KH", "number": n3, "version": 1})).encode()
    signed_m = json.loads(manifest([raw3]))
    signed_m["envelopes"] = [hashlib.sha256(b"another").hexdigest()]
    s, b = push_v2(TH, TH_CERT, [json.dumps(signed_m).encode()], [raw3])
    refused_m = (b.get("manifests") or [{}])[0] if isinstance(b, dict) else {}
    check("node v2: a manifest changed after signing is MANIFEST_SIGNATURE_INVALID, the envelope delivered on its own signature",
          s == 200 and refused_m.get("code") == "MANIFEST_SIGNATURE_INVALID" and (b.get("acks") or [{}])[0].get("result") == "delivered", f"{s} {b}")
    bad = manifest([raw3], edit=lambda m: m.update(id="not-a-uuid"))
    s, b = push_v2(TH, TH_CERT, [bad], [raw3])
    check("node v2: a malformed manifest is 400 MANIFEST_MALFORMED at manifests/0/id",
          s == 400 and b.get("code") == "MANIFEST_MALFORMED" and b.get("field") == "manifests/0/id", f"{s} {b}")

    # 6. The gateway: refusals, acceptance, tracking, delivery (spec: "Endpoints").
    s, b = request(GW, GW_CERT, "POST", "/exchange/v1/messages", batch(), client_cert=False)
    check("gateway: no client certificate is 401 CLIENT_CERT_REQUIRED", s == 401 and b.get("code") == "CLIENT_CERT_REQUIRED", f"{s} {b}")
    n, doc = signed_certificate(400)
    via = envelope("certificate.issued", "TH", doc, "application/xml", {"country": "KH", "number": n, "version": 1})
    via_raw = json.dumps(via).encode()
    s, b = push_v2(GW, GW_CERT, [manifest([via_raw])], [via_raw])
    check("gateway v2: certificate.issued under a manifest is accepted", s == 200 and (b.get("acks") or [{}])[0].get("result") == "accepted" and "manifests" not in b, f"{s} {b}")
    jp = envelope("certificate.issued", "JP", doc, "application/xml", {"country": "KH", "number": n, "version": 1})
    expect_ack("gateway: a recipient that is not a member is RECIPIENT_UNKNOWN", GW, GW_CERT, jp, "refused", "RECIPIENT_UNKNOWN", "to")
    no_deadline = envelope("verification.request", "TH", json.dumps({"questions": ["?"]}).encode(), certificate={"country": "TH", "number": "TH-2026-000001", "version": 1})
    expect_ack("gateway: refuses a verification.request without a deadline at the door", GW, GW_CERT, no_deadline,
               "refused", "PAYLOAD_MALFORMED", "payload/deadline")
    state = None
    for _ in range(120):
        s, t = request(GW, GW_CERT, "GET", f"/exchange/v1/messages/{via['id']}")
        state = t.get("state") if isinstance(t, dict) else None
        if state == "delivered":
            break
        time.sleep(0.25)
    check("gateway: tracking shows the message delivered", state == "delivered", f"last state {state}")

    # 7. What TH sends back to KH through the gateway: the receipt status.
    st = received("status.update", lambda e: (e.get("certificate") or {}).get("number") == n)
    if check("KH endpoint: TH's status.update arrives through the gateway", st is not None, "none within 60 s"):
        ok, payload = verify_from_th(st)
        check("KH endpoint: its envelope verifies with TH's node certificate", ok is True, payload)
        check("KH endpoint: it came over version 2 with TH's manifest, verified by jwcrypto, listing its exact bytes",
              st.get("_vouched") is True, f"manifests: {[(ok, m.get('id')) for ok, m in MANIFESTS]}")
        if ok:
            body = json.loads(payload)
            check("KH endpoint: the status is received, UNCL 1373 code 43", body.get("status") == "received" and body.get("code") == "43", f"{body}")

    # 8. A verification asked by TH customs, answered by KH (request and response).
    tokens = region["nodes"]["TH"]["tokens"]
    customs = next(v for k, v in tokens.items() if "customs" in k)
    th_api = (TH, TH_CERT)
    s, v = request(*th_api, "POST", "/api/v1/verifications",
                   json.dumps({"issuing_country": "KH", "number": n, "questions": ["Who made the goods?"]}).encode(),
                   client_cert=False, headers={"Authorization": f"Bearer {customs}"})
    check("TH API: customs raises a verification request", s in (200, 201), f"{s} {v}")
    req = received("verification.request", lambda e: (e.get("certificate") or {}).get("number") == n)
    if check("KH endpoint: the verification.request arrives", req is not None, "none within 60 s"):
        ok, payload = verify_from_th(req)
        body = json.loads(payload) if ok else {}
        check("KH endpoint: it carries questions and a deadline", ok is True and body.get("questions") and body.get("deadline"), f"{body}")
        answer = json.dumps({"outcome": "confirmed", "answer": "Made in Phnom Penh by the exporter."}).encode()
        resp = envelope("verification.response", "TH", answer, certificate=req.get("certificate"), correlation_id=req["id"])
        expect_ack("gateway: the verification.response is accepted", GW, GW_CERT, resp, "accepted")
        answered = None
        for _ in range(120):
            s, lst = request(*th_api, "GET", "/api/v1/verifications", client_cert=False, headers={"Authorization": f"Bearer {customs}"})
            if isinstance(lst, list):
                answered = next((x for x in lst if x.get("number") == n and x.get("status") != "open"), None)
            if answered:
                break
            time.sleep(0.25)
        check("TH API: the verification is answered, confirmed", answered is not None and answered.get("outcome") == "confirmed", f"{answered}")

    # 9. Pulling (spec: "POST /exchange/v1/pull", "POST /exchange/v1/pull/ack").
    s, b = request(GW, GW_CERT, "POST", "/exchange/v1/pull", b'{"max":100}', client_cert=False)
    check("gateway: pull without a client certificate is 401", s == 401 and b.get("code") == "CLIENT_CERT_REQUIRED", f"{s} {b}")
    s, b = request(GW, GW_CERT, "POST", "/exchange/v1/pull", b'{"max":100}')
    check("gateway: pull answers 200 with a list of messages", s == 200 and isinstance(b.get("messages"), list), f"{s} {b}")
    pulled = b.get("messages", []) if isinstance(b, dict) else []
    acks = [{"id": m["id"], "result": "delivered"} for m in pulled]
    s, b = request(GW, GW_CERT, "POST", "/exchange/v1/pull/ack", json.dumps({"acks": acks}).encode())
    check("gateway: pull/ack answers 200 with the number settled", s == 200 and b.get("settled") == len(acks), f"{s} {b}")

    # 10. KH's certificate status list (spec: "Certificate status lists", "Message types",
    # "Who may say what"): signed with KH's document-signing key, x5c naming its certificate.
    with open(os.path.join(KEYS, "signing.key"), "rb") as f:
        doc_key = jwk.JWK.from_pem(f.read())
    with open(os.path.join(KEYS, "signing.crt"), "rb") as f:
        doc_cert = ssl.PEM_cert_to_DER_cert(f.read().decode())

    def status_list(issuer, sequence, key, cert_der):
        now = datetime.now(timezone.utc)
        body = {"format": "originlink-status-list/1", "issuer": issuer, "sequence": sequence,
                "issued_at": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "next_update": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "entries": [{"number": n, "version": 1, "status": "revoked",
                             "since": (now - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "reason": "conformance"}]}
        protected = json.dumps({"alg": "ES256", "x5c": [base64.b64encode(cert_der).decode()]}, separators=(",", ":"))
        s = jws.JWS(jcs(body))
        s.add_signature(key, alg="ES256", protected=protected)
        h, _, sig = s.serialize(compact=True).split(".")
        body["signature"] = f"{h}..{sig}"
        return json.dumps(body).encode()

    good = envelope("status.list", "TH", status_list("KH", 1_000_000, doc_key, doc_cert))
    expect_ack("node: KH's status.list, signed with its document-signing key, is delivered", TH, TH_CERT, good, "delivered")
    th_console = region["nodes"]["TH"].get("console_url")
    if check("region: TH has a public console", bool(th_console), f"{region['nodes']['TH']}"):
        host, port = th_console.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/public/v1/status-lists/KH")
        r = conn.getresponse()
        held = json.loads(r.read() or b"null")
        check("TH public: holds KH's list as sent", r.status == 200 and held.get("sequence") == 1_000_000 and held.get("entries", [{}])[0].get("number") == n, f"{r.status} {held}")
    other = envelope("status.list", "TH", status_list("TH", 1_000_001, doc_key, doc_cert))
    expect_ack("node: KH sending TH's status list is ISSUER_MISMATCH", TH, TH_CERT, other, "refused", "ISSUER_MISMATCH", "payload/issuer")
    with open(MY_CERT, "rb") as f:
        tls_der = ssl.PEM_cert_to_DER_cert(f.read().decode())
    wrong_key = envelope("status.list", "TH", status_list("KH", 1_000_002, SIGNING_KEY, tls_der))
    expect_ack("node: a status list signed with KH's TLS key is refused", TH, TH_CERT, wrong_key, "refused", None, "payload")
    stale = envelope("status.list", "TH", status_list("KH", 999, doc_key, doc_cert))
    expect_ack("node: an older status list is a duplicate: delivered, nothing changes", TH, TH_CERT, stale, "delivered")

    print(f"conformance: {RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
