/* tokenizer.c — loading a GGUF vocabulary (byte-level BPE or SentencePiece), the
 * per-call tokenize session (special-token partitioning, then for BPE: decode,
 * pre-tokenize and merge per word with a word cache; for SPM: spm.c per fragment) and
 * detokenization. Behaviour follows llama.cpp's llama-vocab.cpp (see gguf-spec.md §5). */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/error.h"
#include "bpe.h"
#include "pretokenize.h"
#include "special.h"
#include "spm.h"
#include "strmap.h"
#include "unicode.h"

#define MAX_INPUT (1u << 30)
/* Words longer than this are tokenized every time rather than cached: long words (runs
 * of symbols, base64, binary junk) rarely repeat and would only grow the cache. */
#define MAX_CACHED_WORD 256

enum vocab_kind {
    VOCAB_BPE, /* tokenizer.ggml.model = "gpt2": byte-level BPE */
    VOCAB_SPM, /* tokenizer.ggml.model = "llama": SentencePiece with byte fallback */
};

struct lmz_tokenizer {
    enum vocab_kind kind;
    enum lmz_pretokenizer pretokenizer;
    bool ignore_merges; /* a word that is itself a token is emitted whole (llama3 family) */
    bool add_bos, add_eos;
    /* A space goes before the first raw fragment and each one after a special token
     * (SPM), and detokenizing drops one leading space (llama.cpp reads the key for every
     * vocabulary; only SPM tokenizing uses the first half). */
    bool add_space_prefix;
    int32_t bos, eos;
    int32_t n_vocab;
    char *text;          /* every token's stored text, concatenated */
    uint32_t *text_off;  /* token i is text[text_off[i] .. text_off[i+1]) */
    char *bytes;         /* every token's raw bytes (as rendered with render_special) */
    uint32_t *bytes_off;
    uint8_t *type;       /* enum lmz_token_type */
    uint8_t *eog;
    lmz_specials specials; /* CONTROL, USER_DEFINED and UNKNOWN texts, cut out first */
    lmz_strmap vocab;    /* stored text -> id (a repeated text maps to its last id) */
    lmz_bpe bpe;         /* VOCAB_BPE */
    lmz_spm spm;         /* VOCAB_SPM */
};

/* ---- pre-tokenizer names (llama-vocab.cpp, llama_vocab::impl::load) ---- */

typedef struct {
    const char *name;
    enum lmz_pretokenizer kind;
    bool ignore_merges;
    bool add_bos;
} pre_info;

static const pre_info PRETOKENIZERS[] = {
    {"gpt-2", LMZ_PRETOK_GPT2, false, false},
    {"phi-2", LMZ_PRETOK_GPT2, false, false},
    {"mpt", LMZ_PRETOK_GPT2, false, false},
    {"olmo", LMZ_PRETOK_GPT2, false, false},
    {"exaone4", LMZ_PRETOK_GPT2, false, false},
    {"smollm", LMZ_PRETOK_DIGITS_THEN_GPT2, false, false},
    {"starcoder", LMZ_PRETOK_DIGITS_THEN_GPT2, false, false},
    {"refact", LMZ_PRETOK_DIGITS_THEN_GPT2, false, false},
    {"command-r", LMZ_PRETOK_DIGITS_THEN_GPT2, false, false},
    {"codeshell", LMZ_PRETOK_DIGITS_THEN_GPT2, false, false},
    {"exaone", LMZ_PRETOK_DIGITS_THEN_GPT2, false, false},
    {"minerva-7b", LMZ_PRETOK_DIGITS_THEN_GPT2, false, false},
    {"qwen2", LMZ_PRETOK_QWEN2, false, false},
    {"deepseek-r1-qwen", LMZ_PRETOK_QWEN2, false, false},
    {"stablelm2", LMZ_PRETOK_QWEN2, false, false},
    {"hunyuan", LMZ_PRETOK_QWEN2, false, false},
    {"megrez", LMZ_PRETOK_QWEN2, false, false},
    {"llama3", LMZ_PRETOK_LLAMA3, true, true},
    {"llama-v3", LMZ_PRETOK_LLAMA3, true, true},
    {"llama-bpe", LMZ_PRETOK_LLAMA3, true, true},
    {"falcon3", LMZ_PRETOK_LLAMA3, true, true},
    {"pixtral", LMZ_PRETOK_LLAMA3, true, true},
    {"dbrx", LMZ_PRETOK_LLAMA3, false, false},
    {"smaug-bpe", LMZ_PRETOK_LLAMA3, false, false},
};

/* ---- special tokens recognised by text (llama-vocab.cpp) ---- */

static const char *const EOT_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
    "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>", NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
    "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const FIM_SUF_TEXTS[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>",
    "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const FIM_MID_TEXTS[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
    "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[", NULL};

/* ---- loading ---- */

static bool str_is(gguf_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static const char *text_of(const lmz_tokenizer *t, int32_t id, size_t *len) {
    *len = t->text_off[id + 1] - t->text_off[id];
    return t->text + t->text_off[id];
}

static int32_t find_text(const lmz_tokenizer *t, const char *text) {
    return lmz_strmap_get(&t->vocab, text, strlen(text));
}

/* An optional token-id key: stays *id when absent or out of range (llama.cpp ignores
 * those with a warning); -1 + lmz_fail when present but not an integer. */
static int read_id_key(const gguf_file *f, const char *key, int32_t n_vocab, int32_t *id) {
    if (gguf_find_key(f, key) < 0) return 0;
    uint32_t v;
    if (!gguf_get_u32(f, key, &v)) return lmz_fail("tokenizer: %s must be an unsigned integer token id", key);
    if (v < (uint32_t)n_vocab) *id = (int32_t)v;
    return 0;
}

static int read_bool_key(const gguf_file *f, const char *key, bool *out) {
    if (gguf_find_key(f, key) < 0) return 0;
    if (!gguf_get_bool(f, key, out)) return lmz_fail("tokenizer: %s must be a boolean", key);
    return 0;
}

/* With no id from the file, llama.cpp takes a token whose text is in TEXTS and forces
 * it to CONTROL. (It takes the first in hash-map order; we take the lowest id, which is
 * the same whenever a vocabulary has one such token, as real ones do.) */
static int32_t detect_by_text(lmz_tokenizer *t, const char *const *texts) {
    int32_t best = -1;
    for (size_t k = 0; texts[k]; k++) {
        int32_t id = find_text(t, texts[k]);
        if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    if (best >= 0) t->type[best] = LMZ_TOKEN_CONTROL;
    return best;
}

static bool eog_text(const lmz_tokenizer *t, const char *text) {
    int32_t id = find_text(t, text);
    return id >= 0 && t->eog[id];
}

typedef struct {
    const char *key, *deprecated_key;
    const char *const *texts;
    bool ends_generation;
} marker_info;

static int mark_special_tokens(lmz_tokenizer *t, const gguf_file *f, int32_t eos) {
    static const marker_info MARKERS[] = {
        {"tokenizer.ggml.eot_token_id", NULL, EOT_TEXTS, true},
        {"tokenizer.ggml.eom_token_id", NULL, EOM_TEXTS, true},
        {"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id", FIM_PRE_TEXTS, false},
        {"tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id", FIM_SUF_TEXTS, false},
        {"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id", FIM_MID_TEXTS, false},
        {"tokenizer.ggml.fim_pad_token_id", NULL, FIM_PAD_TEXTS, true},
        {"tokenizer.ggml.fim_rep_token_id", NULL, FIM_REP_TEXTS, true},
        {"tokenizer.ggml.fim_sep_token_id", NULL, FIM_SEP_TEXTS, true},
    };
    for (size_t m = 0; m < sizeof MARKERS / sizeof MARKERS[0]; m++) {
        int32_t id = -1;
        if (read_id_key(f, MARKERS[m].key, t->n_vocab, &id) < 0) return -1;
        if (MARKERS[m].deprecated_key && read_id_key(f, MARKERS[m].deprecated_key, t->n_vocab, &id) < 0)
            return -1;
        if (id < 0) id = detect_by_text(t, MARKERS[m].texts);
        if (id >= 0 && MARKERS[m].ends_generation) t->eog[id] = 1;
    }
    for (size_t k = 0; EOG_TEXTS[k]; k++) {
        int32_t id = find_text(t, EOG_TEXTS[k]);
        if (id >= 0) {
            t->eog[id] = 1;
            t->type[id] = LMZ_TOKEN_CONTROL;
        }
    }
    if (eos >= 0) t->eog[eos] = 1;
    /* llama.cpp's two exceptions to the list above. With <|return|> and <|call|>
     * (o200k_harmony) or <|calls|> and <|flush|> (solar-open), <|end|> does not end
     * generation and becomes USER_DEFINED. With <|tool_response>/<|plamo:eos|> in the
     * set (Gemma 4, PLaMo), </s> is a normal token. */
    int32_t end = find_text(t, "<|end|>");
    bool has_call = eog_text(t, "<|call|>") || eog_text(t, "<|calls|>");
    if (end >= 0 && t->eog[end] && has_call && (eog_text(t, "<|return|>") || eog_text(t, "<|flush|>"))) {
        t->eog[end] = 0;
        t->type[end] = LMZ_TOKEN_USER_DEFINED;
    }
    int32_t s = find_text(t, "</s>");
    if (s >= 0 && t->eog[s] && (eog_text(t, "<|tool_response>") || eog_text(t, "<|plamo:eos|>"))) {
        t->eog[s] = 0;
        t->type[s] = LMZ_TOKEN_NORMAL;
    }
    return 0;
}

static int read_tokens(lmz_tokenizer *t, const gguf_file *f) {
    const char *key = "tokenizer.ggml.tokens";
    enum gguf_value_type et;
    uint64_t n;
    if (gguf_find_key(f, key) < 0) return lmz_fail("tokenizer: %s is missing (not a language model file?)", key);
    if (!gguf_get_array(f, key, &et, &n) || et != GGUF_STRING)
        return lmz_fail("tokenizer: %s must be an array of strings", key);
    if (n == 0 || n > (uint64_t)INT32_MAX - 1) return lmz_fail("tokenizer: %s has %llu entries", key, (unsigned long long)n);
    t->n_vocab = (int32_t)n;

    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) total += gguf_array_str(f, key, i).len ? gguf_array_str(f, key, i).len : 24;
    if (total > UINT32_MAX) return lmz_fail("tokenizer: %s texts exceed 4 GiB", key);
    t->text = lmz_malloc(total);
    t->text_off = lmz_malloc((n + 1) * sizeof *t->text_off);
    t->type = lmz_malloc(n);
    t->eog = lmz_calloc(n, 1);
    if (!t->text || !t->text_off || !t->type || !t->eog) return -1;
    if (lmz_strmap_init(&t->vocab, n) < 0) return -1;

    uint32_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = gguf_array_str(f, key, i);
        t->text_off[i] = off;
        if (s.len == 0) /* llama.cpp renames empty tokens so that they stay distinct */
            off += (uint32_t)snprintf(t->text + off, 24, "[EMPTY_%llu]", (unsigned long long)i);
        else {
            memcpy(t->text + off, s.ptr, s.len);
            off += (uint32_t)s.len;
        }
        bool inserted;
        lmz_strmap_entry *e = lmz_strmap_insert(&t->vocab, t->text + t->text_off[i], off - t->text_off[i], &inserted);
        if (!e) return -1;
        e->value = (int32_t)i;
    }
    t->text_off[n] = off;

    const char *type_key = "tokenizer.ggml.token_type";
    uint64_t n_types;
    if (gguf_find_key(f, type_key) < 0) {
        memset(t->type, LMZ_TOKEN_NORMAL, n);
        return 0;
    }
    if (!gguf_get_array(f, type_key, &et, &n_types) || et != GGUF_INT32)
        return lmz_fail("tokenizer: %s must be an array of int32", type_key);
    if (n_types < n)
        return lmz_fail("tokenizer: %s has %llu entries for %llu tokens", type_key, (unsigned long long)n_types,
                        (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        double v = gguf_array_num(f, type_key, i);
        t->type[i] = v >= LMZ_TOKEN_NORMAL && v <= LMZ_TOKEN_BYTE ? (uint8_t)v : LMZ_TOKEN_UNDEFINED;
    }
    return 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The raw bytes of byte-encoded TEXT (llama.cpp's llama_decode_text), including the
 * marker it writes for a character outside the byte map. Writes to OUT unless it is
 * NULL; returns the length either way. */
static size_t decode_byte_level(const char *text, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t used;
        uint32_t cpt = lmz_utf8_decode((const uint8_t *)text + i, len - i, &used);
        i += used;
        int byte = lmz_cpt_to_byte(cpt);
        if (byte >= 0) {
            if (out) out[n] = (char)byte;
            n++;
            continue;
        }
        static const char prefix[] = "[UNK_BYTE_0x", hex[] = "0123456789abcdef";
        uint8_t utf8[4];
        size_t k = lmz_utf8_encode(cpt, utf8);
        if (out) {
            char *p = out + n;
            memcpy(p, prefix, sizeof prefix - 1);
            p += sizeof prefix - 1;
            for (size_t j = 0; j < k; j++) {
                *p++ = hex[utf8[j] >> 4];
                *p++ = hex[utf8[j] & 15];
            }
            memcpy(p, text, len);
            p[len] = ']';
        }
        n += sizeof prefix - 1 + 2 * k + len + 1;
    }
    return n;
}

/* A SentencePiece text with each "▁" replaced by a space. */
static size_t unescape_spaces(const char *text, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        bool escaped = len - i >= 3 && !memcmp(text + i, "\xe2\x96\x81", 3);
        if (out) out[n] = escaped ? ' ' : text[i];
        i += escaped ? 3 : 1;
    }
    return n;
}

static size_t render_token(const lmz_tokenizer *t, int32_t id, char *out) {
    size_t len;
    const char *text = text_of(t, id, &len);
    switch (t->type[id]) {
    case LMZ_TOKEN_NORMAL:
        return t->kind == VOCAB_SPM ? unescape_spaces(text, len, out) : decode_byte_level(text, len, out);
    case LMZ_TOKEN_CONTROL:
    case LMZ_TOKEN_UNKNOWN:
    case LMZ_TOKEN_USER_DEFINED:
        if (out) memcpy(out, text, len);
        return len;
    case LMZ_TOKEN_BYTE: { /* "<0xHH>" */
        int value = 0;
        for (size_t k = 3; k < 5 && k < len && hex_value(text[k]) >= 0; k++) value = value * 16 + hex_value(text[k]);
        if (out) out[0] = (char)value;
        return 1;
    }
    default: /* UNUSED, UNDEFINED: render as nothing */
        return 0;
    }
}

/* The bytes each token renders to with render_special (llama.cpp's token_to_piece). */
static int build_token_bytes(lmz_tokenizer *t) {
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) total += render_token(t, i, NULL);
    if (total > UINT32_MAX) return lmz_fail("tokenizer: token texts too large");
    t->bytes = lmz_malloc(total);
    t->bytes_off = lmz_malloc(((size_t)t->n_vocab + 1) * sizeof *t->bytes_off);
    if (!t->bytes || !t->bytes_off) return -1;
    uint32_t off = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        t->bytes_off[i] = off;
        off += (uint32_t)render_token(t, i, t->bytes + off);
    }
    t->bytes_off[t->n_vocab] = off;
    return 0;
}

/* Partition candidates: CONTROL, USER_DEFINED and UNKNOWN tokens. */
static int build_specials(lmz_tokenizer *t) {
    lmz_special_token *c = lmz_malloc((size_t)t->n_vocab * sizeof *c);
    if (!c) return -1;
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        enum lmz_token_type type = t->type[i];
        if (type != LMZ_TOKEN_CONTROL && type != LMZ_TOKEN_USER_DEFINED && type != LMZ_TOKEN_UNKNOWN) continue;
        size_t len;
        const char *text = text_of(t, i, &len);
        c[n++] = (lmz_special_token){i, text, (uint32_t)len, type != LMZ_TOKEN_USER_DEFINED};
    }
    int rc = lmz_specials_init(&t->specials, c, n);
    free(c);
    return rc;
}

/* Byte-level BPE: the pre-tokenizer named by tokenizer.ggml.pre and its defaults. */
static int choose_pretokenizer(lmz_tokenizer *t, const gguf_file *f) {
    gguf_str pre;
    if (!gguf_get_str(f, "tokenizer.ggml.pre", &pre))
        return lmz_fail("tokenizer: tokenizer.ggml.pre is missing; llama.cpp would fall back to its generic regex "
                        "pre-tokenizer, which lmz does not implement (re-convert the model with a current llama.cpp)");
    const pre_info *info = NULL;
    for (size_t i = 0; i < sizeof PRETOKENIZERS / sizeof PRETOKENIZERS[0]; i++)
        if (str_is(pre, PRETOKENIZERS[i].name)) info = &PRETOKENIZERS[i];
    if (!info)
        return lmz_fail("tokenizer: unsupported pre-tokenizer tokenizer.ggml.pre = \"%.*s\" (supported: gpt-2, smollm, "
                        "qwen2, llama-bpe and their aliases)", (int)pre.len, pre.ptr);
    t->pretokenizer = info->kind;
    t->ignore_merges = info->ignore_merges;
    t->add_bos = info->add_bos;
    return 0;
}

static int load(lmz_tokenizer *t, const gguf_file *f) {
    gguf_str model;
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model))
        return lmz_fail("tokenizer: tokenizer.ggml.model is missing or not a string (not a language model file?)");
    /* Defaults before the file's keys (llama_vocab::impl::load): SPM has BOS 1, EOS 2,
     * adds BOS and a space prefix; byte-level BPE has BOS = EOS = 11 and its
     * pre-tokenizer decides add_bos. SPM files carry tokenizer.ggml.pre = "default",
     * which SPM does not use. */
    int32_t default_bos, default_eos;
    if (str_is(model, "llama")) {
        t->kind = VOCAB_SPM;
        t->add_bos = true;
        t->add_space_prefix = true;
        default_bos = 1;
        default_eos = 2;
    } else if (str_is(model, "gpt2")) {
        t->kind = VOCAB_BPE;
        if (choose_pretokenizer(t, f) < 0) return -1;
        default_bos = default_eos = 11;
    } else
        return lmz_fail("tokenizer: unsupported tokenizer.ggml.model \"%.*s\" (supported: \"gpt2\" byte-level BPE, "
                        "\"llama\" SentencePiece)", (int)model.len, model.ptr);
    t->add_eos = false;

    if (read_tokens(t, f) < 0) return -1;
    /* default ids out of range are dropped */
    t->bos = default_bos < t->n_vocab ? default_bos : -1;
    t->eos = default_eos < t->n_vocab ? default_eos : -1;
    if (read_id_key(f, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos) < 0 ||
        read_id_key(f, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos) < 0 ||
        read_bool_key(f, "tokenizer.ggml.add_bos_token", &t->add_bos) < 0 ||
        read_bool_key(f, "tokenizer.ggml.add_eos_token", &t->add_eos) < 0 ||
        read_bool_key(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix) < 0)
        return -1;
    if (mark_special_tokens(t, f, t->eos) < 0 || build_specials(t) < 0 || build_token_bytes(t) < 0) return -1;
    return t->kind == VOCAB_SPM ? lmz_spm_init(&t->spm, f, &t->vocab, t->n_vocab) : lmz_bpe_init(&t->bpe, f, &t->vocab);
}

lmz_tokenizer *lmz_tokenizer_load(const gguf_file *f) {
    lmz_tokenizer *t = lmz_calloc(1, sizeof *t);
    if (!t) return NULL;
    if (load(t, f) < 0) {
        lmz_tokenizer_free(t);
        return NULL;
    }
    return t;
}

void lmz_tokenizer_free(lmz_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->bytes);
    free(t->bytes_off);
    free(t->type);
    free(t->eog);
    lmz_specials_free(&t->specials);
    lmz_strmap_free(&t->vocab);
    lmz_bpe_free(&t->bpe);
    lmz_spm_free(&t->spm);
    free(t);
}

/* ---- tokenizing ---- */

typedef struct {
    uint32_t *cpts, *cpt_off, *word_ends;
    uint8_t *norm;        /* the fragment re-encoded from its decoded code points */
    size_t cap;           /* input bytes the buffers above can take */
    uint8_t *encoded;     /* byte-encoded word, for ignore_merges lookups */
    size_t encoded_cap;
    lmz_strmap cache;     /* word bytes -> index into cache_spans */
    struct { uint32_t off, n; } *cache_spans;
    size_t n_spans, cap_spans;
    lmz_token_list cache_ids;
    lmz_bpe_scratch bpe;
    lmz_spm_scratch spm;
} session;

static void session_free(session *s) {
    free(s->cpts);
    free(s->cpt_off);
    free(s->word_ends);
    free(s->norm);
    free(s->encoded);
    lmz_strmap_free(&s->cache);
    free(s->cache_spans);
    free(s->cache_ids.ids);
    lmz_bpe_scratch_free(&s->bpe);
    lmz_spm_scratch_free(&s->spm);
}

static int session_reserve(session *s, size_t len) {
    if (len <= s->cap) return 0;
    free(s->cpts);
    free(s->cpt_off);
    free(s->word_ends);
    free(s->norm);
    s->cpts = lmz_malloc(len * sizeof *s->cpts);
    s->cpt_off = lmz_malloc((len + 1) * sizeof *s->cpt_off);
    s->word_ends = lmz_malloc(len * sizeof *s->word_ends);
    s->norm = lmz_malloc(3 * len); /* an invalid byte becomes U+FFFD: 3 bytes */
    s->cap = s->cpts && s->cpt_off && s->word_ends && s->norm ? len : 0;
    return s->cap ? 0 : -1;
}

/* Tokens of one word (raw bytes), through the cache. */
static int tokenize_word(const lmz_tokenizer *t, session *s, const uint8_t *word, size_t len, lmz_token_list *out) {
    lmz_strmap_entry *e = NULL;
    if (len <= MAX_CACHED_WORD) {
        bool inserted;
        e = lmz_strmap_insert(&s->cache, word, len, &inserted);
        if (!e) return -1;
        if (!inserted) {
            for (uint32_t k = 0; k < s->cache_spans[e->value].n; k++)
                if (lmz_token_list_push(out, s->cache_ids.ids[s->cache_spans[e->value].off + k]) < 0) return -1;
            return 0;
        }
    }
    size_t first = out->n;
    int32_t whole = -1;
    if (t->ignore_merges) {
        if (2 * len > s->encoded_cap) {
            uint8_t *p = lmz_realloc(s->encoded, 2 * len);
            if (!p) return -1;
            s->encoded = p;
            s->encoded_cap = 2 * len;
        }
        size_t n = 0;
        for (size_t i = 0; i < len; i++) n += lmz_utf8_encode(lmz_byte_to_cpt(word[i]), s->encoded + n);
        whole = lmz_strmap_get(&t->vocab, s->encoded, n);
    }
    if (whole >= 0 ? lmz_token_list_push(out, whole) < 0 : lmz_bpe_word(&t->bpe, &s->bpe, word, len, out) < 0)
        return -1;
    if (!e) return 0;
    if (s->n_spans == s->cap_spans) {
        size_t cap = s->cap_spans ? s->cap_spans * 2 : 1024;
        void *p = lmz_realloc(s->cache_spans, cap * sizeof *s->cache_spans);
        if (!p) return -1;
        s->cache_spans = p;
        s->cap_spans = cap;
    }
    e->value = (int32_t)s->n_spans;
    s->cache_spans[s->n_spans].off = (uint32_t)s->cache_ids.n;
    s->cache_spans[s->n_spans].n = (uint32_t)(out->n - first);
    s->n_spans++;
    for (size_t k = first; k < out->n; k++)
        if (lmz_token_list_push(&s->cache_ids, out->ids[k]) < 0) return -1;
    return 0;
}

/* Byte-level BPE of one raw-text fragment. */
static int tokenize_bpe(const lmz_tokenizer *t, session *s, const uint8_t *text, size_t len, lmz_token_list *out) {
    if (session_reserve(s, len) < 0) return -1;
    /* Decode as llama.cpp does (invalid bytes -> U+FFFD) and keep the re-encoded bytes:
     * BPE sees the re-encoding, which differs from the input only where it was not
     * valid UTF-8. */
    size_t n_cpts = 0, n_norm = 0;
    for (size_t i = 0; i < len;) {
        size_t used;
        uint32_t cpt = lmz_utf8_decode(text + i, len - i, &used);
        i += used;
        s->cpts[n_cpts] = cpt;
        s->cpt_off[n_cpts++] = (uint32_t)n_norm;
        n_norm += lmz_utf8_encode(cpt, s->norm + n_norm);
    }
    s->cpt_off[n_cpts] = (uint32_t)n_norm;
    size_t n_words = lmz_pretokenize(t->pretokenizer, s->cpts, n_cpts, s->word_ends);
    uint32_t begin = 0;
    for (size_t w = 0; w < n_words; w++) {
        uint32_t end = s->word_ends[w];
        size_t from = s->cpt_off[begin], to = s->cpt_off[end];
        if (tokenize_word(t, s, s->norm + from, to - from, out) < 0) return -1;
        begin = end;
    }
    return 0;
}

int lmz_tokenize(const lmz_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                 int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (len > MAX_INPUT) return lmz_fail("tokenize: input of %zu bytes is over the 1 GiB limit; split it", len);
    lmz_fragment_list frags = {0};
    lmz_token_list out = {0};
    session s = {0};
    int rc = lmz_specials_partition(&t->specials, (const uint8_t *)text, len, parse_special, &frags);
    if (rc == 0 && t->kind == VOCAB_BPE) rc = lmz_strmap_init(&s.cache, 1024);
    if (rc == 0 && add_special && ((t->add_bos && t->bos < 0) || (t->add_eos && t->eos < 0)))
        rc = lmz_fail("tokenize: the model asks for a BOS/EOS token but defines none");
    if (rc == 0 && add_special && t->add_bos) rc = lmz_token_list_push(&out, t->bos);
    bool after_special = true; /* the start counts as following a special token */
    for (size_t i = 0; rc == 0 && i < frags.n; i++) {
        const lmz_fragment *fr = &frags.items[i];
        const uint8_t *raw = (const uint8_t *)text + fr->off;
        if (fr->token >= 0)
            rc = lmz_token_list_push(&out, fr->token);
        else if (t->kind == VOCAB_SPM)
            rc = lmz_spm_fragment(&t->spm, &s.spm, raw, fr->len, t->add_space_prefix && after_special, &out);
        else
            rc = tokenize_bpe(t, &s, raw, fr->len, &out);
        after_special = fr->token >= 0;
    }
    if (rc == 0 && add_special && t->add_eos) rc = lmz_token_list_push(&out, t->eos);
    free(frags.items);
    session_free(&s);
    if (rc < 0) {
        free(out.ids);
        return -1;
    }
    *ids = out.ids;
    *n_ids = out.n;
    return 0;
}

/* ---- detokenizing and queries ---- */

static bool valid_id(const lmz_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab; }

static size_t rendered(const lmz_tokenizer *t, int32_t id, bool render_special, const char **bytes) {
    if (!valid_id(t, id)) return 0;
    if (!render_special && (t->type[id] == LMZ_TOKEN_CONTROL || t->type[id] == LMZ_TOKEN_UNKNOWN)) return 0;
    *bytes = t->bytes + t->bytes_off[id];
    return t->bytes_off[id + 1] - t->bytes_off[id];
}

size_t lmz_token_bytes(const lmz_tokenizer *t, int32_t id, bool render_special, char *buf, size_t cap) {
    const char *bytes = NULL;
    size_t n = rendered(t, id, render_special, &bytes);
    if (n) memcpy(buf, bytes, n < cap ? n : cap);
    return n;
}

/* The bytes of IDS[i] within a sequence: the first loses one leading space when the
 * vocabulary adds a space prefix (llama_detokenize's remove_space), which undoes the
 * space tokenizing put before the text. */
static size_t sequence_piece(const lmz_tokenizer *t, const int32_t *ids, size_t i, bool render_special,
                             const char **bytes) {
    size_t k = rendered(t, ids[i], render_special, bytes);
    if (i == 0 && t->add_space_prefix && k && **bytes == ' ') {
        ++*bytes;
        k--;
    }
    return k;
}

int lmz_detokenize(const lmz_tokenizer *t, const int32_t *ids, size_t n, bool render_special, char **text,
                   size_t *len) {
    size_t total = 0;
    const char *bytes;
    for (size_t i = 0; i < n; i++) total += sequence_piece(t, ids, i, render_special, &bytes);
    char *out = lmz_malloc(total + 1);
    if (!out) return -1;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = sequence_piece(t, ids, i, render_special, &bytes);
        if (k) memcpy(out + pos, bytes, k);
        pos += k;
    }
    out[pos] = 0;
    *text = out;
    *len = pos;
    return 0;
}

int32_t lmz_tokenizer_n_vocab(const lmz_tokenizer *t) { return t->n_vocab; }
int32_t lmz_tokenizer_bos(const lmz_tokenizer *t) { return t->bos; }
int32_t lmz_tokenizer_eos(const lmz_tokenizer *t) { return t->eos; }
bool lmz_tokenizer_adds_bos(const lmz_tokenizer *t) { return t->add_bos; }
bool lmz_tokenizer_adds_eos(const lmz_tokenizer *t) { return t->add_eos; }
bool lmz_tokenizer_is_eog(const lmz_tokenizer *t, int32_t id) { return valid_id(t, id) && t->eog[id]; }

enum lmz_token_type lmz_tokenizer_token_type(const lmz_tokenizer *t, int32_t id) {
    return valid_id(t, id) ? (enum lmz_token_type)t->type[id] : LMZ_TOKEN_UNDEFINED;
}

int32_t lmz_tokenizer_find(const lmz_tokenizer *t, const char *text) { return find_text(t, text); }

const char *lmz_tokenizer_token_text(const lmz_tokenizer *t, int32_t id, size_t *len) {
    if (!valid_id(t, id)) return NULL;
    return text_of(t, id, len);
}
