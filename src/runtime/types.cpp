#include <algorithm>
#include <string>

#include "chunktree/types.hpp"

namespace chunktree {

std::size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

std::string_view to_string(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
  }
  return "?";
}

std::string_view to_string(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

void expect_tensor(const ConstTensorView& view, std::string_view what, std::initializer_list<DType> dtypes, Device device,
                   const std::vector<std::int64_t>& shape) {
  const std::string name(what);
  if (std::any_of(view.shape.begin(), view.shape.end(), [](std::int64_t extent) { return extent < 0; })) {
    throw Error(ErrorCode::invalid_argument, name + " has shape " + shape_string(view.shape) + ", a negative extent");
  }
  // More than 2^62 elements would wrap numel() (and a null pointer of such a shape pass as empty).
  if (std::find(view.shape.begin(), view.shape.end(), 0) == view.shape.end()) {
    std::int64_t elements = 1;
    for (const std::int64_t extent : view.shape) {
      if (elements > (std::int64_t{1} << 62) / extent) {
        throw Error(ErrorCode::invalid_argument, name + " has shape " + shape_string(view.shape) + ", more elements than any memory holds");
      }
      elements *= extent;
    }
  }
  if (view.data == nullptr && view.numel() != 0) throw Error(ErrorCode::invalid_argument, name + " has no data pointer");
  bool dtype_ok = false;
  std::string allowed;
  for (DType dtype : dtypes) {
    dtype_ok = dtype_ok || dtype == view.dtype;
    allowed += (allowed.empty() ? "" : " or ") + std::string(to_string(dtype));
  }
  if (!dtype_ok) {
    throw Error(ErrorCode::invalid_argument, name + " has dtype " + std::string(to_string(view.dtype)) + "; expected " + allowed);
  }
  if (view.device != device) {
    throw Error(ErrorCode::invalid_argument, name + " is in " + std::string(to_string(view.device)) + " memory; expected it in " +
                                                 std::string(to_string(device)) + " memory");
  }
  if (view.shape != shape) {
    throw Error(ErrorCode::invalid_argument,
                name + " has shape " + shape_string(view.shape) + "; expected " + shape_string(shape));
  }
}

}  // namespace chunktree
