// ref_logits.cpp — reference logits from llama.cpp, for lmz's logit-parity fixtures.
// Tooling only (never part of lmz): built by ref_logits.sh against the llama.cpp build
// that tools/ref/build_llamacpp.sh makes from the llama-cpp-python source package.
//
// usage: ref_logits MODEL TOPK OUT.bin [--lora ADAPTER.gguf] < ids.txt   (TOPK 0: every logit)
//   stdin: one prompt per line, token ids separated by spaces (lmz's own tokenization,
//          identical to llama.cpp's by the tokenizer parity tests)
//   OUT.bin (little-endian): "LMZLOGIT" u32 n_prompts u32 topk u32 n_vocab; per prompt:
//          u32 n_tokens, i32 tokens[n]; per position: f32 logsumexp, i32 ids[topk], f32 logits[topk]
//   --lora: applies a LoRA adapter at scale 1 (llama.cpp's own loader and graph), for the
//          adapter parity check of tools/ref/lora_parity.sh
#include "llama.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    const bool with_lora = argc == 6 && std::string(argv[4]) == "--lora";
    if (argc != 4 && !with_lora) {
        fprintf(stderr, "usage: %s MODEL TOPK OUT.bin [--lora ADAPTER.gguf] < ids.txt\n", argv[0]);
        return 2;
    }
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    llama_adapter_lora *adapter = with_lora ? llama_adapter_lora_init(model, argv[5]) : nullptr;
    if (with_lora && !adapter) return 1;
    const llama_vocab *vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    const int topk = atoi(argv[2]) > 0 && atoi(argv[2]) < n_vocab ? atoi(argv[2]) : n_vocab;

    std::vector<std::vector<llama_token>> prompts;
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream is(line);
        std::vector<llama_token> ids;
        int id;
        while (is >> id) ids.push_back(id);
        if (!ids.empty()) prompts.push_back(ids);
    }
    FILE *out = fopen(argv[3], "wb");
    if (!out) return 1;
    uint32_t hdr[3] = {(uint32_t)prompts.size(), (uint32_t)topk, (uint32_t)n_vocab};
    fwrite("LMZLOGIT", 1, 8, out);
    fwrite(hdr, 4, 3, out);
    for (auto &ids : prompts) {
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = ids.size() + 8;
        cp.n_batch = ids.size();
        cp.n_ubatch = ids.size();
        cp.n_threads = cp.n_threads_batch = 2;
        if (getenv("REF_NO_FLASH_ATTN")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        if (getenv("REF_F32_KV")) cp.type_k = cp.type_v = GGML_TYPE_F32;
        llama_context *ctx = llama_init_from_model(model, cp);
        float scale = 1.0f;
        if (adapter && llama_set_adapters_lora(ctx, &adapter, 1, &scale)) return 1;
        llama_batch batch = llama_batch_init(ids.size(), 0, 1);
        for (size_t i = 0; i < ids.size(); i++) {
            batch.token[i] = ids[i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        batch.n_tokens = ids.size();
        if (llama_decode(ctx, batch)) return 1;
        uint32_t n = ids.size();
        fwrite(&n, 4, 1, out);
        fwrite(ids.data(), 4, n, out);
        std::vector<int> order(n_vocab);
        for (size_t i = 0; i < ids.size(); i++) {
            const float *l = llama_get_logits_ith(ctx, i);
            double mx = l[0];
            for (int v = 1; v < n_vocab; v++) mx = std::max(mx, (double)l[v]);
            double s = 0;
            for (int v = 0; v < n_vocab; v++) s += std::exp((double)l[v] - mx);
            float lse = (float)(mx + std::log(s));
            for (int v = 0; v < n_vocab; v++) order[v] = v;
            std::partial_sort(order.begin(), order.begin() + topk, order.end(),
                              [&](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
            fwrite(&lse, 4, 1, out);
            fwrite(order.data(), 4, topk, out);
            for (int k = 0; k < topk; k++) fwrite(&l[order[k]], 4, 1, out);
        }
        llama_batch_free(batch);
        llama_free(ctx);
    }
    fclose(out);
    llama_model_free(model);
    return 0;
}
