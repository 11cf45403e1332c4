// Running a CLI command's independent pieces of work (files) on several threads.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string_view>

namespace chunktree::tools {

// One worker per hardware thread.
int default_jobs();

// Runs task(i) for every i in [0, count) on `jobs` threads, and report(i) (when given) on the
// calling thread in index order, as soon as task(i) has finished. Long runs (more than 20 tasks,
// or past 2 s) keep a progress line with count and ETA on stderr, labelled `label`; `weights`
// (empty: all equal) say how much work each task is, for the ETA. An exception thrown by a task
// stops the run and is rethrown here when that task's turn to report comes.
void run_in_order(std::size_t count, int jobs, std::string_view label, std::span<const double> weights,
                  const std::function<void(std::size_t)>& task, const std::function<void(std::size_t)>& report);

}  // namespace chunktree::tools
