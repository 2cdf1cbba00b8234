/* grade.c — the problem sets of `lmz qa bench` and the grading of answers (grade.h): math
 * answer extraction and normalization, code extraction, and the python3 sandbox. */
#include "grade.h"

#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../coder/bytebuf.h"
#include "../util/error.h"
#include "../util/json.h"

/* ------------------------------------------------------------------ small strings */

static char *dup_n(const char *s, size_t n) {
    char *p = lmz_malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static char *dup_s(const char *s) { return dup_n(s, strlen(s)); }

/* Appends and NUL-terminates (the NUL is not counted in len). */
static int sb_add(lmz_bytebuf *b, const char *s, size_t n) {
    if (lmz_bytebuf_reserve(b, n + 1)) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

static int sb_adds(lmz_bytebuf *b, const char *s) { return sb_add(b, s, strlen(s)); }

/* The buffer's text as a malloc'd string (the buffer is emptied). */
static char *sb_take(lmz_bytebuf *b) {
    if (!b->data && sb_add(b, "", 0)) return NULL;
    char *s = (char *)b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

static bool starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

static char *trim_dup(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return dup_n(s, n);
}

/* ------------------------------------------------------------------ sets */

static void item_free(lmz_qa_item *it) {
    free(it->id);
    free(it->problem);
    free(it->gold);
    free(it->tests);
    free(it->entry_point);
    free(it->prefix);
}

void lmz_qa_set_free(lmz_qa_set *set) {
    if (!set) return;
    for (int i = 0; i < set->n; i++) item_free(&set->items[i]);
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

/* The string member KEY of O (malloc'd; "" when absent and not REQUIRED). */
static int member(const lmz_json *o, const char *key, bool required, int line, char **out) {
    const lmz_json *v = lmz_json_get(o, key);
    if (!v) {
        if (required) return lmz_fail("line %d: no \"%s\"", line, key);
        *out = dup_s("");
        return *out ? 0 : -1;
    }
    if (v->type != LMZ_JSON_STRING) return lmz_fail("line %d: \"%s\" is not a string", line, key);
    *out = dup_n(v->str, v->len);
    return *out ? 0 : -1;
}

int lmz_qa_set_parse(const char *text, size_t len, lmz_qa_set *set) {
    set->items = NULL;
    set->n = 0;
    int cap = 0, line = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        size_t a = pos;
        while (a < end && isspace((unsigned char)text[a])) a++;
        if (a < end) {
            lmz_json *o = lmz_json_parse(text + pos, end - pos);
            if (!o) {
                lmz_fail("line %d: %s", line, lmz_last_error());
                goto fail;
            }
            if (o->type != LMZ_JSON_OBJECT) {
                lmz_json_free(o);
                lmz_fail("line %d: not a JSON object", line);
                goto fail;
            }
            if (set->n == cap) {
                int nc = cap ? cap * 2 : 64;
                lmz_qa_item *ni = lmz_realloc(set->items, (size_t)nc * sizeof *ni);
                if (!ni) {
                    lmz_json_free(o);
                    goto fail;
                }
                set->items = ni;
                cap = nc;
            }
            lmz_qa_item *it = &set->items[set->n];
            memset(it, 0, sizeof *it);
            char *task = NULL;
            int rc = member(o, "id", true, line, &it->id);
            if (!rc) rc = member(o, "task", true, line, &task);
            if (!rc) rc = member(o, "problem", true, line, &it->problem);
            if (!rc) rc = member(o, "gold", true, line, &it->gold);
            if (!rc) rc = member(o, "tests", false, line, &it->tests);
            if (!rc) rc = member(o, "entry_point", false, line, &it->entry_point);
            if (!rc) rc = member(o, "prefix", false, line, &it->prefix);
            lmz_json_free(o);
            if (!rc) {
                if (!strcmp(task, "math")) it->task = LMZ_QA_MATH;
                else if (!strcmp(task, "code")) it->task = LMZ_QA_CODE;
                else if (!strcmp(task, "general")) it->task = LMZ_QA_GENERAL;
                else rc = lmz_fail("line %d: task \"%s\" is none of math, code, general", line, task);
            }
            if (!rc && !*it->id) rc = lmz_fail("line %d: empty id", line);
            if (!rc && it->task == LMZ_QA_CODE && !*it->tests) rc = lmz_fail("line %d: a code problem without tests", line);
            free(task);
            set->n++; /* counted even on failure, so item_free releases what was read */
            if (rc) goto fail;
            for (int j = 0; j < set->n - 1; j++)
                if (!strcmp(set->items[j].id, it->id)) {
                    lmz_fail("line %d: id \"%s\" repeats line of problem %d", line, it->id, j + 1);
                    goto fail;
                }
        }
        pos = end + 1;
    }
    if (!set->n) return lmz_fail("no problems in the set");
    return 0;
fail:
    lmz_qa_set_free(set);
    return -1;
}

int lmz_qa_set_load(const char *path, lmz_qa_set *set) {
    set->items = NULL;
    set->n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return lmz_fail("cannot open %s: %s", path, strerror(errno));
    lmz_bytebuf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (lmz_bytebuf_append(&b, chunk, got)) {
            fclose(f);
            lmz_bytebuf_free(&b);
            return -1;
        }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        lmz_bytebuf_free(&b);
        return lmz_fail("cannot read %s", path);
    }
    int rc = lmz_qa_set_parse((const char *)b.data, b.len, set);
    lmz_bytebuf_free(&b);
    if (rc) return lmz_fail("%s: %s", path, lmz_last_error());
    return 0;
}

/* ------------------------------------------------------------------ math: extraction */

/* S[i] == '{': the index just past its matching '}' (a backslash escapes the next byte),
 * or 0 when unbalanced. */
static size_t match_brace(const char *s, size_t i) {
    int depth = 0;
    for (size_t j = i; s[j]; j++) {
        if (s[j] == '\\' && s[j + 1]) {
            j++;
            continue;
        }
        if (s[j] == '{') depth++;
        else if (s[j] == '}' && --depth == 0) return j + 1;
    }
    return 0;
}

/* The content of the last \boxed{...} / \fbox{...} (or "\boxed X"), or NULL. */
static char *last_boxed(const char *s) {
    char *best = NULL;
    for (const char *p = s; (p = strchr(p, '\\')); p++) {
        size_t k;
        if (starts(p, "\\boxed")) k = 6;
        else if (starts(p, "\\fbox")) k = 5;
        else continue;
        const char *q = p + k;
        if (isalpha((unsigned char)*q)) continue;
        while (*q == ' ') q++;
        char *c = NULL;
        if (*q == '{') {
            size_t e = match_brace(q, 0);
            if (!e) continue;
            c = trim_dup(q + 1, e - 2);
        } else if (q > p + k) { /* "\boxed 5": up to whitespace or '$' */
            size_t n = 0;
            while (q[n] && !isspace((unsigned char)q[n]) && q[n] != '$') n++;
            if (!n) continue;
            c = dup_n(q, n);
        } else
            continue;
        if (!c) break;
        free(best);
        best = c;
    }
    return best;
}

/* The rest of the last line starting with "####", or NULL. */
static char *last_hashes(const char *s) {
    const char *last = NULL;
    for (const char *p = s; (p = strstr(p, "####")); p += 4) last = p;
    if (!last) return NULL;
    const char *a = last + 4;
    while (*a == '#') a++;
    size_t n = strcspn(a, "\n");
    char *c = trim_dup(a, n);
    if (c && !*c) {
        free(c);
        return NULL;
    }
    return c;
}

static bool word_at(const char *p, const char *w) {
    size_t n = strlen(w);
    return !strncasecmp(p, w, n) && !isalpha((unsigned char)p[n]);
}

/* Removes surrounding '*' '_' ' ' (Markdown emphasis) and trailing '.' from S in place. */
static void strip_marks(char *s) {
    size_t n = strlen(s), a = 0;
    while (a < n && (s[a] == '*' || s[a] == '_' || isspace((unsigned char)s[a]))) a++;
    while (n > a && (s[n - 1] == '*' || s[n - 1] == '_' || s[n - 1] == '.' || isspace((unsigned char)s[n - 1]))) n--;
    memmove(s, s + a, n - a);
    s[n - a] = 0;
}

/* What follows the last "answer is" / "answer:" / "answer =" (case-insensitive; Markdown
 * emphasis allowed around it), up to the end of its line or the end of its sentence; the
 * next non-empty line when the line ends there. NULL when there is none. */
static char *answer_is(const char *s) {
    size_t n = strlen(s);
    for (size_t i = n; i-- > 0;) {
        if (strncasecmp(s + i, "answer", 6) || (i && isalpha((unsigned char)s[i - 1]))) continue;
        const char *p = s + i + 6;
        if (*p == 's' || *p == 'S') p++; /* "answers" */
        while (*p == ' ' || *p == '*' || *p == '_' || *p == '\t') p++;
        bool marked = false;
        if (word_at(p, "is")) {
            p += 2;
            marked = true;
        }
        while (*p == ' ' || *p == '*' || *p == '_' || *p == '\t' || *p == ':' || *p == '=') {
            if (*p == ':' || *p == '=') marked = true;
            p++;
        }
        if (!marked) continue;
        size_t len = strcspn(p, "\n");
        const char *q = p;
        if (!len) { /* the answer on the next non-empty line */
            while (*q == '\n' || *q == ' ' || *q == '\t' || *q == '\r') q++;
            len = strcspn(q, "\n");
        }
        /* the end of the sentence: ". " or "." at the end (not a decimal point) */
        for (size_t k = 0; k + 1 < len; k++)
            if (q[k] == '.' && (q[k + 1] == ' ' || q[k + 1] == '\t')) {
                len = k;
                break;
            }
        char *c = trim_dup(q, len);
        if (!c) return NULL;
        strip_marks(c);
        if (*c) return c;
        free(c);
    }
    return NULL;
}

/* Number tokens: an optional '-', digits with optional thousands commas, an optional
 * fraction part, an optional "/digits". Sets *end; 0 when none starts at P. */
static size_t number_at(const char *p) {
    size_t i = 0;
    if (p[i] == '-') i++;
    if (!isdigit((unsigned char)p[i])) return 0;
    while (isdigit((unsigned char)p[i])) i++;
    while (p[i] == ',' && isdigit((unsigned char)p[i + 1]) && isdigit((unsigned char)p[i + 2]) &&
           isdigit((unsigned char)p[i + 3]) && !isdigit((unsigned char)p[i + 4]))
        i += 4;
    if (p[i] == '.' && isdigit((unsigned char)p[i + 1])) {
        i++;
        while (isdigit((unsigned char)p[i])) i++;
    }
    if (p[i] == '/' && isdigit((unsigned char)p[i + 1])) {
        i++;
        while (isdigit((unsigned char)p[i])) i++;
    }
    return i;
}

static char *last_number(const char *s) {
    const char *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; s[i];) {
        if ((s[i] == '-' || isdigit((unsigned char)s[i])) && (i == 0 || !isdigit((unsigned char)s[i - 1]))) {
            size_t n = number_at(s + i);
            if (n) {
                best = s + i;
                best_n = n;
                i += n;
                continue;
            }
        }
        i++;
    }
    return best ? dup_n(best, best_n) : NULL;
}

char *lmz_qa_math_extract(const char *answer) {
    if (!answer) return NULL;
    char *c = last_boxed(answer);
    if (!c) c = last_hashes(answer);
    if (!c) c = answer_is(answer);
    if (!c) c = last_number(answer);
    return c;
}

/* ------------------------------------------------------------------ math: normalization */

/* S with every FROM replaced by TO (FROM_WORD: only where no letter follows FROM). */
static char *replace_all(const char *s, const char *from, const char *to, bool from_word) {
    lmz_bytebuf b = {0};
    size_t fn = strlen(from);
    const char *p = s;
    for (const char *q; (q = strstr(p, from));) {
        if (from_word && isalpha((unsigned char)q[fn])) {
            if (sb_add(&b, p, (size_t)(q - p) + fn)) goto oom;
            p = q + fn;
            continue;
        }
        if (sb_add(&b, p, (size_t)(q - p)) || sb_adds(&b, to)) goto oom;
        p = q + fn;
    }
    if (sb_adds(&b, p)) goto oom;
    return sb_take(&b);
oom:
    lmz_bytebuf_free(&b);
    return NULL;
}

/* S with every CMD{X} replaced by X (braces balanced; spaces allowed before the brace). */
static char *unwrap(const char *s, const char *cmd) {
    lmz_bytebuf b = {0};
    size_t cn = strlen(cmd);
    const char *p = s;
    for (const char *q; (q = strstr(p, cmd));) {
        const char *r = q + cn;
        while (*r == ' ') r++;
        size_t e = *r == '{' ? match_brace(r, 0) : 0;
        if (!e || isalpha((unsigned char)q[cn])) {
            if (sb_add(&b, p, (size_t)(q - p) + cn)) goto oom;
            p = q + cn;
            continue;
        }
        if (sb_add(&b, p, (size_t)(q - p)) || sb_add(&b, r + 1, e - 2)) goto oom;
        p = r + e;
    }
    if (sb_adds(&b, p)) goto oom;
    return sb_take(&b);
oom:
    lmz_bytebuf_free(&b);
    return NULL;
}

/* Applies F to *S (freeing the old string); false when out of memory. */
#define APPLY(s, call)              \
    do {                            \
        char *_n = (call);          \
        free(s);                    \
        (s) = _n;                   \
        if (!(s)) return NULL;      \
    } while (0)

static bool simple_operand(const char *s, size_t n) {
    if (!n) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.') return false;
    return true;
}

/* One argument of \frac at S[*i]: {...} or a single character. */
static bool frac_arg(const char *s, size_t *i, size_t *a, size_t *n) {
    if (s[*i] == '{') {
        size_t e = match_brace(s, *i);
        if (!e) return false;
        *a = *i + 1;
        *n = e - *i - 2;
        *i = e;
        return true;
    }
    if (!s[*i] || s[*i] == '\\' || s[*i] == '}') return false;
    *a = *i;
    *n = 1;
    *i += 1;
    return true;
}

/* \frac{A}{B} -> A/B, or (A)/(B) around operands that are not plain numbers or names;
 * nested fractions too (up to a depth of 32; deeper ones stay as they are). */
static int frac_to_slash(const char *s, size_t n, lmz_bytebuf *out, int depth) {
    size_t i = 0;
    while (i < n) {
        if (depth < 32 && i + 5 <= n && !strncmp(s + i, "\\frac", 5) && !isalpha((unsigned char)s[i + 5])) {
            size_t j = i + 5, a1, n1, a2, n2;
            char *tmp = dup_n(s, n); /* NUL-bounded view for match_brace */
            if (!tmp) return -1;
            bool ok = frac_arg(tmp, &j, &a1, &n1) && frac_arg(tmp, &j, &a2, &n2);
            free(tmp);
            if (ok && j <= n) {
                lmz_bytebuf x = {0}, y = {0};
                if (frac_to_slash(s + a1, n1, &x, depth + 1) || frac_to_slash(s + a2, n2, &y, depth + 1)) {
                    lmz_bytebuf_free(&x);
                    lmz_bytebuf_free(&y);
                    return -1;
                }
                const char *xs = x.data ? (const char *)x.data : "", *ys = y.data ? (const char *)y.data : "";
                bool sx = simple_operand(xs, x.len), sy = simple_operand(ys, y.len);
                int rc = sb_adds(out, sx ? "" : "(") || sb_add(out, xs, x.len) || sb_adds(out, sx ? "/" : ")/") ||
                         sb_adds(out, sy ? "" : "(") || sb_add(out, ys, y.len) || sb_adds(out, sy ? "" : ")");
                lmz_bytebuf_free(&x);
                lmz_bytebuf_free(&y);
                if (rc) return -1;
                i = j;
                continue;
            }
        }
        if (sb_add(out, s + i, 1)) return -1;
        i++;
    }
    return 0;
}

/* "\sqrt2" -> "\sqrt{2}" (one digit or letter after \sqrt). */
static char *sqrt_braces(const char *s) {
    lmz_bytebuf b = {0};
    for (size_t i = 0; s[i];) {
        if (starts(s + i, "\\sqrt") && s[i + 5] && s[i + 5] != '{' && s[i + 5] != '[' && s[i + 5] != '\\' &&
            !isspace((unsigned char)s[i + 5])) {
            char arg[4] = {'{', s[i + 5], '}', 0};
            if (sb_adds(&b, "\\sqrt") || sb_adds(&b, arg)) goto oom;
            i += 6;
            continue;
        }
        if (sb_add(&b, s + i, 1)) goto oom;
        i++;
    }
    return sb_take(&b);
oom:
    lmz_bytebuf_free(&b);
    return NULL;
}

/* Removes whitespace, "{,}", and commas between digit groups ("1,234" -> "1234"). */
static char *squeeze(const char *s) {
    lmz_bytebuf b = {0};
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c)) continue;
        if (starts(s + i, "{,}") && i && isdigit((unsigned char)s[i - 1])) {
            i += 2;
            continue;
        }
        if (c == ',' && b.len && isdigit(b.data[b.len - 1])) {
            size_t k = i + 1;
            while (s[k] == ' ') k++;
            if (isdigit((unsigned char)s[k]) && isdigit((unsigned char)s[k + 1]) && isdigit((unsigned char)s[k + 2]) &&
                !isdigit((unsigned char)s[k + 3])) {
                /* only when the digits before it are a group of 1..3 (not "1234,567") */
                size_t d = 0;
                while (d < b.len && isdigit(b.data[b.len - 1 - d])) d++;
                if (d <= 3 || (b.len > d && b.data[b.len - 1 - d] == ',')) continue;
            }
        }
        if (sb_add(&b, s + i, 1)) {
            lmz_bytebuf_free(&b);
            return NULL;
        }
    }
    return sb_take(&b);
}

char *lmz_qa_math_normalize(const char *in) {
    char *s = trim_dup(in, strlen(in));
    if (!s) return NULL;
    /* surrounding math delimiters, repeatedly */
    for (bool again = true; again;) {
        again = false;
        size_t n = strlen(s);
        static const char *const delim[][2] = {{"$$", "$$"}, {"$", "$"}, {"\\(", "\\)"}, {"\\[", "\\]"}};
        for (size_t k = 0; k < sizeof delim / sizeof delim[0]; k++) {
            size_t a = strlen(delim[k][0]), z = strlen(delim[k][1]);
            if (n >= a + z && starts(s, delim[k][0]) && !strcmp(s + n - z, delim[k][1])) {
                APPLY(s, trim_dup(s + a, n - a - z));
                again = true;
                break;
            }
        }
    }
    static const char *const wrappers[] = {"\\boxed", "\\text", "\\textbf", "\\textit", "\\textrm", "\\textnormal",
                                           "\\mathrm", "\\mathbf", "\\mathit", "\\mbox", "\\hbox"};
    for (size_t k = 0; k < sizeof wrappers / sizeof wrappers[0]; k++) APPLY(s, unwrap(s, wrappers[k]));
    static const char *const drop_words[] = {"\\left", "\\right", "\\displaystyle", "\\qquad", "\\quad", "\\bigl",
                                             "\\bigr", "\\Bigl", "\\Bigr"};
    for (size_t k = 0; k < sizeof drop_words / sizeof drop_words[0]; k++) APPLY(s, replace_all(s, drop_words[k], "", true));
    static const char *const drops[] = {"\\!", "\\,", "\\;", "\\:", "\\ ", "^\\circ", "^{\\circ}", "\xc2\xb0", "\\circ",
                                        "\\%", "%", "\\$", "$", "~"};
    for (size_t k = 0; k < sizeof drops / sizeof drops[0]; k++) APPLY(s, replace_all(s, drops[k], "", false));
    APPLY(s, replace_all(s, "\\dfrac", "\\frac", false));
    APPLY(s, replace_all(s, "\\tfrac", "\\frac", false));
    APPLY(s, squeeze(s));
    APPLY(s, sqrt_braces(s));
    {
        lmz_bytebuf b = {0};
        if (frac_to_slash(s, strlen(s), &b, 0)) {
            lmz_bytebuf_free(&b);
            free(s);
            return NULL;
        }
        APPLY(s, sb_take(&b));
    }
    size_t n = strlen(s);
    while (n && s[n - 1] == '.') s[--n] = 0;
    /* "(C)" -> "C": a multiple-choice letter */
    if (n == 3 && s[0] == '(' && isalpha((unsigned char)s[1]) && s[2] == ')') {
        s[0] = s[1];
        s[1] = 0;
    }
    return s;
}

/* A plain number, or a fraction of two ("3/4", "(-1)/2"): its value. */
static bool parse_number(const char *s, double *v) {
    const char *p = s;
    double parts[2];
    int k = 0;
    for (;;) {
        bool paren = *p == '(';
        if (paren) p++;
        const char *a = p;
        if (*p == '+' || *p == '-') p++;
        const char *digits = p;
        while (isdigit((unsigned char)*p)) p++;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) p++;
        }
        if (p == digits || (p == digits + 1 && *digits == '.')) return false;
        char buf[64];
        if ((size_t)(p - a) >= sizeof buf) return false;
        memcpy(buf, a, (size_t)(p - a));
        buf[p - a] = 0;
        parts[k++] = strtod(buf, NULL);
        if (paren) {
            if (*p != ')') return false;
            p++;
        }
        if (*p == '/' && k == 1) {
            p++;
            continue;
        }
        break;
    }
    if (*p) return false;
    if (k == 2) {
        if (parts[1] == 0) return false;
        *v = parts[0] / parts[1];
    } else
        *v = parts[0];
    return isfinite(*v);
}

static bool close_to(double x, double y) {
    double m = fabs(y) > 1 ? fabs(y) : 1;
    return fabs(x - y) <= 1e-9 * m;
}

/* "x=5" -> "5" (a name of up to 3 letters/digits, starting with a letter, then '='). */
static const char *after_var(const char *s) {
    size_t i = 0;
    if (!isalpha((unsigned char)s[0])) return s;
    while (i < 3 && isalnum((unsigned char)s[i])) i++;
    return s[i] == '=' ? s + i + 1 : s;
}

/* For a numeric gold: the first number after the candidate's last '=' when it stands alone
 * (between spaces, '=', '(', ':' and an end, space or punctuation), as in "18 dollars". */
static bool loose_number(const char *cand, double *v) {
    char *c = dup_s(cand);
    if (!c) return false;
    char *t = unwrap(c, "\\text");
    free(c);
    if (!t) return false;
    char *u = replace_all(t, "$", "", false);
    free(t);
    if (!u) return false;
    const char *p = strrchr(u, '=');
    p = p ? p + 1 : u;
    bool ok = false;
    for (; *p; p++) {
        if (!(isdigit((unsigned char)*p) || (*p == '-' && isdigit((unsigned char)p[1])))) continue;
        char prev = p == u ? ' ' : p[-1];
        if (!(isspace((unsigned char)prev) || prev == '=' || prev == '(' || prev == ':' || p == u)) break;
        size_t n = number_at(p);
        char next = p[n];
        if (!n || !(next == 0 || isspace((unsigned char)next) || strchr(".,;:!?)", next))) break;
        char *num = dup_n(p, n);
        char *sq = num ? squeeze(num) : NULL;
        ok = sq && parse_number(sq, v);
        free(num);
        free(sq);
        break;
    }
    free(u);
    return ok;
}

bool lmz_qa_math_equal(const char *candidate, const char *gold) {
    if (!candidate || !gold) return false;
    char *c = lmz_qa_math_normalize(candidate), *g = lmz_qa_math_normalize(gold);
    bool eq = false;
    double x, y;
    if (!c || !g || !*c) goto done;
    if (!strcmp(c, g)) {
        eq = true;
        goto done;
    }
    const char *cc = strchr(g, '=') ? c : after_var(c);
    const char *gg = strchr(c, '=') ? g : after_var(g);
    if (!strcmp(cc, gg)) {
        eq = true;
        goto done;
    }
    if (parse_number(gg, &y)) {
        if (parse_number(cc, &x)) eq = close_to(x, y);
        else if (loose_number(candidate, &x)) eq = close_to(x, y);
    }
done:
    free(c);
    free(g);
    return eq;
}

/* ------------------------------------------------------------------ code */

char *lmz_qa_code_extract(const char *answer, const char *entry_point) {
    /* fenced blocks: a line starting (after spaces) with ``` opens one (its language tag is
     * the rest of the line); the next such line, or the end, closes it */
    const char *best = NULL, *def_block = NULL;
    size_t best_n = 0, def_n = 0;
    bool any = false;
    char def_pat[300] = "";
    if (entry_point && *entry_point && strlen(entry_point) < 250) snprintf(def_pat, sizeof def_pat, "def %s(", entry_point);
    const char *p = answer;
    while (*p) {
        const char *line = p;
        const char *q = line;
        while (*q == ' ' || *q == '\t') q++;
        const char *eol = strchr(line, '\n');
        const char *next = eol ? eol + 1 : line + strlen(line);
        if (!starts(q, "```")) {
            p = next;
            continue;
        }
        any = true;
        const char *body = next, *end = body;
        for (;;) {
            const char *r = end;
            while (*r == ' ' || *r == '\t') r++;
            if (!*end || starts(r, "```")) break;
            const char *e2 = strchr(end, '\n');
            end = e2 ? e2 + 1 : end + strlen(end);
        }
        size_t n = (size_t)(end - body);
        if (def_pat[0] && !def_block) {
            for (const char *d = body; (d = strstr(d, def_pat)) && d < end; d++)
                if (d + strlen(def_pat) <= end) {
                    def_block = body;
                    def_n = n;
                    break;
                }
        }
        if (n > best_n) {
            best = body;
            best_n = n;
        }
        if (!*end) break;
        const char *e3 = strchr(end, '\n');
        p = e3 ? e3 + 1 : end + strlen(end);
    }
    if (def_block) return dup_n(def_block, def_n);
    if (any && best) return dup_n(best, best_n);
    return dup_s(answer);
}

char *lmz_qa_code_program(const lmz_qa_item *it, const char *answer) {
    char *code = lmz_qa_code_extract(answer, it->entry_point);
    if (!code) return NULL;
    lmz_bytebuf b = {0};
    int rc = 0;
    if (*it->prefix) rc = sb_adds(&b, it->prefix) || sb_adds(&b, "\n");
    rc = rc || sb_adds(&b, code) || sb_adds(&b, "\n\n\n") || sb_adds(&b, it->tests);
    free(code);
    if (rc) {
        lmz_bytebuf_free(&b);
        return NULL;
    }
    return sb_take(&b);
}

/* ------------------------------------------------------------------ the sandbox */

void lmz_qa_sandbox_defaults(lmz_qa_sandbox_limits *l) {
    l->wall_s = 10;
    l->cpu_s = 10;
    l->mem_bytes = (size_t)1 << 30;
    l->file_bytes = (size_t)1 << 20;
    l->output_cap = (size_t)64 << 10;
    l->max_files = 64;
    l->max_procs = 32;
}

/* Whether every directory from PATH up to the root lets others through (o+x). */
static bool reachable_by_others(const char *path) {
    char dir[PATH_MAX];
    struct stat st;
    if (!realpath(path, dir)) return false;
    for (;;) {
        if (stat(dir, &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) break;
        *slash = 0;
    }
    return true;
}

/* Whether PATH (resolved) is an ELF executable that the sandbox's uid can run: a script
 * such as a pyenv shim needs the environment the sandbox clears, and a file under a
 * private directory (/root) is out of reach of the unprivileged uid. */
static bool usable_python(const char *path, char *real, size_t cap) {
    char buf[PATH_MAX];
    if (!realpath(path, buf) || strlen(buf) >= cap) return false;
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISREG(st.st_mode) || access(buf, X_OK) != 0) return false;
    FILE *f = fopen(buf, "rb");
    unsigned char magic[4] = {0};
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    if (got != 4 || memcmp(magic, "\x7f" "ELF", 4)) return false;
    if (geteuid() == 0) { /* every directory on the way and the file: executable by others */
        if (!(st.st_mode & S_IXOTH)) return false;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", buf);
        for (char *slash; (slash = strrchr(dir, '/')) && slash != dir;) {
            *slash = 0;
            if (stat(dir, &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
        }
    }
    snprintf(real, cap, "%s", buf);
    return true;
}

const char *lmz_qa_python(void) {
    static char path[PATH_MAX];
    static int done;
    if (done) return path[0] ? path : NULL;
    done = 1;
    path[0] = 0;
    const char *env = getenv("LMZ_PYTHON");
    if (env && *env) return usable_python(env, path, sizeof path) ? path : NULL;
    const char *dirs = getenv("PATH");
    char cand[PATH_MAX];
    while (dirs && *dirs) {
        size_t n = strcspn(dirs, ":");
        if (n && n < sizeof cand - 16) {
            snprintf(cand, sizeof cand, "%.*s/python3", (int)n, dirs);
            if (usable_python(cand, path, sizeof path)) return path;
        }
        dirs += n;
        if (*dirs == ':') dirs++;
    }
    static const char *const fixed[] = {"/usr/local/bin/python3", "/usr/bin/python3", "/bin/python3"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (usable_python(fixed[i], path, sizeof path)) return path;
    path[0] = 0;
    return NULL;
}

#define SANDBOX_UID 65534 /* nobody */

/* Tasks (threads) that UID runs now, from /proc; 0 when /proc cannot be read. */
static long tasks_of_uid(uid_t uid) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    long total = 0;
    struct dirent *e;
    char path[300], line[256];
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        long threads = 1;
        bool mine = false;
        while (fgets(line, sizeof line, f)) {
            unsigned long ru;
            long t;
            if (sscanf(line, "Uid: %lu", &ru) == 1) mine = ru == (unsigned long)uid;
            else if (sscanf(line, "Threads: %ld", &t) == 1) threads = t;
        }
        fclose(f);
        if (mine) total += threads;
    }
    closedir(d);
    return total;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D) rmdir(path);
    else unlink(path);
    return 0;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Messages from the sandbox's first process to lmz. */
enum { MSG_FLAGS = 1, MSG_STATUS = 2 };

static void put_msg(int fd, int type, int value) {
    int m[2] = {type, value};
    ssize_t w = write(fd, m, sizeof m);
    (void)w;
}

static void set_limit(int res, rlim_t soft, rlim_t hard) {
    struct rlimit r = {soft, hard};
    setrlimit(res, &r);
}

/* In the process that becomes python3 (only async-signal-safe calls: the parent is
 * multithreaded). Never returns. */
static void exec_python(const char *python, const char *dir, int out_fd, const lmz_qa_sandbox_limits *l,
                        rlim_t nproc, bool drop_uid, char *const *argv, char *const *envp) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) _exit(127);
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
        for (int fd = 3; fd < 4096; fd++) close(fd);
    set_limit(RLIMIT_CPU, (rlim_t)l->cpu_s, (rlim_t)l->cpu_s + 1);
    set_limit(RLIMIT_AS, (rlim_t)l->mem_bytes, (rlim_t)l->mem_bytes);
    set_limit(RLIMIT_FSIZE, (rlim_t)l->file_bytes, (rlim_t)l->file_bytes);
    set_limit(RLIMIT_NOFILE, (rlim_t)l->max_files, (rlim_t)l->max_files);
    set_limit(RLIMIT_CORE, 0, 0);
    if (drop_uid) {
        gid_t g = SANDBOX_UID;
        if (syscall(SYS_setgroups, 1, &g) != 0 || syscall(SYS_setgid, (gid_t)SANDBOX_UID) != 0 ||
            syscall(SYS_setuid, (uid_t)SANDBOX_UID) != 0) {
            static const char msg[] = "lmz sandbox: cannot drop to an unprivileged uid\n";
            ssize_t w = write(2, msg, sizeof msg - 1);
            (void)w;
            _exit(125);
        }
    }
    set_limit(RLIMIT_NPROC, nproc, nproc);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* after the uid change, which clears it */
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (chdir(dir) != 0) _exit(126);
    execve(python, argv, envp);
    _exit(127);
}

void lmz_qa_sandbox_result_free(lmz_qa_sandbox_result *r) {
    if (!r) return;
    free(r->output);
    r->output = NULL;
}

int lmz_qa_sandbox_python(const char *program, const lmz_qa_sandbox_limits *lim, lmz_qa_sandbox_result *r) {
    lmz_qa_sandbox_limits def;
    if (!lim) {
        lmz_qa_sandbox_defaults(&def);
        lim = &def;
    }
    memset(r, 0, sizeof *r);
    const char *python = lmz_qa_python();
    if (!python) return lmz_fail("no python3 to run code answers (install it, or set LMZ_PYTHON)");
    const char *tmp = getenv("TMPDIR");
    bool root = geteuid() == 0;
    /* the unprivileged uid must be able to reach the directory */
    if (!tmp || !*tmp || strlen(tmp) > 200 || (root && !reachable_by_others(tmp))) tmp = "/tmp";
    snprintf(r->dir, sizeof r->dir, "%s/lmz-sandbox-XXXXXX", tmp);
    if (!mkdtemp(r->dir)) return lmz_fail("cannot make a temporary directory in %s: %s", tmp, strerror(errno));
    char prog_path[300], out_path[300];
    snprintf(prog_path, sizeof prog_path, "%s/prog.py", r->dir);
    snprintf(out_path, sizeof out_path, "%s/output.txt", r->dir);
    int rc = -1, out_fd = -1, pipefd[2] = {-1, -1};
    FILE *f = fopen(prog_path, "wb");
    if (!f || fwrite(program, 1, strlen(program), f) != strlen(program)) {
        if (f) fclose(f);
        lmz_fail("cannot write %s", prog_path);
        goto out;
    }
    if (fclose(f)) {
        lmz_fail("cannot write %s", prog_path);
        goto out;
    }
    chmod(prog_path, 0644);
    if (root && chown(r->dir, SANDBOX_UID, SANDBOX_UID) != 0) {
        lmz_fail("cannot hand %s to the sandbox uid: %s", r->dir, strerror(errno));
        goto out;
    }
    chmod(r->dir, 0755);
    out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out_fd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
        lmz_fail("cannot open %s: %s", out_path, strerror(errno));
        goto out;
    }
    uid_t run_uid = root ? SANDBOX_UID : geteuid();
    rlim_t nproc = (rlim_t)(tasks_of_uid(run_uid) + lim->max_procs);
    char home[300], tmpenv[310];
    snprintf(home, sizeof home, "HOME=%s", r->dir);
    snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", r->dir);
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", home, tmpenv, "LANG=C.UTF-8", "PYTHONHASHSEED=0",
                    "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8", NULL};
    char *argv[] = {"python3", "-B", "-s", "prog.py", NULL};
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        lmz_fail("fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        close(pipefd[0]);
        setsid();
        int flags = 0;
        if (unshare(CLONE_NEWNET) == 0) flags |= 1;
        if (unshare(CLONE_NEWPID) == 0) flags |= 2;
        put_msg(pipefd[1], MSG_FLAGS, flags);
        if (!(flags & 2)) exec_python(python, r->dir, out_fd, lim, nproc, root, argv, envp);
        /* python3 runs as the new namespace's first process; this one waits for it and
         * reports its status (when this one is killed, the kernel kills python3) */
        pid_t child = fork();
        if (child < 0) _exit(124);
        if (child == 0) exec_python(python, r->dir, out_fd, lim, nproc, root, argv, envp);
        int st;
        while (waitpid(child, &st, 0) < 0)
            if (errno != EINTR) _exit(124);
        put_msg(pipefd[1], MSG_STATUS, st);
        _exit(0);
    }
    close(pipefd[1]);
    pipefd[1] = -1;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (now_s() - t0 > lim->wall_s) {
            r->timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
            break;
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL); /* whatever the program left behind in its process group */
    r->wall_s = now_s() - t0;
    int msg[2], status = st;
    bool from_pipe = false;
    while (read(pipefd[0], msg, sizeof msg) == (ssize_t)sizeof msg) {
        if (msg[0] == MSG_FLAGS) {
            r->netns = msg[1] & 1;
            r->pidns = (msg[1] & 2) != 0;
        } else if (msg[0] == MSG_STATUS) {
            status = msg[1];
            from_pipe = true;
        }
    }
    r->uid_dropped = root;
    if (r->timed_out) {
        r->exited = false;
        r->exit_code = -1;
        r->term_signal = SIGKILL;
    } else if (r->pidns && !from_pipe) { /* the waiting process died: treat as killed */
        r->exited = false;
        r->exit_code = -1;
        r->term_signal = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
    } else if (WIFEXITED(status)) {
        r->exited = true;
        r->exit_code = WEXITSTATUS(status);
    } else {
        r->exited = false;
        r->exit_code = -1;
        r->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    /* the output, capped */
    {
        int fd = open(out_path, O_RDONLY | O_CLOEXEC);
        struct stat sst;
        size_t size = fd >= 0 && fstat(fd, &sst) == 0 ? (size_t)sst.st_size : 0;
        size_t keep = size < lim->output_cap ? size : lim->output_cap;
        r->output = lmz_malloc(keep + 1);
        if (!r->output) {
            if (fd >= 0) close(fd);
            goto out;
        }
        size_t got = 0;
        while (fd >= 0 && got < keep) {
            ssize_t k = read(fd, r->output + got, keep - got);
            if (k <= 0) break;
            got += (size_t)k;
        }
        if (fd >= 0) close(fd);
        r->output[got] = 0;
        r->output_len = got;
        r->output_truncated = size > keep;
    }
    rc = 0;
out:
    if (out_fd >= 0) close(out_fd);
    if (pipefd[0] >= 0) close(pipefd[0]);
    if (pipefd[1] >= 0) close(pipefd[1]);
    nftw(r->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

/* ------------------------------------------------------------------ grading */

void lmz_qa_grade_free(lmz_qa_grade *g) {
    if (!g) return;
    free(g->extracted);
    free(g->output);
    memset(g, 0, sizeof *g);
}

int lmz_qa_grade_answer(const lmz_qa_item *it, const char *answer, const lmz_qa_sandbox_limits *l, lmz_qa_grade *g) {
    memset(g, 0, sizeof *g);
    if (!answer) answer = "";
    if (it->task != LMZ_QA_CODE) {
        g->extracted = lmz_qa_math_extract(answer);
        g->correct = g->extracted && lmz_qa_math_equal(g->extracted, it->gold);
        return 0;
    }
    g->extracted = lmz_qa_code_extract(answer, it->entry_point);
    char *prog = lmz_qa_code_program(it, answer);
    if (!g->extracted || !prog) {
        free(prog);
        return -1;
    }
    lmz_qa_sandbox_result r;
    int rc = lmz_qa_sandbox_python(prog, l, &r);
    free(prog);
    if (rc) {
        g->exit_code = -1;
        return -1;
    }
    g->correct = r.exited && r.exit_code == 0;
    g->exit_code = r.exited ? r.exit_code : -1;
    g->term_signal = r.term_signal;
    g->timed_out = r.timed_out;
    g->seconds = r.wall_s;
    size_t keep = r.output_len > 2048 ? 2048 : r.output_len;
    g->output = dup_n(r.output + r.output_len - keep, keep);
    lmz_qa_sandbox_result_free(&r);
    return g->output ? 0 : -1;
}
