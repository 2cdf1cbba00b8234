/* model_fixture.h — models and tokenizers shared by the tests, loaded once per run. */
#ifndef LMZ_MODEL_FIXTURE_H
#define LMZ_MODEL_FIXTURE_H

#include "../src/model/model.h"
#include "../src/tokenizer/tokenizer.h"

/* The cached model NAME ("smollm2", ...), or NULL after reporting a test failure that
 * says how to fetch it. */
lmz_model *test_model(const char *name);
lmz_tokenizer *test_tokenizer(const char *name);
/* For models outside CI (Qwen2.5-Coder 1.5B, fetched by `make models-all`): NULL after
 * marking the test skipped when the model is not downloaded. */
lmz_model *test_model_optional(const char *name);

#endif
