/* main.c — the lmz command line: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "lmz — text compression with a language model\n"
    "\n"
    "usage: lmz [options] [FILE...]       compress / decompress (-d) / test (-t) / list (-l)\n"
    "       lmz COMMAND [options]\n"
    "\n"
    "  lmz FILE                        writes FILE.lmz (see `lmz --help` for all options)\n"
    "  lmz -d FILE.lmz                 writes FILE\n"
    "\n"
    "inspection commands:\n"
    "  lmz model info [MODEL.gguf]     architecture, sizes, tensor types and metadata\n"
    "  lmz tokenize [FILE|--text T]    token ids and pieces of a text\n"
    "  lmz logits [FILE|--text T]      top-k next-token predictions at every position\n"
    "  lmz perplexity [FILE]           bits per token and per byte (ideal lossless size)\n"
    "  lmz speed                       prompt-processing and decode tokens/s\n"
    "\n"
    "generation:\n"
    "  lmz generate [--chat] [FILE|--text T|--prompts FILE]\n"
    "                                  continue a prompt or answer it (greedy or seeded sampling)\n"
    "\n"
    "question-asking compression (docs/qa.md):\n"
    "  lmz qa encode --llm MODEL|URL (--problem T|--problems F.jsonl) -o OUT.lmzq\n"
    "                                  a small model asks a large one yes/no questions; only the\n"
    "                                  bits travel (see lmz qa -h)\n"
    "  lmz qa decode (--problem T|--problems F.jsonl) IN.lmzq\n"
    "                                  rebuild the final answers from the bits\n"
    "\n"
    "serving:\n"
    "  lmz serve [-m MODEL] [--port N] an OpenAI-compatible /v1/chat/completions endpoint on\n"
    "                                  127.0.0.1 (see lmz serve -h)\n"
    "\n"
    "training:\n"
    "  lmz train -m MODEL --data FILE -o ADAPTER.gguf\n"
    "                                  train a LoRA adapter on text or JSONL (see lmz train -h)\n"
    "\n"
    "common options:\n"
    "  -m MODEL      GGUF file, or a fetched model's name (smollm2, gemma3, qwen25coder,\n"
    "                qwen25coder05b); default: SmolLM2-135M-Instruct, fetched by `make`;\n"
    "                $LMZ_MODEL overrides the default\n"
    "  -T N          threads (default 2); results are identical for any N\n"
    "  --isa I       scalar, avx2 or avx512 (neon on arm64; default: the best this CPU has;\n"
    "                $LMZ_ISA=scalar also works); results are identical for any I\n"
    "  --scalar      same as --isa scalar\n"
    "  -h, --help    help for a command\n";

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc < 2 && isatty(0)) {
        fputs(usage, stderr);
        return 2;
    }
    if (argc < 2) return cmd_compress(argc, argv);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "model")) return cmd_model(argc, argv);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc, argv);
    if (!strcmp(cmd, "logits")) return cmd_logits(argc, argv);
    if (!strcmp(cmd, "perplexity")) return cmd_perplexity(argc, argv);
    if (!strcmp(cmd, "speed")) return cmd_speed(argc, argv);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc, argv);
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc, argv);
    if (!strcmp(cmd, "qa")) return cmd_qa(argc, argv);
    return cmd_compress(argc, argv);
}
