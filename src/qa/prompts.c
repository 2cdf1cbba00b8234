/* prompts.c — lmz's own QA prompts (docs/qa.md §3 quotes them), their rendering into chat
 * tokens, and the parsing of a question list with its deterministic fallback questions.
 *
 * Every prompt is a system text and a user text whose \x01 bytes stand for data (the
 * problem, an attempt, a reference, questions). The chat template is rendered around the
 * markers and the pieces tokenized separately: our text with special tokens parsed, the
 * data as plain text, so a problem or an answer containing "<|im_end|>" cannot end a turn.
 * Changing any text here changes every stream's meaning: it is part of the format version. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../generate/chat.h"
#include "../util/error.h"
#include "qa_internal.h"

#define MARK '\x01'

void qa_toks_free(qa_toks *t) {
    free(t->ids);
    t->ids = NULL;
    t->n = 0;
}

/* ---------------- the texts ---------------- */

static const char *const system_solve[] = {
    /* math */
    "You solve math problems. Work through the problem step by step, writing out every calculation, then give "
    "the result on the last line as \"Final answer: \" followed by the number alone.",
    /* code */
    "You write Python. Reply with one complete Python function, with any imports it needs, in a single "
    "```python code block, and write nothing after the block.",
    /* general */
    "Answer the question correctly. Think it through briefly, then give the result on the last line as "
    "\"Final answer: \" followed by the answer alone.",
};

static const char system_ask[] =
    "You review solutions by asking an expert yes/no questions about them.";

/* What the questions should check, by task. */
static const char *const ask_focus[] = {
    "whether the final answer is right, whether a particular step or calculation is right (quote its numbers), "
    "whether the right formula or method is used, or whether the solution respects a condition stated in the problem",
    "whether the function returns the right result for a particular input (name the input), whether an edge case "
    "is handled, whether the algorithm is the right one, or whether the function's name and arguments are what the "
    "problem asks for",
    "whether the final answer is right, whether a fact the answer relies on is true, whether a step of its "
    "reasoning holds, or whether it answers exactly what is asked",
};

static const char system_belief[] = "Answer the question about the solution with Yes or No only.";

static const char system_checker[] =
    "You are an expert checker who knows the correct solution. Answer each question about a student's solution "
    "truthfully, with Yes or No only.";

static const char *const judge_question[] = {
    "Is this solution correct, including its final answer?",
    "Is this code correct, doing what the problem asks for every valid input?",
    "Is this answer correct?",
};

static const char *const refine_tail[] = {
    "Write a new, corrected solution that agrees with every one of these facts. Show each step and end with "
    "\"Final answer: \" followed by the number alone.",
    "Write the corrected function, agreeing with every one of these facts, in one ```python code block.",
    "Write a corrected answer that agrees with every one of these facts, ending with \"Final answer: \" followed "
    "by the answer alone.",
};

/* Used, in this order, when the question model gives fewer than K usable questions. */
static const char *const fallback[3][10] = {
    {"Is the final answer correct?", "Is every calculation in the solution correct?",
     "Does the solution use every number given in the problem correctly?",
     "Is the method used to solve the problem the right one?",
     "Does the solution answer exactly the quantity the problem asks for?", "Is the first step of the solution correct?",
     "Should the final answer be larger than the one given?", "Is the correct final answer a whole number?",
     "Does the solution misread any part of the problem?", "Is a step missing from the solution?"},
    {"Is the code correct?", "Does the function return the right result for the examples in the problem?",
     "Is the function named as the problem requires?", "Does the function take the right arguments?",
     "Is the algorithm the right one for this problem?", "Does the code handle an empty input correctly?",
     "Does the code handle the edge cases correctly?", "Is the return type right?",
     "Does the code run without errors?", "Is a loop bound in the code wrong?"},
    {"Is the answer correct?", "Is every fact the answer relies on true?", "Is the reasoning sound?",
     "Does the answer address exactly what is asked?", "Is the first step of the reasoning correct?",
     "Is the final answer stated clearly?", "Does the answer misread the question?", "Is something missing from the answer?",
     "Would an expert give the same answer?", "Is the answer complete?"},
};

/* The question model's reply is primed with this, so that even a small model starts a
 * numbered list of yes/no questions; the parser sees it in front of the generated text. */
const char qa_question_prefill[] = "1. Is";

const char *qa_judge_question(enum lmz_qa_task task) { return judge_question[task]; }

int qa_judge_by_answer(lmz_qa_oracle *o, enum lmz_qa_task task, const char *const *problems,
                       const char *const *refs, const char *const *attempts, int n, uint8_t *accept) {
    const char **qs = lmz_malloc((size_t)n * sizeof *qs);
    if (!qs) return -1;
    for (int i = 0; i < n; i++) qs[i] = qa_judge_question(task);
    int rc = o->answer(o, problems, refs, attempts, qs, n, 1, accept);
    free(qs);
    return rc;
}

const char *qa_system_solve(enum lmz_qa_task task) { return system_solve[task]; }
const char *qa_system_checker(void) { return system_checker; }
int qa_question_tokens(int k) { return 40 * k + 24; }

/* ---------------- rendering ---------------- */

static int append_tokens(const lmz_tokenizer *tok, const char *text, size_t len, bool special, qa_toks *t,
                         size_t *cap) {
    int32_t *part;
    size_t k;
    if (!len) return 0;
    if (lmz_tokenize(tok, text, len, false, special, &part, &k)) return -1;
    if (t->n + k > *cap) {
        size_t c = (t->n + k) * 2 + 16;
        int32_t *p = lmz_realloc(t->ids, c * sizeof *p);
        if (!p) {
            free(part);
            return -1;
        }
        t->ids = p;
        *cap = c;
    }
    if (k) memcpy(t->ids + t->n, part, k * sizeof *part);
    t->n += k;
    free(part);
    return 0;
}

/* What ends a prompt for a model without a chat template, where its reply begins. */
static const char plain_reply[] = "\n\nResponse:";

/* Renders SYSTEM + USER (its markers filled with DATA[0..n_data) in order) into tokens.
 * With TAIL, the last marker is a split point instead: OUT gets the tokens before it, TAIL
 * those after it (DATA then has one entry fewer than USER has markers). */
static int render(const lmz_model *m, const lmz_tokenizer *tok, const char *system, const char *user,
                  const char *const *data, int n_data, qa_toks *out, qa_toks *tail) {
    memset(out, 0, sizeof *out);
    if (tail) memset(tail, 0, sizeof *tail);
    lmz_chat_message msgs[2] = {{"system", system}, {"user", user}};
    char *rendered;
    if (lmz_chat_detect(m->file) != LMZ_CHAT_NONE) rendered = lmz_chat_render(m->file, msgs, 2);
    else {
        /* a model without a chat template (a base model as the oracle): plain text */
        size_t n = strlen(system) + strlen(user) + sizeof plain_reply + 4;
        if ((rendered = lmz_malloc(n))) snprintf(rendered, n, "%s\n\n%s%s", system, user, plain_reply);
    }
    if (!rendered) return -1;
    int markers = 0;
    for (const char *p = rendered; *p; p++) markers += *p == MARK;
    if (markers != n_data + (tail ? 1 : 0)) {
        free(rendered);
        return lmz_fail("the chat template of %s holds the byte 0x01 or drops the user's message", m->name);
    }
    size_t cap = 0, tail_cap = 0;
    int rc = 0;
    int32_t bos = lmz_tokenizer_bos(tok);
    if (lmz_tokenizer_adds_bos(tok) && bos >= 0 && strncmp(rendered, "<bos>", 5) && strncmp(rendered, "<s>", 3)) {
        out->ids = lmz_malloc(16 * sizeof *out->ids);
        if (!out->ids) rc = -1;
        else out->ids[out->n++] = bos, cap = 16;
    }
    const char *seg = rendered;
    int used = 0;
    qa_toks *into = out;
    size_t *into_cap = &cap;
    while (!rc) {
        const char *mark = strchr(seg, MARK);
        size_t len = mark ? (size_t)(mark - seg) : strlen(seg);
        if ((rc = append_tokens(tok, seg, len, true, into, into_cap))) break;
        if (!mark) break;
        if (used < n_data) {
            rc = append_tokens(tok, data[used], strlen(data[used]), false, into, into_cap);
            used++;
        } else {
            into = tail;
            into_cap = &tail_cap;
        }
        seg = mark + 1;
    }
    free(rendered);
    if (!rc && out->n == 0) rc = lmz_fail("a QA prompt rendered to no tokens");
    if (rc) {
        qa_toks_free(out);
        if (tail) qa_toks_free(tail);
    }
    return rc;
}

/* A malloc'd copy of FMT with %d replaced by K (our texts hold at most two %d). */
static char *with_k(const char *fmt, int k) {
    size_t n = strlen(fmt) + 64;
    char *s = lmz_malloc(n);
    if (s) snprintf(s, n, fmt, k, k);
    return s;
}

/* The numbered Q/A list "1. QUESTION\n   Answer: Yes\n" for QS/BITS[0..n). */
static char *qa_list(char *const *qs, const uint8_t *bits, int n) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(qs[i]) + 40;
    char *s = lmz_malloc(len), *p = s;
    if (!s) return NULL;
    *p = 0;
    for (int i = 0; i < n; i++) p += snprintf(p, len - (size_t)(p - s), "%d. %s\n   Answer: %s\n", i + 1, qs[i], bits[i] ? "Yes" : "No");
    if (p > s) p[-1] = 0; /* no final newline */
    return s;
}

int qa_prompt_attempt(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task, const char *problem,
                      qa_toks *out) {
    const char *data[1] = {problem};
    return render(m, tok, system_solve[task], "\x01", data, 1, out, NULL);
}

int qa_prompt_questions(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task, const char *problem,
                        const char *attempt, char *const *prior_q, const uint8_t *prior_bits, int n_prior, int k,
                        qa_toks *out) {
    char fmt[1400];
    snprintf(fmt, sizeof fmt,
             "Problem:\n\x01\n\nProposed solution:\n\x01\n\n%s"
             "An expert who knows the correct solution will answer each of your questions with yes or no, and the "
             "answers will be used to correct the solution. Write exactly %%d questions about the proposed solution "
             "that can be answered with yes or no. Each question checks one thing: %s.%s Reply with the questions "
             "only, as a numbered list from 1 to %%d, one question per line.",
             n_prior ? "Questions the expert has already answered:\n\x01\n\n" : "", ask_focus[task],
             n_prior ? " Do not repeat a question that has already been answered." : "");
    char *user = with_k(fmt, k), *list = n_prior ? qa_list(prior_q, prior_bits, n_prior) : NULL;
    int rc = -1;
    if (user && (list || !n_prior)) {
        const char *data[3] = {problem, attempt, list};
        rc = render(m, tok, system_ask, user, data, n_prior ? 3 : 2, out, NULL);
        size_t cap = out->n;
        /* the reply starts as a yes/no question list does (qa_question_prefill) */
        if (!rc) rc = append_tokens(tok, qa_question_prefill, strlen(qa_question_prefill), false, out, &cap);
        if (rc) qa_toks_free(out);
    }
    free(user);
    free(list);
    return rc;
}

int qa_prompt_refine(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task, const char *problem,
                     const char *attempt, char *const *qs, const uint8_t *bits, int nq, qa_toks *out) {
    char user[1400];
    snprintf(user, sizeof user,
             "Problem:\n\x01\n\nYour earlier solution:\n\x01\n\n"
             "An expert checker who knows the correct solution answered these yes/no questions about your earlier "
             "solution. Take the answers as facts: where your earlier solution disagrees with them, it is wrong.\n\n"
             "\x01\n\n%s",
             refine_tail[task]);
    char *list = qa_list(qs, bits, nq);
    if (!list) return -1;
    const char *data[3] = {problem, attempt, list};
    int rc = render(m, tok, system_solve[task], user, data, 3, out, NULL);
    free(list);
    return rc;
}

static const char belief_user[] =
    "Problem:\n\x01\n\nSolution:\n\x01\n\nQuestion about this solution: \x01\nAnswer Yes or No.";
static const char checker_user[] =
    "Problem:\n\x01\n\nA correct reference solution:\n\x01\n\nThe student's solution:\n\x01\n\n"
    "Question about the student's solution: \x01\nAnswer Yes or No.";

int qa_prompt_belief(const lmz_model *m, const lmz_tokenizer *tok, const char *problem, const char *attempt,
                     qa_toks *prefix, qa_toks *tail) {
    const char *data[2] = {problem, attempt};
    return render(m, tok, system_belief, belief_user, data, 2, prefix, tail);
}

int qa_prompt_checker(const lmz_model *m, const lmz_tokenizer *tok, const char *problem, const char *reference,
                      const char *attempt, qa_toks *prefix, qa_toks *tail) {
    const char *data[3] = {problem, reference, attempt};
    return render(m, tok, system_checker, checker_user, data, 3, prefix, tail);
}

char *qa_checker_message(const char *problem, const char *reference, const char *attempt, const char *question) {
    const char *data[4] = {problem, reference, attempt, question};
    size_t len = sizeof checker_user;
    for (int i = 0; i < 4; i++) len += strlen(data[i]);
    char *s = lmz_malloc(len), *p = s;
    if (!s) return NULL;
    int used = 0;
    for (const char *c = checker_user; *c; c++) {
        if (*c != MARK) *p++ = *c;
        else {
            size_t n = strlen(data[used]);
            memcpy(p, data[used++], n);
            p += n;
        }
    }
    *p = 0;
    return s;
}

/* ---------------- parsing questions ---------------- */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

/* LINE[0..len) without surrounding spaces and markdown emphasis ("**", "*", "__"). */
static void trim(const char **line, size_t *len) {
    const char *s = *line;
    size_t n = *len;
    for (;;) {
        while (n && is_space(*s)) s++, n--;
        while (n && is_space(s[n - 1])) n--;
        if (n >= 2 && ((s[0] == '*' && s[1] == '*') || (s[0] == '_' && s[1] == '_'))) s += 2, n -= 2;
        else if (n >= 2 && ((s[n - 1] == '*' && s[n - 2] == '*') || (s[n - 1] == '_' && s[n - 2] == '_'))) n -= 2;
        else break;
    }
    *line = s;
    *len = n;
}

/* The question in a numbered line ("3. ...", "3) ...", "Q3: ...", "**3.** ..."), or NULL. */
static const char *numbered(const char *s, size_t n, size_t *qlen) {
    size_t i = 0;
    if (i < n && (s[i] == 'Q' || s[i] == 'q')) i++;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == d || i - d > 3 || i >= n || (s[i] != '.' && s[i] != ')' && s[i] != ':')) return NULL;
    i++;
    const char *q = s + i;
    size_t len = n - i;
    trim(&q, &len);
    *qlen = len;
    return len ? q : NULL;
}

static bool has(char **list, int n, const char *q, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(list[i]) == len && !memcmp(list[i], q, len)) return true;
    return false;
}

#define QA_QUESTION_MAX_BYTES 300

int qa_parse_questions(const char *text, int k, enum lmz_qa_task task, char *const *prior, int n_prior, char ***out) {
    char **qs = lmz_calloc((size_t)k, sizeof *qs);
    if (!qs) return -1;
    int got = 0;
    for (int pass = 0; pass < 2 && got == 0; pass++) {
        /* pass 0: numbered lines; pass 1 (nothing numbered): lines ending in '?' */
        for (const char *line = text; *line && got < k;) {
            const char *nl = strchr(line, '\n');
            size_t n = nl ? (size_t)(nl - line) : strlen(line);
            const char *s = line;
            trim(&s, &n);
            while (n && (*s == '-' || *s == '*' || *s == '#')) s++, n--; /* list bullets, headings */
            trim(&s, &n);
            size_t qlen = 0;
            const char *q = pass == 0 ? numbered(s, n, &qlen) : (n && s[n - 1] == '?' ? (qlen = n, s) : NULL);
            if (q) {
                if (qlen > QA_QUESTION_MAX_BYTES) {
                    qlen = QA_QUESTION_MAX_BYTES;
                    while (qlen && ((unsigned char)q[qlen] & 0xC0) == 0x80) qlen--; /* whole UTF-8 characters */
                }
                if (!has(qs, got, q, qlen) && !has((char **)prior, n_prior, q, qlen)) {
                    if (!(qs[got] = lmz_malloc(qlen + 1))) goto fail;
                    memcpy(qs[got], q, qlen);
                    qs[got][qlen] = 0;
                    got++;
                }
            }
            line = nl ? nl + 1 : line + strlen(line);
        }
    }
    /* fallbacks not yet asked, then (only when K exceeds them) any of them again, in order */
    for (int pass = 0; pass < 2 && got < k; pass++)
        for (int f = 0; got < k && (pass == 1 || f < 10); f++) {
            const char *q = fallback[task][f % 10];
            if (pass == 0 && (has(qs, got, q, strlen(q)) || has((char **)prior, n_prior, q, strlen(q)))) continue;
            if (!(qs[got] = lmz_malloc(strlen(q) + 1))) goto fail;
            strcpy(qs[got++], q);
        }
    *out = qs;
    return 0;
fail:
    for (int i = 0; i < got; i++) free(qs[i]);
    free(qs);
    return -1;
}
