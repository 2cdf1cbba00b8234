#!/usr/bin/env python3
"""Write the GGUF regression corpus: tiny synthetic files, valid and malformed.

Each case is built from one small valid file by changing one thing, so a failure
points at exactly one check in src/gguf/gguf.c. The index file lists, for every
file, the expected outcome of gguf_open(): "ok", or "error" followed by a
substring that lmz_last_error() must contain. tests/test_gguf.c replays it and
fuzz/run.sh seeds the fuzzer with the same files.

usage: make_gguf_corpus.py [OUT_DIR]      (default tests/fixtures/gguf)
The output is deterministic; rerun after changing a case and commit the result.
"""
import os
import struct
import sys

OUT_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "gguf")
INDEX_NAME = "index.txt"

# GGUF value types (gguf-spec.md §1.2).
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR_FORMAT = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
                 FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}

# ggml tensor types used here: id -> (block elements, block bytes) (gguf-spec.md §1.6).
F32, Q4_1, Q8_0 = 0, 3, 8
GEOMETRY = {F32: (1, 4), Q4_1: (32, 20), Q8_0: (32, 34)}


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def gstr(s):
    """A GGUF string: u64 length, then the bytes (no NUL)."""
    b = s.encode() if isinstance(s, str) else s
    return u64(len(b)) + b


def value_bytes(vtype, value):
    if vtype == STRING:
        return gstr(value)
    if vtype == ARRAY:
        elem_type, elems = value
        body = b"".join(value_bytes(elem_type, e) for e in elems)
        return u32(elem_type) + u64(len(elems)) + body
    return struct.pack(SCALAR_FORMAT[vtype], value)


class KV:
    """One metadata record; RAW, when given, replaces the encoded value (for lying records)."""

    def __init__(self, key, vtype, value=None, raw=None):
        self.key, self.vtype, self.value, self.raw = key, vtype, value, raw

    def encode(self):
        body = self.raw if self.raw is not None else value_bytes(self.vtype, self.value)
        return gstr(self.key) + u32(self.vtype) + body


class Tensor:
    """One tensor-info record plus its data; OFFSET None means 'next aligned slot'."""

    def __init__(self, name, ne, ttype, offset=None, n_dims=None):
        self.name, self.ne, self.ttype, self.offset = name, list(ne), ttype, offset
        self.n_dims = len(self.ne) if n_dims is None else n_dims

    def nbytes(self):
        elems, per_block = GEOMETRY[self.ttype]
        count = 1
        for n in self.ne:
            count *= n
        return count // elems * per_block

    def encode(self):
        return (gstr(self.name) + u32(self.n_dims) + b"".join(u64(n) for n in self.ne)
                + u32(self.ttype) + u64(self.offset or 0))


def align_up(n, a):
    return (n + a - 1) // a * a


def placeable(t):
    """Whether the builder lays out and fills T's data: small, sane tensors only, so the lying
    ones (huge dims or offsets) cost no bytes in the corpus."""
    return (t.ttype in GEOMETRY and all(0 < n < 1 << 20 for n in t.ne) and t.nbytes() <= 4096
            and (t.offset is None or t.offset < 1 << 20))


def tensor_payload(t):
    """Recognisable, valid-looking contents: F32 counts up, quant blocks get scale 1.0 (f16 0x3c00)."""
    if t.ttype == F32:
        return b"".join(struct.pack("<f", float(i)) for i in range(t.nbytes() // 4))
    per_block = GEOMETRY[t.ttype][1]
    out = b""
    for b in range(t.nbytes() // per_block):
        if t.ttype == Q8_0:
            out += struct.pack("<H", 0x3C00) + bytes((i - 16 + b) & 0xFF for i in range(32))
        else:  # Q4_1: scale 1.0, min 0.0, 16 bytes of nibble pairs
            out += struct.pack("<HH", 0x3C00, 0) + bytes(((2 * i) & 15) | (((2 * i + 1) & 15) << 4)
                                                          for i in range(16))
    return out


def build(kvs, tensors=(), version=3, magic=b"GGUF", alignment=32, n_kv=None, n_tensors=None,
          data_slack=0):
    """Assembles a file. Offsets left as None are laid out contiguously at ALIGNMENT; N_KV and
    N_TENSORS override the header counts; DATA_SLACK trims (<0) or extends (>0) the data blob."""
    cursor = 0
    for t in tensors:
        fits = placeable(t)
        if t.offset is None:
            t.offset = cursor
        if fits:
            cursor = align_up(t.offset + t.nbytes(), alignment)
    head = (magic + u32(version) + u64(len(tensors) if n_tensors is None else n_tensors)
            + u64(len(kvs) if n_kv is None else n_kv))
    head += b"".join(kv.encode() for kv in kvs) + b"".join(t.encode() for t in tensors)
    if not tensors:
        return head
    data = bytearray()
    for t in tensors:
        if placeable(t):
            payload = tensor_payload(t)
            if len(data) < t.offset + len(payload):
                data.extend(b"\0" * (t.offset + len(payload) - len(data)))
            data[t.offset:t.offset + len(payload)] = payload
    if data_slack < 0:
        data = data[:data_slack]
    else:
        data += b"\0" * data_slack
    return head + b"\0" * (align_up(len(head), alignment) - len(head)) + bytes(data)


# The reference valid file: every scalar type, strings, arrays (incl. of strings), three tensors.
def base_kvs():
    return [
        KV("general.architecture", STRING, "llama"),
        KV("general.name", STRING, "lmz corpus"),
        KV("test.u8", UINT8, 200),
        KV("test.i8", INT8, -100),
        KV("test.u16", UINT16, 60000),
        KV("test.i16", INT16, -30000),
        KV("test.u32", UINT32, 4000000000),
        KV("test.i32", INT32, -2000000000),
        KV("test.f32", FLOAT32, 0.5),
        KV("test.bool", BOOL, True),
        KV("test.u64", UINT64, 1 << 40),
        KV("test.i64", INT64, -(1 << 40)),
        KV("test.f64", FLOAT64, 2.25),
        KV("test.tokens", ARRAY, (STRING, ["<s>", "hello", "", "w\u00f6rld"])),
        KV("test.scores", ARRAY, (FLOAT32, [0.0, -1.5, 3.0])),
        KV("test.types", ARRAY, (INT32, [1, -2, 3, 4, 5])),
        KV("test.empty", ARRAY, (UINT8, [])),
    ]


def base_tensors():
    return [
        Tensor("weights.f32", [4, 2], F32),
        Tensor("weights.q8_0", [32, 2], Q8_0),
        Tensor("weights.q4_1", [64], Q4_1),
    ]


def small_kvs():
    """The metadata for the tensor-table cases, which do not need the full set."""
    return [KV("general.architecture", STRING, "llama")]


def base(**kw):
    return build(base_kvs(), base_tensors(), **kw)


def replace_kv(key, new):
    return [new if kv.key == key else kv for kv in base_kvs()]


def replace_tensor(name, new):
    return [new if t.name == name else t for t in base_tensors()]


def kv_offset(key):
    """Byte offset where record KEY starts in the base file."""
    pos = 24
    for kv in base_kvs():
        if kv.key == key:
            return pos
        pos += len(kv.encode())
    raise KeyError(key)


def cases():
    """Yields (file name, bytes, expected) with expected 'ok' or ('error', substring)."""
    ok = "ok"

    def err(s):
        return ("error", s)

    full = base()
    yield "ok_full_v3.gguf", full, ok
    yield "ok_full_v2.gguf", base(version=2), ok
    yield "ok_header_only.gguf", build([], []), ok
    yield "ok_metadata_only.gguf", build(base_kvs(), []), ok
    yield "ok_alignment_64.gguf", build(base_kvs() + [KV("general.alignment", UINT32, 64)],
                                        base_tensors(), alignment=64), ok
    yield "ok_alignment_1.gguf", build(base_kvs() + [KV("general.alignment", UINT32, 1)],
                                       base_tensors(), alignment=1), ok
    # Strings are opaque bytes: embedded NUL and invalid UTF-8 are not the reader's business.
    yield "ok_binary_string.gguf", build(replace_kv("general.name", KV("general.name", STRING,
                                                                       b"a\0b\xff\xfe")), []), ok
    yield "ok_trailing_bytes.gguf", base(data_slack=100), ok

    # Header.
    yield "empty.gguf", b"", err("not a GGUF file")
    yield "magic_short.gguf", b"GG", err("bad magic")
    yield "magic_wrong.gguf", b"GGUX" + full[4:], err("bad magic")
    yield "magic_lowercase.gguf", b"gguf" + full[4:], err("bad magic")
    yield "version_0.gguf", base(version=0), err("unsupported GGUF version 0")
    yield "version_1.gguf", base(version=1), err("unsupported GGUF version 1")
    yield "version_4.gguf", base(version=4), err("unsupported GGUF version 4")
    yield "version_big_endian.gguf", base(version=3 << 24), err("big-endian")
    yield "count_kv_huge.gguf", base(n_kv=1 << 63), err("header claims 9223372036854775808 metadata keys")
    yield "count_tensors_huge.gguf", base(n_tensors=1 << 40), err("header claims")
    yield "count_kv_all_ones.gguf", base(n_kv=(1 << 64) - 1), err("header claims")
    yield "count_kv_one_too_many.gguf", build(base_kvs(), [], n_kv=len(base_kvs()) + 1), \
        err("truncated GGUF file: metadata key 17 at byte")
    yield "count_tensors_one_too_many.gguf", base(n_tensors=4), err("tensor info 3")

    # Truncation: inside every header field, inside every field of a string, a scalar, an array of
    # strings and an empty array, at the end of every other record, and around the data section.
    # Cuts that leave fewer bytes than N_KV minimal records all hit the header count check, so
    # only two of those are kept.
    cuts = {4, 6, 8, 12, 16, 20, 24, 30}
    pos = 24
    for kv in base_kvs():
        rec = len(kv.encode())
        klen = 8 + len(kv.key.encode())
        if kv.key in ("test.u64", "test.tokens", "test.empty"):
            cuts |= {pos + 3, pos + 8, pos + klen - 1, pos + klen + 2, pos + klen + 4, pos + klen + 10,
                     pos + rec - 1}
        elif pos + rec - 1 >= 24 + 14 * len(base_kvs()):
            cuts.add(pos + rec - 1)
        pos += rec
    for t in base_tensors():
        rec = len(t.encode())
        cuts |= {pos, pos + 5, pos + 8 + len(t.name) + 2, pos + rec - 9, pos + rec - 1}
        pos += rec
    cuts |= {pos, pos + 1, align_up(pos, 32) - 1, align_up(pos, 32), align_up(pos, 32) + 31,
             len(full) - 41, len(full) - 1}
    for cut in sorted(c for c in cuts if 4 <= c < len(full)):
        yield "truncated_at_%04d.gguf" % cut, full[:cut], err("truncated")
    # The first record, in a file with only that key, so the cuts reach the string parser.
    one_key = build(small_kvs())
    for cut in (38, 45, 51, 53, 56, 60, len(one_key) - 1):
        yield "truncated_one_key_at_%02d.gguf" % cut, one_key[:cut], err("truncated")

    # Strings that lie about their length.
    off = kv_offset("general.name")
    yield "string_key_length_huge.gguf", full[:off] + u64(1 << 62) + full[off + 8:], err("absurd length")
    yield "string_key_length_past_eof.gguf", full[:off] + u64(len(full)) + full[off + 8:], \
        err("truncated GGUF file: metadata key 1 at byte")
    yield "string_value_length_huge.gguf", build(replace_kv("general.name", KV(
        "general.name", STRING, raw=u64((1 << 30) + 1) + b"x"))), err("metadata key 1 'general.name' has absurd length")
    yield "string_value_length_past_eof.gguf", build(replace_kv("general.name", KV(
        "general.name", STRING, raw=u64(5000) + b"lmz"))), err("metadata key 1 'general.name' at byte")
    yield "string_array_element_past_eof.gguf", build(replace_kv("test.tokens", KV(
        "test.tokens", ARRAY, raw=u32(STRING) + u64(2) + gstr("ok") + u64(1 << 20) + b"abc"))), \
        err("metadata key 13 'test.tokens'")
    yield "key_empty.gguf", build(replace_kv("test.u8", KV("", UINT8, 1))), err("has an empty name")
    yield "key_duplicate.gguf", build(base_kvs() + [KV("test.u16", UINT16, 1)]), \
        err("duplicate metadata key 'test.u16'")
    yield "key_duplicate_other_type.gguf", build(base_kvs() + [KV("general.name", UINT32, 7)]), \
        err("duplicate metadata key 'general.name'")

    # Values and arrays.
    yield "value_type_unknown.gguf", build(replace_kv("test.u8", KV("test.u8", 13, raw=b"\0" * 8))), \
        err("'test.u8' has unknown value type 13")
    yield "value_type_huge.gguf", build(replace_kv("test.u8", KV("test.u8", 0xFFFFFFFF, raw=b"\0"))), \
        err("unknown value type 4294967295")
    yield "array_nested.gguf", build(replace_kv("test.types", KV(
        "test.types", ARRAY, raw=u32(ARRAY) + u64(1) + u32(UINT8) + u64(1) + b"\1"))), err("nested array")
    yield "array_elem_type_unknown.gguf", build(replace_kv("test.types", KV(
        "test.types", ARRAY, raw=u32(77) + u64(1) + b"\0" * 8))), err("unknown array element type 77")
    yield "array_count_huge.gguf", build(replace_kv("test.types", KV(
        "test.types", ARRAY, raw=u32(INT32) + u64(1 << 62) + u32(1)))), err("absurd array length")
    yield "array_count_past_eof.gguf", build(replace_kv("test.types", KV(
        "test.types", ARRAY, raw=u32(INT32) + u64(1 << 20) + u32(1)))), err("metadata key 15 'test.types'")
    yield "array_string_count_past_eof.gguf", build(replace_kv("test.tokens", KV(
        "test.tokens", ARRAY, raw=u32(STRING) + u64(1 << 29) + gstr("a")))), err("truncated")
    yield "array_f64_count_overflow.gguf", build(replace_kv("test.types", KV(
        "test.types", ARRAY, raw=u32(FLOAT64) + u64(1 << 61) + b"\0" * 8))), err("absurd array length")

    # general.alignment.
    for name, kv, msg in [
        ("alignment_0.gguf", KV("general.alignment", UINT32, 0), "general.alignment is 0"),
        ("alignment_3.gguf", KV("general.alignment", UINT32, 3), "general.alignment is 3"),
        ("alignment_u64.gguf", KV("general.alignment", UINT64, 32), "general.alignment has value type 10"),
        ("alignment_string.gguf", KV("general.alignment", STRING, "32"), "general.alignment has value type 8"),
    ]:
        yield name, build(small_kvs() + [kv], base_tensors()), err(msg)
    yield "alignment_2g_data_past_eof.gguf", build(small_kvs() + [KV("general.alignment", UINT32, 1 << 31)],
                                                   base_tensors()), err("tensor data section would start")

    # Tensor infos.
    def tensor_case(name, tensor, msg):
        return name, build(small_kvs(), replace_tensor("weights.q8_0", tensor)), err(msg)

    yield tensor_case("tensor_name_empty.gguf", Tensor("", [32, 2], Q8_0), "has a name of 0 bytes")
    yield tensor_case("tensor_name_64.gguf", Tensor("n" * 64, [32, 2], Q8_0), "has a name of 64 bytes")
    yield tensor_case("tensor_name_nul.gguf", Tensor("a\0b", [32, 2], Q8_0), "NUL byte in its name")
    yield tensor_case("tensor_name_duplicate.gguf", Tensor("weights.f32", [32, 2], Q8_0),
                      "duplicate tensor name 'weights.f32'")
    yield tensor_case("tensor_ndims_0.gguf", Tensor("weights.q8_0", [], Q8_0), "has 0 dimensions")
    yield tensor_case("tensor_ndims_5.gguf", Tensor("weights.q8_0", [32, 2, 1, 1, 1], Q8_0),
                      "has 5 dimensions")
    yield tensor_case("tensor_ndims_huge.gguf", Tensor("weights.q8_0", [32], Q8_0, n_dims=0x80000000),
                      "has 2147483648 dimensions")
    yield tensor_case("tensor_dim_zero.gguf", Tensor("weights.q8_0", [32, 0], Q8_0, offset=32),
                      "invalid dimensions [32, 0, 1, 1]")
    yield tensor_case("tensor_dim_huge.gguf", Tensor("weights.q8_0", [32, 1 << 63], Q8_0, offset=32),
                      "invalid dimensions")
    yield tensor_case("tensor_dims_product_overflow.gguf",
                      Tensor("weights.q8_0", [1 << 32, 1 << 32, 1 << 32, 1 << 32], Q8_0, offset=32),
                      "invalid dimensions")
    yield tensor_case("tensor_dims_product_2_41.gguf",
                      Tensor("weights.q8_0", [1 << 21, 1 << 20], Q8_0, offset=32), "invalid dimensions")
    yield tensor_case("tensor_row_not_block_multiple.gguf", Tensor("weights.q8_0", [33, 2], Q8_0),
                      "not a multiple of the Q8_0 block size 32")
    yield tensor_case("tensor_type_unknown.gguf", Tensor("weights.q8_0", [32, 2], 99, offset=32),
                      "unknown type id 99")
    yield tensor_case("tensor_type_retired_4.gguf", Tensor("weights.q8_0", [32, 2], 4, offset=32),
                      "unknown type id 4")
    yield tensor_case("tensor_offset_misaligned.gguf", Tensor("weights.q8_0", [32, 2], Q8_0, offset=33),
                      "offset 33 is not a multiple of the alignment 32")
    yield tensor_case("tensor_offset_past_eof.gguf", Tensor("weights.q8_0", [32, 2], Q8_0, offset=1 << 20),
                      "'weights.q8_0' (68 bytes at data offset 1048576) extends past the end")
    yield tensor_case("tensor_offset_huge.gguf", Tensor("weights.q8_0", [32, 2], Q8_0, offset=(1 << 64) - 32),
                      "extends past the end")
    yield tensor_case("tensor_size_past_eof.gguf", Tensor("weights.q8_0", [32, 1 << 16], Q8_0, offset=32),
                      "extends past the end")
    yield "tensor_data_short_by_one.gguf", base(data_slack=-1), err("'weights.q4_1' (40 bytes")
    # Data section past EOF: the file stops right after the tensor infos, before the padding.
    infos_end = 24 + len(small_kvs()[0].encode()) + sum(len(t.encode()) for t in base_tensors())
    assert infos_end % 32, "the cut must fall before the padding, not on an aligned data start"
    yield "data_section_past_eof.gguf", build(small_kvs(), base_tensors())[:infos_end], \
        err("tensor data section would start")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for old in os.listdir(OUT_DIR):
        if old.endswith(".gguf"):
            os.remove(os.path.join(OUT_DIR, old))
    lines = ["# GGUF regression corpus, written by tools/make_gguf_corpus.py (do not edit by hand).",
             "# <file> ok | <file> error <substring of the error message>"]
    names = set()
    total = 0
    for name, data, expected in cases():
        assert name not in names, name
        names.add(name)
        with open(os.path.join(OUT_DIR, name), "wb") as f:
            f.write(data)
        total += len(data)
        lines.append(name + (" ok" if expected == "ok" else " error " + expected[1]))
    with open(os.path.join(OUT_DIR, INDEX_NAME), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d files, %d bytes" % (OUT_DIR, len(names), total))


if __name__ == "__main__":
    main()
