/* chat.h — rendering a conversation into the prompt text an instruct model expects.
 *
 * lmz has no Jinja engine; it recognises the template families stored in GGUF files
 * (tokenizer.chat_template) by their markers, as llama.cpp's built-in fallback does:
 * ChatML ("<|im_start|>": SmolLM2, Qwen2.5) and Gemma ("<start_of_turn>"). A default
 * system prompt written into a ChatML template (SmolLM2's, Qwen2.5's) is used when the
 * conversation has none. The rendered text is tokenized with special tokens parsed. */
#ifndef LMZ_CHAT_H
#define LMZ_CHAT_H

#include <stddef.h>

#include "../gguf/gguf.h"

typedef struct {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content;
} lmz_chat_message;

enum lmz_chat_format { LMZ_CHAT_NONE, LMZ_CHAT_CHATML, LMZ_CHAT_GEMMA };

/* The format of F's chat template; LMZ_CHAT_NONE when it has none or lmz does not know it. */
enum lmz_chat_format lmz_chat_detect(const gguf_file *f);

/* Renders MSGS for the model in F, ending with the opening of the assistant's turn.
 * Returns a malloc'd NUL-terminated string, or NULL + lmz_fail. */
char *lmz_chat_render(const gguf_file *f, const lmz_chat_message *msgs, int n);

#endif
