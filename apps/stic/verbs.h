// The verbs of the stic binary: each registers its CLI11 subcommand and a callback.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>

namespace stic::app {

// subcommand -> its action (filled by the register_* functions)
std::map<CLI::App*, std::function<int()>>& verb_callbacks();

void register_chat(CLI::App& app);
void register_generate(CLI::App& app);
void register_generate_pref(CLI::App& app);  // generate-pref, convert
void register_world(CLI::App& app);  // world, world-score
void register_describe(CLI::App& app);  // describe, infuse: STIC stage 2
void register_export(CLI::App& app);    // export: adapter merged into a full checkpoint
void register_train_sft(CLI::App& app);
void register_train_dpo(CLI::App& app);  // train-dpo: STIC stage 1
void register_train_vision(CLI::App& app);  // train-vision: the world model's vision tower alone
void register_eval(CLI::App& app);      // eval --benchmark world
void register_pipeline(CLI::App& app);  // pipeline --recipe FILE --workdir DIR
void register_launch(CLI::App& app);    // launch --nproc N -- stic VERB ...: data-parallel processes
// Runs the callback of the chosen subcommand; returns the exit code.
int run_selected(CLI::App& app);

}  // namespace stic::app
