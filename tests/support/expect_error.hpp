// Asserts that a call throws chunktree::Error of a kind, with a message that names what to fix.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "chunktree/types.hpp"

namespace chunktree::testing {

template <typename Call>
void expect_error(Call call, ErrorCode code, const std::string& fragment) {
  try {
    call();
    FAIL() << "expected an error mentioning '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

}  // namespace chunktree::testing
