// Everything a user of chunktree needs.
#pragma once

#include "chunktree/attention.hpp"
#include "chunktree/cpu_backend.hpp"
#include "chunktree/cuda_backend.hpp"
#include "chunktree/device.hpp"
#include "chunktree/levels.hpp"
#include "chunktree/merge.hpp"
#include "chunktree/paged.hpp"
#include "chunktree/plan.hpp"
#include "chunktree/prefix_cache.hpp"
#include "chunktree/reference.hpp"
#include "chunktree/state.hpp"
#include "chunktree/types.hpp"
#include "chunktree/version.hpp"
