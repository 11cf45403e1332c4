// The merge primitives' cases both backends must pass (chunktree/merge.hpp): merging the states of
// disjoint parts of a KV set gives the state over the union (against the fp64 reference), all-empty
// parts give the empty state, and outputs in place or over an input give the same bits as any other
// call. One test body per case, run on the CPU backend in the host tests and on the CUDA backend in
// the GPU tests (this file is built into both binaries; CHUNKTREE_TESTS_ON_CUDA picks the backend).
// Each backend keeps its own shapes and seeds (the GPU's include head dims off a multiple of the
// warp and above the kernel's 256 threads a block); the tolerances are the states' on both
// (support/merge_states.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "chunktree/merge.hpp"
#include "support/backend_merge.hpp"

namespace chunktree::testing {
namespace {

constexpr DType kDtypes[] = {DType::f32, DType::bf16, DType::f16};

class BackendMerge : public BackendTest {};

TEST_P(BackendMerge, MergeStateGivesTheStateOverTheUnion) {
  std::uint64_t seed = on<std::uint64_t>(0, 3000);
  const std::int64_t tokens = on(7, 11);
  const int heads = 3;
  for (DType in : kDtypes) {
    for (DType out : kDtypes) {
      for (int head_dim : on<std::vector<int>>({64, 40}, {64, 40, 128, 256, 300})) {
        SCOPED_TRACE(::testing::Message() << "o " << to_string(in) << " out " << to_string(out) << " head_dim " << head_dim);
        harness::Random random(++seed);
        const RandomStates s = random_states(random, tokens, 2, heads, head_dim, in, 0.2, 0.15);
        const std::vector<std::int64_t> shape{tokens, heads, head_dim};
        const std::vector<std::int64_t> lse_shape{tokens, heads};
        BackendStates a(backend(), s.part_o(0), s.part_lse(0));
        BackendStates b(backend(), s.part_o(1), s.part_lse(1));
        BackendStates merged(backend(), out, tokens, heads, head_dim);
        merge_state(a.o(shape), a.lse(lse_shape), b.o(shape), b.lse(lse_shape), merged.o(shape), merged.lse(lse_shape));
        const HostStates got = merged.read();
        expect_merged(s, got.o, got.lse);
      }
    }
  }
}

TEST_P(BackendMerge, MergeStatesOfNParts) {
  std::uint64_t seed = on<std::uint64_t>(100, 3100);
  const std::int64_t tokens = on(9, 13);
  const int heads = 4;
  const int head_dim = 128;
  for (int parts : {1, 2, 5}) {
    for (DType in : kDtypes) {
      for (DType out : kDtypes) {
        SCOPED_TRACE(::testing::Message() << parts << " parts, o " << to_string(in) << " out " << to_string(out));
        harness::Random random(++seed);
        const RandomStates s = random_states(random, tokens, parts, heads, head_dim, in, 0.3, 0.1);
        const HostStates got = merge_states_on(backend(), s.o, s.lse, tokens, parts, heads, head_dim, out);
        expect_merged(s, got.o, got.lse);
      }
    }
  }
}

// In place and with out over either input: the same bits as into separate outputs; the same bits
// on every call (into outputs poisoned again), and on the GPU on the caller's stream too.
TEST_P(BackendMerge, InPlaceAliasingAndRepeatable) {
  harness::Random random(on<std::uint64_t>(300, 3200));
  const std::int64_t tokens = on(6, 17);
  const int heads = on(3, 4);
  const int head_dim = on(64, 128);
  const std::vector<std::int64_t> shape{tokens, heads, head_dim};
  const std::vector<std::int64_t> lse_shape{tokens, heads};
  for (DType dtype : kDtypes) {
    SCOPED_TRACE(to_string(dtype));
    const RandomStates s = random_states(random, tokens, 2, heads, head_dim, dtype, 0.25, 0.1);
    const Blob a_o = s.part_o(0);
    const Blob b_o = s.part_o(1);
    const std::vector<float> a_lse = s.part_lse(0);
    const std::vector<float> b_lse = s.part_lse(1);
    BackendStates a(backend(), a_o, a_lse);
    BackendStates b(backend(), b_o, b_lse);
    BackendStates out(backend(), dtype, tokens, heads, head_dim);
    auto merge_into_out = [&](void* stream) {
      merge_state(a.o(shape), a.lse(lse_shape), b.o(shape), b.lse(lse_shape), out.o(shape), out.lse(lse_shape), stream);
    };
    merge_into_out(nullptr);
    const HostStates expected = out.read();
    expect_merged(s, expected.o, expected.lse);
    for (int run = 0; run < 5; ++run) {
      out.poison();
      merge_into_out(nullptr);
      ASSERT_TRUE(same_bits(out.read(), expected)) << "run " << run;
    }
    for (int which = 0; which < 3; ++which) {
      SCOPED_TRACE(which == 0 ? "out = a" : (which == 1 ? "out = b" : "in place"));
      BackendStates a_copy(backend(), a_o, a_lse);
      BackendStates b_copy(backend(), b_o, b_lse);
      BackendStates& target = which == 1 ? b_copy : a_copy;
      if (which == 2) {
        merge_state_in_place(target.o(shape), target.lse(lse_shape), b_copy.o(shape), b_copy.lse(lse_shape));
      } else {
        merge_state(a_copy.o(shape), a_copy.lse(lse_shape), b_copy.o(shape), b_copy.lse(lse_shape), target.o(shape), target.lse(lse_shape));
      }
      ASSERT_TRUE(same_bits(target.read(), expected));
    }
    if (backend() == Backend::cuda) {  // only the GPU's calls are enqueued on a stream
      cudaStream_t stream = nullptr;
      CHUNKTREE_TEST_CUDA(cudaStreamCreate(&stream));
      out.poison();
      merge_into_out(stream);
      CHUNKTREE_TEST_CUDA(cudaStreamSynchronize(stream));
      CHUNKTREE_TEST_CUDA(cudaStreamDestroy(stream));
      ASSERT_TRUE(same_bits(out.read(), expected)) << "on the caller's stream";
    }
  }
}

// Five empty parts (o = 0, lse = −inf) per token merge to the empty state, never NaN, into every
// output dtype.
TEST_P(BackendMerge, AllEmptyPartsGiveTheEmptyState) {
  const std::int64_t tokens = on(3, 4);
  const int parts = 5;
  const int heads = on(2, 3);
  const int head_dim = on(8, 64);
  Blob o(DType::bf16, tokens * parts * heads * head_dim);
  for (std::int64_t i = 0; i < o.numel; ++i) o.set(i, 0.0f);
  const std::vector<float> lse(static_cast<std::size_t>(tokens * parts * heads), -std::numeric_limits<float>::infinity());
  for (DType out : kDtypes) {
    SCOPED_TRACE(::testing::Message() << "out " << to_string(out));
    const HostStates merged = merge_states_on(backend(), o, lse, tokens, parts, heads, head_dim, out);
    for (std::int64_t i = 0; i < merged.o.numel; ++i) ASSERT_EQ(merged.o.get(i), 0.0f) << i;
    for (float value : merged.lse) ASSERT_EQ(value, -std::numeric_limits<float>::infinity());
  }
}

// A NaN in one part's o (NaN in V) makes that (token, head)'s merged o NaN wherever the part stands and
// however little it weighs: a weight that underflows to 0 still multiplies the NaN (0 · NaN = NaN),
// as the attention kernels' P · V and the row merge do. Only an empty part (lse = −inf) is skipped.
// The lse stays the finite merge of the lse (o takes no part in it); other heads are untouched.
TEST_P(BackendMerge, ANanOStaysNanWhereverItsPartStandsAndHoweverLittleItWeighs) {
  const std::int64_t tokens = 2;
  const int parts = 3;
  const int heads = 2;
  const int head_dim = on(8, 64);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (float nan_part_lse : {-200.0f, 0.0f, 200.0f}) {  // its weight: underflowing, equal, dominating
    for (int nan_part = 0; nan_part < parts; ++nan_part) {
      SCOPED_TRACE(::testing::Message() << "NaN in part " << nan_part << " of lse " << nan_part_lse);
      Blob o(DType::f32, tokens * parts * heads * head_dim);
      std::vector<float> lse(static_cast<std::size_t>(tokens * parts * heads));
      for (std::int64_t t = 0; t < tokens; ++t) {
        for (int p = 0; p < parts; ++p) {
          for (int h = 0; h < heads; ++h) {
            const bool poisoned = p == nan_part && h == 0;
            lse[static_cast<std::size_t>((t * parts + p) * heads + h)] = p == nan_part ? nan_part_lse : 0.5f * static_cast<float>(p);
            for (int d = 0; d < head_dim; ++d) o.set(((t * parts + p) * heads + h) * head_dim + d, poisoned ? nan : 0.25f + 0.01f * static_cast<float>(d));
          }
        }
      }
      const HostStates merged = merge_states_on(backend(), o, lse, tokens, parts, heads, head_dim, DType::f32);
      for (std::int64_t t = 0; t < tokens; ++t) {
        for (int d = 0; d < head_dim; ++d) {
          EXPECT_TRUE(std::isnan(merged.o.get((t * heads + 0) * head_dim + d))) << "token " << t << " dim " << d;
          EXPECT_NEAR(merged.o.get((t * heads + 1) * head_dim + d), 0.25f + 0.01f * static_cast<float>(d), 1e-5) << "token " << t << " dim " << d;
        }
        for (int h = 0; h < heads; ++h) EXPECT_TRUE(std::isfinite(merged.lse[static_cast<std::size_t>(t * heads + h)])) << "token " << t << " head " << h;
      }
    }
    // merge_state of a NaN state and a finite one, in both orders.
    Blob nan_o(DType::f32, tokens * heads * head_dim);
    Blob finite_o(DType::f32, tokens * heads * head_dim);
    for (std::int64_t i = 0; i < nan_o.numel; ++i) {
      nan_o.set(i, nan);
      finite_o.set(i, 0.5f);
    }
    const std::vector<float> nan_lse(static_cast<std::size_t>(tokens * heads), nan_part_lse);
    const std::vector<float> finite_lse(static_cast<std::size_t>(tokens * heads), 0.0f);
    for (bool nan_first : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "merge_state, the NaN state " << (nan_first ? "first" : "second") << ", its lse " << nan_part_lse);
      BackendStates a(backend(), nan_first ? nan_o : finite_o, nan_first ? nan_lse : finite_lse);
      BackendStates b(backend(), nan_first ? finite_o : nan_o, nan_first ? finite_lse : nan_lse);
      BackendStates merged(backend(), DType::f32, tokens, heads, head_dim);
      const std::vector<std::int64_t> shape{tokens, heads, head_dim};
      const std::vector<std::int64_t> lse_shape{tokens, heads};
      merge_state(a.o(shape), a.lse(lse_shape), b.o(shape), b.lse(lse_shape), merged.o(shape), merged.lse(lse_shape));
      const HostStates got = merged.read();
      for (std::int64_t i = 0; i < got.o.numel; ++i) ASSERT_TRUE(std::isnan(got.o.get(i))) << i;
      for (float value : got.lse) ASSERT_TRUE(std::isfinite(value));
    }
  }
}

CHUNKTREE_INSTANTIATE_ON_THE_BACKEND(BackendMerge);

}  // namespace
}  // namespace chunktree::testing
