#!/usr/bin/env python3
"""`stic export` checked by HF transformers: the merged folder's logits against PEFT's on base + adapter.

Run on the GPU machine (transformers 5.x, peft; CPU, fp32) after exporting here:
    stic export --model tests/fixtures/parity/NAME --adapter tests/fixtures/dpo/start_NAME \
                --out E/NAME_fp32 --dtype fp32 [--max-shard-size 400KB]
    python3 tools/check_export.py --exported E --out RESULT.json
For each parity model (llava_llama: llava-hf LLaVA-1.5 layout; next_mistral: LLaVA-NeXT, anyres)
it loads base + the non-zero PEFT adapter of tests/fixtures/dpo (PeftModel, unmerged) and the
exported folder (plain from_pretrained, sharded or not), runs both on the parity case inputs and
reports the largest relative logit error; the bf16 export is compared with the same PEFT model
cast to bf16 after merging (the rounding the export makes).
"""
import argparse, json, os, sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_peft_fixtures import MODELS, PARITY, case_inputs  # noqa: E402

import transformers  # noqa: E402
import peft  # noqa: E402
from peft import PeftModel  # noqa: E402

DPO = os.path.join(ROOT, "tests", "fixtures", "dpo")


def logits(model, name):
    with torch.no_grad():
        kw = case_inputs(name)
        if next(model.parameters()).dtype != torch.float32:
            kw["pixel_values"] = kw["pixel_values"].to(next(model.parameters()).dtype)
        return model(**kw, use_cache=False).logits[0].float()


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exported", required=True, help="folder holding NAME_fp32 (and NAME_bf16) exports")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    res = {"transformers": transformers.__version__, "peft": peft.__version__, "torch": torch.__version__, "cases": {}}
    for name, cls in MODELS.items():
        base = cls.from_pretrained(os.path.join(PARITY, name), dtype=torch.float32).eval()
        ref_model = PeftModel.from_pretrained(base, os.path.join(DPO, f"start_{name}")).eval()
        ref = logits(ref_model, name)
        case = {}
        d = os.path.join(a.exported, f"{name}_fp32")
        exp = cls.from_pretrained(d, dtype=torch.float32).eval()
        case["fp32_rel_err"] = rel(logits(exp, name), ref)
        case["fp32_files"] = sorted(f for f in os.listdir(d) if f.endswith(".safetensors") or f.endswith(".json"))
        d16 = os.path.join(a.exported, f"{name}_bf16")
        if os.path.isdir(d16):
            merged16 = ref_model.merge_and_unload().to(torch.bfloat16).eval()
            exp16 = cls.from_pretrained(d16, dtype=torch.bfloat16).eval()
            sd_a, sd_b = exp16.state_dict(), merged16.state_dict()
            case["bf16_weights_equal"] = all(torch.equal(sd_a[k], sd_b[k]) for k in sd_b if k in sd_a)
            case["bf16_weights_compared"] = sum(1 for k in sd_b if k in sd_a)
            case["bf16_rel_err_vs_merged_bf16"] = rel(logits(exp16, name), logits(merged16, name))
            case["bf16_rel_err_vs_peft_fp32"] = rel(logits(exp16, name), ref)
        res["cases"][name] = case
        print(name, json.dumps(case), flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
