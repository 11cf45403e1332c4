#include "check.hpp"
#include "commands.hpp"

#include "chunktree/types.hpp"

namespace chunktree::tools {

int gentests_command(Args) { throw Error(ErrorCode::unsupported, "gentests: not written yet"); }
CheckResult check_seed_file(const std::string&, const CheckOptions&) { throw Error(ErrorCode::unsupported, "seed check: not written yet"); }

}  // namespace chunktree::tools
