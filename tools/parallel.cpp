#include "parallel.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace chunktree::tools {
namespace {

std::string clock_time(double seconds) {
  const auto total = static_cast<long long>(seconds + 0.5);
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
  }
  return text;
}

// A line "label: done/count files (p%), m:ss elapsed, ETA m:ss" on stderr, redrawn in place on a
// terminal (twice a second) and printed as separate lines elsewhere (every 10 s), so that logs stay
// short. Short runs show nothing.
class ProgressLine {
 public:
  ProgressLine(std::string_view label, std::size_t count, double total_weight)
      : label_(label), count_(count), total_weight_(total_weight), start_(Clock::now()), last_draw_(start_),
        terminal_(isatty(fileno(stderr)) != 0) {}

  void update(std::size_t done, double done_weight) {
    const Clock::time_point now = Clock::now();
    const double elapsed = seconds(now - start_);
    if (count_ <= 20 && elapsed < 2.0) return;
    const bool cleared = terminal_ && shown_ && !on_screen_;
    if (!cleared && seconds(now - last_draw_) < (terminal_ ? 0.5 : 10.0)) return;
    last_draw_ = now;
    std::string text = label_ + ": " + std::to_string(done) + "/" + std::to_string(count_) + " files";
    if (done_weight > 0.0) {
      const double fraction = done_weight / total_weight_;
      char percent[32];
      std::snprintf(percent, sizeof percent, " (%.0f%%)", 100.0 * fraction);
      text += percent + (", " + clock_time(elapsed) + " elapsed, ETA " + clock_time(elapsed * (1.0 - fraction) / fraction));
    }
    draw(text);
  }

  // Takes the line off a terminal before other output goes there.
  void clear() {
    if (!on_screen_) return;
    std::fputs("\r\033[K", stderr);
    on_screen_ = false;
  }

  // Leaves a last line with the total time, where a progress line was shown.
  void finish() {
    if (!shown_) return;
    draw(label_ + ": " + std::to_string(count_) + "/" + std::to_string(count_) + " files, " +
         clock_time(seconds(Clock::now() - start_)) + " in all");
    if (terminal_) std::fputc('\n', stderr);
    on_screen_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

  void draw(const std::string& text) {
    std::fflush(stdout);  // results already printed come first
    if (terminal_) {
      std::fprintf(stderr, "\r%s\033[K", text.c_str());
      on_screen_ = true;
    } else {
      std::fprintf(stderr, "%s\n", text.c_str());
    }
    std::fflush(stderr);
    shown_ = true;
  }

  std::string label_;
  std::size_t count_;
  double total_weight_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  bool terminal_;
  bool shown_ = false;      // a line was drawn at some point
  bool on_screen_ = false;  // a line is on the terminal now, without a newline
};

std::exception_ptr first_error(const std::vector<std::exception_ptr>& errors) {
  for (const std::exception_ptr& error : errors) {
    if (error) return error;
  }
  return std::make_exception_ptr(std::logic_error("run_in_order: a task was never run"));
}

}  // namespace

int default_jobs() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

void run_in_order(std::size_t count, int jobs, std::string_view label, std::span<const double> weights,
                  const std::function<void(std::size_t)>& task, const std::function<void(std::size_t)>& report) {
  const auto weight = [&](std::size_t i) { return weights.empty() ? 1.0 : weights[i]; };
  double total_weight = 0.0;
  for (std::size_t i = 0; i < count; ++i) total_weight += weight(i);

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<char> finished(count, 0);
  std::vector<std::exception_ptr> errors(count);
  std::size_t finished_count = 0;
  double finished_weight = 0.0;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  const std::size_t workers = std::min<std::size_t>(count, static_cast<std::size_t>(std::max(1, jobs)));
  std::size_t running = workers;

  // Tasks are taken in index order, so every index below one taken will finish too.
  const auto work = [&] {
    while (!stop) {
      const std::size_t i = next.fetch_add(1);
      if (i >= count) break;
      std::exception_ptr error;
      try {
        task(i);
      } catch (...) {
        error = std::current_exception();
        stop = true;
      }
      const std::lock_guard lock(mutex);
      finished[i] = 1;
      errors[i] = error;
      finished_count += 1;
      finished_weight += weight(i);
      changed.notify_all();
    }
    const std::lock_guard lock(mutex);
    running -= 1;
    changed.notify_all();
  };
  std::vector<std::jthread> threads;
  for (std::size_t w = 0; w < workers; ++w) threads.emplace_back(work);
  // Declared after the threads: if report() throws, workers stop before the threads are joined.
  struct StopOnExit {
    std::atomic<bool>& stop;
    ~StopOnExit() { stop = true; }
  } stop_on_exit{stop};

  ProgressLine progress(label, count, total_weight);
  for (std::size_t i = 0; i < count; ++i) {
    std::exception_ptr error;
    {
      std::unique_lock lock(mutex);
      while (!finished[i] && running > 0) {
        changed.wait_for(lock, std::chrono::milliseconds(250));
        progress.update(finished_count, finished_weight);
      }
      // Unfinished with no worker left: a later task failed and stopped the run.
      error = finished[i] ? errors[i] : first_error(errors);
    }
    if (error) {
      progress.clear();
      std::rethrow_exception(error);
    }
    if (report) {
      progress.clear();
      report(i);
    }
    const std::lock_guard lock(mutex);
    progress.update(finished_count, finished_weight);
  }
  progress.finish();
}

}  // namespace chunktree::tools
