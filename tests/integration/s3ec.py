"""A test encryptor and reference decryptor for the Amazon S3 Encryption Client formats (AWS.md §6),
written from the specification (awslabs/aws-encryption-sdk-specification, s3-encryption/) and checked
against the official Ruby SDK (s3ec_ruby.rb, test_s3ec_peers.py).

Every encrypt_* function takes the plaintext and returns an `Encrypted`:
  body         the object body as stored in S3 (ciphertext, GCM tag appended)
  metadata     the object's user metadata, names as stored *without* the `x-amz-meta-` prefix
  instruction  None, or the instruction file's JSON map (`<key>.instruction`); `.instruction_body`
               is its exact body and INSTRUCTION_FILE_METADATA its own metadata
  data_key     the plaintext data key (for assertions)

Key wrapping:
  kms  any object with generate_data_key(key_id, context) -> (data key, blob) and
       encrypt(key_id, data key, context) -> blob and decrypt(blob, context, key_id) -> data key:
       a kmspeer.KmsPeer (direct Python calls) or a kmspeer.KmsClient (signed HTTP).
  kek  a 32-byte key-encryption key (the `AES/GCM` wrap).

Formats written (metadata names as stored):
  v1 `kms` (legacy):     x-amz-key | x-amz-iv (16) | x-amz-matdesc {"kms_cmk_id": key} | x-amz-wrap-alg kms |
                         x-amz-unencrypted-content-length; content AES/CBC/PKCS5Padding.
                         key_field="x-amz-key-v2" writes what the old Java and Ruby v1 clients wrote with KMS
                         (x-amz-key-v2 + x-amz-cek-alg AES/CBC/PKCS5Padding + wrap kms).
  v2 `kms+context`:      x-amz-key-v2 | x-amz-iv (12) | x-amz-cek-alg AES/GCM/NoPadding | x-amz-tag-len 128 |
                         x-amz-wrap-alg kms+context | x-amz-matdesc = the KMS context incl. aws:x-amz-cek-alg |
                         x-amz-unencrypted-content-length; content AES-256-GCM, empty AAD.
  v2 `AES/GCM`:          as above with x-amz-key-v2 = iv12 | GCM(kek, dk, aad=b"AES/GCM/NoPadding") | tag16,
                         x-amz-wrap-alg AES/GCM, x-amz-matdesc {} (or the given material description).
  v3 (suite 115):        x-amz-c 115 | x-amz-3 | x-amz-w 02 or 12 | x-amz-i (28-byte message id) |
                         x-amz-d (28-byte commitment) | x-amz-t (KMS context, 12) or x-amz-m (mat. desc., 02,
                         written only when not empty, as the Java client does). HKDF-SHA512(ikm=dk, salt=message id):
                         DEK = expand(b"\\x00\\x73DERIVEKEY", 32), commitment = expand(b"\\x00\\x73COMMITKEY", 28);
                         content AES-256-GCM(DEK, iv=12 x 0x01, aad=b"\\x00\\x73").
                         Wrap 02: iv12 | GCM(kek, dk, aad=b"115") | tag16 (the suite id as a decimal string, as the
                         Java client's AesKeyring does; the spec has no AES keyring page). Wrap 12: KMS context
                         = user context + {"aws:x-amz-cek-alg": "115"}.
                         Instruction file (v3): x-amz-3, x-amz-w, x-amz-m, x-amz-t; x-amz-c, x-amz-d, x-amz-i stay
                         in the object metadata.
"""
import base64
import dataclasses
import hmac
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CEK_GCM = "AES/GCM/NoPadding"
CEK_CBC = "AES/CBC/PKCS5Padding"
CEK_CBC7 = "AES/CBC/PKCS7Padding"
SUITE_V3 = 0x0073
SUITE_V3_STR = "115"
SUITE_V3_BYTES = b"\x00\x73"
RESERVED_CEK = "aws:x-amz-cek-alg"
RESERVED_CMK = "kms_cmk_id"
V3_FIXED_IV = b"\x01" * 12
V3_MESSAGE_ID_LEN = 28
V3_COMMITMENT_LEN = 28
WRAP_V3 = {"02": "AES/GCM", "12": "kms+context", "22": "RSA-OAEP-SHA1"}
INSTRUCTION_SUFFIX = ".instruction"
INSTRUCTION_FILE_METADATA = {"x-amz-crypto-instr-file": ""}

V1_ONLY = {"x-amz-key"}
V2_ONLY = {"x-amz-key-v2", "x-amz-cek-alg", "x-amz-wrap-alg", "x-amz-tag-len"}
V12_SHARED = {"x-amz-iv", "x-amz-matdesc"}
V3_ONLY = {"x-amz-c", "x-amz-3", "x-amz-w", "x-amz-d", "x-amz-i", "x-amz-m", "x-amz-t"}
V3_OBJECT_ONLY = {"x-amz-c", "x-amz-d", "x-amz-i"}          # never in a v3 instruction file
V3_INSTRUCTION = {"x-amz-3", "x-amz-w", "x-amz-m", "x-amz-t"}


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s, what="base64 value"):
    try:
        return base64.b64decode(s, validate=True)
    except (TypeError, ValueError):
        raise S3ECError("format", f"{what} is not base64")


def dump_json(d):
    """Compact JSON as the SDKs write matdesc / context (Ruby Json.dump, Java JsonWriter)."""
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False)


class S3ECError(Exception):
    """Refusal by the reference decryptor. reason: format | mixed | legacy | cek-alg | wrap-alg | context |
    cek-mismatch | instruction | commitment | tag | padding | key | kms:<KMS error type>."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass
class Encrypted:
    body: bytes
    metadata: dict
    instruction: dict = None
    data_key: bytes = None

    @property
    def instruction_body(self):
        return None if self.instruction is None else dump_json(self.instruction).encode()

    def s3_headers(self):
        """The object's metadata as HTTP headers (x-amz-meta- prefix)."""
        return {"x-amz-meta-" + k: v for k, v in self.metadata.items()}

    def copy(self, **changes):
        d = {"body": self.body, "metadata": dict(self.metadata),
             "instruction": None if self.instruction is None else dict(self.instruction), "data_key": self.data_key}
        d.update(changes)
        return Encrypted(**d)


# --- primitives ------------------------------------------------------------------------------------------

def _gcm_wrap(kek, dk, aad, iv=None):
    iv = iv or os.urandom(12)
    return iv + AESGCM(kek).encrypt(iv, dk, aad)


def _gcm_unwrap(kek, wrapped, aad):
    if len(wrapped) != 12 + 32 + 16:
        raise S3ECError("key", f"wrapped key of {len(wrapped)} bytes")
    try:
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)
    except InvalidTag:
        raise S3ECError("key", "AES/GCM key unwrap failed")


def _cbc_encrypt(dk, iv, pt):
    p = padding.PKCS7(128).padder()
    e = Cipher(algorithms.AES(dk), modes.CBC(iv)).encryptor()
    return e.update(p.update(pt) + p.finalize()) + e.finalize()


def _cbc_decrypt(dk, iv, ct):
    if len(ct) % 16 or not ct:
        raise S3ECError("padding", "CBC ciphertext is not a whole number of blocks")
    d = Cipher(algorithms.AES(dk), modes.CBC(iv)).decryptor()
    padded = d.update(ct) + d.finalize()
    u = padding.PKCS7(128).unpadder()
    try:
        return u.update(padded) + u.finalize()
    except ValueError:
        raise S3ECError("padding", "bad PKCS#7 padding")


def _v3_expand(data_key, message_id, label, n):
    return HKDF(algorithm=hashes.SHA512(), length=n, salt=message_id, info=SUITE_V3_BYTES + label).derive(data_key)


def v3_commitment(data_key, message_id):
    """The 28-byte key commitment of suite 115: HKDF-SHA512(ikm=dk, salt=message id, info=00 73 "COMMITKEY")."""
    return _v3_expand(data_key, message_id, b"COMMITKEY", V3_COMMITMENT_LEN)


def v3_derived_key(data_key, message_id):
    """The 32-byte content key of suite 115: HKDF-SHA512(ikm=dk, salt=message id, info=00 73 "DERIVEKEY")."""
    return _v3_expand(data_key, message_id, b"DERIVEKEY", 32)


def v3_derive(data_key, message_id):
    """-> (derived encryption key (32), commitment (28)) of suite 115 (key-derivation.md)."""
    return v3_derived_key(data_key, message_id), v3_commitment(data_key, message_id)


def _split_instruction(meta, to_instruction, instruction_names=None):
    """Moves the envelope (all of it, or `instruction_names`) from meta into an instruction map."""
    if not to_instruction:
        return meta, None
    names = instruction_names if instruction_names is not None else set(meta) - {"x-amz-unencrypted-content-length"}
    instr = {k: v for k, v in meta.items() if k in names}
    rest = {k: v for k, v in meta.items() if k not in names}
    return rest, instr


# --- encryptors -------------------------------------------------------------------------------------------

def encrypt_v1_kms(plaintext, kms, key_id, *, key_field="x-amz-key", instruction_file=False, data_key=None, iv=None):
    """Legacy CBC content with the `kms` wrap (context {"kms_cmk_id": key_id})."""
    ctx = {RESERVED_CMK: key_id}
    if data_key is None:
        data_key, blob = kms.generate_data_key(key_id, ctx)
    else:
        blob = kms.encrypt(key_id, data_key, ctx)
    iv = iv or os.urandom(16)
    body = _cbc_encrypt(data_key, iv, plaintext)
    meta = {key_field: b64(blob), "x-amz-iv": b64(iv), "x-amz-matdesc": dump_json(ctx), "x-amz-wrap-alg": "kms"}
    if key_field == "x-amz-key-v2":
        meta["x-amz-cek-alg"] = CEK_CBC
    meta["x-amz-unencrypted-content-length"] = str(len(plaintext))
    meta, instr = _split_instruction(meta, instruction_file)
    return Encrypted(body, meta, instr, data_key)


def _v2_gcm(plaintext, data_key, iv, key_v2, wrap_alg, matdesc, instruction_file):
    iv = iv or os.urandom(12)
    body = AESGCM(data_key).encrypt(iv, plaintext, None)
    meta = {"x-amz-key-v2": b64(key_v2), "x-amz-iv": b64(iv), "x-amz-cek-alg": CEK_GCM, "x-amz-tag-len": "128",
            "x-amz-wrap-alg": wrap_alg, "x-amz-matdesc": dump_json(matdesc),
            "x-amz-unencrypted-content-length": str(len(plaintext))}
    meta, instr = _split_instruction(meta, instruction_file)
    return Encrypted(body, meta, instr, data_key)


def encrypt_v2_kms_context(plaintext, kms, key_id, *, context=None, instruction_file=False, data_key=None, iv=None,
                           blob=None):
    """v2 GCM, `kms+context`: matdesc = context + aws:x-amz-cek-alg. `data_key` with its `blob` (from
    an earlier object's Encrypted.metadata) encrypts another object under the same wrapped key."""
    ctx = dict(context or {})
    ctx[RESERVED_CEK] = CEK_GCM
    if data_key is not None and blob is not None:
        pass
    elif data_key is None:
        data_key, blob = kms.generate_data_key(key_id, ctx)
    else:
        blob = kms.encrypt(key_id, data_key, ctx)
    return _v2_gcm(plaintext, data_key, iv, blob, "kms+context", ctx, instruction_file)


def encrypt_v2_kms_context_stream(chunks, out, kms, key_id, *, context=None):
    """v2 GCM `kms+context` of a large plaintext given as an iterable of byte chunks, written to the
    binary file `out` (ciphertext then tag) without holding it in memory: -> Encrypted with body None."""
    ctx = dict(context or {})
    ctx[RESERVED_CEK] = CEK_GCM
    data_key, blob = kms.generate_data_key(key_id, ctx)
    iv = os.urandom(12)
    enc = Cipher(algorithms.AES(data_key), modes.GCM(iv)).encryptor()
    n = 0
    for c in chunks:
        n += len(c)
        out.write(enc.update(c))
    out.write(enc.finalize())
    out.write(enc.tag)
    meta = {"x-amz-key-v2": b64(blob), "x-amz-iv": b64(iv), "x-amz-cek-alg": CEK_GCM, "x-amz-tag-len": "128",
            "x-amz-wrap-alg": "kms+context", "x-amz-matdesc": dump_json(ctx),
            "x-amz-unencrypted-content-length": str(n)}
    return Encrypted(None, meta, None, data_key)


def encrypt_v2_aes_gcm(plaintext, kek, *, matdesc=None, instruction_file=False, data_key=None, iv=None, wrap_iv=None):
    """v2 GCM, `AES/GCM` wrap with a local KEK."""
    data_key = data_key or os.urandom(32)
    wrapped = _gcm_wrap(kek, data_key, CEK_GCM.encode(), wrap_iv)
    return _v2_gcm(plaintext, data_key, iv, wrapped, "AES/GCM", dict(matdesc or {}), instruction_file)


def _v3(plaintext, data_key, message_id, wrapped, wrap_code, ctx_name, ctx, instruction_file):
    message_id = message_id or os.urandom(V3_MESSAGE_ID_LEN)
    dek, commitment = v3_derive(data_key, message_id)
    body = AESGCM(dek).encrypt(V3_FIXED_IV, plaintext, SUITE_V3_BYTES)
    meta = {"x-amz-c": SUITE_V3_STR, "x-amz-3": b64(wrapped), "x-amz-w": wrap_code,
            "x-amz-i": b64(message_id), "x-amz-d": b64(commitment)}
    if ctx is not None:
        meta[ctx_name] = dump_json(ctx)
    meta, instr = _split_instruction(meta, instruction_file, V3_INSTRUCTION)
    return Encrypted(body, meta, instr, data_key)


def encrypt_v3_aes_gcm(plaintext, kek, *, matdesc=None, instruction_file=False, data_key=None, message_id=None,
                       wrap_iv=None):
    """v3 (suite 115), wrap 02 (AES/GCM with a KEK, AAD b"115"); x-amz-m only when matdesc is not empty."""
    data_key = data_key or os.urandom(32)
    wrapped = _gcm_wrap(kek, data_key, SUITE_V3_STR.encode(), wrap_iv)
    return _v3(plaintext, data_key, message_id, wrapped, "02", "x-amz-m", dict(matdesc) if matdesc else None,
               instruction_file)


def encrypt_v3_kms_context(plaintext, kms, key_id, *, context=None, instruction_file=False, data_key=None,
                           message_id=None):
    """v3 (suite 115), wrap 12 (kms+context); x-amz-t = context + aws:x-amz-cek-alg "115"."""
    ctx = dict(context or {})
    ctx[RESERVED_CEK] = SUITE_V3_STR
    if data_key is None:
        data_key, blob = kms.generate_data_key(key_id, ctx)
    else:
        blob = kms.encrypt(key_id, data_key, ctx)
    return _v3(plaintext, data_key, message_id, blob, "12", "x-amz-t", ctx, instruction_file)


# --- tamper helpers (each returns a modified copy) ---------------------------------------------------------

def _is_gcm(enc):
    m = dict(enc.instruction or {}, **enc.metadata)
    return "x-amz-c" in m or m.get("x-amz-cek-alg") == CEK_GCM


def _flip(data, i):
    b = bytearray(data)
    b[i] ^= 0x01
    return bytes(b)


def flip_ciphertext(enc, where="middle"):
    """One bit of the ciphertext (the tag excluded for GCM) flipped: where = start | middle | end | an offset."""
    n = len(enc.body) - (16 if _is_gcm(enc) else 0)
    if n <= 0:
        raise ValueError("no ciphertext bytes to flip")
    i = {"start": 0, "middle": n // 2, "end": n - 1}.get(where, where)
    return enc.copy(body=_flip(enc.body, i))


def flip_tag(enc, index=0):
    """One bit of the 16-byte GCM tag flipped."""
    return enc.copy(body=_flip(enc.body, len(enc.body) - 16 + index))


def truncate(enc, n=1):
    return enc.copy(body=enc.body[:-n])


def set_field(enc, name, value):
    """Sets (value None: removes) an envelope field where it lives: the instruction file if there, else the
    object metadata."""
    c = enc.copy()
    where = c.instruction if c.instruction is not None and name in c.instruction else c.metadata
    if value is None:
        where.pop(name, None)
    else:
        where[name] = value
    return c


def get_field(enc, name):
    if enc.instruction is not None and name in enc.instruction:
        return enc.instruction[name]
    return enc.metadata.get(name)


def alter_context(enc, key="purpose", value="tampered"):
    """Adds or changes one entry of the stored matdesc / KMS context (x-amz-matdesc, x-amz-t or x-amz-m)."""
    for name in ("x-amz-matdesc", "x-amz-t", "x-amz-m"):
        cur = get_field(enc, name)
        if cur is not None:
            d = json.loads(cur)
            d[key] = value
            return set_field(enc, name, dump_json(d))
    return set_field(enc, "x-amz-m", dump_json({key: value}))


def wrong_commitment(enc):
    """x-amz-d with one bit flipped."""
    d = bytearray(unb64(enc.metadata["x-amz-d"]))
    d[0] ^= 0x01
    return set_field(enc, "x-amz-d", b64(bytes(d)))


def wrong_message_id(enc):
    """x-amz-i with one bit flipped (the commitment no longer matches)."""
    d = bytearray(unb64(enc.metadata["x-amz-i"]))
    d[-1] ^= 0x01
    return set_field(enc, "x-amz-i", b64(bytes(d)))


def wrong_iv(enc):
    iv = bytearray(unb64(get_field(enc, "x-amz-iv")))
    iv[0] ^= 0x01
    return set_field(enc, "x-amz-iv", b64(bytes(iv)))


def v3_cdi_in_instruction(enc, names=("x-amz-c", "x-amz-d", "x-amz-i"), values=None):
    """A v3 instruction file that also holds x-amz-c / -d / -i (copied, or `values`): tampered by definition."""
    if enc.instruction is None:
        raise ValueError("not an instruction-file object")
    c = enc.copy()
    for n in names:
        c.instruction[n] = (values or {}).get(n, enc.metadata[n])
    return c


def mix_versions(enc, name="x-amz-key", value="AAAA"):
    """Adds a name of another format version to the metadata."""
    c = enc.copy()
    c.metadata[name] = value
    return c


# --- reference decryptor ------------------------------------------------------------------------------------

def _json_map(s, what):
    try:
        d = json.loads(s)
    except (TypeError, ValueError):
        raise S3ECError("format", f"{what} is not JSON")
    if not isinstance(d, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in d.items()):
        raise S3ECError("format", f"{what} is not a map of strings")
    return d


def _pick_kek(kek, matdesc):
    if kek is None:
        raise S3ECError("key", "no key-encryption key configured")
    if callable(kek):
        k = kek(matdesc)
    elif isinstance(kek, dict):
        k = kek.get(dump_json(dict(sorted(matdesc.items()))))
    else:
        k = kek
    if k is None:
        raise S3ECError("key", f"no key-encryption key for material description {matdesc}")
    return k


def _check_user_context(stored, expected):
    if expected is None:
        return
    user = {k: v for k, v in stored.items() if k not in (RESERVED_CEK, RESERVED_CMK)}
    if user != dict(expected):
        raise S3ECError("context", f"stored context {user} is not the expected {dict(expected)}")


def _kms_decrypt(kms, blob, ctx, key_id):
    if kms is None:
        raise S3ECError("key", "no KMS client configured")
    try:
        return kms.decrypt(blob, ctx, key_id)
    except Exception as e:  # kmspeer.KmsError and its HTTP twin
        raise S3ECError("kms:" + getattr(e, "type", type(e).__name__), str(e))


def locate_envelope(metadata, instruction=None):
    """-> (format "v1" | "v2" | "v3", the envelope map). Follows content-metadata.md / metadata-strategy.md:
    names of two versions mixed are refused; the instruction file is used when the metadata holds no envelope;
    a v3 instruction file holding x-amz-c/-d/-i is tampered."""
    meta = dict(metadata)
    names = set(meta)
    has12, has3 = names & (V1_ONLY | V2_ONLY | V12_SHARED), names & V3_ONLY
    if has12 and has3:
        raise S3ECError("mixed", f"v1/v2 names {sorted(has12)} with v3 names {sorted(has3)}")
    if "x-amz-key" in names and "x-amz-key-v2" in names:
        raise S3ECError("mixed", "x-amz-key with x-amz-key-v2")
    if "x-amz-iv" in names and ("x-amz-key" in names or "x-amz-key-v2" in names):
        return ("v1" if "x-amz-key" in names else "v2"), meta
    if {"x-amz-3", "x-amz-d", "x-amz-i", "x-amz-c"} <= names:
        return "v3", meta
    if {"x-amz-d", "x-amz-i", "x-amz-c"} <= names and "x-amz-3" not in names:
        if instruction is None:
            raise S3ECError("instruction", "v3 object without x-amz-3 and no instruction file")
        instr = dict(instruction)
        bad = set(instr) & V3_OBJECT_ONLY
        if bad:
            raise S3ECError("instruction", f"instruction file holds object-only names {sorted(bad)}")
        other = set(instr) & (V1_ONLY | V2_ONLY | V12_SHARED)
        if other:
            raise S3ECError("mixed", f"v3 instruction file holds v1/v2 names {sorted(other)}")
        if "x-amz-3" not in instr or "x-amz-w" not in instr:
            raise S3ECError("instruction", "v3 instruction file without x-amz-3 / x-amz-w")
        merged = {k: v for k, v in instr.items() if k in V3_INSTRUCTION}
        merged.update({k: meta[k] for k in V3_OBJECT_ONLY})
        return "v3", merged
    if has3:
        raise S3ECError("format", f"incomplete v3 metadata {sorted(has3)}")
    if instruction is None:
        raise S3ECError("format", "no envelope in the metadata and no instruction file")
    instr = dict(instruction)
    if set(instr) & V3_ONLY:
        raise S3ECError("instruction", "v3 names in an instruction file of an object without v3 metadata")
    if "x-amz-iv" in instr and ("x-amz-key" in instr) != ("x-amz-key-v2" in instr):
        return ("v1" if "x-amz-key" in instr else "v2"), instr
    raise S3ECError("instruction", "instruction file holds no complete v1/v2 envelope")


def decrypt_object(body, metadata, *, instruction=None, kms=None, kms_key_id=None, kek=None,
                   expected_context=None, allow_legacy=True):
    """The plaintext of an S3EC object, or S3ECError.
    metadata: names without `x-amz-meta-`; instruction: the instruction file's map (dict) or body (bytes/str).
    kms: see the module doc; kms_key_id: the KeyId sent with Decrypt (None: any key, the blob's).
    kek: 32 bytes, or {compact sorted JSON of a matdesc: key}, or a callable(matdesc dict) -> key.
    expected_context: the user context the stored KMS context must equal once aws:x-amz-cek-alg and
    kms_cmk_id are removed (None: not checked). allow_legacy: CBC content and the `kms` wrap."""
    if isinstance(instruction, (bytes, str)):
        instruction = _json_map(instruction, "instruction file")
    fmt, env = locate_envelope(metadata, instruction)
    if fmt == "v3":
        return _decrypt_v3(body, env, kms, kms_key_id, kek, expected_context)
    return _decrypt_v12(body, env, kms, kms_key_id, kek, expected_context, allow_legacy)


def _decrypt_v12(body, env, kms, kms_key_id, kek, expected_context, allow_legacy):
    cek = env.get("x-amz-cek-alg", CEK_CBC)              # a missing cek-alg means CBC
    if cek not in (CEK_GCM, CEK_CBC, CEK_CBC7):
        raise S3ECError("cek-alg", f"unsupported content algorithm {cek!r}")
    if cek == CEK_GCM and env.get("x-amz-tag-len") != "128":
        raise S3ECError("format", f"GCM object with x-amz-tag-len {env.get('x-amz-tag-len')!r}")
    if cek != CEK_GCM and "x-amz-tag-len" in env:
        raise S3ECError("format", "x-amz-tag-len on a CBC object")
    if cek != CEK_GCM and not allow_legacy:
        raise S3ECError("legacy", "CBC content and legacy decryption is not enabled")
    iv = unb64(env["x-amz-iv"], "x-amz-iv")
    if len(iv) != (12 if cek == CEK_GCM else 16):
        raise S3ECError("format", f"x-amz-iv of {len(iv)} bytes for {cek}")
    wrapped = unb64(env.get("x-amz-key-v2") or env.get("x-amz-key"), "wrapped key")
    matdesc = _json_map(env.get("x-amz-matdesc", "{}"), "x-amz-matdesc")
    wrap = env.get("x-amz-wrap-alg")
    if wrap == "kms+context":
        if matdesc.get(RESERVED_CEK) != cek:
            raise S3ECError("cek-mismatch", f"context {RESERVED_CEK}={matdesc.get(RESERVED_CEK)!r} but content is {cek}")
        _check_user_context(matdesc, expected_context)
        dk = _kms_decrypt(kms, wrapped, matdesc, kms_key_id)
    elif wrap == "kms":
        if not allow_legacy:
            raise S3ECError("legacy", "`kms` wrap and legacy decryption is not enabled")
        _check_user_context(matdesc, expected_context)
        dk = _kms_decrypt(kms, wrapped, matdesc, kms_key_id)
    elif wrap == "AES/GCM":
        if "x-amz-key" in env:
            raise S3ECError("format", "AES/GCM wrap with a v1 x-amz-key")
        dk = _gcm_unwrap(_pick_kek(kek, matdesc), wrapped, cek.encode())
    else:
        raise S3ECError("wrap-alg", f"unsupported wrap algorithm {wrap!r}")
    if len(dk) != 32:
        raise S3ECError("key", f"data key of {len(dk)} bytes")
    if cek == CEK_GCM:
        if len(body) < 16:
            raise S3ECError("tag", "body shorter than the tag")
        try:
            return AESGCM(dk).decrypt(iv, body, None)
        except InvalidTag:
            raise S3ECError("tag", "GCM tag mismatch")
    return _cbc_decrypt(dk, iv, body)


def _decrypt_v3(body, env, kms, kms_key_id, kek, expected_context):
    if env.get("x-amz-c") != SUITE_V3_STR:
        raise S3ECError("cek-alg", f"unsupported v3 content algorithm {env.get('x-amz-c')!r}")
    wrap = WRAP_V3.get(env.get("x-amz-w"))
    message_id = unb64(env["x-amz-i"], "x-amz-i")
    commitment = unb64(env["x-amz-d"], "x-amz-d")
    if len(message_id) != V3_MESSAGE_ID_LEN or len(commitment) != V3_COMMITMENT_LEN:
        raise S3ECError("format", "x-amz-i / x-amz-d of the wrong length")
    if message_id == bytes(V3_MESSAGE_ID_LEN):
        raise S3ECError("format", "all-zero message id")
    wrapped = unb64(env["x-amz-3"], "x-amz-3")
    if wrap == "kms+context":
        ctx = _json_map(env.get("x-amz-t", "{}"), "x-amz-t")
        if ctx.get(RESERVED_CEK) != SUITE_V3_STR:
            raise S3ECError("cek-mismatch", f"context {RESERVED_CEK}={ctx.get(RESERVED_CEK)!r}, content is 115")
        _check_user_context(ctx, expected_context)
        dk = _kms_decrypt(kms, wrapped, ctx, kms_key_id)
    elif wrap == "AES/GCM":
        matdesc = _json_map(env.get("x-amz-m", "{}"), "x-amz-m")
        dk = _gcm_unwrap(_pick_kek(kek, matdesc), wrapped, SUITE_V3_STR.encode())
    else:
        raise S3ECError("wrap-alg", f"unsupported v3 wrap {env.get('x-amz-w')!r}")
    if len(dk) != 32:
        raise S3ECError("key", f"data key of {len(dk)} bytes")
    # The commitment is verified (in constant time) before the content key is even derived (decryption.md).
    if not hmac.compare_digest(v3_commitment(dk, message_id), commitment):
        raise S3ECError("commitment", "key commitment mismatch")
    dek = v3_derived_key(dk, message_id)
    if len(body) < 16:
        raise S3ECError("tag", "body shorter than the tag")
    try:
        return AESGCM(dek).decrypt(V3_FIXED_IV, body, SUITE_V3_BYTES)
    except InvalidTag:
        raise S3ECError("tag", "GCM tag mismatch")


def decrypt(enc, **kw):
    """decrypt_object() of an Encrypted."""
    return decrypt_object(enc.body, enc.metadata, instruction=enc.instruction, **kw)


# --- the official Ruby SDK as a second producer / consumer (s3ec_ruby.rb) ---------------------------------

RUBY_PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "s3ec_ruby.rb")


def run_ruby(jobs, timeout=60):
    """Runs s3ec_ruby.rb on a list of jobs (see its header) in one Ruby process; -> its list of results.
    Raises AssertionError (never skips) when Ruby or Debian's ruby-aws-sdk-s3 / ruby-aws-sdk-kms are missing."""
    import shutil
    import subprocess
    import tempfile
    ruby = shutil.which("ruby")
    if ruby is None:
        raise AssertionError("ruby is not installed (packaging/install-deps.sh installs ruby-aws-sdk-s3, ruby-aws-sdk-kms)")
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="s3ec-ruby-", delete=False) as f:
        json.dump(jobs, f)
        path = f.name
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "proxy" not in k.lower()}
        env.update({"AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1,localhost"})
        r = subprocess.run([ruby, RUBY_PEER, path], capture_output=True, text=True, timeout=timeout, env=env)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise AssertionError(f"s3ec_ruby.rb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return json.loads(r.stdout)
