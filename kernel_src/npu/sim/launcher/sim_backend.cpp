// libblitz_npu_sim.so's backend (kernel_src/cpu/runtime/backend.h): the aclnn layer's checked
// call becomes a SimCall (the TilingContext's view of it), the NPU tiling plans it at
// GetWorkspaceSize (its rejections come back as ACLNN_ERR_PARAM_INVALID with its message), and
// the run launches the NPU kernel through the execution model (a model violation comes back as
// ACLNN_ERR_INNER with the model's message, through the stream's error path). The per-core
// counters of the last launch are exported as blitzNpuSimLastReport.
#include <mutex>
#include <sstream>

#include "launcher.h"
#include "runtime/backend.h"
#include "runtime/errors.h"
#include "runtime/exports.h"
#include "runtime/handles.h"

namespace blitz::cpu::runtime::backend {
namespace {

using blitz_npu_sim::GmTensor;
using blitz_npu_sim::SimCall;
using blitz_npu_sim::SimPlan;

struct SimState {
  SimCall call;
  SimPlan plan;
};

size_t element_bytes(aclDataType t) {
  switch (t) {
    case ACL_FLOAT: return 4;
    case ACL_FLOAT16: case ACL_BF16: case ACL_INT16: case ACL_UINT16: return 2;
    case ACL_INT64: case ACL_UINT64: case ACL_DOUBLE: return 8;
    case ACL_INT32: case ACL_UINT32: return 4;
    default: return 1;
  }
}

// The NPU reads every tensor as dense row-major storage (its strides come from the layout),
// so a view with other strides would be read wrongly there; the binding passes contiguous data.
GmTensor dense(const aclTensor *t, const char *name) {
  if (t == nullptr) return {};
  for (int64_t d : t->view_dims) {
    if (d == 0) return {t->data, 0};  // no element: nothing to read or register
  }
  int64_t expected = 1, numel = 1;
  for (size_t i = t->view_dims.size(); i-- > 0;) {
    require(t->view_dims[i] <= 1 || t->strides[i] == expected, ACLNN_ERR_PARAM_INVALID,
            std::string(name) + " is not contiguous; the NPU kernel reads dense row-major tensors");
    expected *= t->view_dims[i];
    numel *= t->view_dims[i];
  }
  return {static_cast<const uint8_t *>(t->data) + t->offset * element_bytes(t->dtype),
          size_t(numel) * element_bytes(t->dtype)};
}

void copy_dims(const aclTensor *t, int64_t *dims, int *rank) {
  *rank = 0;
  if (t == nullptr) return;
  const size_t n = std::min<size_t>(t->view_dims.size(), blitz_npu::kMaxRank);
  for (size_t i = 0; i < n; ++i) dims[i] = t->view_dims[i];
  *rank = int(n);
}

// The TilingContext's view of the call, field by field as blitz_sparse_attention_tiling.cpp
// reads it (attributes as CANN stores them: scale_value is a float attribute).
SimCall sim_call(const OpArgs &a) {
  SimCall c;
  blitz_npu::TilingRequest &r = c.request;
  copy_dims(a.query, r.q_dims, &r.q_rank);
  copy_dims(a.key, r.k_dims, &r.k_rank);
  copy_dims(a.value, r.v_dims, &r.v_rank);
  copy_dims(a.sabi, r.sabi_dims, &r.sabi_rank);
  const aclDataType dt = a.query->dtype;
  r.dtype_supported = (dt == ACL_FLOAT16 || dt == ACL_BF16) && a.key->dtype == dt && a.value->dtype == dt;
  r.dtype_size = r.dtype_supported ? 2 : 4;
  r.has_pse = a.pse_shift != nullptr;
  r.has_quant = a.deq_scale1 || a.quant_scale1 || a.deq_scale2 || a.quant_scale2 || a.quant_offset2;
  copy_dims(a.atten_mask, r.mask_dims, &r.mask_rank);
  if (a.atten_mask != nullptr) {
    const aclDataType mt = a.atten_mask->dtype;
    r.mask_dtype_supported = mt == ACL_BOOL || mt == ACL_INT8 || mt == ACL_UINT8;
  }
  r.num_heads = a.num_heads;
  r.scale_value = static_cast<float>(a.scale_value);
  r.layout = a.input_layout;
  r.num_kv_heads = a.num_key_value_heads;
  r.sparse_mode = a.sparse_mode;
  r.pre_tokens = a.pre_tokens;
  r.next_tokens = a.next_tokens;
  r.inner_precise = a.inner_precise;
  r.return_lse = a.softmax_lse_flag;
  if (a.block_shape != nullptr && a.block_shape->values.size() == 2) {
    r.block_q = a.block_shape->values[0];
    r.block_kv = a.block_shape->values[1];
  }
  if (a.actual_seq_lengths != nullptr) c.actual_q = a.actual_seq_lengths->values;
  if (a.actual_seq_lengths_kv != nullptr) c.actual_kv = a.actual_seq_lengths_kv->values;

  c.bf16 = dt == ACL_BF16;
  if (!r.dtype_supported) return c;  // the tiling rejects it; no tensor is read
  c.query = dense(a.query, "query");
  c.key = dense(a.key, "key");
  c.value = dense(a.value, "value");
  c.atten_mask = dense(a.atten_mask, "attenMask");
  c.sabi = dense(a.sabi, "sabi");
  c.attention_out = dense(a.attention_out, "attentionOut");
  if (a.softmax_lse_flag) c.softmax_lse = dense(a.softmax_lse, "softmaxLse");
  return c;
}

std::mutex report_mutex;
blitz_sim::LaunchReport last_report;  // of the last finished launch (guarded by report_mutex)
uint32_t last_block_dim = 0;

}  // namespace

void prepare(Plan &plan, const OpArgs &args) {
  if (plan.empty) return;  // nothing to write: no tiling, no launch (as the NPU binding skips it)
  auto state = std::make_shared<SimState>();
  state->call = sim_call(args);
  uint32_t vector_cores = 0;
  try {
    vector_cores = blitz_npu_sim::vector_cores_from_env();
  } catch (const std::invalid_argument &e) {
    fail(ACLNN_ERR_PARAM_INVALID, e.what());
  }
  state->plan = blitz_npu_sim::plan(state->call, blitz_npu_sim::core_info(vector_cores));
  require(state->plan.ok, ACLNN_ERR_PARAM_INVALID, "the NPU tiling rejects this call: " + state->plan.error);
  plan.workspace_bytes = state->plan.workspace_bytes;
  plan.backend_state = state;
}

TaskStatus run(const Plan &plan, void *workspace) {
  const auto *state = static_cast<const SimState *>(plan.backend_state.get());
  blitz_sim::LaunchReport report = blitz_npu_sim::launch(state->call, state->plan, workspace);
  TaskStatus status;
  if (!report.ok) status = {ACLNN_ERR_INNER, "the NPU execution model stopped the kernel: " + report.error};
  std::lock_guard<std::mutex> lock(report_mutex);
  last_report = std::move(report);
  last_block_dim = state->plan.block_dim;
  return status;
}

std::string describe() {
  std::string cores;
  try {
    cores = std::to_string(blitz_npu_sim::vector_cores_from_env());
  } catch (const std::invalid_argument &e) {
    cores = e.what();
  }
  return "NPU execution model (Ascend C kernel run on host threads; slow); vector cores " + cores +
         " (BLITZ_ACL_NPU_SIM_CORES)";
}

}  // namespace blitz::cpu::runtime::backend

using namespace blitz::cpu::runtime;

// The per-core counters of the last finished launch as JSON:
// {"ok": bool, "block_dim": n, "cube": [{counter: value, ...}, ...], "vector": [...]}.
// The text stays valid on this thread until its next call.
BLITZ_EXPORT aclError blitzNpuSimLastReport(const char **json) {
  return guarded("blitzNpuSimLastReport", [&] {
    require(json != nullptr, ACL_ERROR_INVALID_PARAM, "json is NULL");
    std::ostringstream s;
    auto cores = [&s](const std::vector<blitz_sim::CoreCounters> &list) {
      s << '[';
      for (size_t i = 0; i < list.size(); ++i) {
        const blitz_sim::CoreCounters &c = list[i];
        s << (i ? "," : "") << "{\"gm_to_ub_bytes\":" << c.gm_to_ub_bytes << ",\"ub_to_gm_bytes\":" << c.ub_to_gm_bytes
          << ",\"gm_to_l1_bytes\":" << c.gm_to_l1_bytes << ",\"l0c_to_gm_bytes\":" << c.l0c_to_gm_bytes
          << ",\"cube_flops\":" << c.cube_flops << ",\"vector_elem_ops\":" << c.vector_elem_ops << '}';
      }
      s << ']';
    };
    {
      std::lock_guard<std::mutex> lock(backend::report_mutex);
      s << "{\"ok\":" << (backend::last_report.ok ? "true" : "false") << ",\"block_dim\":" << backend::last_block_dim
        << ",\"cube\":";
      cores(backend::last_report.cube);
      s << ",\"vector\":";
      cores(backend::last_report.vector);
      s << '}';
    }
    thread_local std::string text;
    text = s.str();
    *json = text.c_str();
    return ACL_SUCCESS;
  });
}
