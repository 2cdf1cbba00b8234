/* pretokenize.c — the GPT-2, Llama-3 and Qwen2 word splitters (see pretokenize.h).
 *
 * Each splitter scans one segment [begin, end) of code points. Like llama.cpp's
 * matchers, looking past the segment end sees "no code point" (class flags 0), which is
 * what decides, for example, whether trailing whitespace counts as followed by \S. */
#include "pretokenize.h"

#include <stdbool.h>

#include "unicode.h"

typedef struct {
    const uint32_t *cpts;
    size_t end;
    uint32_t *word_ends;
    size_t n_words;
} segment;

#define NO_CPT UINT32_MAX

static uint32_t cpt_at(const segment *s, size_t pos) { return pos < s->end ? s->cpts[pos] : NO_CPT; }
static unsigned flags_at(const segment *s, size_t pos) { return pos < s->end ? lmz_unicode_flags(s->cpts[pos]) : 0; }

static void emit(segment *s, size_t end) { s->word_ends[s->n_words++] = (uint32_t)end; }

static bool is_space_letter_or_number(unsigned flags) {
    return (flags & (LMZ_UC_WHITESPACE | LMZ_UC_LETTER | LMZ_UC_NUMBER)) != 0;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Length of the contraction ('s 't 're 've 'm 'll 'd) starting at pos, or 0. Only ASCII
 * letters fold under llama.cpp's case-insensitive variant: no other code point lowercases
 * to one of these letters in its table. */
static size_t contraction_len(const segment *s, size_t pos, bool fold_case) {
    if (s->cpts[pos] != '\'' || pos + 1 >= s->end) return 0;
    uint32_t c1 = fold_case ? ascii_lower(s->cpts[pos + 1]) : s->cpts[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 >= s->end) return 0;
    uint32_t c2 = fold_case ? ascii_lower(s->cpts[pos + 2]) : s->cpts[pos + 2];
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

static void split_gpt2(segment *s, size_t begin) {
    size_t pos = begin;
    while (pos < s->end) {
        const uint32_t cpt = s->cpts[pos];
        size_t n = contraction_len(s, pos, false);
        if (n) {
            pos += n;
            emit(s, pos);
            continue;
        }
        /* An optional leading space joins a following letter, number or symbol run. */
        unsigned next = cpt == ' ' ? flags_at(s, pos + 1) : flags_at(s, pos);
        if (next & LMZ_UC_LETTER) {
            pos += cpt == ' ';
            while (flags_at(s, pos) & LMZ_UC_LETTER) pos++;
            emit(s, pos);
            continue;
        }
        if (next & LMZ_UC_NUMBER) {
            pos += cpt == ' ';
            while (flags_at(s, pos) & LMZ_UC_NUMBER) pos++;
            emit(s, pos);
            continue;
        }
        if (!is_space_letter_or_number(next) && next) {
            pos += cpt == ' ';
            while (!is_space_letter_or_number(flags_at(s, pos)) && flags_at(s, pos)) pos++;
            emit(s, pos);
            continue;
        }
        size_t n_space = 0;
        while (flags_at(s, pos + n_space) & LMZ_UC_WHITESPACE) n_space++;
        if (n_space > 1 && pos + n_space < s->end) {
            /* \s+(?!\S): the last whitespace stays to prefix what follows */
            pos += n_space - 1;
            emit(s, pos);
            continue;
        }
        /* Also the never-expected fallback of llama.cpp: one code point, so the scan
         * always advances. */
        pos += n_space ? n_space : 1;
        emit(s, pos);
    }
}

static void split_llama3_like(segment *s, size_t begin, size_t max_digits) {
    size_t pos = begin;
    while (pos < s->end) {
        const uint32_t cpt = s->cpts[pos];
        const unsigned flags = flags_at(s, pos);
        size_t n = contraction_len(s, pos, true);
        if (n) {
            pos += n;
            emit(s, pos);
            continue;
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(cpt == '\r' || cpt == '\n' || (flags & LMZ_UC_NUMBER)) &&
            ((flags & LMZ_UC_LETTER) || (flags_at(s, pos + 1) & LMZ_UC_LETTER))) {
            pos++;
            while (flags_at(s, pos) & LMZ_UC_LETTER) pos++;
            emit(s, pos);
            continue;
        }
        /* \p{N}{1,max_digits} */
        if (flags & LMZ_UC_NUMBER) {
            size_t run_start = pos;
            while (flags_at(s, pos) & LMZ_UC_NUMBER) {
                pos++;
                if (pos - run_start == max_digits) {
                    emit(s, pos);
                    run_start = pos;
                }
            }
            if (pos > run_start) emit(s, pos);
            continue;
        }
        /* " ?[^\s\p{L}\p{N}]+[\r\n]*". As in llama.cpp the entry test looks at the class
         * of the current code point, not the one after the space, so a lone space at the
         * segment end is taken here (with the same result as the \s+ rule). */
        unsigned next = cpt == ' ' ? flags_at(s, pos + 1) : flags;
        if (!is_space_letter_or_number(next) && flags) {
            pos += cpt == ' ';
            while (!is_space_letter_or_number(flags_at(s, pos)) && flags_at(s, pos)) pos++;
            while (cpt_at(s, pos) == '\r' || cpt_at(s, pos) == '\n') pos++;
            emit(s, pos);
            continue;
        }
        size_t n_space = 0, end_of_last_newline = 0;
        while (flags_at(s, pos + n_space) & LMZ_UC_WHITESPACE) {
            uint32_t c = s->cpts[pos + n_space];
            if (c == '\r' || c == '\n') end_of_last_newline = pos + n_space + 1;
            n_space++;
        }
        if (end_of_last_newline) { /* \s*[\r\n]+ */
            pos = end_of_last_newline;
            emit(s, pos);
            continue;
        }
        if (n_space > 1 && pos + n_space < s->end) { /* \s+(?!\S) */
            pos += n_space - 1;
            emit(s, pos);
            continue;
        }
        pos += n_space ? n_space : 1; /* \s+, or the never-expected one-code-point fallback */
        emit(s, pos);
    }
}

size_t lmz_pretokenize(enum lmz_pretokenizer kind, const uint32_t *cpts, size_t n, uint32_t *word_ends) {
    segment s = {cpts, n, word_ends, 0};
    switch (kind) {
    case LMZ_PRETOK_GPT2:
        split_gpt2(&s, 0);
        break;
    case LMZ_PRETOK_DIGITS_THEN_GPT2: {
        /* The first pass isolates every number code point; GPT2 then runs on each piece,
         * a lone digit included (where it yields that digit). */
        size_t begin = 0;
        for (size_t i = 0; i <= n; i++) {
            bool number = i < n && (lmz_unicode_flags(cpts[i]) & LMZ_UC_NUMBER);
            if (i == n || number) {
                if (i > begin) {
                    s.end = i;
                    split_gpt2(&s, begin);
                }
                if (number) emit(&s, i + 1);
                begin = i + 1;
            }
        }
        break;
    }
    case LMZ_PRETOK_LLAMA3:
        split_llama3_like(&s, 0, 3);
        break;
    case LMZ_PRETOK_QWEN2:
        split_llama3_like(&s, 0, 1);
        break;
    }
    return s.n_words;
}
