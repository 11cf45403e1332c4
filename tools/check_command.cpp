#include "check.hpp"
#include "commands.hpp"

#include "chunktree/types.hpp"

namespace chunktree::tools {

int check_command(Args) { throw Error(ErrorCode::unsupported, "check: not written yet"); }

}  // namespace chunktree::tools
