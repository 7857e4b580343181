#!/usr/bin/env bash
# Mutation check: does the test suite catch small, plausible bugs? Applies each mutation below to
# a copy of the tree (one at a time), rebuilds, runs the C++ test binary and the e2e scripts, and
# expects at least one failure. Run before a release; report the table it prints.
#   bash tools/mutation_check.sh [OUT_DIR] [NAME...]     (default: every mutation; ~3-5 min each on 2 cores)
# Each mutation: NAME | FILE | a Python expression (old, new) of one exact source replacement.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/stic-mutations}; shift || true
ONLY=("$@")
mkdir -p "$OUT"
W=$OUT/tree
rm -rf "$W" && git worktree prune && git worktree add -f --detach "$W" HEAD >/dev/null 2>&1 \
  || { echo "cannot make a worktree in $W"; exit 1; }
cp -r tests/fixtures "$W/tests/" 2>/dev/null  # uncommitted fixtures too
B=$W/build  # inside the tree: paths relative to the build dir match build/, so ccache (base_dir=/) hits
cmake -S "$W" -B "$B" -DCMAKE_BUILD_TYPE=Release -DSTIC_WERROR=OFF >"$OUT/configure.log" 2>&1 || { tail "$OUT/configure.log"; exit 1; }

MUTATIONS=$(cat <<'EOF'
rope_theta | src/stic/model/decoder.cpp | ("torch::pow(torch::Scalar(cfg.rope_theta), idx)", "torch::pow(torch::Scalar(cfg.rope_theta * 2), idx)")
rmsnorm_eps | src/stic/model/decoder.cpp | ("h.pow(2).mean(-1, /*keepdim=*/true) + eps)", "h.pow(2).mean(-1, /*keepdim=*/true))")
rslora_scaling | src/stic/model/linear.cpp | ("rslora ? alpha / std::sqrt(static_cast<double>(r))", "rslora ? alpha / static_cast<double>(r)")
label_mask_end | src/stic/train/collator.cpp | ("if (start >= b && start < e) out.labels[i] = id;", "if (start >= b && start + 4 < e) out.labels[i] = id;")
adamw_bias_correction | src/stic/train/trainer.cpp | ("step_size = lr_i / bc1;", "step_size = lr_i;")
unpad_round7_to_int | src/stic/model/llava.cpp | ("return round7 ? static_cast<int64_t>(std::nearbyint(x * 1e7) / 1e7) : static_cast<int64_t>(x);", "return static_cast<int64_t>(x);")
unpad_int_to_round7 | src/stic/model/llava.cpp | ("return round7 ? static_cast<int64_t>(std::nearbyint(x * 1e7) / 1e7) : static_cast<int64_t>(x);", "return static_cast<int64_t>(std::nearbyint(x * 1e7) / 1e7);")
resume_drops_an_id | src/stic/infer/batch_job.cpp | ("  if (done_.count(id)) {\n    ++resumed_;", "  static bool dropped = false;\n  if (done_.count(id) || (!done_.empty() && !dropped && (dropped = true))) {\n    ++resumed_;")
loss_not_divided_by_accumulation | src/stic/train/trainer.cpp | ("(r.loss / static_cast<double>(cfg_.grad_accum)).backward();", "r.loss.backward();")
top_p_ignored | src/stic/infer/engine.cpp | ("auto keep = (before < t_topp)", "auto keep = (before < t_topp + 2)")
sliding_window_off | src/stic/model/decoder.cpp | ("if (!attn_mask.defined() && cfg.sliding_window > 0 && past + t > cfg.sliding_window) {", "if (false) {")
sliding_window_off_in_engine_decode | src/stic/infer/decode_graph.cpp | ("if (window > 0 && attend_len > window) allowed", "if (false) allowed")
dpo_rejected_sign | src/stic/train/dpo_loss.cpp | ("const auto z = (pc - rc) - (pr - rr);", "const auto z = (pc - rc) + (pr - rr);")
dpo_reference_keeps_adapter | src/stic/train/dpo.cpp | ("    off = std::make_unique<AdapterDisabledGuard>();\n", "")
infuse_marker_left_in_question | src/stic/text/stic_prompts.cpp | ("  for (size_t p; (p = question.find(marker)) != std::string::npos;) question.erase(p, marker.size());\n", "")
describe_prompt_by_record_order | src/stic/method/describe.cpp | ("describe_prompt_index(o.seed, image, prompts.normal.size())", "describe_prompt_index(o.seed, std::to_string(reqs.size()), prompts.normal.size())")
pope_no_case_insensitive | src/stic/score/benchmark.cpp | ('if (w == "No" || w == "not" || w == "no") return "no";', 'if (w == "No" || w == "NO" || w == "not" || w == "no") return "no";')
sqa_answer_is_needs_no_next_char | src/stic/score/benchmark.cpp | ('static const std::regex re("The answer is ([A-Z]).");', 'static const std::regex re("The answer is ([A-Z])");')
vqa_period_limit_dropped | src/stic/score/benchmark.cpp | ("if (s[i] == '.' && !digit_next && removed < 32) {", "if (s[i] == '.' && !digit_next) {")
vqa_accuracy_not_leave_one_out | src/stic/score/benchmark.cpp | ("if (j != i && gt[j] == pred) ++m;", "if (gt[j] == pred) ++m;")
mmbench_answer_rotates_the_wrong_way | src/stic/score/benchmark.cpp | ("const int shown = ans < 0 ? -1 : ((ans - k) % n + n) % n;", "const int shown = ans < 0 ? -1 : ((ans + k) % n + n) % n;")
mmbench_circular_any_round | src/stic/score/benchmark.cpp | ("G.all = G.all && score > 0;", "G.all = G.all || score > 0;")
dpo_released_rule_on_chosen | src/stic/train/dpo.cpp | ("const auto c = sequence_logprobs(logits.narrow(0, 0, n), bt.b.labels.narrow(0, 0, n));", "const auto c = sequence_logprobs(logits.narrow(0, 0, n), bt.b.labels.narrow(0, 0, n), LogProbRule::BestOtherToken);")
EOF
)

printf "| mutation | file | caught | by |\n|---|---|---|---|\n" >"$OUT/table.md"
while IFS='|' read -r name file expr; do
  name=$(echo "$name" | xargs); file=$(echo "$file" | xargs)
  [ -z "$name" ] && continue
  if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " == *" $name "* ]]; then continue; fi
  (cd "$W" && git checkout -q -- .)
  if ! python3 - "$W/$file" "$expr" <<'PY'
import sys
path, expr = sys.argv[1], sys.argv[2]
old, new = eval(expr)
s = open(path).read()
if s.count(old) != 1:
    sys.exit(f"the mutation's text occurs {s.count(old)} times in {path}")
open(path, "w").write(s.replace(old, new))
PY
  then echo "| $name | $file | NOT APPLIED (source changed) | |" >>"$OUT/table.md"; continue; fi
  echo "[mutation] $name: building"
  if ! cmake --build "$B" -j"${JOBS:-2}" --target stic stic_tests stic_base_tests >"$OUT/$name.build.log" 2>&1; then
    echo "| $name | $file | yes | the build |" >>"$OUT/table.md"; continue
  fi
  echo "[mutation] $name: testing"
  by=""
  (cd "$W" && timeout 300 "$B/stic_base_tests" --gtest_brief=1 --gtest_fail_fast >"$OUT/$name.base.log" 2>&1) \
    || by=$(grep -E "^\[  FAILED  \] [A-Za-z]" "$OUT/$name.base.log" | grep -v "listed below" | sed 's/\[  FAILED  \] //; s/ (.*//' | head -4 | paste -sd, -)
  [ -z "$by" ] && { (cd "$W" && timeout 1800 "$B/stic_tests" --gtest_brief=1 --gtest_fail_fast >"$OUT/$name.tests.log" 2>&1) \
    || by=$(grep -E "^\[  FAILED  \] [A-Za-z]" "$OUT/$name.tests.log" | grep -v "listed below" | sed 's/\[  FAILED  \] //; s/ (.*//' | head -4 | paste -sd, -); }
  if [ -z "$by" ]; then
    for t in eval_tests generate_tests pref_tests stage2_tests pipeline_tests cli_tests; do
      (cd "$W" && timeout 900 bash "tests/e2e/$t.sh" "$B/stic" >"$OUT/$name.$t.log" 2>&1) || { by="tests/e2e/$t.sh"; break; }
    done
  fi
  if [ -n "$by" ]; then echo "| $name | $file | yes | $by |" >>"$OUT/table.md"
  else echo "| $name | $file | **no** | |" >>"$OUT/table.md"; fi
  tail -1 "$OUT/table.md"
done <<<"$MUTATIONS"
(cd "$W" && git checkout -q -- .)
git worktree remove --force "$W" >/dev/null 2>&1
cat "$OUT/table.md"
