#!/usr/bin/env python3
"""Write the archive regression corpus: small lmz archives (format v1), valid and damaged.

This is a second, independent implementation of docs/format.md (the C one is
src/container/archive.c): if the two disagree about a valid file, one of them does
not follow the spec (tests/test_container.c also rewrites every valid file with the
C writer and requires the same bytes). Each damaged case changes one thing in a valid
archive and, where the point is a field check rather than a checksum, recomputes the
checksums so that only that check can catch it. index.txt lists, per file, "ok" or
"error" followed by a substring lmz_last_error() must contain; tests/test_container.c
replays it and fuzz/run.sh seeds the archive fuzzer with the same files.

usage: make_archive_corpus.py [OUT_DIR]      (default tests/fixtures/archive)
The output is deterministic; rerun after changing a case and commit the result.
"""
import binascii
import os
import struct
import sys
import zlib

OUT_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "archive")

MAGIC = b"\x89LMZ"
VERSION = 1
HAS_CONTEXT = 1
HAS_ADAPTER = 2
LOSSY = 4  # the original is a rewrite of what was compressed (lmz --lossy)
NO_TOKEN = 0xFFFFFFFF
FP = 8  # fingerprint bytes: the first 8 of a SHA-256


def crc32(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def crc16(b):
    """CRC-16/CCITT-FALSE, the header checksum."""
    return binascii.crc_hqx(b, 0xFFFF)


def varint(v):
    """LEB128, shortest form."""
    out = bytearray()
    while True:
        if v < 0x80:
            out.append(v)
            return bytes(out)
        out.append(0x80 | (v & 0x7F))
        v >>= 7


def header(flags=0, engine=1, coder=1, total_bits=30, vocab=49152, start=0, context=2048,
           chunk_bytes=4096, model_fp=bytes(range(0xA0, 0xA8)), adapter_fp=None, context_fp=None,
           version=VERSION, fields=None):
    """A v1 header (docs/format.md section 3), checksum included. FIELDS, when given, replaces
    the bytes between the fixed part and the checksum."""
    if fields is None:
        fields = b"".join(varint(v) for v in (flags, engine, coder, total_bits, vocab,
                                               (start + 1) & 0xFFFFFFFF, context, chunk_bytes))
        fields += model_fp
        if flags & HAS_ADAPTER:
            fields += adapter_fp
        if flags & HAS_CONTEXT:
            fields += context_fp
    h = MAGIC + bytes([version, 6 + len(fields) + 2]) + fields
    return h + struct.pack("<H", crc16(h))


def entry(input_bytes, tokens, payload_len, chunk_crc):
    e = varint(input_bytes) + varint(tokens)
    if tokens:
        e += varint(payload_len)
    return e + struct.pack("<I", chunk_crc)


def seal(body_and_table, table_size_bytes):
    """Appends the reversed table-size varint and the archive CRC-32."""
    d = body_and_table + table_size_bytes[::-1]
    return d + struct.pack("<I", crc32(d))


def archive(hdr, chunks, table=None, table_size=None):
    """chunks: (input_bytes, token_count, crc32, payload) tuples; token_count 0 = stored.
    TABLE / TABLE_SIZE, when given, replace the table bytes / the table-size varint bytes."""
    body = bytearray(hdr)
    t = bytearray()
    for input_bytes, tokens, chunk_crc, payload in chunks:
        body += payload
        t += entry(input_bytes, tokens, len(payload), chunk_crc)
    if table is not None:
        t = table
    return seal(bytes(body + t), table_size if table_size is not None else varint(len(t)))


def reseal(data):
    """Recompute both checksums of a v1 archive after a byte was changed."""
    d = bytearray(data)
    h = d[5]
    d[h - 2:h] = struct.pack("<H", crc16(bytes(d[:h - 2])))
    d[-4:] = struct.pack("<I", crc32(bytes(d[:-4])))
    return bytes(d)


def coded(text, tokens, payload):
    return (len(text), tokens, crc32(text), payload)


def raw(text):
    return (len(text), 0, crc32(text), text)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for old in os.listdir(OUT_DIR):
        os.remove(os.path.join(OUT_DIR, old))
    cases = []

    def ok(name, data):
        cases.append((name, data, "ok"))

    def bad(name, data, message):
        cases.append((name, data, "error " + message))

    hdr = header()
    hsize = len(hdr)
    text = b"The quick brown fox jumps over the lazy dog."
    two = [coded(text, 10, bytes([0x3c, 0x91, 0x07, 0xe2, 0x55])), raw(b"\xff\xfe raw bytes")]
    payloads = two[0][3] + two[1][3]
    base = archive(hdr, two)
    table = hsize + len(payloads)  # offset of the chunk table

    def with_table(entries, **kw):
        return archive(hdr, two, table=b"".join(entries), **kw)

    e0 = lambda **kw: entry(**dict(dict(input_bytes=len(text), tokens=10, payload_len=5, chunk_crc=two[0][2]), **kw))
    e1 = entry(len(two[1][3]), 0, 0, two[1][2])

    # Valid archives.
    ok("empty_input.lmz", archive(hdr, []))
    ok("one_coded_chunk.lmz", archive(hdr, [two[0]]))
    ok("two_chunks.lmz", base)
    ok("empty_payload.lmz", archive(hdr, [coded(b"aaaaaaaa", 1, b"")]))
    ok("context_adapter_many.lmz", archive(
        header(flags=HAS_CONTEXT | HAS_ADAPTER, adapter_fp=b"\x5a" * FP, context_fp=bytes(range(100, 108)),
               start=NO_TOKEN, chunk_bytes=16),
        [raw(b"0123456789abcdef"), coded(b"0123456789", 3, b"\x01\x02"), raw(b"x"),
         coded(b"hello world", 2, b"\xaa\xbb\xcc"), raw(b"tail")]))
    ok("adapter_only.lmz", archive(header(flags=HAS_ADAPTER, adapter_fp=b"\x11" * FP), [raw(b"ab")]))
    ok("context_only.lmz", archive(header(flags=HAS_CONTEXT, context_fp=b"\x22" * FP), [coded(b"abc", 1, b"\x7f")]))
    ok("lossy.lmz", archive(header(flags=LOSSY), [coded(b"abc", 1, b"\x7f")]))
    ok("lossy_context_adapter.lmz", archive(
        header(flags=LOSSY | HAS_CONTEXT | HAS_ADAPTER, adapter_fp=b"\x33" * FP, context_fp=b"\x44" * FP),
        [raw(b"ab"), coded(b"abc", 1, b"\x7f")]))
    ok("large_sizes.lmz", archive(header(chunk_bytes=0xFFFFFFFF, total_bits=31, vocab=0x7FFFFFFF),
                                  [(0xFFFFFFFF, 0xFFFFFFFF, 0, b"\x42" * 9)] * 3))
    ok("largest_header.lmz", archive(
        header(flags=HAS_CONTEXT | HAS_ADAPTER, engine=0xFFFFFFFF, coder=0xFFFFFFFF, total_bits=31,
               vocab=0x7FFFFFFF, start=0x7FFFFFFE, context=0xFFFFFFFF, chunk_bytes=0xFFFFFFFF,
               adapter_fp=b"\xfe" * FP, context_fp=b"\xef" * FP), []))
    ok("two_byte_table_size.lmz", archive(hdr, [coded(b"%04d" % i * 9, 10 + i, bytes([i]) * 30) for i in range(20)]))

    # Not an archive, or cut short.
    bad("empty_file.lmz", b"", "archive is empty")
    bad("bad_magic.lmz", b"GGUF" + base[4:], "not an lmz archive")
    bad("magic_only.lmz", MAGIC[:3], "archive is truncated (3 bytes)")
    bad("truncated_header.lmz", base[:20], "archive is truncated (20 bytes; the header alone is %d)" % hsize)
    bad("truncated_body.lmz", base[:-10], "truncated")
    bad("truncated_after_header.lmz", base[:hsize + 3], "truncated")
    bad("header_only.lmz", base[:hsize], "archive is truncated (%d bytes; the header alone is %d" % (hsize, hsize))
    bad("extra_byte.lmz", base + b"\0", "extra bytes")

    # Checksums.
    def flip(data, offset, mask):
        d = bytearray(data)
        d[offset] ^= mask
        return bytes(d)

    bad("header_bit_flip.lmz", flip(base, 12, 0x04), "archive header checksum mismatch")
    bad("header_crc_bit_flip.lmz", flip(base, hsize - 1, 0x80), "archive header checksum mismatch")
    bad("payload_bit_flip.lmz", flip(base, hsize + 1, 0x80), "archive checksum mismatch")
    bad("table_bit_flip.lmz", flip(base, table + 3, 0x01), "archive checksum mismatch")
    bad("table_size_bit_flip.lmz", flip(base, len(base) - 5, 0x02), "archive checksum mismatch")
    bad("archive_crc_bit_flip.lmz", flip(base, len(base) - 1, 0x10), "archive checksum mismatch")

    # Header fields (checksums recomputed).
    def fields(**kw):
        return archive(header(**kw), two)

    bad("version_2.lmz", fields(version=2), "archive format version 2 is not supported")
    d = bytearray(base)
    d[4], d[5] = 9, 250  # a later version whose header is longer than this file
    bad("version_9_long_header.lmz", bytes(d), "archive format version 9 is not supported")
    d = bytearray(base)
    d[5] = 7
    bad("header_size_tiny.lmz", bytes(d), "archive header is damaged (header size 7)")
    bad("unknown_flags.lmz", fields(flags=0x10), "flags 0x10 include features")
    bad("unknown_flag_bit3.lmz", fields(flags=8), "flags 0x8 include features")
    bad("flags_too_large.lmz", archive(header(fields=b"\x80\x80\x80\x80\x10" + bytes(7) + bytes(FP)), two),
        "archive header: the flags field is too large")
    bad("context_flag_without_fp.lmz", archive(header(fields=varint(HAS_CONTEXT) + header()[7:-2]), two),
        "8 bytes follow its numbers where its flags call for 16 fingerprint bytes")
    bad("adapter_fp_zero.lmz", fields(flags=HAS_ADAPTER, adapter_fp=bytes(FP)),
        "the has-adapter flag is set but the adapter fingerprint is zero")
    bad("fingerprint_too_long.lmz", archive(header(fields=header()[6:-2] + b"\0"), two),
        "9 bytes follow its numbers where its flags call for 8 fingerprint bytes")
    bad("header_field_cut_off.lmz", archive(header(fields=b"\x00\x01\x01\x1e\x80\x80\x03\x01\x81\x0c\x80"), two),
        "archive header: the chunk size is cut off")
    bad("header_field_not_shortest.lmz",
        archive(header(fields=b"\x00\x81\x00\x01\x1e\x80\x80\x03\x01\x81\x0c\x80\x20" + bytes(FP)), two),
        "archive header: the engine version is not in its shortest form")
    bad("total_bits_32.lmz", fields(total_bits=32), "frequency total 2^32 is outside")
    bad("vocab_zero.lmz", fields(vocab=0), "vocabulary size 0 does not fit")
    bad("vocab_too_large.lmz", fields(vocab=1 << 32), "the vocabulary size is too large")
    bad("start_token_outside.lmz", fields(start=49152), "start token 49152 is outside the vocabulary")
    bad("context_zero.lmz", fields(context=0), "context size is 0")
    bad("chunk_size_zero.lmz", fields(chunk_bytes=0), "chunk size is 0")

    # Chunk table and trailer (checksums recomputed).
    bad("chunk_exceeds_archive.lmz", with_table([e0(payload_len=0xFFFFFFF0), e1]),
        "chunk 0: compressed size exceeds the archive")
    bad("payloads_short.lmz", with_table([e0(payload_len=4), e1]),
        "chunk payloads add up to 16 bytes but the archive holds 17 payload bytes")
    bad("stored_exceeds_archive.lmz", archive(hdr, two, table=e0() + entry(13, 0, 0, two[1][2])),
        "chunk 1: compressed size exceeds the archive (13 bytes at payload offset 5; the payload area has 17)")
    bad("chunk_empty.lmz", with_table([e0(input_bytes=0), e1]), "chunk 0: holds no input bytes")
    bad("chunk_over_chunk_size.lmz", with_table([e0(input_bytes=4097), e1]),
        "chunk 0: 4097 input bytes exceed the archive's chunk size (4096)")
    bad("tokens_exceed_bytes.lmz", with_table([e0(tokens=45), e1]), "chunk 0: 45 tokens cannot make 44 input bytes")
    bad("entry_too_large.lmz", with_table([e0(tokens=1 << 32), e1]),
        "chunk 0: the token count in the chunk table is too large")
    bad("entry_not_shortest.lmz", with_table([b"\xac\x00" + e0()[1:], e1]),
        "chunk 0: the input size in the chunk table is not in its shortest form")
    bad("entry_cut_off.lmz", with_table([e0(), e1[:-2]]), "chunk 1: the checksum in the chunk table is cut off")
    bad("table_size_zero.lmz", archive(hdr, two, table_size=b"\x00"),
        "chunk payloads add up to 0 bytes but the archive holds %d payload bytes" % (len(base) - hsize - 5))
    bad("table_size_huge.lmz", archive(hdr, two, table_size=varint((1 << 64) - 1)),
        "chunk table (18446744073709551615 bytes) does not fit in the archive")
    bad("table_size_too_large.lmz", archive(hdr, two, table_size=b"\xff" * 9 + b"\x02"),
        "archive trailer: the chunk table size is too large")
    bad("table_size_not_shortest.lmz", archive(hdr, two, table_size=varint(len(e0() + e1))[:-1] +
                                               bytes([varint(len(e0() + e1))[-1] | 0x80, 0])),
        "archive trailer: the chunk table size is not in its shortest form")
    bad("table_size_cut_off.lmz", seal(hdr, b"\x80"), "archive trailer: the chunk table size is cut off")

    with open(os.path.join(OUT_DIR, "index.txt"), "w") as index:
        for name, data, outcome in cases:
            with open(os.path.join(OUT_DIR, name), "wb") as f:
                f.write(data)
            index.write(f"{name} {outcome}\n")
    total = sum(len(d) for _, d, _ in cases)
    print(f"wrote {len(cases)} files ({total} bytes) to {OUT_DIR}")


if __name__ == "__main__":
    main()
