/* chat.c — ChatML and Gemma turn formats (gguf-spec.md §5.6). */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/error.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} strbuf;

static void put(strbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->failed = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void puts_(strbuf *b, const char *s) { put(b, s, strlen(s)); }

static int template_text(const gguf_file *f, gguf_str *t) { return gguf_get_str(f, "tokenizer.chat_template", t); }

static const char *find_in(gguf_str t, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= t.len; i++)
        if (!memcmp(t.ptr + i, needle, n)) return t.ptr + i;
    return NULL;
}

enum lmz_chat_format lmz_chat_detect(const gguf_file *f) {
    gguf_str t;
    if (!template_text(f, &t)) return LMZ_CHAT_NONE;
    if (find_in(t, "<|im_start|>")) return LMZ_CHAT_CHATML;
    if (find_in(t, "<start_of_turn>")) return LMZ_CHAT_GEMMA;
    return LMZ_CHAT_NONE;
}

/* The default system prompt a ChatML template writes literally: the text after
 * "<|im_start|>system" and a newline (real, or the two characters \n inside a Jinja
 * string) up to "<|im_end|>". Empty if there is none. */
static void default_system(gguf_str t, strbuf *out) {
    const char *p = find_in(t, "<|im_start|>system");
    if (!p) return;
    p += strlen("<|im_start|>system");
    const char *end = t.ptr + t.len;
    if (p < end && *p == '\n') p++;
    else if (p + 1 < end && p[0] == '\\' && p[1] == 'n') p += 2;
    else return;
    gguf_str rest = {p, (uint64_t)(end - p)};
    const char *stop = find_in(rest, "<|im_end|>");
    if (!stop) return;
    /* a template that builds the system turn from a variable has no literal to copy */
    for (const char *q = p; q < stop; q++)
        if (*q == '{' || *q == '\'' || *q == '"' || *q == '+') return;
    put(out, p, (size_t)(stop - p));
}

char *lmz_chat_render(const gguf_file *f, const lmz_chat_message *msgs, int n) {
    gguf_str t;
    enum lmz_chat_format fmt = lmz_chat_detect(f);
    if (fmt == LMZ_CHAT_NONE) {
        lmz_fail(template_text(f, &t) ? "the model's chat template is of a kind lmz does not know"
                                      : "the model has no chat template (a base model?): use a plain prompt");
        return NULL;
    }
    template_text(f, &t);
    strbuf b = {0};
    if (fmt == LMZ_CHAT_CHATML) {
        if (n == 0 || strcmp(msgs[0].role, "system")) {
            strbuf sys = {0};
            default_system(t, &sys);
            if (sys.len) {
                puts_(&b, "<|im_start|>system\n");
                put(&b, sys.buf, sys.len);
                puts_(&b, "<|im_end|>\n");
            }
            free(sys.buf);
        }
        for (int i = 0; i < n; i++) {
            puts_(&b, "<|im_start|>");
            puts_(&b, msgs[i].role);
            puts_(&b, "\n");
            puts_(&b, msgs[i].content);
            puts_(&b, "<|im_end|>\n");
        }
        puts_(&b, "<|im_start|>assistant\n");
    } else {
        /* Gemma: no system role (its text opens the first user turn); assistant is "model". */
        const char *system = NULL;
        for (int i = 0; i < n; i++) {
            if (!strcmp(msgs[i].role, "system")) {
                system = msgs[i].content;
                continue;
            }
            puts_(&b, "<start_of_turn>");
            puts_(&b, strcmp(msgs[i].role, "assistant") ? "user" : "model");
            puts_(&b, "\n");
            if (system && strcmp(msgs[i].role, "assistant")) {
                puts_(&b, system);
                puts_(&b, "\n\n");
                system = NULL;
            }
            puts_(&b, msgs[i].content);
            puts_(&b, "<end_of_turn>\n");
        }
        puts_(&b, "<start_of_turn>model\n");
    }
    if (b.failed) {
        free(b.buf);
        lmz_fail("out of memory rendering a chat prompt");
        return NULL;
    }
    return b.buf;
}
