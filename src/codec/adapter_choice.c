/* adapter_choice.c — a folder of LoRA adapters, the choice among them for an input, and
 * the lookup by fingerprint (adapter_choice.h). */
#include "adapter_choice.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/error.h"
#include "../util/sha256.h"

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The *.gguf file names in DIR, sorted (so the candidates' order is the same everywhere). */
static int gguf_names(const char *dir, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return lmz_fail("cannot read the adapter folder %s: %s", dir, strerror(errno));
    int cap = 0, rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".gguf") || e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            char **p = lmz_realloc(*names, (size_t)cap * sizeof *p);
            if (!p) {
                rc = -1;
                break;
            }
            *names = p;
        }
        if (!((*names)[*n] = strdup(e->d_name))) rc = lmz_fail("out of memory");
        else (*n)++;
    }
    closedir(d);
    if (*n) qsort(*names, (size_t)*n, sizeof **names, compare_names);
    return rc;
}

/* Whether the SHA-256 of the file PATH starts with FP (LMZ_ARCHIVE_FP_BYTES bytes). */
static int file_has_fingerprint(const char *path, const uint8_t *fp, bool *match) {
    FILE *f = fopen(path, "rb");
    if (!f) return lmz_fail("cannot open %s: %s", path, strerror(errno));
    lmz_sha256 h;
    lmz_sha256_init(&h);
    uint8_t buf[1 << 16], digest[32];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) lmz_sha256_update(&h, buf, got);
    int bad = ferror(f);
    fclose(f);
    if (bad) return lmz_fail("cannot read %s", path);
    lmz_sha256_final(&h, digest);
    *match = !memcmp(digest, fp, LMZ_ARCHIVE_FP_BYTES);
    return 0;
}

static int add_adapter(lmz_adapter_set *s, lmz_lora *l, const char *path) {
    lmz_lora **a = lmz_realloc(s->adapters, (size_t)(s->n + 1) * sizeof *a);
    if (a) s->adapters = a;
    char **p = a ? lmz_realloc(s->paths, (size_t)(s->n + 1) * sizeof *p) : NULL;
    if (p) s->paths = p;
    char *copy = p ? strdup(path) : NULL;
    if (!copy) {
        lmz_lora_free(l);
        return lmz_fail("out of memory");
    }
    s->adapters[s->n] = l;
    s->paths[s->n++] = copy;
    return 0;
}

int lmz_adapter_set_load(lmz_adapter_set *s, const char *dir, const lmz_model *model, const uint8_t *want_fp,
                         void (*skipped)(void *ctx, const char *path, const char *why), void *ctx) {
    memset(s, 0, sizeof *s);
    char **names;
    int n_names, rc = gguf_names(dir, &names, &n_names);
    for (int i = 0; !rc && i < n_names; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = lmz_malloc(len);
        if (!path) {
            rc = -1;
            break;
        }
        snprintf(path, len, "%s/%s", dir, names[i]);
        bool wanted = true;
        if (want_fp) rc = file_has_fingerprint(path, want_fp, &wanted);
        if (!rc && wanted) {
            lmz_lora *l = lmz_lora_load(path, model);
            if (l) rc = add_adapter(s, l, path);
            else if (skipped) skipped(ctx, path, lmz_last_error());
        }
        free(path);
        if (want_fp && s->n) break; /* the one the archive names */
    }
    for (int i = 0; i < n_names; i++) free(names[i]);
    free(names);
    if (!rc && s->n == 0) {
        if (want_fp) {
            char hex[65];
            uint8_t digest[32] = {0};
            memcpy(digest, want_fp, LMZ_ARCHIVE_FP_BYTES);
            lmz_sha256_hex(digest, hex);
            rc = lmz_fail("this archive needs adapter sha256 %.*s..., and no adapter for this model in %s has it",
                          2 * LMZ_ARCHIVE_FP_BYTES, hex, dir);
        } else {
            rc = lmz_fail("%s holds no LoRA adapter (*.gguf) for the model %s", dir, model->path);
        }
    }
    if (rc) lmz_adapter_set_free(s);
    return rc;
}

void lmz_adapter_set_free(lmz_adapter_set *s) {
    for (int i = 0; i < s->n; i++) {
        lmz_lora_free(s->adapters[i]);
        free(s->paths[i]);
    }
    free(s->adapters);
    free(s->paths);
    memset(s, 0, sizeof *s);
}

static int discard(void *ctx, const void *data, size_t len) {
    (void)ctx, (void)data, (void)len;
    return 0;
}

int lmz_adapter_choose(lmz_codec *c, const lmz_adapter_set *s, const uint8_t *sample, size_t len, int *chosen,
                       double *bits) {
    double best = 0;
    *chosen = -1;
    for (int i = -1; i < s->n; i++) {
        if (lmz_codec_set_lora(c, i < 0 ? NULL : s->adapters[i])) return -1;
        lmz_memory_input in = {sample, len, 0};
        lmz_codec_stats st;
        if (lmz_compress(c, lmz_read_memory, &in, discard, NULL, &st, NULL, NULL)) return -1;
        /* an adapter also costs the archive its fingerprint */
        double score = st.ideal_bits + (i < 0 ? 0.0 : 8.0 * LMZ_ARCHIVE_FP_BYTES);
        if (bits) bits[i + 1] = score;
        if (i < 0 || score < best) {
            best = score;
            *chosen = i;
        }
    }
    return lmz_codec_set_lora(c, *chosen < 0 ? NULL : s->adapters[*chosen]);
}
