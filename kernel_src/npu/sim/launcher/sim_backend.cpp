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

blitz_npu::DataKind kind_of(aclDataType t) {
  switch (t) {
    case ACL_FLOAT16: return blitz_npu::DataKind::kFloat16;
    case ACL_BF16: return blitz_npu::DataKind::kBFloat16;
    case ACL_BOOL: return blitz_npu::DataKind::kBool;
    case ACL_INT8: return blitz_npu::DataKind::kInt8;
    case ACL_UINT8: return blitz_npu::DataKind::kUint8;
    default: return blitz_npu::DataKind::kOther;
  }
}

blitz_npu::TensorValues tensor_values(const aclTensor *t) {
  blitz_npu::TensorValues v;
  if (t == nullptr) return v;
  v.assign(kind_of(t->dtype), t->view_dims.size(), [t](int i) { return t->view_dims[size_t(i)]; });
  return v;
}

blitz_npu::IntListValues int_list(const aclIntArray *a) {
  blitz_npu::IntListValues v;
  if (a == nullptr) return v;
  v.values = a->values.data();
  v.count = int64_t(a->values.size());
  return v;
}

// The TilingContext's view of the call as the glue (blitz_sparse_attention_tiling.cpp) builds
// it, through the same request_from_values; plus where the tensors live.
SimCall sim_call(const OpArgs &a) {
  blitz_npu::CallValues v;
  v.query = tensor_values(a.query);
  v.key = tensor_values(a.key);
  v.value = tensor_values(a.value);
  v.sabi = tensor_values(a.sabi);
  v.atten_mask = tensor_values(a.atten_mask);
  v.has_pse = a.pse_shift != nullptr;
  v.has_quant = a.deq_scale1 || a.quant_scale1 || a.deq_scale2 || a.quant_scale2 || a.quant_offset2;
  v.has_lse_output = a.softmax_lse != nullptr;
  v.num_heads = a.num_heads;
  v.scale_value = static_cast<float>(a.scale_value);  // CANN stores scale_value as a float attribute
  v.input_layout = a.input_layout;
  v.num_key_value_heads = a.num_key_value_heads;
  v.sparse_mode = a.sparse_mode;
  v.pre_tokens = a.pre_tokens;
  v.next_tokens = a.next_tokens;
  v.inner_precise = a.inner_precise;
  v.softmax_lse_flag = a.softmax_lse_flag;
  v.block_shape = int_list(a.block_shape);
  v.actual_seq_lengths = int_list(a.actual_seq_lengths);
  v.actual_seq_lengths_kv = int_list(a.actual_seq_lengths_kv);

  SimCall c;
  std::string error;
  require(blitz_npu::request_from_values(v, &c.request, &error), ACLNN_ERR_PARAM_INVALID,
          "the NPU tiling rejects this call: " + error);
  // The host copies of the value-depend inputs outlive the caller's arrays (plan() points the
  // request at them).
  if (a.actual_seq_lengths != nullptr) c.actual_q = a.actual_seq_lengths->values;
  if (a.actual_seq_lengths_kv != nullptr) c.actual_kv = a.actual_seq_lengths_kv->values;

  c.bf16 = v.query.kind == blitz_npu::DataKind::kBFloat16;
  if (!c.request.dtype_supported) return c;  // the tiling rejects it; no tensor is read
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
