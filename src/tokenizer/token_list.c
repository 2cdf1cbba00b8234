/* token_list.c — appending to a token-id list (doubling growth). */
#include "token_list.h"

#include "../util/error.h"

int lmz_token_list_push(lmz_token_list *l, int32_t id) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        int32_t *ids = lmz_realloc(l->ids, cap * sizeof *ids);
        if (!ids) return -1;
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}
