// The Python binding (nanobind): the C++ API over DLPack tensors, without copies. The Pythonic
// layer (defaults, output allocation, plan caching, streams) is python/chunktree/ (_cache.py, ...);
// this file only converts arguments and errors.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "chunktree/chunktree.hpp"

namespace nb = nanobind;
using namespace chunktree;

namespace {

using Array = nb::ndarray<nb::ro>;      // any DLPack or buffer-protocol array, read
using MutableArray = nb::ndarray<>;     // the same, written

DType dtype_of(const nb::dlpack::dtype& dtype, const char* what) {
  if (dtype.lanes == 1 && dtype.bits == 32 && dtype.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float)) return DType::f32;
  if (dtype.lanes == 1 && dtype.bits == 16 && dtype.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float)) return DType::f16;
  if (dtype.lanes == 1 && dtype.bits == 16 && dtype.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Bfloat)) return DType::bf16;
  static constexpr const char* kCodeNames[] = {"int", "uint", "float", "opaque", "bfloat", "complex", "bool"};
  const std::string found = (dtype.code < std::size(kCodeNames) ? kCodeNames[dtype.code] : "dtype code " + std::to_string(dtype.code) + " of ") +
                            std::to_string(dtype.bits) + (dtype.lanes != 1 ? " x" + std::to_string(dtype.lanes) : "");
  throw Error(ErrorCode::invalid_argument, std::string(what) + " is " + found + "; chunktree's arrays are float32, float16 or bfloat16 (lse: float32)");
}

template <typename Nd>
Device device_of(const Nd& array, const char* what) {
  if (array.device_type() == nb::device::cuda::value) return Device::cuda;
  if (array.device_type() != nb::device::cpu::value) throw Error(ErrorCode::invalid_argument, std::string(what) + " must live on the CPU or a CUDA GPU");
  return Device::cpu;
}

// A view of a DLPack array: its device, dtype and shape; it must be C-contiguous. An array without
// elements addresses no memory, so any strides do (numpy gives such arrays strides of 0).
template <typename Nd>
BasicTensorView<std::conditional_t<std::is_same_v<Nd, Array>, const void*, void*>> view_of(const Nd& array, const char* what) {
  const Device device = device_of(array, what);
  std::vector<std::int64_t> shape(array.ndim());
  for (std::size_t i = 0; i < array.ndim(); ++i) shape[i] = static_cast<std::int64_t>(array.shape(i));
  if (array.size() != 0) {
    std::int64_t expected_stride = 1;
    for (std::size_t i = array.ndim(); i-- > 0;) {
      if (shape[i] != 1 && array.stride(i) != expected_stride) {
        throw Error(ErrorCode::invalid_argument, std::string(what) + " must be C-contiguous (row-major, no gaps); call .contiguous() or np.ascontiguousarray first");
      }
      expected_stride *= shape[i];
    }
  }
  return {const_cast<void*>(static_cast<const void*>(array.data())), dtype_of(array.dtype(), what), device, std::move(shape)};
}

// The bindings convert their arrays in statements of their own, inputs before outputs: the
// arguments of one call are evaluated in an unspecified order (GCC: right to left), and the error
// should name the first wrong input, not an output allocated like it.
ConstTensorView in(const Array& array, const char* what) {
  auto view = view_of(array, what);
  return ConstTensorView(view.data, view.dtype, view.device, view.shape);
}
TensorView out(const MutableArray& array, const char* what) {
  auto view = view_of(array, what);
  return TensorView{view.data, view.dtype, view.device, view.shape};
}
TensorView optional_out(const std::optional<MutableArray>& array, const char* what) {
  return array ? out(*array, what) : TensorView{};
}

// Slots exactly as the package hands them over: int32 [n, 2] on the host, read through their strides.
using SlotArray = nb::ndarray<const std::int32_t, nb::ndim<2>, nb::device::cpu>;
using DeviceSlotArray = nb::ndarray<const std::int32_t, nb::shape<-1, 2>, nb::c_contig, nb::device::cuda>;

std::vector<Slot> slots_of(const SlotArray& slots) {
  if (slots.shape(1) != 2) throw Error(ErrorCode::invalid_argument, "slots must have shape [n, 2] (chunk, offset)");
  std::vector<Slot> result(slots.shape(0));
  for (std::size_t i = 0; i < result.size(); ++i) result[i] = Slot{slots(i, 0), slots(i, 1)};
  return result;
}

nb::ndarray<nb::numpy, std::int32_t, nb::ndim<2>> slots_array(const std::vector<Slot>& slots) {
  auto* data = new std::int32_t[std::max<std::size_t>(1, 2 * slots.size())];
  for (std::size_t i = 0; i < slots.size(); ++i) {
    data[2 * i] = slots[i].chunk;
    data[2 * i + 1] = slots[i].offset;
  }
  nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<std::int32_t*>(p); });
  return nb::ndarray<nb::numpy, std::int32_t, nb::ndim<2>>(data, {slots.size(), 2}, owner);
}

DType dtype_named(const std::string& name) {
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "f16" || name == "float16") return DType::f16;
  if (name == "f32" || name == "float32") return DType::f32;
  throw Error(ErrorCode::invalid_argument, "dtype must be 'bf16', 'f16' or 'f32', got '" + name + "'");
}
Device device_named(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  throw Error(ErrorCode::invalid_argument, "device must be 'cpu' or 'cuda', got '" + name + "'");
}

SeqId seq_of(std::uint64_t value) { return SeqId{value}; }

// Whether `values` is a list or tuple of exact ints (bools are not) within [low, high]: the Python
// layer's check of a decode step's handles and tokens, in one C pass (a Python generator over 1024
// handles cost ~50 µs a step). The Python layer names the offending element when this says no.
bool plain_ints(nb::handle values, std::int64_t low, std::uint64_t high) {
  PyObject* sequence = values.ptr();
  if (!PyList_CheckExact(sequence) && !PyTuple_CheckExact(sequence)) return false;
  const Py_ssize_t size = PySequence_Fast_GET_SIZE(sequence);
  PyObject** items = PySequence_Fast_ITEMS(sequence);
  for (Py_ssize_t i = 0; i < size; ++i) {
    if (!PyLong_CheckExact(items[i])) return false;
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(items[i], &overflow);
    if (overflow < 0) return false;
    if (overflow > 0) {  // above INT64_MAX: only a uint64 bound can hold it
      const unsigned long long wide = PyLong_AsUnsignedLongLong(items[i]);
      if (PyErr_Occurred() != nullptr) {
        PyErr_Clear();
        return false;
      }
      if (wide > high) return false;
      continue;
    }
    if (value < low || (value >= 0 && static_cast<std::uint64_t>(value) > high)) return false;
  }
  return true;
}

// Only names chunktree.CapacityError: chunktree::Error with capacity_exhausted is raised as it.
struct CapacityExhausted : std::exception {};

AttentionParams params_of(int num_q_heads, float scale, int num_threads) {
  AttentionParams params;
  params.num_q_heads = num_q_heads;
  params.scale = scale;
  params.num_threads = num_threads;
  return params;
}

// A KV segment built from Python: the arrays stay referenced by the Python wrapper.
KvSegment segment_of(const Array& k, const Array& v, std::int64_t length, const std::vector<std::int32_t>& pages) {
  KvSegment segment;
  segment.k = in(k, "k");
  segment.v = in(v, "v");
  segment.length = length;
  segment.pages = pages;
  return segment;
}

// One layer's paged KV from its K and V pools as the engine holds them, read through their
// strides: [pages, page, kv_heads, head_dim] (NHD) or [pages, kv_heads, page, head_dim] (HND).
PagedKv paged_kv_of(const Array& k, const Array& v, KvLayout layout) {
  const char* expected = layout == KvLayout::nhd ? "[pages, page_size, num_kv_heads, head_dim] (NHD)" : "[pages, num_kv_heads, page_size, head_dim] (HND)";
  for (const Array* pool : {&k, &v}) {
    if (pool->ndim() != 4) {
      throw Error(ErrorCode::invalid_argument, std::string("kv_cache's ") + (pool == &k ? "K" : "V") + " pool has " + std::to_string(pool->ndim()) +
                                                   " dimensions; expected " + expected);
    }
  }
  const auto extents = [](const Array& pool, bool strides) {
    std::string text = "(";
    for (std::size_t i = 0; i < 4; ++i) text += std::to_string(strides ? pool.stride(i) : static_cast<std::int64_t>(pool.shape(i))) + (i < 3 ? ", " : ")");
    return text;
  };
  // An empty pool's strides are whatever its library gives (numpy: 0), so say what it is first.
  for (const Array* pool : {&k, &v}) {
    if (pool->size() == 0) {
      throw Error(ErrorCode::invalid_argument, std::string("kv_cache's ") + (pool == &k ? "K" : "V") + " pool has shape " + extents(*pool, false) +
                                                   ", no element; pass a pool of at least one page " + expected);
    }
  }
  for (std::size_t i = 0; i < 4; ++i) {
    if (k.shape(i) != v.shape(i) || (k.shape(i) > 1 && k.stride(i) != v.stride(i))) {
      throw Error(ErrorCode::invalid_argument, "kv_cache's K and V pools must have the same shape and strides; K has shape " + extents(k, false) +
                                                   " and strides " + extents(k, true) + ", V shape " + extents(v, false) + " and strides " +
                                                   extents(v, true) + " (elements): pass both as views of one tensor, or both contiguous");
    }
  }
  if (k.shape(3) > 1 && k.stride(3) != 1) throw Error(ErrorCode::invalid_argument, "kv_cache's head dim must be contiguous (stride 1)");
  const Device device = device_of(k, "kv_cache");
  if (device_of(v, "kv_cache") != device) throw Error(ErrorCode::invalid_argument, "kv_cache's K and V pools must live on one device");
  const DType dtype = dtype_of(k.dtype(), "kv_cache");
  if (dtype_of(v.dtype(), "kv_cache") != dtype) throw Error(ErrorCode::invalid_argument, "kv_cache's K and V pools must share a dtype");
  const std::size_t token_dim = layout == KvLayout::nhd ? 1 : 2;
  const std::size_t head_dim = layout == KvLayout::nhd ? 2 : 1;
  PagedKv kv;
  kv.k = k.data();
  kv.v = v.data();
  kv.dtype = dtype;
  kv.device = device;
  kv.num_pages = static_cast<std::int64_t>(k.shape(0));
  kv.page_size = static_cast<std::int64_t>(k.shape(token_dim));
  kv.num_kv_heads = static_cast<std::int64_t>(k.shape(head_dim));
  kv.head_dim = static_cast<std::int64_t>(k.shape(3));
  kv.page_stride = k.stride(0);
  kv.token_stride = k.stride(token_dim);
  kv.head_stride = k.stride(head_dim);
  return kv;
}

KvLayout layout_named(const std::string& name) {
  if (name == "NHD") return KvLayout::nhd;
  if (name == "HND") return KvLayout::hnd;
  throw Error(ErrorCode::invalid_argument, "kv_layout must be 'NHD' or 'HND', got '" + name + "'");
}

// Page-table arrays exactly as the package hands them over: int32 on the host, contiguous.
using IndexArray = nb::ndarray<const std::int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

std::span<const std::int32_t> span_of(const IndexArray& array) { return {array.data(), array.shape(0)}; }

PageTableView table_of(const IndexArray& kv_indptr, const IndexArray& kv_indices, const IndexArray& kv_last_page_len,
                       const std::optional<IndexArray>& qo_indptr) {
  return PageTableView{span_of(kv_indptr), span_of(kv_indices), span_of(kv_last_page_len),
                       qo_indptr ? span_of(*qo_indptr) : std::span<const std::int32_t>{}};
}

PagedShape paged_shape_of(int num_qo_heads, int num_kv_heads, int head_dim, int page_size, bool causal, float sm_scale) {
  return PagedShape{num_qo_heads, num_kv_heads, head_dim, page_size, causal, sm_scale};
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "chunktree's C++ core; use the chunktree package, not this module.";
  m.attr("__version__") = CHUNKTREE_VERSION_STRING;
  m.attr("MAX_ITEM_TOKENS") = kMaxItemTokens;
  m.def("plain_ints", &plain_ints, nb::arg("values"), nb::arg("low"), nb::arg("high"));

  // A type of its own for a full pool; every chunktree::Error goes through the translator below.
  static nb::exception<CapacityExhausted> capacity_error(m, "CapacityError", PyExc_RuntimeError);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& error) {
      switch (error.code()) {
        case ErrorCode::invalid_argument:
        case ErrorCode::format: PyErr_SetString(PyExc_ValueError, error.what()); return;
        case ErrorCode::capacity_exhausted: PyErr_SetString(capacity_error.ptr(), error.what()); return;
        case ErrorCode::unknown_sequence: PyErr_SetString(PyExc_KeyError, error.what()); return;
        case ErrorCode::unsupported: PyErr_SetString(PyExc_NotImplementedError, error.what()); return;
        case ErrorCode::cuda: PyErr_SetString(PyExc_RuntimeError, error.what()); return;
      }
      PyErr_SetString(PyExc_RuntimeError, error.what());
    }
  });

  m.def("hopper_visible", &hopper_visible, "True when some visible device is a Hopper GPU (compute capability 9.0).");

  nb::class_<PrefixCache>(m, "PrefixCache")
      .def(
          "__init__",
          [](PrefixCache* self, int num_layers, int num_kv_heads, int head_dim, int chunk_size, const std::string& dtype,
             std::int64_t capacity_chunks, const std::string& device) {
            CacheConfig config;
            config.num_layers = num_layers;
            config.num_kv_heads = num_kv_heads;
            config.head_dim = head_dim;
            config.chunk_size = chunk_size;
            config.dtype = dtype_named(dtype);
            config.capacity_chunks = capacity_chunks;
            config.device = device_named(device);
            new (self) PrefixCache(config);
          },
          nb::arg("num_layers"), nb::arg("num_kv_heads"), nb::arg("head_dim"), nb::arg("chunk_size"), nb::arg("dtype"),
          nb::arg("capacity_chunks"), nb::arg("device"))
      .def("add",
           [](PrefixCache& cache, const std::vector<Token>& tokens) {
             const AddResult result = cache.add(tokens);
             return nb::make_tuple(result.seq.value, result.cached_tokens, slots_array(result.slots));
           })
      .def("append", [](PrefixCache& cache, std::uint64_t seq, const std::vector<Token>& tokens) {
        return slots_array(cache.append(seq_of(seq), tokens));
      })
      .def("append_batch",
           [](PrefixCache& cache, const std::vector<std::uint64_t>& seqs, const std::vector<Token>& tokens) {
             std::vector<SeqId> handles;
             handles.reserve(seqs.size());
             for (std::uint64_t seq : seqs) handles.push_back(seq_of(seq));
             return slots_array(cache.append_batch(handles, tokens));
           })
      .def("fork",
           [](PrefixCache& cache, std::uint64_t seq, int n) {
             std::vector<std::uint64_t> children;
             for (SeqId child : cache.fork(seq_of(seq), n)) children.push_back(child.value);
             return children;
           })
      .def("remove", [](PrefixCache& cache, std::uint64_t seq) { cache.remove(seq_of(seq)); })
      .def("write_kv",
           [](PrefixCache& cache, int layer, const SlotArray& slots, const Array& k, const Array& v, std::uintptr_t stream) {
             const ConstTensorView k_view = in(k, "k");
             const ConstTensorView v_view = in(v, "v");
             cache.write_kv(layer, slots_of(slots), k_view, v_view, reinterpret_cast<void*>(stream));
           },
           // Exactly int32 [n, 2]: the package validates slots, and a silent cast here would wrap or truncate them.
           nb::arg("layer"), nb::arg("slots").noconvert(), nb::arg("k"), nb::arg("v"), nb::arg("stream"))
      .def("write_kv_device_slots",
           [](PrefixCache& cache, int layer, const DeviceSlotArray& slots, const Array& k, const Array& v, std::uintptr_t stream) {
             const ConstTensorView k_view = in(k, "k");
             const ConstTensorView v_view = in(v, "v");
             cache.write_kv(layer, DeviceSlots{slots.data(), static_cast<std::int64_t>(slots.shape(0))}, k_view, v_view,
                            reinterpret_cast<void*>(stream));
           },
           nb::arg("layer"), nb::arg("slots").noconvert(), nb::arg("k"), nb::arg("v"), nb::arg("stream"))
      .def("stats",
           [](const PrefixCache& cache) {
             const CacheStats s = cache.stats();
             nb::dict d;
             d["capacity_chunks"] = s.capacity_chunks;
             d["chunks_in_use"] = s.chunks_in_use;
             d["tokens_stored"] = s.tokens_stored;
             d["tokens_without_sharing"] = s.tokens_without_sharing;
             d["sequences"] = s.sequences;
             d["nodes"] = s.nodes;
             return d;
           })
      .def("contains", [](const PrefixCache& cache, std::uint64_t seq) { return cache.contains(seq_of(seq)); })
      .def("length", [](const PrefixCache& cache, std::uint64_t seq) { return cache.length(seq_of(seq)); })
      .def("tokens", [](const PrefixCache& cache, std::uint64_t seq) { return cache.tokens(seq_of(seq)); })
      .def("slots", [](const PrefixCache& cache, std::uint64_t seq) { return slots_array(cache.slots(seq_of(seq))); })
      .def_prop_ro("version", &PrefixCache::version)
      .def_prop_ro("config", [](const PrefixCache& cache) {
        const CacheConfig& c = cache.config();
        nb::dict d;
        d["num_layers"] = c.num_layers;
        d["num_kv_heads"] = c.num_kv_heads;
        d["head_dim"] = c.head_dim;
        d["chunk_size"] = c.chunk_size;
        d["dtype"] = std::string(to_string(c.dtype));
        d["capacity_chunks"] = c.capacity_chunks;
        d["device"] = std::string(to_string(c.device));
        return d;
      });

  nb::class_<Plan>(m, "Plan")
      .def(nb::init<>())
      .def_prop_ro("queries_per_seq", [](const Plan& plan) { return plan.queries_per_seq; })
      .def_prop_ro("num_items", [](const Plan& plan) { return plan.items.size(); })
      .def_prop_ro("num_shared_items", [](const Plan& plan) { return plan.num_shared_items; })
      .def_prop_ro("num_states", [](const Plan& plan) { return plan.num_states; })
      .def_prop_ro("batch", [](const Plan& plan) {
        std::vector<std::uint64_t> batch;
        for (SeqId seq : plan.batch) batch.push_back(seq.value);
        return batch;
      })
      .def("is_current", [](const Plan& plan, const PrefixCache& cache) { return plan.is_current(cache, plan.batch); });

  // A Python make_plan's options: max_item_tokens < 0 asks the CUDA backend's cost model (for
  // num_q_heads) for the split, in the same pass.
  const auto plan_options_of = [](const PrefixCache& cache, int min_shared_rows, std::int64_t max_item_tokens, int queries_per_seq,
                                  int num_q_heads) {
    if (max_item_tokens >= 0) return PlanOptions{min_shared_rows, max_item_tokens, queries_per_seq};
    return cuda::plan_options(cache, params_of(num_q_heads, 0.0f, 0), PlanOptions{min_shared_rows, 0, queries_per_seq});
  };
  const auto seqs_of = [](const std::vector<std::uint64_t>& batch) {
    std::vector<SeqId> seqs;
    for (std::uint64_t seq : batch) seqs.push_back(seq_of(seq));
    return seqs;
  };
  m.def(
      "make_plan",
      [plan_options_of, seqs_of](const PrefixCache& cache, const std::vector<std::uint64_t>& batch, int min_shared_rows,
                                 std::int64_t max_item_tokens, int queries_per_seq, int num_q_heads) {
        return make_plan(cache, seqs_of(batch), plan_options_of(cache, min_shared_rows, max_item_tokens, queries_per_seq, num_q_heads));
      },
      nb::arg("cache"), nb::arg("batch"), nb::arg("min_shared_rows"), nb::arg("max_item_tokens"), nb::arg("queries_per_seq"),
      nb::arg("num_q_heads"));
  m.def(
      "make_plan_into",
      [plan_options_of, seqs_of](Plan& into, const PrefixCache& cache, const std::vector<std::uint64_t>& batch, int min_shared_rows,
                                 std::int64_t max_item_tokens, int queries_per_seq, int num_q_heads) {
        make_plan(cache, seqs_of(batch), plan_options_of(cache, min_shared_rows, max_item_tokens, queries_per_seq, num_q_heads), into);
      },
      nb::arg("into"), nb::arg("cache"), nb::arg("batch"), nb::arg("min_shared_rows"), nb::arg("max_item_tokens"),
      nb::arg("queries_per_seq"), nb::arg("num_q_heads"));

  m.def(
      "cpu_attend",
      [](const PrefixCache& cache, const Plan& plan, int layer, const Array& q, const MutableArray& o, const std::optional<MutableArray>& lse,
         int num_q_heads, float scale, int num_threads) {
        nb::gil_scoped_release release;
        const ConstTensorView q_view = in(q, "q");
        const TensorView o_view = out(o, "out");
        const TensorView lse_view = optional_out(lse, "lse");
        cpu::attend(cache, plan, layer, q_view, o_view, lse_view, params_of(num_q_heads, scale, num_threads));
      },
      nb::arg("cache"), nb::arg("plan"), nb::arg("layer"), nb::arg("q"), nb::arg("out"), nb::arg("lse").none(), nb::arg("num_q_heads"),
      nb::arg("scale"), nb::arg("num_threads"));

  nb::class_<cuda::DevicePlan>(m, "DevicePlan")
      .def(
          "__init__",
          [](cuda::DevicePlan* self, const PrefixCache& cache, const Plan& plan, int num_q_heads, float scale) {
            new (self) cuda::DevicePlan(cache, plan, params_of(num_q_heads, scale, 0));
          },
          nb::arg("cache"), nb::arg("plan"), nb::arg("num_q_heads"), nb::arg("scale"))
      .def(
          "__init__",
          [](cuda::DevicePlan* self, const PrefixCache& cache, int num_q_heads, float scale) {
            new (self) cuda::DevicePlan(cache, params_of(num_q_heads, scale, 0));
          },
          nb::arg("cache"), nb::arg("num_q_heads"), nb::arg("scale"))
      .def(
          "update",
          [](cuda::DevicePlan& self, const PrefixCache& cache, const Plan& plan, std::uintptr_t stream) {
            self.update(cache, plan, reinterpret_cast<void*>(stream));
          },
          nb::arg("cache"), nb::arg("plan"), nb::arg("stream"));

  m.def(
      "cuda_attend",
      [](const PrefixCache& cache, const cuda::DevicePlan& plan, int layer, const Array& q, const MutableArray& o,
         const std::optional<MutableArray>& lse, std::uintptr_t stream) {
        const ConstTensorView q_view = in(q, "q");
        const TensorView o_view = out(o, "out");
        const TensorView lse_view = optional_out(lse, "lse");
        cuda::attend(cache, plan, layer, q_view, o_view, lse_view, reinterpret_cast<void*>(stream));
      },
      nb::arg("cache"), nb::arg("plan"), nb::arg("layer"), nb::arg("q"), nb::arg("out"), nb::arg("lse").none(), nb::arg("stream"));

  nb::class_<KvSegment>(m, "KvSegment")
      .def(
          "__init__",
          [](KvSegment* self, const Array& k, const Array& v, std::int64_t length, const std::vector<std::int32_t>& pages) {
            new (self) KvSegment(segment_of(k, v, length, pages));
          },
          nb::arg("k"), nb::arg("v"), nb::arg("length"), nb::arg("pages"))
      .def_prop_ro("length", [](const KvSegment& s) { return s.length; });

  nb::class_<Levels>(m, "Levels")
      .def(
          "__init__",
          [](Levels* self, const nb::list& levels, const nb::list& own, int queries_per_seq) {
            Levels built;
            built.queries_per_seq = queries_per_seq;
            for (nb::handle level : levels) {
              built.levels.emplace_back();
              for (nb::handle entry : nb::cast<nb::list>(level)) {
                const auto triple = nb::cast<nb::tuple>(entry);
                built.levels.back().push_back(
                    SharedSegment{nb::cast<const KvSegment&>(triple[0]), nb::cast<std::int64_t>(triple[1]), nb::cast<std::int64_t>(triple[2])});
              }
            }
            for (nb::handle segment : own) built.own.push_back(nb::cast<const KvSegment&>(segment));
            new (self) Levels(std::move(built));
          },
          nb::arg("levels"), nb::arg("own"), nb::arg("queries_per_seq"));

  m.def(
      "cpu_attend_levels",
      [](const Levels& levels, const Array& q, const MutableArray& o, const std::optional<MutableArray>& lse, float scale, int num_threads) {
        nb::gil_scoped_release release;
        const ConstTensorView q_view = in(q, "q");
        const TensorView o_view = out(o, "out");
        const TensorView lse_view = optional_out(lse, "lse");
        cpu::attend_levels(levels, q_view, o_view, lse_view, params_of(0, scale, num_threads));
      },
      nb::arg("levels"), nb::arg("q"), nb::arg("out"), nb::arg("lse").none(), nb::arg("scale"), nb::arg("num_threads"));

  nb::class_<cuda::LevelsPlan>(m, "LevelsPlan")
      .def(
          "__init__",
          [](cuda::LevelsPlan* self, const Levels& levels, const Array& q, float scale) {
            new (self) cuda::LevelsPlan(levels, in(q, "q"), params_of(0, scale, 0));
          },
          nb::arg("levels"), nb::arg("q"), nb::arg("scale"));

  m.def(
      "cuda_attend_levels",
      [](const cuda::LevelsPlan& plan, const Array& q, const MutableArray& o, const std::optional<MutableArray>& lse, std::uintptr_t stream) {
        const ConstTensorView q_view = in(q, "q");
        const TensorView o_view = out(o, "out");
        const TensorView lse_view = optional_out(lse, "lse");
        cuda::attend_levels(plan, q_view, o_view, lse_view, reinterpret_cast<void*>(stream));
      },
      nb::arg("plan"), nb::arg("q"), nb::arg("out"), nb::arg("lse").none(), nb::arg("stream"));

  m.def(
      "merge_state",
      [](const Array& a_o, const Array& a_lse, const Array& b_o, const Array& b_lse, const MutableArray& out_o, const MutableArray& out_lse,
         std::uintptr_t stream) {
        const ConstTensorView a_o_view = in(a_o, "a_o");
        const ConstTensorView a_lse_view = in(a_lse, "a_lse");
        const ConstTensorView b_o_view = in(b_o, "b_o");
        const ConstTensorView b_lse_view = in(b_lse, "b_lse");
        const TensorView out_o_view = out(out_o, "out_o");
        const TensorView out_lse_view = out(out_lse, "out_lse");
        merge_state(a_o_view, a_lse_view, b_o_view, b_lse_view, out_o_view, out_lse_view, reinterpret_cast<void*>(stream));
      },
      nb::arg("a_o"), nb::arg("a_lse"), nb::arg("b_o"), nb::arg("b_lse"), nb::arg("out_o"), nb::arg("out_lse"), nb::arg("stream"));
  m.def(
      "merge_state_in_place",
      [](const MutableArray& o, const MutableArray& lse, const Array& other_o, const Array& other_lse, std::uintptr_t stream) {
        const TensorView o_view = out(o, "o");
        const TensorView lse_view = out(lse, "lse");
        const ConstTensorView other_o_view = in(other_o, "other_o");
        const ConstTensorView other_lse_view = in(other_lse, "other_lse");
        merge_state_in_place(o_view, lse_view, other_o_view, other_lse_view, reinterpret_cast<void*>(stream));
      },
      nb::arg("o"), nb::arg("lse"), nb::arg("other_o"), nb::arg("other_lse"), nb::arg("stream"));
  m.def(
      "merge_states",
      [](const Array& o, const Array& lse, const MutableArray& out_o, const MutableArray& out_lse, std::uintptr_t stream) {
        const ConstTensorView o_view = in(o, "o");
        const ConstTensorView lse_view = in(lse, "lse");
        const TensorView out_o_view = out(out_o, "out_o");
        const TensorView out_lse_view = out(out_lse, "out_lse");
        merge_states(o_view, lse_view, out_o_view, out_lse_view, reinterpret_cast<void*>(stream));
      },
      nb::arg("o"), nb::arg("lse"), nb::arg("out_o"), nb::arg("out_lse"), nb::arg("stream"));

  // The paged front end: the Python layer turns kv_cache into its two pools and the page table
  // into int32 host arrays.
  nb::class_<cpu::PagedAttention>(m, "CpuPagedAttention")
      .def(
          "__init__", [](cpu::PagedAttention* self, int num_threads) { new (self) cpu::PagedAttention(params_of(0, 0.0f, num_threads)); },
          nb::arg("num_threads"))
      .def(
          "plan",
          [](cpu::PagedAttention& self, const IndexArray& kv_indptr, const IndexArray& kv_indices, const IndexArray& kv_last_page_len,
             const std::optional<IndexArray>& qo_indptr, int num_qo_heads, int num_kv_heads, int head_dim, int page_size, bool causal,
             float sm_scale) {
            self.plan(table_of(kv_indptr, kv_indices, kv_last_page_len, qo_indptr),
                      paged_shape_of(num_qo_heads, num_kv_heads, head_dim, page_size, causal, sm_scale));
          },
          nb::arg("kv_indptr"), nb::arg("kv_indices"), nb::arg("kv_last_page_len"), nb::arg("qo_indptr").none(), nb::arg("num_qo_heads"),
          nb::arg("num_kv_heads"), nb::arg("head_dim"), nb::arg("page_size"), nb::arg("causal"), nb::arg("sm_scale"))
      .def(
          "run",
          [](const cpu::PagedAttention& self, const Array& k, const Array& v, const std::string& layout, const Array& q, const MutableArray& o,
             const std::optional<MutableArray>& lse) {
            const PagedKv kv = paged_kv_of(k, v, layout_named(layout));
            const ConstTensorView q_view = in(q, "q");
            const TensorView o_view = out(o, "out");
            const TensorView lse_view = optional_out(lse, "lse");
            nb::gil_scoped_release release;
            self.run(kv, q_view, o_view, lse_view);
          },
          nb::arg("k"), nb::arg("v"), nb::arg("layout"), nb::arg("q"), nb::arg("out"), nb::arg("lse").none())
      .def("plan_fingerprint", &cpu::PagedAttention::plan_fingerprint);

  nb::class_<cuda::PagedAttention>(m, "CudaPagedAttention")
      .def(
          "__init__", [](cuda::PagedAttention* self, const std::string& layout) { new (self) cuda::PagedAttention(layout_named(layout)); },
          nb::arg("layout"))
      .def(
          "plan",
          [](cuda::PagedAttention& self, const IndexArray& kv_indptr, const IndexArray& kv_indices, const IndexArray& kv_last_page_len,
             const std::optional<IndexArray>& qo_indptr, int num_qo_heads, int num_kv_heads, int head_dim, int page_size, bool causal,
             float sm_scale, std::uintptr_t stream) {
            self.plan(table_of(kv_indptr, kv_indices, kv_last_page_len, qo_indptr),
                      paged_shape_of(num_qo_heads, num_kv_heads, head_dim, page_size, causal, sm_scale), reinterpret_cast<void*>(stream));
          },
          nb::arg("kv_indptr"), nb::arg("kv_indices"), nb::arg("kv_last_page_len"), nb::arg("qo_indptr").none(), nb::arg("num_qo_heads"),
          nb::arg("num_kv_heads"), nb::arg("head_dim"), nb::arg("page_size"), nb::arg("causal"), nb::arg("sm_scale"), nb::arg("stream"))
      .def(
          "run",
          [](cuda::PagedAttention& self, const Array& k, const Array& v, const std::string& layout, const Array& q, const MutableArray& o,
             const std::optional<MutableArray>& lse, std::uintptr_t stream) {
            const PagedKv kv = paged_kv_of(k, v, layout_named(layout));
            const ConstTensorView q_view = in(q, "q");
            const TensorView o_view = out(o, "out");
            const TensorView lse_view = optional_out(lse, "lse");
            self.run(kv, q_view, o_view, lse_view, reinterpret_cast<void*>(stream));
          },
          nb::arg("k"), nb::arg("v"), nb::arg("layout"), nb::arg("q"), nb::arg("out"), nb::arg("lse").none(), nb::arg("stream"))
      .def("plan_fingerprint", &cuda::PagedAttention::plan_fingerprint);
}
