/* cmd_model.c — `lmz model info`: what a GGUF file holds and how lmz reads it. */
#include <stdio.h>
#include <string.h>

#include "../gguf/tensor_types.h"
#include "../kernels/quant.h"
#include "cli.h"

static const char usage[] =
    "usage: lmz model info [MODEL.gguf]\n"
    "  Prints the architecture, dimensions, tokenizer, tensor types and metadata.\n"
    "  Without MODEL: the default model.\n";

static void print_value(const gguf_file *f, int i) {
    gguf_str key = gguf_key_name(f, i);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(key.len > 255 ? 255 : key.len), key.ptr);
    enum gguf_value_type t = gguf_key_type(f, i);
    printf("  %-44s ", name);
    if (t == GGUF_STRING) {
        gguf_str s;
        gguf_get_str(f, name, &s);
        int n = (int)(s.len > 60 ? 60 : s.len);
        putchar('"');
        for (int j = 0; j < n; j++) putchar(s.ptr[j] == '\n' ? ' ' : s.ptr[j]);
        printf("\"%s\n", s.len > 60 ? "..." : "");
    } else if (t == GGUF_ARRAY) {
        enum gguf_value_type et;
        uint64_t count;
        gguf_get_array(f, name, &et, &count);
        printf("array of %llu\n", (unsigned long long)count);
    } else if (t == GGUF_FLOAT32 || t == GGUF_FLOAT64) {
        float v;
        gguf_get_f32(f, name, &v);
        printf("%g\n", v);
    } else if (t == GGUF_BOOL) {
        bool v;
        gguf_get_bool(f, name, &v);
        printf("%s\n", v ? "true" : "false");
    } else {
        uint64_t v;
        if (gguf_get_u64(f, name, &v)) printf("%llu\n", (unsigned long long)v);
        else printf("(negative integer)\n");
    }
}

int cmd_model(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[2], "info")) {
        fputs(usage, argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help")) ? stdout : stderr);
        return argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help")) ? 0 : 2;
    }
    cli_opts o;
    if (cli_parse(argc, argv, 3, &o, usage)) return 2;
    if (o.file) o.model_path = o.file;
    lmz_model *m;
    lmz_tokenizer *tok;
    if (cli_load(&o, &m, &tok)) return 1;
    size_t size;
    gguf_base(m->file, &size);
    printf("file           %s (%zu bytes, GGUF v%u)\n", m->path, size, gguf_version(m->file));
    printf("name           %s\n", m->name);
    printf("architecture   %s\n", m->arch_name);
    printf("layers         %d\n", m->n_layer);
    printf("embedding      %d\n", m->n_embd);
    printf("heads          %d (kv %d, head dim %d, rope dims %d, %s rope)\n", m->n_head, m->n_head_kv, m->head_dim,
           m->n_rot, m->rope_kind == LMZ_ROPE_NEOX ? "neox" : "normal");
    printf("feed-forward   %d (%s)\n", m->n_ff, m->gelu ? "GeGLU" : "SwiGLU");
    printf("vocabulary     %d tokens (bos %d, eos %d)\n", m->n_vocab, lmz_tokenizer_bos(tok), lmz_tokenizer_eos(tok));
    printf("context        %d (trained)\n", m->n_ctx_train);
    if (m->n_swa) printf("sliding window %d\n", m->n_swa);
    printf("output         %s\n", m->output.data == m->token_embd.data ? "tied to token_embd" : "output.weight");
    uint64_t counts[64] = {0}, bytes[64] = {0};
    for (uint64_t i = 0; i < gguf_n_tensors(m->file); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->file, i);
        counts[t->type & 63]++;
        bytes[t->type & 63] += t->nbytes;
    }
    printf("tensors        %llu\n", (unsigned long long)gguf_n_tensors(m->file));
    for (int ty = 0; ty < 64; ty++)
        if (counts[ty])
            printf("  %-6s %4llu tensors %12llu bytes%s\n", lmz_type_name((uint32_t)ty), (unsigned long long)counts[ty],
                   (unsigned long long)bytes[ty], lmz_type_supported((uint32_t)ty) ? "" : "  (unsupported)");
    printf("kernels        %s\n", lmz_isa_name(lmz_isa_current()));
    printf("metadata       %d keys\n", gguf_n_keys(m->file));
    for (int i = 0; i < gguf_n_keys(m->file); i++) print_value(m->file, i);
    lmz_tokenizer_free(tok);
    lmz_model_free(m);
    return 0;
}
