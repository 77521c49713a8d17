#!/usr/bin/env python3
"""Golden data for the tokenizer.json reader, checked by tests/unit/tokenizer_json_test.cpp.

Usage: python3 tools/golden/tokenizer_json.py [OUT_DIR]   (default: tests/golden/tokenizer)
Needs the Hugging Face `tokenizers` package, the reference implementation.

Trains small byte-level BPE tokenizers (vocab about 1000) on tests/data/tokenizer/corpus.txt with the
`tokenizers` library and writes, for each style, a tokenizer.json as `tokenizers` writes it and
tokenizer_cases.json: {"tokenizers_version", "cases": [{text, ids, ids_plain, decoded}]}, the
cases computed by the tokenizer loaded back from the written file, where
  ids        = encode(text, add_special_tokens=False).ids   (added tokens in the text are matched)
  ids_plain  = the same with encode_special_tokens=True     (special tokens in the text are plain text)
  decoded    = decode(ids, skip_special_tokens=False)
The main style, qwen2, goes to OUT_DIR itself; the others to OUT_DIR/llama3 and OUT_DIR/gpt2. Styles:
  qwen2   NFC normalizer; Split(Qwen2 regex, Isolated) + ByteLevel(add_prefix_space=False, use_regex=False);
          special <|endoftext|> <|im_start|> <|im_end|> <|mdm_mask|>; non-special <think> </think>
  llama3  no normalizer; Split(Llama-3 regex) + ByteLevel; ignore_merges=True; merges rewritten in the
          legacy "a b" string form; special <|begin_of_text|> <|eot_id|>, <|mdm_mask|> with lstrip+rstrip;
          non-special [WORD] with single_word
  gpt2    ByteLevel(add_prefix_space=True, use_regex=True) only; special <|endoftext|>; non-special " <tab>"
          (its space is outside the byte alphabet, so it decodes from its own UTF-8)
"""

import json
import pathlib
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "tokenizer" / "corpus.txt"

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)

CASES = [
    "",
    "a",
    " ",
    "\n",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Four score and seven years ago our fathers brought forth",
    "  leading and trailing spaces  ",
    "spaces     between     words",
    "tabs\tand\nnewlines\r\nmixed",
    "multiple\n\n\nnewlines and   \n  indents",
    "   \n\n   ",
    "ending with newline\n",
    "Café naïve résumé façade",
    "Decomposed: e\u0301 a\u0300 o\u0308 A\u030a n\u0303",
    "Straße Übermäßig größer",
    "Ελληνικά και русский текст",
    "日本語のテキストです。",
    "中文字符测试，标点。",
    "한국어 텍스트 \u1100\u1161\u11a8",
    "Emoji: 😀🎉👍🏽 🇯🇵 👩‍👩‍👧",
    "🤖",
    "Numbers: 1234567890 3.14159 1,000,000",
    "mixed123abc456def",
    "Contractions: I'm you're he's we'll they'd can't won't it's",
    "UPPER CASE I'M YOU'RE HE'S",
    "<|endoftext|>",
    "Hello<|endoftext|>world",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "The mask <|mdm_mask|><|mdm_mask|> tokens",
    "a <|mdm_mask|> b",
    "Hello <|im_end|> spaced <|mdm_mask|>  out",
    "<think>reasoning</think> answer",
    "word<think>word",
    "x[WORD]y and x [WORD] y",
    "partial <|endoftext| and <|im_start",
    "<|begin_of_text|>Hi<|eot_id|>",
    "code: def f(x):\n    return x**2  # square",
    "URL https://example.com/path?q=1&r=2",
    "punctuation!!! ??? ... --- ***",
    "\u00a0non-breaking\u00a0space\u3000ideographic",
    "Zero\u200bwidth\u200djoiner",
    "ǅ titlecase ǆ",
    "x" * 300,
    "ünïcödé ∑∫√ ≠ ≤ ∞",
    "tab\t\tdouble <tab> tab",
]


def train(pre_tokenizer, normalizer, special_tokens):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=special_tokens,
    )
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def qwen2():
    tok = train(
        pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        ),
        normalizers.NFC(),
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mdm_mask|>"],
    )
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False),
                    AddedToken("</think>", special=False, normalized=False)])
    return tok.to_str(pretty=True)


def llama3():
    tok = train(
        pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        ),
        None,
        ["<|begin_of_text|>", "<|eot_id|>"],
    )
    tok.add_special_tokens([AddedToken("<|mdm_mask|>", special=True, lstrip=True, rstrip=True, normalized=False)])
    tok.add_tokens([AddedToken("[WORD]", special=False, single_word=True, normalized=True)])
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = True
    data["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    return json.dumps(data, ensure_ascii=False, indent=2)


def gpt2():
    tok = train(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), None, ["<|endoftext|>"])
    tok.add_tokens([AddedToken(" <tab>", special=False, normalized=False)])
    return tok.to_str(pretty=True)


def cases(tok):
    out = []
    for text in CASES:
        tok.encode_special_tokens = False
        ids = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        ids_plain = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        decoded = tok.decode(ids, skip_special_tokens=False)
        out.append({"text": text, "ids": ids, "ids_plain": ids_plain, "decoded": decoded})
    return {"tokenizers_version": tokenizers.__version__, "cases": out}


def write(directory, tokenizer_json):
    """Writes the tokenizer.json text, then the cases of the tokenizer loaded back from that file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tokenizer.json"
    path.write_text(tokenizer_json + "\n", encoding="utf-8")
    with open(directory / "tokenizer_cases.json", "w", encoding="utf-8") as f:
        json.dump(cases(Tokenizer.from_file(str(path))), f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "golden" / "tokenizer"
    write(out, qwen2())
    write(out / "llama3", llama3())
    write(out / "gpt2", gpt2())
    print(f"wrote {out} with tokenizers {tokenizers.__version__}")


if __name__ == "__main__":
    main()
