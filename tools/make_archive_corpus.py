#!/usr/bin/env python3
"""Write the archive regression corpus: small lmz archives (format v1), valid and damaged.

This is a second, independent implementation of docs/format.md (the C one is
src/container/archive.c): if the two disagree about a valid file, one of them does
not follow the spec. Each damaged case changes one thing in a valid archive and,
where the point is a field check rather than a checksum, recomputes the checksums
so that only that check can catch it. index.txt lists, per file, "ok" or "error"
followed by a substring lmz_last_error() must contain; tests/test_container.c
replays it and fuzz/run.sh seeds the archive fuzzer with the same files.

usage: make_archive_corpus.py [OUT_DIR]      (default tests/fixtures/archive)
The output is deterministic; rerun after changing a case and commit the result.
"""
import os
import struct
import sys
import zlib

OUT_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "archive")

MAGIC = b"\x89LMZ\r\n\x1a\n"
END_MAGIC = b"END\x1a"
VERSION = 1
HEADER_SIZE = 212
ENTRY_SIZE = 20
TRAILER_SIZE = 24
HAS_CONTEXT = 1
CHUNK_RAW = 1
NO_TOKEN = 0xFFFFFFFF


def crc(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def header(flags=0, engine=1, coder=1, total_bits=30, vocab=49152, start=0, context=2048,
           chunk_bytes=4096, model_sha=bytes(range(32)), adapter_sha=bytes(32),
           context_sha=bytes(32), name=b"SmolLM2-135M-Instruct.Q4_1", version=VERSION,
           header_size=HEADER_SIZE):
    """The 212 bytes of a v1 header (docs/format.md section 2), checksum included."""
    h = MAGIC + struct.pack("<IIIIIIIIII", version, header_size, flags, engine, coder,
                            total_bits, vocab, start, context, chunk_bytes)
    h += model_sha + adapter_sha + context_sha
    h += name.ljust(64, b"\0")[:64]
    return h + struct.pack("<I", crc(h))


def archive(hdr, chunks, original_size=None, count=None):
    """chunks: (input_bytes, token_count, crc32, flags, payload) tuples."""
    body = bytearray(hdr)
    table = bytearray()
    for input_bytes, tokens, chunk_crc, flags, payload in chunks:
        body += payload
        table += struct.pack("<IIIII", input_bytes, tokens, len(payload), chunk_crc, flags)
    body += table
    if original_size is None:
        original_size = sum(c[0] for c in chunks)
    if count is None:
        count = len(chunks)
    body += struct.pack("<QQ", original_size, count) + END_MAGIC
    body += struct.pack("<I", crc(bytes(body)))
    return bytes(body)


def reseal(data):
    """Recompute both checksums of a v1 archive after a field was changed."""
    d = bytearray(data)
    d[HEADER_SIZE - 4:HEADER_SIZE] = struct.pack("<I", crc(bytes(d[:HEADER_SIZE - 4])))
    d[-4:] = struct.pack("<I", crc(bytes(d[:-4])))
    return bytes(d)


def patch(data, offset, fmt, value, seal=True):
    d = bytearray(data)
    struct.pack_into(fmt, d, offset, value)
    return reseal(bytes(d)) if seal else bytes(d)


def coded(text, tokens, payload):
    return (len(text), tokens, crc(text), 0, payload)


def raw(text):
    return (len(text), 0, crc(text), CHUNK_RAW, text)


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
    two = [coded(b"The quick brown fox jumps over the lazy dog.", 10, bytes([0x3c, 0x91, 0x07, 0xe2, 0x55])),
           raw(b"\xff\xfe raw bytes")]
    base = archive(hdr, two)
    table = len(base) - TRAILER_SIZE - 2 * ENTRY_SIZE
    trailer = len(base) - TRAILER_SIZE

    # Valid archives.
    ok("empty_input.lmz", archive(hdr, []))
    ok("one_coded_chunk.lmz", archive(hdr, [two[0]]))
    ok("two_chunks.lmz", base)
    ok("empty_payload.lmz", archive(hdr, [coded(b"aaaaaaaa", 1, b"")]))
    ok("context_adapter_many.lmz", archive(
        header(flags=HAS_CONTEXT, adapter_sha=b"\x5a" * 32, context_sha=bytes(range(100, 132)),
               start=NO_TOKEN, name=b"m" * 63, chunk_bytes=16),
        [raw(b"0123456789abcdef"), coded(b"0123456789", 3, b"\x01\x02"), raw(b"x"),
         coded(b"hello world", 2, b"\xaa\xbb\xcc"), raw(b"tail")]))
    ok("large_sizes.lmz", archive(header(chunk_bytes=0xFFFFFFFF, total_bits=31, vocab=0x7FFFFFFF),
                                  [(0xFFFFFFFF, 0xFFFFFFFF, 0, 0, b"\x42" * 9)] * 3))

    # Not an archive, or cut short.
    bad("empty_file.lmz", b"", "archive is empty")
    bad("bad_magic.lmz", b"GGUF" + base[4:], "not an lmz archive")
    bad("magic_only.lmz", MAGIC[:6], "archive is truncated (6 bytes)")
    bad("truncated_header.lmz", base[:100], "archive is truncated (100 bytes; the header alone is 212)")
    bad("truncated_body.lmz", base[:-10], "archive is truncated")
    bad("truncated_after_header.lmz", base[:HEADER_SIZE + 3], "archive is truncated")
    bad("extra_byte.lmz", base + b"\0", "extra bytes")

    # Checksums.
    d = bytearray(base)
    d[40] ^= 0x04
    bad("header_bit_flip.lmz", bytes(d), "archive header checksum mismatch")
    d = bytearray(base)
    d[HEADER_SIZE + 1] ^= 0x80
    bad("payload_bit_flip.lmz", bytes(d), "archive checksum mismatch")
    d = bytearray(base)
    d[table + 3] ^= 0x01
    bad("table_bit_flip.lmz", bytes(d), "archive checksum mismatch")

    # Header fields (checksums recomputed).
    bad("version_2.lmz", patch(base, 8, "<I", 2), "archive format version 2 is not supported")
    bad("version_9_long_header.lmz", patch(patch(base, 8, "<I", 9, False), 12, "<I", 5000, False),
        "archive format version 9 is not supported")
    bad("header_size_tiny.lmz", patch(base, 12, "<I", 8, False), "archive header is damaged (header size 8)")
    bad("unknown_flags.lmz", patch(base, 16, "<I", 0x10), "flags 0x10 include features")
    bad("total_bits_32.lmz", patch(base, 28, "<I", 32), "frequency total 2^32 is outside")
    bad("vocab_zero.lmz", patch(base, 32, "<I", 0), "vocabulary size 0 does not fit")
    bad("start_token_outside.lmz", patch(base, 36, "<I", 49152), "start token 49152 is outside the vocabulary")
    bad("context_zero.lmz", patch(base, 40, "<I", 0), "context size is 0")
    bad("chunk_size_zero.lmz", patch(base, 44, "<I", 0), "chunk size is 0")
    bad("context_sha_without_flag.lmz", patch(base, 120, "<B", 7), "context fingerprint is set")
    bad("name_control_char.lmz", patch(base, 146, "<B", 0x1b), "model name contains control characters")
    bad("name_unterminated.lmz", reseal(base[:144] + b"n" * 64 + base[208:]), "model name is longer than 63 bytes")
    bad("name_junk_after_nul.lmz", patch(base, 206, "<B", 0x41), "model name field has bytes after the name's end")

    # Trailer and chunk table (checksums recomputed).
    bad("original_size_lies.lmz", patch(base, trailer, "<Q", 1000),
        "chunk sizes add up to 56 bytes but the archive says the original is 1000 bytes")
    bad("chunk_count_huge.lmz", patch(base, trailer + 8, "<Q", 1 << 63),
        "chunk table (9223372036854775808 entries) does not fit")
    bad("chunk_count_short.lmz", patch(base, trailer + 8, "<Q", 1),
        "chunk payloads add up to 12 bytes but the archive holds 37 payload bytes")
    bad("chunk_exceeds_archive.lmz", patch(base, table + 8, "<I", 0xFFFFFFF0),
        "chunk 0: compressed size exceeds the archive")
    bad("payloads_short.lmz", patch(base, table + 8, "<I", 4),
        "chunk payloads add up to 16 bytes but the archive holds 17 payload bytes")
    bad("chunk_empty.lmz", patch(base, table, "<I", 0), "chunk 0: holds no input bytes")
    bad("chunk_over_chunk_size.lmz", patch(base, table, "<I", 4097),
        "chunk 0: 4097 input bytes exceed the archive's chunk size (4096)")
    bad("tokens_exceed_bytes.lmz", patch(base, table + 4, "<I", 45), "chunk 0: 45 tokens cannot make 44 input bytes")
    bad("coded_zero_tokens.lmz", patch(base, table + 4, "<I", 0), "chunk 0: 0 tokens cannot make")
    bad("raw_with_tokens.lmz", patch(base, table + ENTRY_SIZE + 4, "<I", 2), "chunk 1: a stored chunk has a token count")
    bad("raw_size_mismatch.lmz", patch(base, table + ENTRY_SIZE, "<I", 11),
        "chunk 1: stored chunk of 11 input bytes has a 12-byte payload")
    bad("chunk_unknown_flags.lmz", patch(base, table + ENTRY_SIZE + 16, "<I", 0x100),
        "chunk 1: flags 0x100 include features")
    bad("end_magic_damaged.lmz", patch(base, trailer + 16, "<B", 0x45 ^ 0x20), "no end-of-archive record")

    with open(os.path.join(OUT_DIR, "index.txt"), "w") as index:
        for name, data, outcome in cases:
            with open(os.path.join(OUT_DIR, name), "wb") as f:
                f.write(data)
            index.write(f"{name} {outcome}\n")
    total = sum(len(d) for _, d, _ in cases)
    print(f"wrote {len(cases)} files ({total} bytes) to {OUT_DIR}")


if __name__ == "__main__":
    main()
