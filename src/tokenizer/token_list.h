/* token_list.h — the growable list of token ids that the tokenizer stages append to. */
#ifndef LMZ_TOKEN_LIST_H
#define LMZ_TOKEN_LIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t *ids;
    size_t n, cap;
} lmz_token_list;

/* Appends ID. 0, or -1 + lmz_fail on allocation failure. */
int lmz_token_list_push(lmz_token_list *l, int32_t id);

#endif
