/* model_fixture.c — loads each test model once; freed at exit. */
#include "model_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "../src/util/error.h"
#include "test.h"

#define MAX_MODELS 4

static struct {
    const char *name;
    lmz_model *model;
    lmz_tokenizer *tok;
} cache[MAX_MODELS];

static void free_all(void) {
    for (int i = 0; i < MAX_MODELS; i++) {
        lmz_tokenizer_free(cache[i].tok);
        lmz_model_free(cache[i].model);
    }
}

static int slot(const char *name) {
    for (int i = 0; i < MAX_MODELS; i++)
        if (cache[i].name && !strcmp(cache[i].name, name)) return i;
    const char *path = test_model_path(name);
    if (!path) {
        test_fail(__FILE__, __LINE__, "model %s is not downloaded: run `make` (or python3 tools/fetch_models.py %s)",
                  name, name);
        return -1;
    }
    for (int i = 0; i < MAX_MODELS; i++) {
        if (cache[i].name) continue;
        cache[i].model = lmz_model_load(path);
        if (!cache[i].model) {
            test_fail(__FILE__, __LINE__, "loading %s: %s", path, lmz_last_error());
            return -1;
        }
        cache[i].tok = lmz_tokenizer_load(cache[i].model->file);
        if (!cache[i].tok) {
            test_fail(__FILE__, __LINE__, "loading the tokenizer of %s: %s", path, lmz_last_error());
            lmz_model_free(cache[i].model);
            cache[i].model = NULL;
            return -1;
        }
        if (i == 0) atexit(free_all);
        cache[i].name = name;
        return i;
    }
    return -1;
}

lmz_model *test_model(const char *name) {
    int i = slot(name);
    return i < 0 ? NULL : cache[i].model;
}

lmz_tokenizer *test_tokenizer(const char *name) {
    int i = slot(name);
    return i < 0 ? NULL : cache[i].tok;
}

lmz_model *test_model_optional(const char *name) {
    if (!test_model_path(name)) {
        test_skip("model %s is not downloaded (`make models-all` fetches it)", name);
        return NULL;
    }
    return test_model(name);
}
