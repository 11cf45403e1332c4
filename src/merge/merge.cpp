// The merge primitives: argument checks, the CPU loop, and the hand-off to the GPU.
#include "chunktree/merge.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "runtime/memory.hpp"
#include "merge/merge_job.hpp"

namespace chunktree {
namespace {

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorCode::invalid_argument, "merge: " + message); }

constexpr std::initializer_list<DType> kStateDtypes = {DType::f32, DType::f16, DType::bf16};

// A state's heads and head dim: at least 1 each (a state of no dims still has an lse to merge,
// which a merge that writes nothing would leave unwritten) and within an int, the job's counters.
void check_state_extents(const char* name, const std::vector<std::int64_t>& shape, std::int64_t heads, std::int64_t head_dim) {
  constexpr std::int64_t kLargest = std::numeric_limits<int>::max();
  if (heads < 1 || head_dim < 1 || heads > kLargest || head_dim > kLargest) {
    fail(std::string(name) + " has shape " + shape_string(shape) + "; its heads and head_dim must each be from 1 to " + std::to_string(kLargest));
  }
}

// Tensors that claim to be on the GPU must be memory the current GPU can read (expect_tensor has
// checked devices, dtypes and shapes already).
void check_gpu_pointers(std::initializer_list<const void*> pointers, const char* const* names) {
  std::size_t i = 0;
  for (const void* pointer : pointers) cuda_memory::expect_device_pointer(pointer, names[i++]);
}

// An output is an input exactly (the same memory in the input's dtype, where `may_be` allows it: each
// element is read before it is written) or apart from it. One that overlaps an input in part would
// overwrite elements that are still to be read.
template <typename In>
void check_overlap(const TensorView& out, const char* out_name, const In& in, const char* in_name, bool may_be) {
  if (!overlap(out, in)) return;
  const bool same_start = out.data == in.data;
  if (may_be && same_start && out.dtype == in.dtype && out.numel() == in.numel()) return;
  if (may_be && same_start && out.dtype != in.dtype) {
    fail(std::string(out_name) + " is " + in_name + "'s memory but " + std::string(to_string(out.dtype)) + " instead of " +
         std::string(to_string(in.dtype)) + "; an output may alias an input only in the input's dtype");
  }
  fail(std::string(out_name) + " overlaps " + in_name + " in part; pass an output that is " + (may_be ? std::string(in_name) + " itself or " : "") +
       "memory of its own");
}

void run(const merging::MergeJob& job, Device device, void* stream) {
  if (job.tokens == 0 || job.heads == 0 || job.head_dim == 0) return;
  if (device == Device::cuda) return merging::merge_on_gpu(job, stream);
  for (std::int64_t t = 0; t < job.tokens; ++t) {
    for (int h = 0; h < job.heads; ++h) {
      float lse = 0.0f;
      for (int d = 0; d < job.head_dim; ++d) {
        const float o = merging::merge_element(job, t, h, d, lse);
        store_element(job.out_o, job.out_dtype, (t * job.heads + h) * job.head_dim + d, o);
      }
      job.out_lse[t * job.heads + h] = lse;
    }
  }
}

merging::MergeSource source(const ConstTensorView& o, const ConstTensorView& lse, int parts, int heads, int head_dim) {
  merging::MergeSource s;
  s.o = o.data;
  s.lse = static_cast<const float*>(lse.data);
  s.parts = parts;
  s.o_part_stride = static_cast<std::int64_t>(heads) * head_dim;
  s.o_token_stride = s.o_part_stride * parts;
  s.lse_part_stride = heads;
  s.lse_token_stride = static_cast<std::int64_t>(heads) * parts;
  return s;
}

// merge_state with the caller's names for the six tensors (in place: o, lse, other_o, ...).
void merge_two(const ConstTensorView& a_o, const ConstTensorView& a_lse, const ConstTensorView& b_o, const ConstTensorView& b_lse,
               const TensorView& out_o, const TensorView& out_lse, void* stream, const char* const (&names)[6]) {
  if (a_o.shape.size() != 3) fail(std::string(names[0]) + " has shape " + shape_string(a_o.shape) + "; expected [tokens, heads, head_dim]");
  const Device device = a_o.device;
  const std::vector<std::int64_t>& shape = a_o.shape;
  const std::vector<std::int64_t> lse_shape = {shape[0], shape[1]};
  expect_tensor(a_o, names[0], kStateDtypes, device, shape);
  check_state_extents(names[0], shape, shape[1], shape[2]);
  expect_tensor(a_lse, names[1], {DType::f32}, device, lse_shape);
  expect_tensor(b_o, names[2], {a_o.dtype}, device, shape);
  expect_tensor(b_lse, names[3], {DType::f32}, device, lse_shape);
  expect_tensor(out_o, names[4], kStateDtypes, device, shape);
  expect_tensor(out_lse, names[5], {DType::f32}, device, lse_shape);
  const std::pair<const ConstTensorView*, bool> inputs_of_o[] = {{&a_o, true}, {&a_lse, false}, {&b_o, true}, {&b_lse, false}};
  const std::pair<const ConstTensorView*, bool> inputs_of_lse[] = {{&a_o, false}, {&a_lse, true}, {&b_o, false}, {&b_lse, true}};
  for (int i = 0; i < 4; ++i) {
    check_overlap(out_o, names[4], *inputs_of_o[i].first, names[i], inputs_of_o[i].second);
    check_overlap(out_lse, names[5], *inputs_of_lse[i].first, names[i], inputs_of_lse[i].second);
  }
  check_overlap(out_lse, names[5], out_o, names[4], false);
  if (device == Device::cuda && shape[0] > 0) {
    check_gpu_pointers({a_o.data, a_lse.data, b_o.data, b_lse.data, out_o.data, out_lse.data}, names);
  }
  merging::MergeJob job;
  job.heads = static_cast<int>(shape[1]);
  job.head_dim = static_cast<int>(shape[2]);
  job.tokens = shape[0];
  job.first = source(a_o, a_lse, 1, job.heads, job.head_dim);
  job.second = source(b_o, b_lse, 1, job.heads, job.head_dim);
  job.in_dtype = a_o.dtype;
  job.out_dtype = out_o.dtype;
  job.out_o = out_o.data;
  job.out_lse = static_cast<float*>(out_lse.data);
  run(job, device, stream);
}

}  // namespace

void merge_state(const ConstTensorView& a_o, const ConstTensorView& a_lse, const ConstTensorView& b_o, const ConstTensorView& b_lse,
                 const TensorView& out_o, const TensorView& out_lse, void* stream) {
  merge_two(a_o, a_lse, b_o, b_lse, out_o, out_lse, stream, {"a_o", "a_lse", "b_o", "b_lse", "out_o", "out_lse"});
}

void merge_state_in_place(const TensorView& o, const TensorView& lse, const ConstTensorView& other_o, const ConstTensorView& other_lse,
                          void* stream) {
  merge_two(o, lse, other_o, other_lse, o, lse, stream, {"o", "lse", "other_o", "other_lse", "o", "lse"});
}

void merge_states(const ConstTensorView& o, const ConstTensorView& lse, const TensorView& out_o, const TensorView& out_lse, void* stream) {
  if (o.shape.size() != 4) fail("o has shape " + shape_string(o.shape) + "; expected [tokens, n, heads, head_dim]");
  const Device device = o.device;
  const std::int64_t tokens = o.shape[0];
  const std::int64_t parts = o.shape[1];
  expect_tensor(o, "o", kStateDtypes, device, o.shape);
  if (parts < 1 || parts > std::numeric_limits<int>::max()) {
    fail("o holds " + std::to_string(parts) + " states per token; merge from 1 to " + std::to_string(std::numeric_limits<int>::max()));
  }
  check_state_extents("o", o.shape, o.shape[2], o.shape[3]);
  expect_tensor(lse, "lse", {DType::f32}, device, {tokens, parts, o.shape[2]});
  expect_tensor(out_o, "out_o", kStateDtypes, device, {tokens, o.shape[2], o.shape[3]});
  expect_tensor(out_lse, "out_lse", {DType::f32}, device, {tokens, o.shape[2]});
  const char* names[] = {"o", "lse", "out_o", "out_lse"};
  // The parts of a token are read after its first outputs are written: no output may overlap an input.
  check_overlap(out_o, names[2], o, names[0], false);
  check_overlap(out_o, names[2], lse, names[1], false);
  check_overlap(out_lse, names[3], o, names[0], false);
  check_overlap(out_lse, names[3], lse, names[1], false);
  check_overlap(out_lse, names[3], out_o, names[2], false);
  if (device == Device::cuda && tokens > 0) check_gpu_pointers({o.data, lse.data, out_o.data, out_lse.data}, names);
  merging::MergeJob job;
  job.heads = static_cast<int>(o.shape[2]);
  job.head_dim = static_cast<int>(o.shape[3]);
  job.tokens = tokens;
  job.first = source(o, lse, static_cast<int>(parts), job.heads, job.head_dim);
  job.in_dtype = o.dtype;
  job.out_dtype = out_o.dtype;
  job.out_o = out_o.data;
  job.out_lse = static_cast<float*>(out_lse.data);
  run(job, device, stream);
}

}  // namespace chunktree
