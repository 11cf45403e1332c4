#include "commands.hpp"

#include "chunktree/types.hpp"

namespace chunktree::tools {

int bench_command(Args) { throw Error(ErrorCode::unsupported, "bench: not written yet"); }

}  // namespace chunktree::tools
