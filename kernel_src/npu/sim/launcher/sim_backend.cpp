// libblitz_npu_sim.so's backend (kernel_src/cpu/cann_api/backend.h): the aclnn layer's checked
// call becomes a SimCall (the TilingContext's view of it), the NPU tiling plans it at
// GetWorkspaceSize (its rejections come back as ACLNN_ERR_PARAM_INVALID with its message), and
// the run launches the NPU kernel through the execution model (a model violation comes back as
// ACLNN_ERR_INNER with the model's message, through the stream's error path). The per-core
// counters of the last launch are exported as blitzNpuSimLastReport; the vector core count the
// tiling plans with is passed down by the caller (blitzNpuSimSetVectorCores).
//
// Counting only (blitzNpuSimCountNextCall): the calling thread's next GetWorkspaceSize plans a
// launch that checks and counts without computing (blitz_sim::LaunchMode). Its run always
// returns ACLNN_ERR_INNER saying so, even when every check passed, so no caller can take its
// untouched outputs for results; the counters are in blitzNpuSimLastReport (counting_only true).
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "common/op_refusals.h"
#include "launcher.h"
#include "sim_tensors.h"
#include "cann_api/backend.h"
#include "cann_api/errors.h"
#include "cann_api/exports.h"
#include "cann_api/handles.h"

namespace blitz::cpu::cann_api::backend {

using blitz_npu_sim::GmTensor;

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

namespace {

using blitz_npu_sim::SimCall;
using blitz_npu_sim::SimPlan;

struct SimState {
  SimCall call;
  SimPlan plan;
  blitz_sim::LaunchMode mode = blitz_sim::LaunchMode::kNumeric;
};

// Armed by blitzNpuSimCountNextCall, consumed by this thread's next prepare().
thread_local bool counting_armed = false;

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
std::string last_plan;  // the tiling fields that size its work, as JSON fields

// The tiling's blocking and workspace of a launch: what the counters can be checked against.
std::string plan_fields(const blitz_npu::BlitzTilingParams &p) {
  std::ostringstream s;
  s << "\"plan\":{\"block_q\":" << p.block_q << ",\"block_kv\":" << p.block_kv << ",\"group_rows\":" << p.group_rows
    << ",\"slice_rows\":" << p.slice_rows << ",\"kv_block_aligned\":" << p.kv_block_aligned
    << ",\"head_dim\":" << p.head_dim << ",\"dtype_size\":" << p.dtype_size << ",\"workers\":" << p.workers
    << ",\"tasks\":" << p.tasks << ",\"device_split\":" << p.device_split << ",\"scan_chunk\":" << p.scan_chunk
    << ",\"ub_total_bytes\":" << p.ub_total_bytes << ",\"ws_worker_bytes\":" << p.ws_worker_bytes << '}';
  return s.str();
}

}  // namespace

void prepare(OpPlan &plan, const OpArgs &args) {
  const bool counting = counting_armed;
  counting_armed = false;
  if (plan.empty) return;  // nothing to write: no tiling, no launch (as the NPU binding skips it)
  auto state = std::make_shared<SimState>();
  if (counting) state->mode = blitz_sim::LaunchMode::kCountingOnly;
  state->call = sim_call(args);
  state->plan = blitz_npu_sim::plan(state->call, blitz_npu_sim::core_info(blitz_npu_sim::thread_vector_cores()));
  require(state->plan.ok, ACLNN_ERR_PARAM_INVALID, "the NPU tiling rejects this call: " + state->plan.error);
  plan.workspace_bytes = state->plan.workspace_bytes;
  plan.backend_state = state;
}

TaskStatus run(const OpPlan &plan, void *workspace) {
  const auto *state = static_cast<const SimState *>(plan.backend_state.get());
  blitz_sim::LaunchReport report = blitz_npu_sim::launch(state->call, state->plan, workspace, state->mode);
  TaskStatus status;
  if (!report.ok) {
    status = {ACLNN_ERR_INNER, std::string(report.counting_only ? "counting-only launch: " : "") +
                                   "the NPU execution model stopped the kernel: " + report.error};
  } else if (report.counting_only) {
    status = {ACLNN_ERR_INNER, "counting-only launch (blitzNpuSimCountNextCall): every check passed and the counters "
                               "are in blitzNpuSimLastReport, but nothing was computed: attentionOut and softmaxLse "
                               "were not written"};
  }
  record_launch(std::move(report), state->plan.block_dim, plan_fields(state->plan.tiling.params));
  return status;
}

void record_launch(blitz_sim::LaunchReport report, uint32_t block_dim, std::string plan_fields) {
  std::lock_guard<std::mutex> lock(report_mutex);
  last_report = std::move(report);
  last_block_dim = block_dim;
  last_plan = std::move(plan_fields);
}

std::string describe() {
  return "NPU execution model (Ascend C kernel run on host threads; slow); vector cores " +
         std::to_string(blitz_npu_sim::thread_vector_cores());
}

// The CPU kernel's path and threads mean nothing to the NPU op: accepted and unused, as the
// binding passes every host device library the same settings.
void configure(const char * /*path*/, int /*num_threads*/) {}

const char *title() { return blitz::limits::kNpuTitle; }

}  // namespace blitz::cpu::cann_api::backend

using namespace blitz::cpu::cann_api;

// The last finished launch's report as JSON (blitz_sim::report_json: ok, error, counting_only,
// block_dim, what each counter means, and the counters per cube and per vector core). The text
// stays valid on this thread until its next call.
BLITZ_EXPORT aclError blitzNpuSimLastReport(const char **json) {
  return guarded("blitzNpuSimLastReport", [&] {
    require(json != nullptr, ACL_ERROR_INVALID_PARAM, "json is NULL");
    thread_local std::string text;
    {
      std::lock_guard<std::mutex> lock(backend::report_mutex);
      text = blitz_sim::report_json(backend::last_report, backend::last_block_dim, backend::last_plan);
    }
    *json = text.c_str();
    return ACL_SUCCESS;
  });
}

// The vector core count this thread's next calls plan with, as its caller wrote it (NULL or "":
// the default, 48; else 1..kMaxWorkers): the binding passes BLITZ_ACL_NPU_SIM_CORES at each
// call; a caller that never sets it gets the default, not the environment.
BLITZ_EXPORT aclError blitzNpuSimSetVectorCores(const char *vectorCores) {
  return guarded("blitzNpuSimSetVectorCores", [&] {
    uint32_t cores = 0;
    try {
      cores = blitz_npu_sim::parse_vector_cores(vectorCores);
    } catch (const std::invalid_argument &e) {
      fail(ACL_ERROR_INVALID_PARAM, e.what());
    }
    blitz_npu_sim::set_thread_vector_cores(cores);
    return ACL_SUCCESS;
  });
}

// armed != 0: this thread's next aclnnBlitzSparseAttentionGetWorkspaceSize plans a counting-only
// launch (see the top of this file); 0 disarms.
BLITZ_EXPORT aclError blitzNpuSimCountNextCall(int armed) {
  return guarded("blitzNpuSimCountNextCall", [&] {
    backend::counting_armed = armed != 0;
    return ACL_SUCCESS;
  });
}
