/* fingerprint.c — the SHA-256 of a model file, which archives record so that decompression
 * with another model is refused. Hashing a large GGUF takes a while, so the digest is
 * cached in $LMZ_CACHE/fingerprints/, keyed by the file's device, inode, size and mtime. */
#include "fingerprint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/sha256.h"

static void cache_path(const char *path, char *out, size_t cap) {
    struct stat st;
    const char *dir = getenv("LMZ_CACHE");
    char base[2048];
    if (dir && *dir) snprintf(base, sizeof base, "%s", dir);
    else snprintf(base, sizeof base, "%s/.cache/lmz", getenv("HOME") ? getenv("HOME") : ".");
    if (stat(path, &st) != 0) {
        out[0] = 0;
        return;
    }
    snprintf(out, cap, "%s/fingerprints/%llx-%llx-%llx-%llx.%09ld", base, (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (unsigned long long)st.st_size, (unsigned long long)st.st_mtim.tv_sec,
             (long)st.st_mtim.tv_nsec);
}

static int read_cached(const char *file, uint8_t sha[32]) {
    FILE *f = file[0] ? fopen(file, "r") : NULL;
    if (!f) return -1;
    char hex[65] = {0};
    int ok = fscanf(f, "%64s", hex) == 1 && strlen(hex) == 64;
    fclose(f);
    for (int i = 0; ok && i < 32; i++) {
        unsigned v;
        ok = sscanf(hex + 2 * i, "%2x", &v) == 1;
        sha[i] = (uint8_t)v;
    }
    return ok ? 0 : -1;
}

static void write_cached(const char *file, const uint8_t sha[32]) {
    if (!file[0]) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = 0;
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    char *pslash = strrchr(parent, '/');
    if (pslash) {
        *pslash = 0;
        mkdir(parent, 0755);
    }
    mkdir(dir, 0755);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", file, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    char hex[65];
    lmz_sha256_hex(sha, hex);
    int ok = fprintf(f, "%s\n", hex) > 0;
    ok = fclose(f) == 0 && ok;
    if (ok) rename(tmp, file);
    else remove(tmp);
}

void lmz_model_fingerprint(const lmz_model *m, uint8_t sha[32]) {
    char cache[4400];
    cache_path(m->path, cache, sizeof cache);
    if (read_cached(cache, sha) == 0) return;
    size_t size;
    const void *base = gguf_base(m->file, &size);
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, base, size);
    lmz_sha256_final(&h, sha);
    write_cached(cache, sha);
}
