#include <gtest/gtest.h>

#include "chunktree/device.hpp"
#include "chunktree/types.hpp"

namespace chunktree {
namespace {


TEST(Device, ProbeKernelRunsOnHopper) {
  if (!hopper_visible()) GTEST_SKIP() << "no Hopper GPU visible";
  EXPECT_NO_THROW(require_hopper(0));
}

TEST(Device, MissingDeviceIsAClearError) {
  const auto devices = cuda_devices();
  try {
    require_hopper(static_cast<int>(devices.size()));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(devices.empty() ? "no CUDA device" : "does not exist"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace chunktree
