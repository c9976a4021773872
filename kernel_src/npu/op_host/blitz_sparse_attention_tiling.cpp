// Tiling of BlitzSparseAttention on CANN: reads the TilingContext
// (shapes, dtypes, attributes, host values of the value-depend inputs, platform) into a
// TilingRequest, lets tiling_plan.cpp do all the arithmetic and checks, then adds what only
// CANN's APIs can compute: the Matmul tilings of Q*K^T and P*V, SoftmaxFlashV2's tiling and
// its scratch size, and the system workspace of the Matmul server.
#include <cstdio>
#include <cstring>

#include "register/op_impl_registry.h"
#include "tiling/platform/platform_ascendc.h"
#include "tiling/tiling_api.h"

#include "../op_kernel/blitz_tiling_data.h"
#include "blitz_sparse_attention_indices.h"
#include "tiling_plan.h"
#include "tiling_glue.h"

namespace optiling {
namespace {

// Inputs and attributes by index: generated from the aclnn_gen spec with the op definition.
using namespace blitz_op;
using blitz_npu::glue::report;

// sabi is read on the host only when the op definition marks it value-depend; otherwise the
// tensor's data is device memory and the kernel weighs the tasks itself (kDeviceSplitScan
// below). Value depend stays off on purpose: per
// asc-devkit docs/zh/api/Utils-API/原型注册与管理/OpParamDef/ValueDepend.md, ValueDepend on an
// integer input makes opbuild generate aclnnBlitzSparseAttentionGetWorkspaceSize with
// `const aclIntArray *sabi` (plus a separate ...TensorGetWorkspaceSize taking the tensor) and
// requires an extra DT_INT64 dtype column, which would break the C ABI's `const aclTensor *sabi`
// (DESIGN.md) and hand the kernel int64 indices. The weighted path is ready and unit-tested.
constexpr bool kSabiValueDepend = false;
// Without sabi's values the kernel weighs the tasks itself: every vector core streams sabi at
// the start and runs common's split (device_split, kernel_src/common/split_scan.h). false
// falls back to round-robin task order (interleave) without reading sabi up front.
constexpr bool kDeviceSplitScan = true;

// One input as plain values: its dtype and storage dims (absent: kAbsent, no dims).
blitz_npu::TensorValues tensor_values(const gert::StorageShape *shape, ge::DataType dtype)
{
  blitz_npu::TensorValues t;
  if (shape == nullptr) return t;
  const gert::Shape &s = shape->GetStorageShape();
  t.assign(blitz_npu::glue::data_kind(dtype), s.GetDimNum(), [&s](int i) { return s.GetDim(i); });
  return t;
}

ge::DataType optional_dtype(const gert::CompileTimeTensorDesc *desc)
{
  return desc != nullptr ? desc->GetDataType() : ge::DT_UNDEFINED;
}

// A value-depend int64 input's host copy (the framework copied it for the tiling).
blitz_npu::IntListValues host_ints(const gert::Tensor *t)
{
  blitz_npu::IntListValues v;
  if (t == nullptr) return v;
  v.values = t->GetData<int64_t>();
  v.count = t->GetShapeSize();
  return v;
}

matmul_tiling::DataType matmul_dtype(ge::DataType t)
{
  return t == ge::DT_BF16 ? matmul_tiling::DataType::DT_BF16 : matmul_tiling::DataType::DT_FLOAT16;
}

// GetSoftMaxFlashV2MinTmpSize for a float [rows, cols] slice with update (the larger case).
uint32_t softmax_tmp_bytes(uint32_t rows, uint32_t cols, void * /*user*/)
{
  const ge::Shape shape({static_cast<int64_t>(rows), static_cast<int64_t>(cols)});
  return AscendC::GetSoftMaxFlashV2MinTmpSize(shape, sizeof(float), sizeof(float), /*isUpdate=*/true);
}

// Q*K^T: A = Q rows [group, D], B = K^T (K stored [bkv, D], read transposed), C = scores float.
bool tile_qk(const platform_ascendc::PlatformAscendC &platform, ge::DataType dt,
             const blitz_npu::BlitzTilingParams &p, AscendC::tiling::TCubeTiling *out)
{
  matmul_tiling::MatmulApiTiling mm(platform);
  mm.SetAType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_dtype(dt), false);
  mm.SetBType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_dtype(dt), true);
  mm.SetCType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND_ALIGN, matmul_tiling::DataType::DT_FLOAT);
  mm.SetBiasType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT);
  mm.SetShape(static_cast<int32_t>(p.group_rows), static_cast<int32_t>(p.block_kv), static_cast<int32_t>(p.head_dim));
  mm.SetOrgShape(static_cast<int32_t>(p.group_rows), static_cast<int32_t>(p.kv_block_aligned),
                 static_cast<int32_t>(p.q.s), static_cast<int32_t>(p.k.s));
  mm.SetBias(false);
  mm.SetBufferSpace(-1, -1, -1);  // the cube core runs only these matmuls: all of L1 / L0C
  return mm.GetTiling(*out) != -1;
}

// P*V: A = P [group, bkv] (probability buffer), B = V [bkv, D], C = float [group, D].
bool tile_pv(const platform_ascendc::PlatformAscendC &platform, ge::DataType dt,
             const blitz_npu::BlitzTilingParams &p, AscendC::tiling::TCubeTiling *out)
{
  matmul_tiling::MatmulApiTiling mm(platform);
  mm.SetAType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_dtype(dt), false);
  mm.SetBType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_dtype(dt), false);
  mm.SetCType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT);
  mm.SetBiasType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT);
  mm.SetShape(static_cast<int32_t>(p.group_rows), static_cast<int32_t>(p.head_dim), static_cast<int32_t>(p.block_kv));
  mm.SetOrgShape(static_cast<int32_t>(p.group_rows), static_cast<int32_t>(p.v.s),
                 static_cast<int32_t>(p.kv_block_aligned), static_cast<int32_t>(p.seq_kv));
  mm.SetBias(false);
  mm.SetBufferSpace(-1, -1, -1);
  return mm.GetTiling(*out) != -1;
}

ge::graphStatus TilingBlitzSparseAttention(gert::TilingContext *context)
{
  // The context's view of the call as plain values; tiling_plan's request_from_values applies
  // the rules (the npu_sim launcher fills the same values from the runtime's arguments).
  blitz_npu::CallValues v;
  const ge::DataType dt = context->GetInputDesc(kQuery)->GetDataType();
  v.query = tensor_values(context->GetInputShape(kQuery), dt);
  v.key = tensor_values(context->GetInputShape(kKey), context->GetInputDesc(kKey)->GetDataType());
  v.value = tensor_values(context->GetInputShape(kValue), context->GetInputDesc(kValue)->GetDataType());
  v.sabi = tensor_values(context->GetOptionalInputShape(kSabi), optional_dtype(context->GetOptionalInputDesc(kSabi)));
  v.atten_mask = tensor_values(context->GetOptionalInputShape(kAttenMask),
                               optional_dtype(context->GetOptionalInputDesc(kAttenMask)));
  v.has_pse = context->GetOptionalInputShape(kPseShift) != nullptr;
  v.has_quant = context->GetOptionalInputShape(kDeqScale1) != nullptr ||
                context->GetOptionalInputShape(kQuantScale1) != nullptr ||
                context->GetOptionalInputShape(kDeqScale2) != nullptr ||
                context->GetOptionalInputShape(kQuantScale2) != nullptr ||
                context->GetOptionalInputShape(kQuantOffset2) != nullptr;
  v.has_lse_output = context->GetOutputShape(kSoftmaxLse) != nullptr;

  const gert::RuntimeAttrs *attrs = context->GetAttrs();
  if (attrs == nullptr) return ge::GRAPH_FAILED;
  const int64_t *numHeads = attrs->GetAttrPointer<int64_t>(kNumHeads);
  const float *scale = attrs->GetAttrPointer<float>(kScaleValue);
  const char *layout = attrs->GetAttrPointer<char>(kInputLayout);
  const int64_t *numKvHeads = attrs->GetAttrPointer<int64_t>(kNumKeyValueHeads);
  const int64_t *sparseMode = attrs->GetAttrPointer<int64_t>(kSparseMode);
  const int64_t *preTokens = attrs->GetAttrPointer<int64_t>(kPreTokens);
  const int64_t *nextTokens = attrs->GetAttrPointer<int64_t>(kNextTokens);
  const int64_t *innerPrecise = attrs->GetAttrPointer<int64_t>(kInnerPrecise);
  if (numHeads == nullptr || scale == nullptr || layout == nullptr || numKvHeads == nullptr ||
      sparseMode == nullptr || innerPrecise == nullptr || preTokens == nullptr || nextTokens == nullptr) {
    report(context, "missing attribute");
    return ge::GRAPH_FAILED;
  }
  v.num_heads = *numHeads;
  v.scale_value = *scale;
  v.input_layout = layout;
  v.num_key_value_heads = *numKvHeads;
  v.sparse_mode = *sparseMode;
  v.pre_tokens = *preTokens;
  v.next_tokens = *nextTokens;
  v.inner_precise = *innerPrecise;
  const bool *lseFlag = attrs->GetAttrPointer<bool>(kSoftmaxLseFlag);
  v.softmax_lse_flag = lseFlag != nullptr && *lseFlag;
  const gert::TypedContinuousVector<int64_t> *blockShape = attrs->GetListInt(kBlockShape);
  if (blockShape != nullptr) {
    v.block_shape.values = blockShape->GetData();
    v.block_shape.count = static_cast<int64_t>(blockShape->GetSize());
  }
  // Value-depend inputs: the framework copied them to the host for tiling.
  v.actual_seq_lengths = host_ints(context->GetOptionalInputTensor(kActualSeqLengths));
  v.actual_seq_lengths_kv = host_ints(context->GetOptionalInputTensor(kActualSeqLengthsKv));
  if (kSabiValueDepend && v.sabi.kind != blitz_npu::DataKind::kAbsent) {
    const gert::Tensor *sabi = context->GetOptionalInputTensor(kSabi);
    v.sabi_values = sabi != nullptr ? sabi->GetData<uint16_t>() : nullptr;
  }

  blitz_npu::TilingRequest r;
  std::string error;
  if (!blitz_npu::request_from_values(v, &r, &error)) {
    report(context, error);
    return ge::GRAPH_FAILED;
  }
  r.device_split_scan = kDeviceSplitScan;

  platform_ascendc::PlatformAscendC platform(context->GetPlatformInfo());
  r.cores = blitz_npu::glue::read_cores(platform);
  r.softmax_tmp_bytes = softmax_tmp_bytes;

  const blitz_npu::TilingPlan plan = blitz_npu::plan_tiling(r);
  if (!plan.ok) {
    report(context, plan.error);
    return ge::GRAPH_FAILED;
  }

  BlitzSparseAttentionTilingData *td = context->GetTilingData<BlitzSparseAttentionTilingData>();
  if (td == nullptr) return ge::GRAPH_FAILED;
  std::memset(td, 0, sizeof(*td));
  td->params = plan.params;
  const blitz_npu::BlitzTilingParams &p = td->params;
  if (!tile_qk(platform, dt, p, &td->qk) || !tile_pv(platform, dt, p, &td->pv)) {
    report(context, "the Matmul tiling API found no tiling for group_rows " + std::to_string(p.group_rows) +
                        ", bkv " + std::to_string(p.block_kv) + ", head_dim " + std::to_string(p.head_dim));
    return ge::GRAPH_FAILED;
  }
  const ge::Shape slice({p.slice_rows, p.kv_block_aligned});
  AscendC::SoftMaxFlashV2TilingFunc(slice, sizeof(float), sizeof(float), p.ub_softmax_tmp_bytes, td->softmax,
                                    /*isUpdate=*/true);
  context->GetRawTilingData()->SetDataSize(sizeof(BlitzSparseAttentionTilingData));

  // One launched block = one cube core + two vector cores (KERNEL_TYPE_MIX_AIC_1_2).
  context->SetBlockDim(p.cube_cores);
  context->SetTilingKey(0);
  size_t *workspace = context->GetWorkspaceSizes(1);
  if (workspace == nullptr) return ge::GRAPH_FAILED;
  workspace[0] = static_cast<size_t>(platform.GetLibApiWorkSpaceSize()) + static_cast<size_t>(p.ws_user_bytes);
  return ge::GRAPH_SUCCESS;
}


struct BlitzCompileInfo {};
ge::graphStatus TilingParseBlitz(gert::TilingParseContext * /*context*/) { return ge::GRAPH_SUCCESS; }

}  // namespace

IMPL_OP_OPTILING(BlitzSparseAttention)
    .TilingInputsDataDependency({kActualSeqLengths, kActualSeqLengthsKv})
    .Tiling(TilingBlitzSparseAttention)
    .TilingParse<BlitzCompileInfo>(TilingParseBlitz);

}  // namespace optiling
