#include "check.hpp"
#include "commands.hpp"

#include "chunktree/types.hpp"

namespace chunktree::tools {

int gentrees_command(Args) { throw Error(ErrorCode::unsupported, "gentrees: not written yet"); }
CheckResult check_tree_file(const std::string&, const CheckOptions&) { throw Error(ErrorCode::unsupported, "tree check: not written yet"); }
bool is_tree_file(const std::string&) { return false; }

}  // namespace chunktree::tools
