#!/usr/bin/env bash
# Regenerates the tokenizer test fixtures in tests/fixtures/tokenizer/ (tiny.model is given).
#
#   spm_expected.jsonl        ids that Debian's spm_encode gives with tiny.model (byte fallback)
#   spm_noprefix_expected.jsonl  the same with tiny.model's dummy prefix turned off
#   tiny_nobf.model/.vocab    a small BPE model trained here with spm_train: no byte fallback,
#                             remove_extra_whitespaces, user-defined pieces
#   nobf_expected.jsonl       spm_encode's ids with tiny_nobf.model
#   llama_pieces.txt          the LLaMA vocabulary (32000 pieces, id order) from the npm package
#                             llama-tokenizer-js; tests rebuild a tokenizer.model from it with
#                             LLaMA's scores (tools/sp_model_from_vocab.py has the rules)
#   llama_cases.json          llama-tokenizer-js's own test cases: text + expected ids (with BOS),
#                             taken from its test-suite run (which checks them against its
#                             hard-coded expectations)
#   llama_spm_expected.jsonl  spm_encode's ids for more strings with the rebuilt LLaMA model
#
# Needs: spm_encode, spm_train (Debian package sentencepiece), python3, node + npm (registry).
# Each .jsonl line is {"text": ..., "ids": [...]} with ids WITHOUT BOS (spm_encode adds none).
# spm_encode reads one sentence per line, so these texts contain no newline; newline handling
# is covered by llama_cases.json.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
fx="$here/tests/fixtures/tokenizer"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Texts for spm_encode: ASCII, punctuation, digits, spaces, tabs, accents, CJK, emoji.
cat > "$tmp/texts.txt" <<'TEXTS'
Hello world
hello world
Hello, world!
The quick brown fox jumps over the lazy dog.
A chat between a curious user and an artificial intelligence assistant.
 leading space
  two leading spaces
trailing space 
trailing spaces   
multiple    spaces   inside
	tab at start
tabs	in	the	middle
mixed 	 tab and space
12345
The year 2024 had 366 days.
3.14159 and 2,718
a1b2c3
$100.00 (approx.)
"quoted" 'single' `back`
email@example.com
https://example.com/path?q=1&r=2
[INST] What is in the image? [/INST]
USER: <image> describe ASSISTANT:
</s><s><unk> literal specials
café naïve résumé
Ünïcödé ÀÉÎÕÜ
Ελληνικά κείμενο
Привет, мир!
中文文本测试
日本語のテキスト
한국어 텍스트
emoji 😀 test 🦙
🦙🦙🦙
mixed 中文 and English 123
ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ
x
.
▁ literal meta space
a  b   c    d
supercalifragilisticexpialidocious
don't won't can't
What's the object in the bottom-left corner?
TEXTS

encode_jsonl() {  # model texts out
  spm_encode --model="$1" --output_format=id < "$2" > "$tmp/ids.txt"
  python3 - "$2" "$tmp/ids.txt" "$3" <<'PY'
import json, sys
texts = open(sys.argv[1], encoding="utf-8", newline="\n").read().split("\n")[:-1]
ids = open(sys.argv[2], encoding="utf-8", newline="\n").read().split("\n")[:-1]
assert len(texts) == len(ids), (len(texts), len(ids))
with open(sys.argv[3], "w", encoding="utf-8", newline="\n") as f:
    for t, i in zip(texts, ids):
        f.write(json.dumps({"text": t, "ids": [int(x) for x in i.split()]}, ensure_ascii=False) + "\n")
PY
}

# 1. tiny.model, and the same model without the dummy prefix (normalizer add_dummy_prefix=0:
#    what HF's non-legacy mode does to text after an added token).
encode_jsonl "$fx/tiny.model" "$tmp/texts.txt" "$fx/spm_expected.jsonl"
python3 - "$fx/tiny.model" "$tmp/tiny_noprefix.model" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
old = b"\x0a\x08identity\x12\x00\x18\x01"  # NormalizerSpec: name, charsmap, add_dummy_prefix=1
assert data.count(old) == 1
open(sys.argv[2], "wb").write(data.replace(old, old[:-1] + b"\x00"))
PY
encode_jsonl "$tmp/tiny_noprefix.model" "$tmp/texts.txt" "$fx/spm_noprefix_expected.jsonl"

# 2. tiny_nobf.model: trained on a generated corpus (deterministic).
python3 - "$tmp/corpus.txt" <<'PY'
import random, sys
random.seed(7)
words = ("the a red blue green small large circle square triangle image shows left right top "
         "bottom of in on with and there is are two three objects picture colour scene <img> "
         "[MASK] describe answer question 1 2 3 4 5 6 7 8 9 0 , . ? !").split()
with open(sys.argv[1], "w") as f:
    for _ in range(3000):
        f.write(" ".join(random.choice(words) for _ in range(random.randint(3, 14))) + "\n")
PY
(cd "$tmp" && spm_train --input=corpus.txt --model_prefix=tiny_nobf --model_type=bpe \
  --vocab_size=160 --character_coverage=1.0 --byte_fallback=false \
  --normalization_rule_name=identity --remove_extra_whitespaces=true --split_digits=true \
  --user_defined_symbols='<img>,[MASK]' --num_threads=1 --minloglevel=2 > /dev/null 2>&1)
cp "$tmp/tiny_nobf.model" "$tmp/tiny_nobf.vocab" "$fx/"
cat > "$tmp/nobf_texts.txt" <<'TEXTS'
the red circle
  the   red    circle  
describe the <img> image
[MASK] is left of <img><img>
unknown letters: xyz qwz
ünknown ☃☃ chars 中文
the 123 objects
top-right: 7 squares
TEXTS
encode_jsonl "$fx/tiny_nobf.model" "$tmp/nobf_texts.txt" "$fx/nobf_expected.jsonl"

# 3. LLaMA vocabulary and cases from llama-tokenizer-js.
(cd "$tmp" && npm pack --silent llama-tokenizer-js > /dev/null && tar xzf llama-tokenizer-js-*.tgz)
cat > "$tmp/dump.mjs" <<'JS'
import fs from 'fs';
const tok = (await import(process.argv[2])).default;
const out = process.argv[3];
fs.writeFileSync(out + '/llama_pieces.txt', tok.vocabById.join('\n') + '\n');
// Run the package's own tests through a wrapper that records what encode is asked and
// returns; the tests then compare those results with their hard-coded expected ids.
const cases = [];
const wrapped = Object.create(tok);
wrapped.encode = (s, bos, pre) => { const ids = tok.encode(s, bos, pre, false); cases.push({ text: s, ids }); return ids; };
wrapped.decode = (ids, bos, pre) => tok.decode(ids, bos, pre);
tok.defaultTests(wrapped);  // throws if any case fails
fs.writeFileSync(out + '/llama_cases.json', JSON.stringify(cases, null, 0) + '\n');
JS
node "$tmp/dump.mjs" "$tmp/package/llama-tokenizer.js" "$fx" > /dev/null
python3 "$here/tools/sp_model_from_vocab.py" "$fx/llama_pieces.txt" "$tmp/llama.model"
# Check the rebuilt model: spm_encode must reproduce llama-tokenizer-js's expected ids.
python3 - "$tmp/llama.model" "$fx/llama_cases.json" <<'PY'
import json, subprocess, sys
for c in json.load(open(sys.argv[2], encoding="utf-8")):
    if "\n" in c["text"]:
        continue
    r = subprocess.run(["spm_encode", "--model=" + sys.argv[1], "--output_format=id"],
                       input=(c["text"] + "\n").encode(), capture_output=True, check=True)
    got = [1] + [int(x) for x in r.stdout.split()]
    assert got == c["ids"], (c["text"], got, c["ids"])
PY
encode_jsonl "$tmp/llama.model" "$tmp/texts.txt" "$fx/llama_spm_expected.jsonl"
echo "tokenizer fixtures written to $fx"
