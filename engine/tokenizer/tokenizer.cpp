#include "engine/tokenizer/tokenizer.h"
