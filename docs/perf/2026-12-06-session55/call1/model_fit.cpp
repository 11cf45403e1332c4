// Session 55: experiment 95rp's sweep against variants of cost_model::wgmma_sms (a copy of exp95r's
// mma.sync and wgmma sides with the calibration's knobs). Build beside a worktree of exp95rp at /tmp/w95r:
//   g++ -std=c++20 -O2 -I/tmp/w95r/src -I/tmp/w95r/include model_fit.cpp -o model_fit
//   [SM_STEP=s] ./model_fit MODE WGMMA_BESIDE HBM_STEP
// MODE: 0 exp95r as built; 1 a slot's step no faster than the lone step times the tiles streaming per SM;
// 2 a slot's step of 1.5 us where both slots of an SM stream; 3 a per-SM bytes bound of SM_STEP us
// (default 0.88) per 32 KiB step. WGMMA_BESIDE: the wgmma tiles' time beside streaming (x). HBM_STEP:
// a slot's step among all 264 streaming (1.9 H200, 2.7 H100).
#include "/tmp/w95r/src/schedule/cost_model.cpp"
#include <cstdio>
#include <cstdlib>
using namespace chunktree;
using namespace chunktree::cost_model;
// Parameters under calibration.
double per_sm_cap = 0;      // 1: a slot's step no faster than lone × (streaming tiles per SM)
double wgmma_beside = 1.0;  // wgmma tiles' time beside streaming
double hbm_step = 1.9;      // a slot's step among all 264 (H200 1.9; H100 2.7)
struct Model { double seq; double part[133]; };
Model model(const std::vector<std::int64_t>& wpos, const std::vector<std::int64_t>& mpos, int head_dim = 128, int mps = 132, int cps = 2) {
  std::map<std::int64_t, std::int64_t> by_steps; double wwork = 0, longest_w = 0;
  for (auto p : wpos) { ++by_steps[steps_of(p)]; double t = tile_micros(kWgmmaCost, steps_of(p), head_dim); wwork += t; longest_w = std::max(longest_w, t); }
  std::int64_t msteps = 0, longest = 0; for (auto p : mpos) { msteps += steps_of(p); longest = std::max(longest, steps_of(p)); }
  const double mt = mpos.size();
  auto msync = [&](int sms) {
    const double slots = double(sms) * cps, streaming = std::min(slots, mt);
    const double shared = hbm_step * streaming / (double(mps) * cps);
    const double floor = per_sm_cap == 2 ? (streaming > sms ? 1.5 : kMmaSyncLoneCost.step) : kMmaSyncLoneCost.step * (per_sm_cap == 1 ? std::max(1.0, streaming / sms) : 1.0);
    const double step = std::max(floor, shared) * head_dim / 128.0;
    const double work = mt * kMmaSyncCost.start + double(msteps) * step;
    const double sm_bound = per_sm_cap == 3 ? double(msteps) * (getenv("SM_STEP") ? atof(getenv("SM_STEP")) : 0.88) * head_dim / 128.0 / sms : 0.0;
    return std::max({work / streaming, kMmaSyncCost.start + double(longest) * step, sm_bound});
  };
  auto wdealt = [&](int sms, double f) { return f * dealt_wgmma_micros(by_steps, head_dim, sms); };
  Model m{};
  const int first = std::min<std::int64_t>(mps, wpos.size());
  const double wf = wdealt(first, 1.0);
  const double beside = first < mps ? wf / msync(mps - first) : 0.0;
  m.seq = beside >= 1.0 ? std::max(wf, msync(mps - first)) : wf + (1.0 - beside) * msync(mps);
  for (int k = 1; k < std::min(first, 133); ++k) m.part[k] = std::max(wdealt(k, wgmma_beside), msync(mps - k));
  return m;
}
struct Row { const char* name; int w, wpos, m, mpos; double k0, k52, k66, kmodel; int mk; };
int main(int argc, char** argv) {
  per_sm_cap = atof(argv[1]); wgmma_beside = atof(argv[2]); hbm_step = atof(argv[3]);
  Row rows[] = {
    {"sd b64_mha_s264", 128, 4096, 512, 1056, 180.6, 230.8, 173.7, 174.1, 81},
    {"sd b256_mha_s264", 512, 4096, 2048, 1056, 658.8, 750.6, 590.7, 639.2, 86},
    {"sd b64_gqa_s264", 128, 4096, 512, 264, 110.4, 186.1, 134.1, 110.8, 0},
    {"sd b256_gqa_s264", 512, 4096, 2048, 264, 381.2, 593.3, 487.6, 442.2, 104},
    {"sd b64_mha_s8", 128, 4096, 512, 32, 89.3, 178.8, 126.5, 88.9, 0},
    {"sd b256_mha_s8", 512, 4096, 2048, 32, 316.8, 575.3, 474.4, 317.7, 0},
    {"sd b256_gqa_s8", 512, 4096, 2048, 8, 314.9, 568.5, 470.8, 314.4, 0},
    {"hy b512_s64", 64, 512, 512, 64, 31.3, 36.9, 28.9, 31.0, 0},
    {"hy b512_s256", 32, 1024, 512, 256, 49.5, 46.2, 45.9, 49.1, 0},
    {"hy b512_s512", 32, 1024, 512, 512, 72.3, 70.4, 70.7, 71.6, 0},
    {"hy b1024_s64", 64, 2048, 1024, 64, 52.8, 75.8, 47.8, 52.0, 0},
    {"hy b1024_s256", 64, 2048, 1024, 256, 83.0, 93.6, 77.5, 82.2, 0},
    {"hy b1024_s512", 64, 2048, 1024, 512, 124.9, 123.0, 123.4, 124.4, 0},
    {"hy b2048_s64", 128, 4096, 2048, 64, 118.9, 183.0, 129.5, 118.2, 0},
    {"hy b2048_s256", 128, 4096, 2048, 256, 175.4, 213.5, 148.0, 147.8, 67},
    {"hy b2048_s512", 128, 4096, 2048, 512, 263.0, 260.8, 224.6, 224.0, 64},
    {"hy b4096_s64", 256, 8192, 4096, 64, 316.3, 533.8, 435.6, 313.9, 0},
    {"hy b4096_s256", 256, 8192, 4096, 256, 421.3, 587.8, 464.0, 355.7, 89},
    {"hy b4096_s512", 256, 8192, 4096, 512, 594.2, 700.1, 543.5, 495.8, 86},
  };
  std::printf("%-17s | measured k0 k52 k66 k(run) | model seq, 52, 66, k(run) | model's best k (T)\n", "row");
  for (const Row& r : rows) {
    Model m = model(std::vector<std::int64_t>(r.w, r.wpos), std::vector<std::int64_t>(r.m, r.mpos));
    int bk = 0; double bt = m.seq * 0.95;
    for (int k = 1; k < std::min(r.w, 132); ++k) if (m.part[k] > 0 && m.part[k] < bt) { bt = m.part[k]; bk = k; }
    auto p = [&](int k) { return k > 0 && k < std::min(r.w, 132) ? m.part[k] : 0.0; };
    std::printf("%-17s | %6.1f %6.1f %6.1f %6.1f@%-3d | %6.1f %6.1f %6.1f %6.1f | %3d (%6.1f, %.3f of seq)\n", r.name, r.k0, r.k52, r.k66, r.kmodel, r.mk,
                m.seq, p(52), p(66), p(r.mk), bk, bk ? bt : m.seq, bk ? bt / m.seq : 1.0);
  }
}
