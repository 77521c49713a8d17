#!/usr/bin/env bash
# Regenerates the SentencePiece test fixture in tests/data/tokenizer/ (deterministic: same flags and input,
# same model): spm_bpe.model trained by spm_train on corpus.txt, and the golden encodings of spm_cases.txt
# written by the spm_encode CLI (SentencePiece's own encoder, run independently of the engine):
#   spm_cases.ids     one line of ids per line of spm_cases.txt   (spm_encode --output_format=id)
#   spm_cases.pieces  the same as pieces                         (spm_encode --output_format=piece)
#   spm_cases.decoded spm_cases.ids decoded back to text          (spm_decode --input_format=id)
# Checked by tests/unit/tokenizer_spm_test.cpp.
set -euo pipefail
cd "$(dirname "$0")/../tests/data/tokenizer"

# The model records its training flags, so they are relative paths. Llama-style options: BPE with byte
# fallback, no normalization, whitespace kept as written.
spm_train --input=corpus.txt --model_prefix=spm_bpe --model_type=bpe --vocab_size=600 \
  --character_coverage=0.995 --byte_fallback=true --normalization_rule_name=identity \
  --remove_extra_whitespaces=false --split_digits=true \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=3 --control_symbols='<mask>' --user_defined_symbols='<sep>' \
  --num_threads=1 --shuffle_input_sentence=false --input_sentence_size=0 --random_seed=1 \
  --minloglevel=2 >/dev/null 2>&1
rm spm_bpe.vocab

spm_encode --model=spm_bpe.model --output_format=id <spm_cases.txt >spm_cases.ids
spm_encode --model=spm_bpe.model --output_format=piece <spm_cases.txt >spm_cases.pieces
spm_decode --model=spm_bpe.model --input_format=id <spm_cases.ids >spm_cases.decoded
echo "wrote $(pwd)/spm_bpe.model, spm_cases.ids, spm_cases.pieces, spm_cases.decoded"
