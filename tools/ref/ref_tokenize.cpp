// ref_tokenize.cpp — reference output from llama.cpp for lmz's tokenizer fixtures.
//
// Built and run by tools/ref/ref_tokens.py against the static libraries of the
// llama.cpp reference build (tools/ref/build_llamacpp.sh); lmz itself never links it.
// The llama-tokenize CLI is not enough: it cannot turn on parse_special, and it
// applies escape processing unless told otherwise. This program feeds each input
// file's exact bytes to llama.cpp.
//
// usage: ref_tokenize tokens MODEL.gguf ADD_SPECIAL(0|1) PARSE_SPECIAL(0|1) FILE...
//          token ids from llama_tokenize()
//        ref_tokenize split REGEXES FILE...
//          the pre-tokenizer's words, from llama.cpp's internal unicode_regex_split()
//          with the given regex list (one per line of REGEXES), as byte lengths; this
//          checks word boundaries independently of any vocabulary's merges
// output, one line per FILE in order: "OK <n> <value> <value> ..." or "ERR <reason>"
// (llama.cpp throws, for example, on code points above U+10FFFF that its lax UTF-8
// decoder produces from F4..F7 lead bytes).
#include "llama.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

// Declared in llama.cpp's src/unicode.h, exported from libllama.a.
std::vector<std::string> unicode_regex_split(const std::string & text, const std::vector<std::string> & regex_exprs,
                                             bool byte_encode);

static void quiet_log(enum ggml_log_level, const char *, void *) {}

static bool read_file(const char *path, std::string &out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::stringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

template <typename T> static void print_ok(const std::vector<T> &values) {
    printf("OK %zu", values.size());
    for (const T &v : values) printf(" %lld", (long long) v);
    printf("\n");
}

static int run_tokens(int argc, char **argv) {
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    llama_model_params mparams = llama_model_default_params();
    mparams.vocab_only = true;
    llama_model *model = llama_model_load_from_file(argv[2], mparams);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[2]);
        return 1;
    }
    const llama_vocab *vocab = llama_model_get_vocab(model);
    const bool add_special = argv[3][0] == '1';
    const bool parse_special = argv[4][0] == '1';
    for (int i = 5; i < argc; i++) {
        std::string text;
        if (!read_file(argv[i], text)) {
            printf("ERR cannot open %s\n", argv[i]);
            continue;
        }
        try {
            std::vector<llama_token> ids(text.size() + 16);
            int n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), ids.data(), (int32_t) ids.size(),
                                   add_special, parse_special);
            if (n < 0) {
                ids.resize((size_t) -n);
                n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), ids.data(), (int32_t) ids.size(),
                                   add_special, parse_special);
            }
            ids.resize((size_t) n);
            print_ok(ids);
        } catch (const std::exception &e) {
            printf("ERR llama.cpp threw: %s\n", e.what());
        }
    }
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

static int run_split(int argc, char **argv) {
    std::vector<std::string> regexes;
    std::stringstream list(argv[2]);
    for (std::string line; std::getline(list, line);) regexes.push_back(line);
    for (int i = 3; i < argc; i++) {
        std::string text;
        if (!read_file(argv[i], text)) {
            printf("ERR cannot open %s\n", argv[i]);
            continue;
        }
        try {
            std::vector<size_t> lengths;
            for (const std::string &word : unicode_regex_split(text, regexes, false)) lengths.push_back(word.size());
            print_ok(lengths);
        } catch (const std::exception &e) {
            printf("ERR llama.cpp threw: %s\n", e.what());
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "tokens")) return run_tokens(argc, argv);
    if (argc >= 3 && !strcmp(argv[1], "split")) return run_split(argc, argv);
    fprintf(stderr, "usage: %s tokens MODEL.gguf ADD_SPECIAL PARSE_SPECIAL FILE...\n"
                    "       %s split REGEXES FILE...\n", argv[0], argv[0]);
    return 2;
}
