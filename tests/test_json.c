/* test_json.c — the JSON reader and string writer (src/util/json.h): a chat completion
 * reply read into a tree, every kind of value, decoded strings, the writer's escapes read
 * back, and malformed or too deeply nested input refused with a position. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../src/util/error.h"
#include "../src/util/json.h"
#include "test.h"

TEST(json_reads_a_reply) {
    static const char reply[] =
        " {\"id\": \"x\", \"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": "
        "\"a\\nb \\u00e9\\ud83d\\ude00\"}}, {\"message\": {\"content\": null}}], \"usage\": {\"n\": -1.5e3}, "
        "\"ok\": true, \"no\": false, \"empty\": {}, \"list\": []} ";
    lmz_json *j = lmz_json_parse(reply, strlen(reply));
    CHECKF(j != NULL, "%s", lmz_last_error());
    const lmz_json *choices = lmz_json_get(j, "choices");
    bool ok = choices && choices->type == LMZ_JSON_ARRAY && lmz_json_count(choices) == 2 && lmz_json_count(j) == 7;
    const lmz_json *content = lmz_json_get(lmz_json_get(choices ? choices->child : NULL, "message"), "content");
    static const char want[] = "a\nb \xc3\xa9\xf0\x9f\x98\x80";
    ok = ok && content && content->type == LMZ_JSON_STRING && content->len == strlen(want) && !strcmp(content->str, want);
    const lmz_json *second = lmz_json_get(lmz_json_get(choices ? choices->child->next : NULL, "message"), "content");
    ok = ok && second && second->type == LMZ_JSON_NULL;
    const lmz_json *n = lmz_json_get(lmz_json_get(j, "usage"), "n");
    ok = ok && n && n->type == LMZ_JSON_NUMBER && !strcmp(n->str, "-1.5e3");
    ok = ok && lmz_json_get(j, "ok")->type == LMZ_JSON_TRUE && lmz_json_get(j, "no")->type == LMZ_JSON_FALSE;
    ok = ok && lmz_json_get(j, "empty")->type == LMZ_JSON_OBJECT && lmz_json_count(lmz_json_get(j, "empty")) == 0;
    ok = ok && !lmz_json_get(j, "missing") && !lmz_json_get(content, "x") && lmz_json_count(content) == 0;
    lmz_json_free(j);
    CHECK(ok);
}

TEST(json_writer_round_trip) {
    char s[256];
    for (int i = 0; i < 255; i++) s[i] = (char)(i + 1); /* every byte but NUL */
    lmz_bytebuf b = {0};
    CHECK(lmz_json_write_string(&b, s, 255) == 0);
    lmz_json *j = lmz_json_parse((const char *)b.data, b.len);
    bool same = j && j->type == LMZ_JSON_STRING && j->len == 255 && !memcmp(j->str, s, 255);
    lmz_json_free(j);
    lmz_bytebuf_free(&b);
    CHECK(same);
}

TEST(json_refuses_malformed) {
    static const struct {
        const char *text, *error;
    } bad[] = {
        {"", "unexpected end at byte 1"},
        {"{\"a\": \"open", "unterminated string"},
        {"{\"a\" 1}", "expected ':'"},
        {"[1, 2", "expected ',' or ']'"},
        {"{\"a\": 1 \"b\"}", "expected ',' or '}'"},
        {"{1: 2}", "expected a key"},
        {"\"x\" y", "text after the value at byte 5"},
        {"\"\\q\"", "invalid escape in a string"},
        {"nope", "unexpected character at byte 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lmz_json *j = lmz_json_parse(bad[i].text, strlen(bad[i].text));
        lmz_json_free(j);
        CHECKF(!j && strstr(lmz_last_error(), bad[i].error), "'%s': %s", bad[i].text, j ? "accepted" : lmz_last_error());
    }
    char deep[200];
    memset(deep, '[', sizeof deep);
    lmz_json *j = lmz_json_parse(deep, sizeof deep);
    CHECK(!j && strstr(lmz_last_error(), "nested too deeply"));
}
