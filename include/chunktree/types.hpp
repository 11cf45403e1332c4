// Basic vocabulary shared by every part of chunktree: element types, devices,
// errors and non-owning tensor views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace chunktree {

enum class DType : std::uint8_t { f32, f16, bf16 };
enum class Device : std::uint8_t { cpu, cuda };

std::size_t dtype_size(DType dtype);
std::string_view to_string(DType dtype);
std::string_view to_string(Device device);

// What went wrong, so that callers (and the Python binding) can react by kind.
enum class ErrorCode : std::uint8_t {
  invalid_argument,    // a bad value, shape, dtype or device in the call
  capacity_exhausted,  // the chunk pool has too few free chunks, or a captured workspace too little room
  unknown_sequence,    // a handle that was never issued or was removed
  unsupported,         // a valid request this build or device cannot run
  cuda,                // a CUDA runtime call failed
  format,              // a malformed test file
};

// Every error chunktree reports. The message says what to fix.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// A dense, row-major tensor that chunktree reads from or writes to; it does not own memory.
template <typename Pointer>
struct BasicTensorView {
  Pointer data = nullptr;
  DType dtype = DType::f32;
  Device device = Device::cpu;
  std::vector<std::int64_t> shape;

  std::int64_t numel() const {  // of a shape the call has checked (expect_tensor bounds it)
    for (std::int64_t extent : shape) {
      if (extent == 0) return 0;  // before any product of the other extents can wrap
    }
    std::int64_t n = 1;
    for (std::int64_t extent : shape) n *= extent;
    return n;
  }
};

using TensorView = BasicTensorView<void*>;

struct ConstTensorView : BasicTensorView<const void*> {
  ConstTensorView() = default;
  ConstTensorView(const void* data_, DType dtype_, Device device_, std::vector<std::int64_t> shape_)
      : BasicTensorView<const void*>{data_, dtype_, device_, std::move(shape_)} {}
  ConstTensorView(const TensorView& view)  // NOLINT(google-explicit-constructor): views convert like pointers
      : BasicTensorView<const void*>{view.data, view.dtype, view.device, view.shape} {}
};

// "[2, 8, 128]": for error messages.
std::string shape_string(const std::vector<std::int64_t>& shape);

// Throws invalid_argument naming `what` unless the view has this dtype set, device and shape.
void expect_tensor(const ConstTensorView& view, std::string_view what,
                   std::initializer_list<DType> dtypes, Device device,
                   const std::vector<std::int64_t>& shape);

// Whether two views share a byte (an empty view shares none).
template <typename A, typename B>
bool overlap(const BasicTensorView<A>& a, const BasicTensorView<B>& b) {
  const auto a_begin = reinterpret_cast<std::uintptr_t>(a.data);
  const auto b_begin = reinterpret_cast<std::uintptr_t>(b.data);
  const std::uintptr_t a_end = a_begin + static_cast<std::uintptr_t>(a.numel()) * dtype_size(a.dtype);
  const std::uintptr_t b_end = b_begin + static_cast<std::uintptr_t>(b.numel()) * dtype_size(b.dtype);
  return a_begin < a_end && b_begin < b_end && a_begin < b_end && b_begin < a_end;
}

}  // namespace chunktree
