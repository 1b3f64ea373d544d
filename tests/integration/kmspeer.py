"""A KMS test server on 127.0.0.1 (AWS JSON 1.1, AWS.md §5) that verifies SigV4 on every request.

No offline KMS exists (AWS.md §7), so this is ours. It holds named master keys (32 random bytes each)
and answers `TrentService.Decrypt`, `TrentService.GenerateDataKey` and `TrentService.Encrypt`.

CiphertextBlob format (ours, not AWS's; opaque to clients as in AWS):

    b"LKB1" | u8 n | key id (n bytes, ASCII; the key's id, e.g. a UUID) | iv (12) | AES-256-GCM ciphertext | tag (16)

    AAD = the blob's header (magic | n | key id) | canonical JSON of the encryption context, i.e.
          json.dumps(ctx, sort_keys=True, separators=(",", ":"), ensure_ascii=False) in UTF-8,
          `{}` for an absent or empty context (KMS treats both alike).

so a Decrypt with another context fails (InvalidCiphertextException) and a Decrypt naming another
KeyId than the blob's fails (IncorrectKeyException). Blobs made elsewhere (the Ruby SDK with a stubbed
KMS) are mapped to a known plaintext with `register_blob()`, with the same context and key checks.

Errors are HTTP 400 `{"__type": "...", "message": "..."}` with AWS's types and wording:
  - no Authorization header          -> MissingAuthenticationTokenException "Missing Authentication Token"
  - malformed Authorization          -> IncompleteSignatureException
  - unknown access key / bad token   -> UnrecognizedClientException "The security token included in the request is invalid."
  - wrong signature / scope          -> InvalidSignatureException "The request signature we calculated does not match ..."
  - clock more than 15 min off       -> InvalidSignatureException "Signature expired: ... is now earlier than ..."
                                        (or "Signature not yet current: ... is still later than ...")
    (AWS's JSON services answer skew so; S3's XML `RequestTimeTooSkewed` is the S3 flavour.)
  - denied key                       -> AccessDeniedException "User: arn:aws:iam::...:user/test is not authorized ..."
  - injected throttling              -> ThrottlingException "Rate exceeded"
  - unknown key                      -> NotFoundException; disabled key -> KMSInvalidStateException

Use from a test:

    peer = KmsPeer(keys=["key-a"]).start(); tc.addCleanup(peer.stop)
    peer.url, peer.key_arn("key-a"), peer.log, peer.counts, peer.throttle(2), peer.deny("key-a")

or as a process: `python3 kmspeer.py --port 0 --keys key-a,key-b=<64 hex>` prints one JSON line
{"port", "url", "keys": {arn: hex master key}} and serves until SIGTERM/SIGINT.
"""
import argparse
import base64
import calendar
import hashlib
import hmac
import json
import socket
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BLOB_MAGIC = b"LKB1"
DEFAULT_ACCESS_KEY = "AKIDKMSPEEREXAMPLE"
DEFAULT_SECRET = "kmspeer/secret+EXAMPLEKEY"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
MAX_SKEW_S = 15 * 60
JSON_CT = "application/x-amz-json-1.1"


class KmsError(Exception):
    """A KMS error answer: `type` is the `__type` (e.g. "InvalidCiphertextException")."""

    def __init__(self, type_, message="", status=400):
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message
        self.status = status


def canonical_context(ctx):
    """The AAD form of an encryption context (see the module doc)."""
    return json.dumps(ctx or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- SigV4 (AWS.md §1) ------------------------------------------------------------------------------

def _uri_encode(s, safe=""):
    """RFC 3986 encoding: unreserved A-Za-z0-9-._~ kept, everything else %XX (upper case)."""
    return urllib.parse.quote(s, safe="-_.~" + safe)


def canonical_uri(path, s3=False):
    """Canonical URI from the path as sent on the wire (already encoded once by the client).
    Non-S3 services: dot segments and empty segments normalised, each segment encoded again."""
    if not path:
        return "/"
    if s3:
        return path
    out = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    res = "/" + "/".join(_uri_encode(seg) for seg in out)
    if path.endswith("/") and res != "/":
        res += "/"
    return res


def canonical_query(query):
    """Canonical query from the raw query string: decode, re-encode every name and value, sort."""
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((_uri_encode(urllib.parse.unquote(name)), _uri_encode(urllib.parse.unquote(value))))
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def _fold(v):
    return re.sub(r"\s+", " ", v.strip())


def canonical_request(method, path, query, headers, signed_headers, payload_hash, s3=False):
    """headers: {lower-case name: [values]}; signed_headers: sorted list of lower-case names."""
    lines = [method, canonical_uri(path, s3), canonical_query(query)]
    for name in signed_headers:
        lines.append(f"{name}:{','.join(_fold(v) for v in headers.get(name, []))}")
    return "\n".join(lines) + "\n\n" + ";".join(signed_headers) + "\n" + payload_hash


def signing_key(secret, date, region, service):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def signature(secret, amz_date, region, service, creq):
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    return hmac.new(signing_key(secret, amz_date[:8], region, service), sts.encode(), hashlib.sha256).hexdigest()


def sign_headers(method, host, path, query, headers, body, access_key, secret, region, service,
                 amz_date=None, session_token=None, s3=False):
    """A small SigV4 signer (for tests): returns `headers` plus Host, X-Amz-Date, X-Amz-Security-Token
    (when given) and Authorization; every header passed in is signed."""
    amz_date = amz_date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    h = dict(headers)
    h["Host"] = host
    h["X-Amz-Date"] = amz_date
    if session_token:
        h["X-Amz-Security-Token"] = session_token
    lower = {}
    for k, v in h.items():
        lower.setdefault(k.lower(), []).append(v)
    signed = sorted(lower)
    creq = canonical_request(method, path, query, lower, signed, hashlib.sha256(body).hexdigest(), s3)
    sig = signature(secret, amz_date, region, service, creq)
    h["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{amz_date[:8]}/{region}/{service}/aws4_request, "
                          f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    return h


_AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)


def _parse_amz_date(s):
    try:
        return calendar.timegm(time.strptime(s, "%Y%m%dT%H%M%SZ"))
    except (ValueError, TypeError):
        return None


# --- the server ----------------------------------------------------------------------------------------

class KmsPeer:
    """A threaded KMS server. keys: iterable of key ids, or {key id: 32 bytes | None (random)}.
    A key id may be given as a bare id or as an ARN; answers name keys by ARN, as KMS does.
    aliases: {"alias/name": key id}. region=None accepts any region in the credential scope."""

    def __init__(self, keys=("test-key",), access_key=DEFAULT_ACCESS_KEY, secret=DEFAULT_SECRET,
                 session_token=None, region=None, account=DEFAULT_ACCOUNT, aliases=None,
                 clock_offset_s=0.0, port=0, user_arn=None):
        self.access_key = access_key
        self.secret = secret
        self.session_token = session_token
        self.region = region
        self.account = account
        self.user_arn = user_arn or f"arn:aws:iam::{account}:user/test"
        self.clock_offset_s = clock_offset_s      # the server's clock minus real time (skew tests)
        self._port = port
        self._lock = threading.Lock()
        self._keys = {}                          # key id -> master key
        self._aliases = {}
        self._registered = {}                    # blob -> (plaintext, key id, context)
        self._denied = set()
        self._disabled = set()
        self._inject = []                        # [(type, message, status)] answered to the next requests
        self.log = []                            # one dict per HTTP request (see _record)
        self.counts = Counter()                  # operation -> HTTP requests received
        self.ok_counts = Counter()               # operation -> successful answers
        items = keys.items() if isinstance(keys, dict) else ((k, None) for k in keys)
        for k, v in items:
            self.add_key(k, v)
        for a, k in (aliases or {}).items():
            self._aliases[a] = self._key_id(k)
        self.httpd = None
        self._thread = None

    # -- configuration --

    def add_key(self, key_id, master=None):
        kid = self._key_id(key_id)
        master = master if master is not None else os.urandom(32)
        if len(master) != 32:
            raise ValueError("a master key is 32 bytes")
        with self._lock:
            self._keys[kid] = master
        return self.key_arn(kid)

    def key_arn(self, key_id):
        kid = self._key_id(key_id)
        region = self.region or DEFAULT_REGION
        return f"arn:aws:kms:{region}:{self.account}:key/{kid}"

    def master_key(self, key_id):
        return self._keys[self._key_id(key_id)]

    def deny(self, *key_ids):
        """Every request using one of these keys answers AccessDeniedException."""
        with self._lock:
            self._denied.update(self._key_id(k) for k in key_ids)

    def allow(self, *key_ids):
        with self._lock:
            self._denied.difference_update(self._key_id(k) for k in key_ids)

    def disable(self, *key_ids):
        """Requests using these keys answer KMSInvalidStateException ("... is disabled.")."""
        with self._lock:
            self._disabled.update(self._key_id(k) for k in key_ids)

    def throttle(self, n):
        """The next n (correctly signed) requests answer ThrottlingException (HTTP 400)."""
        self.inject(n, "ThrottlingException", "Rate exceeded", 400)

    def inject(self, n, type_, message="", status=400):
        """The next n correctly signed requests answer this error (e.g. KMSInternalException, 500)."""
        with self._lock:
            self._inject.extend([(type_, message, status)] * n)

    def register_blob(self, blob, plaintext, key_id, context=None):
        """Decrypt of `blob` yields `plaintext` when the context equals `context` and the KeyId, if
        named, is `key_id` (else InvalidCiphertextException / IncorrectKeyException, as for our blobs)."""
        kid = self._key_id(key_id)
        with self._lock:
            if kid not in self._keys:
                self._keys[kid] = os.urandom(32)
            self._registered[bytes(blob)] = (bytes(plaintext), kid, dict(context or {}))

    def reset_log(self):
        with self._lock:
            self.log.clear()
            self.counts.clear()
            self.ok_counts.clear()

    # -- lifecycle --

    def start(self):
        peer = self

        class Handler(_Handler):
            kms = peer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kmspeer", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def now(self):
        return time.time() + self.clock_offset_s

    # -- the operations, callable directly (no signature, deny, throttle or log) --

    def encrypt(self, key_id, plaintext, context=None):
        """-> CiphertextBlob bytes."""
        kid = self._resolve(key_id)
        return self._seal(kid, plaintext, context)

    def generate_data_key(self, key_id, context=None, nbytes=32):
        """-> (plaintext data key, CiphertextBlob)."""
        kid = self._resolve(key_id)
        dk = os.urandom(nbytes)
        return dk, self._seal(kid, dk, context)

    def decrypt(self, blob, context=None, key_id=None):
        """-> plaintext; raises KmsError like the HTTP answer would."""
        return self._open(blob, context, key_id)[0]

    # -- internals --

    def _key_id(self, key_id):
        """Bare key id of an id, key ARN or (known) alias."""
        if not key_id:
            raise KmsError("ValidationException", "KeyId is required")
        if key_id.startswith("arn:aws:kms:"):
            rest = key_id.split(":", 5)[-1]
            if rest.startswith("key/"):
                return rest[4:]
            if rest.startswith("alias/") and rest in self._aliases:
                return self._aliases[rest]
            return rest
        if key_id.startswith("alias/"):
            return self._aliases.get(key_id, key_id)
        return key_id

    def _resolve(self, key_id):
        kid = self._key_id(key_id)
        if kid not in self._keys:
            raise KmsError("NotFoundException", f"Key '{self.key_arn(kid)}' does not exist")
        return kid

    def _seal(self, kid, plaintext, context):
        header = BLOB_MAGIC + bytes([len(kid)]) + kid.encode()
        iv = os.urandom(12)
        return header + iv + AESGCM(self._keys[kid]).encrypt(iv, bytes(plaintext), header + canonical_context(context))

    def _open(self, blob, context, key_id):
        """-> (plaintext, key id of the blob)."""
        blob = bytes(blob)
        want = self._key_id(key_id) if key_id else None
        if want is not None and want not in self._keys:
            raise KmsError("NotFoundException", f"Key '{self.key_arn(want)}' does not exist")
        reg = self._registered.get(blob)
        if reg is not None:
            plaintext, kid, rctx = reg
            if want is not None and want != kid:
                raise KmsError("IncorrectKeyException",
                               "The key ID in the request does not identify a CMK that can perform this operation.")
            if canonical_context(rctx) != canonical_context(context):
                raise KmsError("InvalidCiphertextException", "")
            return plaintext, kid
        if not blob.startswith(BLOB_MAGIC) or len(blob) < 5:
            raise KmsError("InvalidCiphertextException", "")
        n = blob[4]
        kid = blob[5:5 + n].decode("ascii", "replace")
        header = blob[:5 + n]
        body = blob[5 + n:]
        if len(body) < 12 + 16 or kid not in self._keys:
            raise KmsError("InvalidCiphertextException", "")
        if want is not None and want != kid:
            raise KmsError("IncorrectKeyException",
                           "The key ID in the request does not identify a CMK that can perform this operation.")
        try:
            pt = AESGCM(self._keys[kid]).decrypt(body[:12], body[12:], header + canonical_context(context))
        except InvalidTag:
            raise KmsError("InvalidCiphertextException", "")
        return pt, kid

    def _check_key_use(self, op, kid):
        if kid in self._denied:
            action = "kms:" + op
            raise KmsError("AccessDeniedException",
                           f"User: {self.user_arn} is not authorized to perform: {action} on resource: "
                           f"{self.key_arn(kid)} because no identity-based policy allows the {action} action")
        if kid in self._disabled:
            raise KmsError("KMSInvalidStateException", f"{self.key_arn(kid)} is disabled.")

    def verify_sigv4(self, method, raw_path, headers, body):
        """headers: {lower-case name: [values]}. -> dict(access_key, region, session_token); raises KmsError."""
        auth = (headers.get("authorization") or [None])[0]
        if not auth:
            raise KmsError("MissingAuthenticationTokenException", "Missing Authentication Token")
        m = _AUTH_RE.match(auth.strip())
        if not m:
            raise KmsError("IncompleteSignatureException",
                           "Authorization header requires 'Credential' parameter. Authorization header requires "
                           "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
                           f"Authorization={auth}")
        params = {}
        for part in m.group(1).split(","):
            k, _, v = part.strip().partition("=")
            params[k] = v
        for need in ("Credential", "SignedHeaders", "Signature"):
            if need not in params:
                raise KmsError("IncompleteSignatureException",
                               f"Authorization header requires '{need}' parameter. Authorization={auth}")
        cred = params["Credential"].split("/")
        if len(cred) != 5 or cred[4] != "aws4_request":
            raise KmsError("IncompleteSignatureException",
                           f"Credential should have 5 slash-separated parts, ending in aws4_request: {params['Credential']}")
        akid, date, region, service, _ = cred
        amz_date = (headers.get("x-amz-date") or [None])[0]
        if not amz_date:
            raise KmsError("IncompleteSignatureException",
                           "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        if akid != self.access_key:
            raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
        token = (headers.get("x-amz-security-token") or [None])[0]
        if self.session_token is not None and token != self.session_token:
            raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
        if self.session_token is None and token is not None:
            raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
        signed = params["SignedHeaders"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or (token is not None and "x-amz-security-token" not in signed):
            raise KmsError("InvalidSignatureException",
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
        if service != "kms":
            raise KmsError("InvalidSignatureException", "Credential should be scoped to correct service: 'kms'.")
        if self.region is not None and region != self.region:
            raise KmsError("InvalidSignatureException",
                           "Credential should be scoped to a valid region.")
        if date != amz_date[:8]:
            raise KmsError("InvalidSignatureException",
                           f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                           f"'{date}' != '{amz_date[:8]}', from '{amz_date}'.")
        t = _parse_amz_date(amz_date)
        if t is None:
            raise KmsError("IncompleteSignatureException", f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.")
        now = self.now()
        fmt = lambda s: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(s))  # noqa: E731
        if t < now - MAX_SKEW_S:
            raise KmsError("InvalidSignatureException",
                           f"Signature expired: {amz_date} is now earlier than {fmt(now - MAX_SKEW_S)} "
                           f"({fmt(now)} - 15 min.)")
        if t > now + MAX_SKEW_S:
            raise KmsError("InvalidSignatureException",
                           f"Signature not yet current: {amz_date} is still later than {fmt(now + MAX_SKEW_S)} "
                           f"({fmt(now)} + 15 min.)")
        path, _, query = raw_path.partition("?")
        creq = canonical_request(method, path, query, headers, signed, hashlib.sha256(body).hexdigest())
        want = signature(self.secret, amz_date, region, service, creq)
        if not hmac.compare_digest(want, params["Signature"]):
            raise KmsError("InvalidSignatureException",
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
        return {"access_key": akid, "region": region, "session_token": token}

    def handle(self, method, raw_path, headers, body):
        """One HTTP request -> (status, answer dict). headers: {lower-case name: [values]}."""
        target = (headers.get("x-amz-target") or [""])[0]
        op = target.split(".", 1)[1] if target.startswith("TrentService.") else target
        entry = {"target": target, "op": op, "key_id": None, "key": None, "context": None,
                 "signature_ok": False, "access_key": None, "region": None, "session_token": None,
                 "status": None, "error": None, "time": time.time()}
        with self._lock:
            self.counts[op] += 1
        try:
            try:
                req = json.loads(body.decode("utf-8") or "{}") if body else {}
            except (ValueError, UnicodeDecodeError):
                req = None
            if isinstance(req, dict):
                entry["key_id"] = req.get("KeyId")
                entry["context"] = req.get("EncryptionContext")
            auth = self.verify_sigv4(method, raw_path, headers, body)
            entry.update(auth)
            entry["signature_ok"] = True
            with self._lock:
                injected = self._inject.pop(0) if self._inject else None
            if injected:
                raise KmsError(*injected)
            if method != "POST":
                raise KmsError("UnknownOperationException", "")
            ct = (headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
            if ct != JSON_CT:
                raise KmsError("UnknownOperationException", "")  # what KMS answers to a wrong protocol
            if req is None or not isinstance(req, dict):
                raise KmsError("SerializationException", "")
            answer = self._operation(op, req, entry)
            entry["status"] = 200
            with self._lock:
                self.ok_counts[op] += 1
            return 200, answer
        except KmsError as e:
            entry["status"] = e.status
            entry["error"] = e.type
            return e.status, {"__type": e.type, "message": e.message}
        finally:
            with self._lock:
                self.log.append(entry)

    def _context_of(self, req):
        ctx = req.get("EncryptionContext")
        if ctx is None:
            return {}
        if not isinstance(ctx, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in ctx.items()):
            raise KmsError("SerializationException", "EncryptionContext must be a map of strings")
        return ctx

    def _blob_of(self, req, name):
        try:
            return base64.b64decode(req[name], validate=True)
        except (KeyError, TypeError, ValueError):
            raise KmsError("ValidationException", f"1 validation error detected: Value at '{name[0].lower() + name[1:]}' "
                                                  "failed to satisfy constraint: Member must not be null")

    def _operation(self, op, req, entry):
        ctx = self._context_of(req)
        if op == "Decrypt":
            blob = self._blob_of(req, "CiphertextBlob")
            want = req.get("KeyId")
            if want:
                kid = self._key_id(want)
                if kid not in self._keys:
                    raise KmsError("NotFoundException", f"Key '{self.key_arn(kid)}' does not exist")
                self._check_key_use(op, kid)
            blob_kid = self._blob_key(blob)
            if blob_kid is not None:
                self._check_key_use(op, blob_kid)
            pt, kid = self._open(blob, ctx, want)
            entry["key"] = self.key_arn(kid)
            return {"KeyId": self.key_arn(kid), "Plaintext": base64.b64encode(pt).decode(),
                    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        if op in ("GenerateDataKey", "Encrypt"):
            kid = self._resolve(req.get("KeyId"))
            entry["key"] = self.key_arn(kid)
            self._check_key_use(op, kid)
            if op == "Encrypt":
                pt = self._blob_of(req, "Plaintext")
                return {"KeyId": self.key_arn(kid), "CiphertextBlob": base64.b64encode(self._seal(kid, pt, ctx)).decode(),
                        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
            spec, nbytes = req.get("KeySpec"), req.get("NumberOfBytes")
            if spec is not None and nbytes is not None:
                raise KmsError("ValidationException", "Please specify either number of bytes or key spec.")
            n = {"AES_256": 32, "AES_128": 16}.get(spec) if spec is not None else nbytes
            if not isinstance(n, int) or not 1 <= n <= 1024:
                raise KmsError("ValidationException", "Please specify either number of bytes or key spec.")
            dk = os.urandom(n)
            return {"KeyId": self.key_arn(kid), "CiphertextBlob": base64.b64encode(self._seal(kid, dk, ctx)).decode(),
                    "Plaintext": base64.b64encode(dk).decode()}
        raise KmsError("UnknownOperationException", "")

    def _blob_key(self, blob):
        reg = self._registered.get(blob)
        if reg is not None:
            return reg[1]
        if blob.startswith(BLOB_MAGIC) and len(blob) > 5:
            kid = blob[5:5 + blob[4]].decode("ascii", "replace")
            return kid if kid in self._keys else None
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    kms = None  # set per server

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # Headers and body are two writes: without TCP_NODELAY the body waits for the client's
        # delayed ACK (40 ms per call), which real KMS does not cost.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def date_time_string(self, timestamp=None):
        # The Date header follows the peer's (possibly skewed) clock: clients correct skew with it.
        return super().date_time_string(self.kms.now() if timestamp is None else timestamp)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _serve(self):
        body = self._read_body()
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        status, answer = self.kms.handle(self.command, self.path, headers, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", JSON_CT)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    do_POST = _serve
    do_GET = _serve
    do_PUT = _serve


class KmsClient:
    """A small signed KMS client for tests (same Python API as KmsPeer's direct calls), using sign_headers."""

    def __init__(self, url, access_key=DEFAULT_ACCESS_KEY, secret=DEFAULT_SECRET, region=DEFAULT_REGION,
                 session_token=None, amz_date=None):
        self.url = url.rstrip("/")
        self.access_key, self.secret, self.region = access_key, secret, region
        self.session_token, self.amz_date = session_token, amz_date

    def call(self, op, req, extra_headers=None, sign=True):
        """-> (status, answer dict)."""
        import http.client
        u = urllib.parse.urlsplit(self.url)
        body = json.dumps(req).encode()
        h = {"Content-Type": JSON_CT, "X-Amz-Target": f"TrentService.{op}"}
        if sign:
            h = sign_headers("POST", u.netloc, "/", "", h, body, self.access_key, self.secret, self.region, "kms",
                             self.amz_date, self.session_token)
        else:
            h["Host"] = u.netloc
        h.update(extra_headers or {})
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        try:
            conn.request("POST", "/", body=body, headers=h)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def _ok(self, op, req):
        status, ans = self.call(op, req)
        if status != 200:
            raise KmsError(ans.get("__type", "?"), ans.get("message", ""), status)
        return ans

    def decrypt(self, blob, context=None, key_id=None):
        req = {"CiphertextBlob": base64.b64encode(blob).decode()}
        if context is not None:
            req["EncryptionContext"] = context
        if key_id:
            req["KeyId"] = key_id
        return base64.b64decode(self._ok("Decrypt", req)["Plaintext"])

    def generate_data_key(self, key_id, context=None, nbytes=32):
        req = {"KeyId": key_id, "KeySpec": "AES_256" if nbytes == 32 else "AES_128"}
        if context is not None:
            req["EncryptionContext"] = context
        ans = self._ok("GenerateDataKey", req)
        return base64.b64decode(ans["Plaintext"]), base64.b64decode(ans["CiphertextBlob"])

    def encrypt(self, key_id, plaintext, context=None):
        req = {"KeyId": key_id, "Plaintext": base64.b64encode(plaintext).decode()}
        if context is not None:
            req["EncryptionContext"] = context
        return base64.b64decode(self._ok("Encrypt", req)["CiphertextBlob"])


def main(argv=None):
    ap = argparse.ArgumentParser(description="KMS test server (see the module doc)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--keys", default="test-key", help="comma-separated key ids, each optionally =<64 hex> master key")
    ap.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    ap.add_argument("--secret", default=DEFAULT_SECRET)
    ap.add_argument("--session-token")
    ap.add_argument("--region", help="accept only this region in the credential scope (default: any)")
    ap.add_argument("--deny", default="", help="comma-separated key ids answered with AccessDeniedException")
    ap.add_argument("--throttle", type=int, default=0, help="answer the first N requests with ThrottlingException")
    ap.add_argument("--clock-offset", type=float, default=0.0, help="seconds added to the server's clock")
    a = ap.parse_args(argv)
    keys = {}
    for item in filter(None, a.keys.split(",")):
        kid, _, hexkey = item.partition("=")
        keys[kid] = bytes.fromhex(hexkey) if hexkey else None
    peer = KmsPeer(keys=keys, access_key=a.access_key, secret=a.secret, session_token=a.session_token,
                   region=a.region, clock_offset_s=a.clock_offset, port=a.port)
    if a.deny:
        peer.deny(*a.deny.split(","))
    if a.throttle:
        peer.throttle(a.throttle)
    peer.start()
    print(json.dumps({"port": peer.port, "url": peer.url,
                      "keys": {peer.key_arn(k): peer.master_key(k).hex() for k in keys}}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    peer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
