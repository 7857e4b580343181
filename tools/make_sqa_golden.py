#!/usr/bin/env python3
"""tests/fixtures/scorers/sqa_llava13b_sample.json: a seeded sample of a real ScienceQA answer set
with the official scorer's verdicts, for the letter-parsing test (tests/unit/base_scorers.cpp).

Source: haotian-liu/LLaVA (Apache-2.0) llava/eval/table/results/
test_sqa_llava_lcs_558k_sqa_12e_vicuna_v1_3_13b.json, written by llava/eval/eval_science_qa.py
--output-result: "outputs" (pid -> the model's raw text) and "results" (pid -> the option index
the scorer parsed, -1 for FAILED). Kept: every output the scorer could not parse (results -1)
and 300 others drawn with seed 0; outputs verbatim.
    python3 tools/make_sqa_golden.py LLAVA_RESULT.json > tests/fixtures/scorers/sqa_llava13b_sample.json
"""
import json, random, sys

d = json.load(open(sys.argv[1]))
pids = sorted(d["outputs"], key=int)
failed = [p for p in pids if d["results"][p] == -1]
rest = [p for p in pids if d["results"][p] != -1]
keep = sorted(failed + random.Random(0).sample(rest, 300), key=int)
json.dump({"source": "haotian-liu/LLaVA llava/eval/table/results/test_sqa_llava_lcs_558k_sqa_12e_vicuna_v1_3_13b.json",
           "acc_of_full_file": d["acc"], "count_of_full_file": d["count"],
           "items": [{"pid": p, "output": d["outputs"][p], "result": d["results"][p]} for p in keep]},
          sys.stdout, indent=0, ensure_ascii=False)
print()
