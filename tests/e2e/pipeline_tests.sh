#!/usr/bin/env bash
# End-to-end test of `stic pipeline` on the world-smoke recipe: every stage produces its files,
# the metrics JSON has its fields in sane ranges, the trained base model is a complete checkpoint
# folder that other verbs load, a re-run skips finished stages, a run stopped after a stage is
# completed by re-running, and bad recipes (unknown key, unknown preset, bad value, a work folder
# of another recipe, an unknown benchmark) are clear, located errors.
# Usage: pipeline_tests.sh path/to/stic   (run from the repository root)
set -uo pipefail
STIC=$(realpath "$1")
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export STIC_THREADS=${STIC_THREADS:-2}
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   - $1"; }
bad() { fail=$((fail+1)); echo "FAIL - $1"; }
R=recipes/world-smoke.yaml
W=$T/run

# 1. stop after the base model (as a killed run would leave it), then complete the run
"$STIC" pipeline --recipe $R --workdir "$W" --until base --quiet >"$T/log1" 2>&1; rc=$?
[ $rc -eq 0 ] && [ -f "$W/world/.done" ] && [ -f "$W/base/.done" ] && [ ! -e "$W/eval" ] \
  && ok "--until base stops after the base model" || bad "--until base (rc $rc): $(tail -5 "$T/log1")"
missing=""
for f in model.safetensors config.json tokenizer.model tokenizer_config.json preprocessor_config.json metrics.jsonl; do
  [ -s "$W/base/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok "full fine-tuning wrote a complete checkpoint folder" || bad "base/ lacks:$missing"
# the trained base model loads in another verb
"$STIC" chat --model "$W/base" --image "$W/world/images/eval/eval_000000.png" --prompt "Describe the image." \
  --max-new-tokens 8 >"$T/chat" 2>&1 && ok "chat loads the trained base model" || bad "chat on base: $(tail -3 "$T/chat")"

"$STIC" pipeline --recipe $R --workdir "$W" --quiet >"$T/log2" 2>&1; rc=$?
[ $rc -eq 0 ] && ok "re-run completes the pipeline" || bad "completing run (rc $rc): $(tail -5 "$T/log2")"
grep -q "world: finished earlier, skipped" "$T/log2" && grep -q "base: finished earlier, skipped" "$T/log2" \
  && ok "re-run skipped the finished stages" || bad "finished stages not skipped: $(head -5 "$T/log2")"
grep -q "sft2: done" "$T/log2" && grep -q "eval: done" "$T/log2" && ok "re-run ran the remaining stages" \
  || bad "remaining stages: $(cat "$T/log2" | tail -5)"
missing=""
for f in sft2/adapter_model.safetensors describe/descriptions.jsonl infuse/stage2_infused.json \
         eval_dar/dar_descriptions.jsonl eval_stage2_dar/summary.json eval/predictions.jsonl eval/per_item.jsonl eval/summary.json eval/summary.md \
         report.md report.html report/loss.svg timings.json recipe.json logs/base.log logs/eval.log; do
  [ -s "$W/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok "stage outputs present" || bad "missing:$missing"

# the instruct stage (a second base pass on the stage-2 pool) cannot run with STIC stage 2, which
# needs that pool unseen: refused; run on its own (up to instruct) with --set
WI=$T/run_instruct
"$STIC" pipeline --recipe $R --workdir "$T/w_both" --set instruct.max_steps=5 >"$T/logb" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "instruct trains the base model on the stage-2 pool's labels" "$T/logb" && [ ! -e "$T/w_both" ] \
  && ok "instruct + STIC stage 2 in one recipe: refused up front" || bad "instruct + stage 2 (rc $rc): $(cat "$T/logb")"
"$STIC" pipeline --recipe $R --workdir "$WI" --until instruct --quiet --set sft2.max_steps=0 --set instruct.max_steps=5 \
  --set instruct.freeze_projector=true --set instruct.image_marker=keep --set instruct.batch_size=8 --set instruct.lr=1e-3 \
  --set instruct.log_every=1 >"$T/logi" 2>&1 && [ -s "$WI/instruct/model.safetensors" ] \
  && ok "the instruct stage on its own (--until instruct, --set)" || bad "instruct run: $(tail -3 "$T/logi")"

python3 - "$W" "$WI" <<'PY' && ok "metrics JSON: fields and ranges; report has table, plot, examples" || bad "metrics/report content"
import json, sys, os
w, wi_dir = sys.argv[1], sys.argv[2]
s = json.load(open(f"{w}/eval/summary.json"))
d = s["descriptions"]
for k in ("precision", "recall", "chair_i", "chair_s", "shape_hallucination_rate"):
    assert 0.0 <= d[k] <= 1.0, (k, d[k])
assert d["count"] == 16 and d["objects"] > 0, d
assert abs(d["chair_i"] - (1 - d["precision"])) < 1e-9 or d["mentions"] == 0, d
for k in ("count", "color", "shape", "size", "position", "existence", "choice"):
    assert 0.0 <= s["vqa"][k]["accuracy"] <= 1.0 and s["vqa"][k]["n"] > 0, k
for k in ("random", "popular", "adversarial", "all"):
    p = s["pope"][k]
    assert 0.0 <= p["accuracy"] <= 1.0 and 0.0 <= p["yes_ratio"] <= 1.0 and p["n"] > 0, (k, p)
assert s["missing"] == 0 and s["scored"] == s["predictions"] == 160, s
preds = [json.loads(l) for l in open(f"{w}/eval/predictions.jsonl")]
assert len({p["id"] for p in preds}) == len(preds) == 160
loss = [json.loads(l)["loss"] for l in open(f"{w}/base/metrics.jsonl")]
assert len(loss) >= 5 and loss[-1] < loss[0], loss            # training made progress
bc = json.load(open(f"{w}/base/train_config.json"))
assert bc["model"] == f"{w}/pretrain" and bc["sort_within_step"] and bc["grad_accum"] == 2, bc   # base continues pretrain
ic = json.load(open(f"{wi_dir}/instruct/train_config.json"))
assert ic["mm_projector_lr"] == 0 and not ic["sort_within_step"], ic      # freeze_projector; grouping per stage
assert ic["image_marker"] == "keep" and bc["image_marker"] == "front", (ic, bc)   # the recipe's image_marker
pc = json.load(open(f"{w}/pretrain/train_config.json"))
assert pc["model"] == f"{w}/vision" and pc["mm_vision_tower_lr"] == 0, pc          # pretrain continues vision, frozen
vm = [json.loads(l) for l in open(f"{w}/vision/metrics.jsonl")]
assert any("eval_shape_acc" in j and 0 <= j["eval_shape_acc"] <= 1 and 0 <= j["eval_color_acc"] <= 1 for j in vm), vm
assert all(j["images"] > 0 and "tokens" not in j for j in vm) and vm[-1]["images"] == 8 * 8, vm[-1]   # counted as images (8 steps x 8)
assert all(j["tokens"] > 0 for j in map(json.loads, open(f"{w}/base/metrics.jsonl"))), "base metrics count tokens"
import struct
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); data = f.read()
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
w0, wv, wp, wb = (tensors(f"{w}/{d}/model.safetensors") for d in ("world/model", "vision", "pretrain", "base"))
wi, wbi = tensors(f"{wi_dir}/instruct/model.safetensors"), tensors(f"{wi_dir}/base/model.safetensors")
assert wbi == wb   # the same recipe up to base: the same base model, byte for byte
assert set(w0) == set(wv) == set(wp) == set(wb) == set(wi)
# instruct (freeze_projector; the tower not frozen there): the projector is the base model's, the rest trained
proj = [k for k in w0 if k.startswith("multi_modal_projector.")]
assert proj and all(wi[k] == wb[k] for k in proj), "the frozen projector moved"
assert any(wi[k] != wb[k] for k in w0 if k.startswith("language_model.")), "instruct trained no decoder weight"
assert any(wi[k] != wb[k] for k in w0 if k.startswith("vision_tower.")), "instruct: the tower should train there"
# the vision stage changed the tower (the layers LLaVA reads) and nothing else
changed = {k for k in w0 if w0[k] != wv[k]}
assert changed and all(k.startswith("vision_tower.") for k in changed), sorted(changed)[:5]
assert "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight" in changed
# frozen in pretrain and base: the tower is the vision stage's; the rest trained
for later in (wp, wb):
    assert all(later[k] == wv[k] for k in w0 if k.startswith("vision_tower.")), "the frozen tower moved"
    assert any(later[k] != wv[k] for k in w0 if not k.startswith("vision_tower."))
assert json.load(open(f"{w}/pretrain/train_config.json"))["data"] == f"{w}/world/data/base_pretrain.json"
assert any("eval_image_gain" in json.loads(l) for l in open(f"{w}/pretrain/metrics.jsonl"))
ev = [j for j in map(json.loads, open(f"{w}/base/metrics.jsonl")) if "eval_loss" in j]
assert len(ev) >= 2 and all(abs(j["eval_image_gain"] - (j["eval_loss_other_image"] - j["eval_loss"])) < 1e-9
                            and j["eval_loss"] > 0 for j in ev), ev      # held-out loss and image gain
svg = open(f"{w}/report/loss.svg").read()
assert svg.startswith("<svg") and svg.count("<polyline") == 4, svg[:200]   # vision, pretrain, base, STIC stage 2
md = open(f"{w}/report.md").read()
assert "object precision" in md and "report/loss.svg" in md and md.count("<img") == 4, md[:500]
assert "| stage | step | held-out loss | with another image | image gain |" in md, md
html = open(f"{w}/report.html").read()
assert "<th>image gain</th>" in html and html.count("<td>pretrain</td>") >= 2, html[:300]
for line in md.splitlines():
    if line.startswith("<img"):
        src = line.split('src="')[1].split('"')[0]
        assert os.path.isfile(f"{w}/{src}"), src
t = json.load(open(f"{w}/timings.json"))
assert set(t) == {"world", "vision", "pretrain", "base", "eval", "pref", "dpo", "eval_stage1", "describe", "infuse", "sft2",
                  "eval_stage2", "eval_dar", "eval_stage1_dar", "eval_stage2_dar", "report"}, t
# STIC stage 1: pairs from the unlabeled pool, their quality, DPO, the comparison table, curves
n_unlabeled = sum(1 for _ in open(f"{w}/world/data/unlabeled_images.txt"))
assert sum(1 for _ in open(f"{w}/pref/pairs.jsonl")) == n_unlabeled
q = json.load(open(f"{w}/pref/quality/summary.json"))
assert q["pairs"] == n_unlabeled and q["unknown_images"] == 0, q
dm = [json.loads(l) for l in open(f"{w}/dpo/metrics.jsonl")]
assert len(dm) == 4 and abs(dm[0]["loss"] - (0.6931471805599453 + dm[0]["nll"] / 1024)) < 1e-5, dm[0]
assert os.path.isfile(f"{w}/dpo/adapter_model.safetensors") and os.path.isfile(f"{w}/report/dpo.svg")
assert "## STIC: self-training" in md and "report/dpo.svg" in md, md[:2000]
table = md.split("| model |")[1].split("\n\n")[0].splitlines()[2:]
rows = [l.split(" |")[0][2:] for l in table]
assert rows == ["base", "base + DaR", "+ stage 1 (DPO)", "+ stage 1 + DaR", "+ stage 2 (infused SFT)", "+ stage 2 + DaR"], rows
assert md.count("**after STIC stage 1:**") == 4 and md.count("**after STIC stage 2:**") == 4, md
assert "<td>+ stage 2 + DaR</td>" in html and "after STIC stage 2:" in html
# STIC stage 2: every stage-2 record described (by base + the stage-1 adapter) and infused; the
# adapter continued (same r), and its training data is the infused file
st2 = json.load(open(f"{w}/world/data/stage2_sft.json"))
desc = {j["id"]: j for j in map(json.loads, open(f"{w}/describe/descriptions.jsonl"))}
assert set(desc) == {r["id"] for r in st2} and all("description" in d for d in desc.values())
inf = json.load(open(f"{w}/infuse/stage2_infused.json"))
for a, b in zip(st2, inf):
    q = a["conversations"][0]["value"].replace("<image>", "").strip()
    assert b["conversations"][0]["value"] == "<image>\nImage description:\n" + desc[a["id"]]["description"] + "\n\n" + q
    assert b["conversations"][1:] == a["conversations"][1:]
sc = json.load(open(f"{w}/sft2/train_config.json"))
assert sc["data"] == f"{w}/infuse/stage2_infused.json" and sc["adapter"] == f"{w}/dpo", sc
assert json.load(open(f"{w}/sft2/adapter_config.json"))["r"] == json.load(open(f"{w}/dpo/adapter_config.json"))["r"] == 8
ec = json.load(open(f"{w}/eval_stage2/eval_config.json"))
assert ec["adapter"] == f"{w}/sft2" and ec["dar"] is False, ec
# DaR: each eval image described once, then every question on it asked with the description
dc = json.load(open(f"{w}/eval_stage1_dar/eval_config.json"))
assert dc["adapter"] == f"{w}/dpo" and dc["dar"]["max_new_tokens"] == 48, dc
dd = {j["image"]: j["description"] for j in map(json.loads, open(f"{w}/eval_stage1_dar/dar_descriptions.jsonl"))}
reqs = [json.loads(l) for l in open(f"{w}/world/eval/requests.jsonl")]
assert set(dd) == {r["image"] for r in reqs if r.get("image")}
assert json.load(open(f"{w}/eval_stage1_dar/summary.json"))["scored"] == 160
assert "invented: ;" not in html and "missed: <" not in html   # empty lists say "none"
assert "Vision tower after its own stage" in md, md[:800]
PY

"$STIC" pipeline --recipe $R --workdir "$W" --quiet >"$T/log3" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(grep -c 'finished earlier, skipped' "$T/log3")" -eq 16 ] \
  && ok "third run skips every stage" || bad "third run: $(cat "$T/log3")"

# eval resumes: a lost prediction is redone, nothing else
head -n 150 "$W/eval/predictions.jsonl" >"$T/p" && cp "$T/p" "$W/eval/predictions.jsonl"
"$STIC" eval --model "$W/base" --benchmark world --data "$W/world" --out "$W/eval" --quiet >"$T/log4" 2>&1
grep -q "10 generated" "$T/log4" && grep -q "150 resumed" "$T/log4" && [ "$(wc -l <"$W/eval/predictions.jsonl")" -eq 160 ] \
  && ok "eval resumes by id" || bad "eval resume: $(tail -3 "$T/log4")"

# eval with a PEFT LoRA adapter on top of the trained base model
"$STIC" train-sft --model "$W/base" --data "$W/world/data/stage2_sft.json" --image-dir "$W/world/images" \
  --output-dir "$T/lora" --max-steps 2 --batch-size 4 --lora-r 4 --lora-alpha 8 --no-progress >"$T/log" 2>&1 \
&& "$STIC" eval --model "$W/base" --adapter "$T/lora" --benchmark world --data "$W/world" --out "$T/elora" \
  >"$T/log5" 2>&1 && grep -q "adapter $T/lora merged" "$T/log5" && [ "$(wc -l <"$T/elora/predictions.jsonl")" -eq 160 ] \
  && ok "eval --adapter" || bad "eval --adapter: $(tail -3 "$T/log" "$T/log5")"

# the world writes its multiple-choice and POPE questions in the real layouts: the real scorers read them
"$STIC" eval --model "$W/base" --benchmark mmbench --data "$W/world/eval/mmbench.tsv" --out "$T/emm" --quiet >"$T/log" 2>&1 \
  && "$STIC" eval --model "$W/base" --benchmark pope --data "$W/world/eval/pope.jsonl" --image-dir "$W/world/images" \
     --out "$T/epope" --quiet >>"$T/log" 2>&1 \
  && python3 - "$T" <<'PY' && ok "eval --benchmark mmbench / pope on the world's eval/mmbench.tsv and eval/pope.jsonl" || bad "world files through the real scorers: $(tail -5 "$T/log")"
import json, sys
t = sys.argv[1]
m = json.load(open(f"{t}/emm/summary.json"))
assert m["benchmark"] == "mmbench" and m["errors"]["count"] == 0 and m["metrics"]["scored_questions"] > 0, m
p = json.load(open(f"{t}/epope/summary.json"))
assert p["errors"]["count"] == 0 and set(p["categories"]) == {"random", "popular", "adversarial"}, p
PY

# bad input
"$STIC" eval --model "$W/base" --benchmark chartqa --data "$W/world" --out "$T/e" >"$T/log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "chartqa not in {pope,scienceqa,textvqa,mmbench" "$T/log" && ok "unknown benchmark: clear error listing the known ones" \
  || bad "unknown benchmark (rc $rc): $(cat "$T/log")"
printf 'name: x\nworld:\n  preset: world-smoke\nbase:\n  max_steps: 3\n  lrate: 0.1\n' >"$T/typo.yaml"
"$STIC" pipeline --recipe "$T/typo.yaml" --workdir "$T/w2" >"$T/log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "typo.yaml:6: unknown key 'lrate' in base (valid keys:" "$T/log" \
  && ok "unknown recipe key: file, line, valid keys" || bad "unknown key (rc $rc): $(cat "$T/log")"
# --set: recipe values from the command line, checked like the file's (ablations: dpo.alpha=0, ...)
"$STIC" pipeline --recipe $R --workdir "$T/w_set" --until world --quiet --set dpo.alpha=0 --set pref.p_bad_prompt=1 \
  >"$T/log" 2>&1; rc=$?
[ $rc -eq 0 ] && python3 -c "
import json, sys; r = json.load(open('$T/w_set/recipe.json'))
assert r['dpo']['alpha'] == 0 and r['pref']['p_bad_prompt'] == 1, r" \
  && ok "--set overrides recipe values (recorded in recipe.json)" || bad "--set (rc $rc): $(cat "$T/log")"
"$STIC" pipeline --recipe $R --workdir "$T/w_set2" --set dpo.alhpa=0 >"$T/log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "unknown key 'alhpa' in dpo (valid keys:" "$T/log" \
  && ok "--set with an unknown key: named with the valid keys" || bad "--set typo (rc $rc): $(cat "$T/log")"
printf 'name: x\nworld:\n  preset: world-huge\nbase:\n  max_steps: 3\n' >"$T/preset.yaml"
"$STIC" pipeline --recipe "$T/preset.yaml" --workdir "$T/w3" >"$T/log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "world-huge" "$T/log" && grep -q "world-tiny" "$T/log" && [ ! -e "$T/w3/world" ] \
  && ok "unknown preset: clear error before any work" || bad "unknown preset (rc $rc): $(cat "$T/log")"
printf 'name: x\nbase:\n  max_steps: many\n' >"$T/value.yaml"
"$STIC" pipeline --recipe "$T/value.yaml" --workdir "$T/w4" >"$T/log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "value.yaml:3: 'max_steps': cannot read 'many' as an integer" "$T/log" \
  && ok "bad value: located error" || bad "bad value (rc $rc): $(cat "$T/log")"
printf 'name: x\nbase:\n  max_steps: 3\n  group_by_length: sorted\n' >"$T/group.yaml"
printf 'name: x\nbase:\n  max_steps: 3\n  freeze_projector: maybe\n' >"$T/bool.yaml"
printf 'name: x\npretrain:\n  max_steps: 3\n  image_marker: middle\nbase:\n  max_steps: 3\n' >"$T/marker.yaml"
"$STIC" pipeline --recipe "$T/group.yaml" --workdir "$T/w6" >"$T/log" 2>&1; rc=$?
"$STIC" pipeline --recipe "$T/bool.yaml" --workdir "$T/w7" >"$T/log2" 2>&1; rc2=$?
"$STIC" pipeline --recipe "$T/marker.yaml" --workdir "$T/w8" >"$T/log3" 2>&1; rc3=$?
[ $rc -eq 1 ] && grep -q "group.yaml:4: group_by_length must be false, true or step (got 'sorted')" "$T/log" \
  && [ $rc2 -eq 1 ] && grep -q "bool.yaml:4: 'freeze_projector': cannot read 'maybe' as true or false" "$T/log2" \
  && [ $rc3 -eq 1 ] && grep -q "marker.yaml:4: image_marker must be front or keep (got 'middle')" "$T/log3" \
  && [ ! -e "$T/w6/world" ] && [ ! -e "$T/w7/world" ] && [ ! -e "$T/w8/world" ] \
  && ok "bad group_by_length / boolean / image_marker: located errors before any work" \
  || bad "bad grouping/bool/marker (rc $rc/$rc2/$rc3): $(cat "$T/log" "$T/log2" "$T/log3")"
"$STIC" pipeline --recipe $R --workdir "$W" --max-steps 31 >"$T/log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "holds a run of a different recipe (differs in base" "$T/log" \
  && ok "work folder of another recipe refused" || bad "other recipe (rc $rc): $(cat "$T/log")"
"$STIC" pipeline --recipe "$T/nope.yaml" --workdir "$T/w5" >"$T/log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "nope.yaml: recipe file does not exist" "$T/log" && ok "missing recipe file" \
  || bad "missing recipe (rc $rc): $(cat "$T/log")"

# seeds and variants: the base model trained once per seed and shared; one comparison
"$STIC" pipeline --recipe $R --workdir "$T/sw" --seeds 0,3 --variant no_reg:dpo.alpha=0 --variant r2:dpo.rounds=2 \
  --quiet >"$T/log" 2>&1; rc=$?
[ $rc -eq 0 ] && python3 - "$T/sw" <<'PY' && ok "--seeds 0,3 --variant x2: per-seed runs, variants on links to the seed's base, dpo.rounds=2, compare.md with mean ± std" \
  || bad "sweep (rc $rc): $(tail -5 "$T/log")"
import json, os, sys
d = sys.argv[1]
for s in (0, 3):
    sd = f"{d}/seed{s}"
    assert json.load(open(f"{sd}/recipe.json"))["world"]["seed"] == s
    v = f"{sd}/variants/no_reg"
    for st in ("world", "base", "eval"):
        assert os.path.islink(f"{v}/{st}") and os.path.realpath(f"{v}/{st}") == os.path.realpath(f"{sd}/{st}"), st
    assert not os.path.islink(f"{v}/dpo") and os.path.exists(f"{v}/dpo/.done") and os.path.exists(f"{v}/report.md")
    assert json.load(open(f"{v}/recipe.json"))["dpo"]["alpha"] == 0
    assert json.load(open(f"{sd}/recipe.json"))["dpo"]["alpha"] > 0
    # the variant trained its own adapter: alpha 0 drops the NLL term, so the losses differ
    loss = lambda p: [json.loads(l)["loss"] for l in open(p) if '"loss"' in l]
    assert loss(f"{v}/dpo/metrics.jsonl") != loss(f"{sd}/dpo/metrics.jsonl")
    # a second round: new pairs from the newest adapter, DPO continuing it, its own eval
    r2 = f"{sd}/variants/r2"
    assert all(os.path.exists(f"{r2}/{st}/.done") for st in ("pref_round2", "dpo_round2", "eval_round2"))
    assert "train-dpo --adapter " + f"{r2}/dpo " in open(f"{r2}/logs/dpo_round2.log").read()
    assert not os.path.exists(f"{sd}/eval_round2")
md = open(f"{d}/compare.md").read()
assert "| r2 | + stage 1, round 2 | 2 |" in md, md
assert "| recipe | base | 2 |" in md and "| no_reg | + stage 1 | 2 |" in md and " ± " in md, md
c = json.load(open(f"{d}/compare.json"))
assert c["seeds"] == [0, 3] and len(c["variants"]["no_reg"]["+ stage 2"]["precision"]) == 2
PY
"$STIC" pipeline --recipe $R --workdir "$T/sw2" --seeds 0 --variant bad:base.max_steps=9 >"$T/log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "variant bad: changes base" "$T/log" && [ ! -e "$T/sw2" ] \
  && ok "a variant that would change the shared base model: refused before any work" || bad "base-changing variant (rc $rc): $(cat "$T/log")"

echo "pipeline_tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
