/* fingerprint.h — a model file's SHA-256 (cached across runs). */
#ifndef LMZ_FINGERPRINT_H
#define LMZ_FINGERPRINT_H

#include <stdint.h>

#include "model.h"

/* The SHA-256 of the model's whole GGUF file. */
void lmz_model_fingerprint(const lmz_model *m, uint8_t sha[32]);

#endif
