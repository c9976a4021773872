// Tiling of BlitzSelectBlocks on CANN: reads the TilingContext (shapes, dtypes, attributes, host
// values of the value-depend actual lengths, platform) into a SelectRequest, lets select_plan.cpp
// do the arithmetic and checks, then adds what only CANN's APIs compute: the logits matmul's
// tiling, SoftmaxFlashV2's tiling and scratch size, and the Matmul server's system workspace.
// Type-checked against the public headers (tools/check_host.sh); never built with CANN here.
#include <cstdio>
#include <cstring>

#include "register/op_impl_registry.h"
#include "tiling/platform/platform_ascendc.h"
#include "tiling/tiling_api.h"

#include "../op_kernel/select_tiling_data.h"
#include "blitz_select_blocks_indices.h"
#include "select_plan.h"
#include "tiling_glue.h"

namespace optiling {
namespace {

// Inputs and attributes by index: generated from the aclnn_gen spec with the op definition.
using namespace blitz_select_op;
using blitz_npu::glue::report;

void copy_dims(const gert::StorageShape *shape, int64_t *dims, int *rank)
{
  *rank = 0;
  if (shape == nullptr) return;
  const gert::Shape &s = shape->GetStorageShape();
  const size_t n = s.GetDimNum();
  *rank = static_cast<int>(n > size_t(blitz_npu::kMaxRank) ? size_t(blitz_npu::kMaxRank) : n);
  for (int i = 0; i < *rank; ++i) dims[i] = s.GetDim(i);
}

// GetSoftMaxFlashV2MinTmpSize for one float score row without update.
uint32_t softmax_tmp_bytes(uint32_t rows, uint32_t cols, void * /*user*/)
{
  const ge::Shape shape({static_cast<int64_t>(rows), static_cast<int64_t>(cols)});
  return AscendC::GetSoftMaxFlashV2MinTmpSize(shape, sizeof(float), sizeof(float), /*isUpdate=*/false);
}

// logits [query units, key units] = pooled Q units x pooled K units^T (K units stored [k_units_max, cell_dim]:
// D, or stride x D for antidiagonal cell vectors), float.
bool tile_scores(const platform_ascendc::PlatformAscendC &platform, const blitz_npu::SelectTilingParams &p,
                 AscendC::tiling::TCubeTiling *out)
{
  matmul_tiling::MatmulApiTiling mm(platform);
  mm.SetAType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT, false);
  mm.SetBType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT, true);
  mm.SetCType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND_ALIGN, matmul_tiling::DataType::DT_FLOAT);
  mm.SetBiasType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT);
  const int32_t cols = static_cast<int32_t>(p.k_units_max);
  const int32_t k = static_cast<int32_t>(p.cell_dim);
  mm.SetShape(static_cast<int32_t>(p.q_units_max), cols, k);
  mm.SetOrgShape(static_cast<int32_t>(p.q_units_max), cols, k, k);
  mm.SetBias(false);
  mm.SetBufferSpace(-1, -1, -1);
  return mm.GetTiling(*out) != -1;
}

ge::graphStatus TilingBlitzSelectBlocks(gert::TilingContext *context)
{
  blitz_npu::SelectRequest r;
  copy_dims(context->GetInputShape(kQuery), r.q_dims, &r.q_rank);
  copy_dims(context->GetInputShape(kKey), r.k_dims, &r.k_rank);
  const ge::DataType dq = context->GetInputDesc(kQuery)->GetDataType();
  const ge::DataType dk = context->GetInputDesc(kKey)->GetDataType();
  r.dtype_supported = dq == dk && blitz_npu::npu_qkv_dtype(blitz_npu::glue::data_kind(dq));
  r.dtype_size = 2;

  const gert::RuntimeAttrs *attrs = context->GetAttrs();
  if (attrs == nullptr) return ge::GRAPH_FAILED;
  const int64_t *numHeads = attrs->GetAttrPointer<int64_t>(kNumHeads);
  const int64_t *numKvHeads = attrs->GetAttrPointer<int64_t>(kNumKeyValueHeads);
  const char *layout = attrs->GetAttrPointer<char>(kInputLayout);
  const float *scale = attrs->GetAttrPointer<float>(kScaleValue);
  const char *method = attrs->GetAttrPointer<char>(kMethod);
  const float *mass = attrs->GetAttrPointer<float>(kMass);
  const int64_t *topK = attrs->GetAttrPointer<int64_t>(kTopK);
  const int64_t *anchorFirst = attrs->GetAttrPointer<int64_t>(kAnchorFirst);
  const bool *anchorDiagonal = attrs->GetAttrPointer<bool>(kAnchorDiagonal);
  const bool *anchorLast = attrs->GetAttrPointer<bool>(kAnchorLast);
  const bool *share = attrs->GetAttrPointer<bool>(kShareKvGroups);
  const float *refine = attrs->GetAttrPointer<float>(kRefineBelow);
  const int64_t *subBlock = attrs->GetAttrPointer<int64_t>(kSubBlock);
  const int64_t *stride = attrs->GetAttrPointer<int64_t>(kStride);
  const int64_t *sparseMode = attrs->GetAttrPointer<int64_t>(kSparseMode);
  if (numHeads == nullptr || numKvHeads == nullptr || layout == nullptr || scale == nullptr || method == nullptr ||
      mass == nullptr || topK == nullptr || anchorFirst == nullptr || anchorDiagonal == nullptr ||
      anchorLast == nullptr || share == nullptr || refine == nullptr || subBlock == nullptr || stride == nullptr ||
      sparseMode == nullptr) {
    report(context, "missing attribute");
    return ge::GRAPH_FAILED;
  }
  r.num_heads = *numHeads;
  r.num_kv_heads = *numKvHeads;
  r.layout = layout;
  r.scale_value = *scale;
  r.method = method;
  r.mass = *mass;
  r.top_k = *topK;
  r.anchor_first = *anchorFirst;
  r.anchor_diagonal = *anchorDiagonal;
  r.anchor_last = *anchorLast;
  r.share_kv_groups = *share;
  r.refine_below = *refine;
  r.sub_block = *subBlock;
  r.stride = *stride;
  r.sparse_mode = *sparseMode;  // the plan refuses a mask the kernel does not see yet
  // blockShape: NULL or empty means (128, 128), as the attention reads it (the plan's defaults).
  const gert::TypedContinuousVector<int64_t> *blockShape = attrs->GetListInt(kBlockShape);
  if (blockShape != nullptr && blockShape->GetSize() != 0) {
    if (blockShape->GetSize() != 2) {
      report(context, "blockShape must hold (bq, bkv)");
      return ge::GRAPH_FAILED;
    }
    r.block_q = blockShape->GetData()[0];
    r.block_kv = blockShape->GetData()[1];
  }
  // Value-depend inputs: the framework copied them to the host for tiling.
  const gert::Tensor *aq = context->GetOptionalInputTensor(kActualSeqLengths);
  const gert::Tensor *akv = context->GetOptionalInputTensor(kActualSeqLengthsKv);
  if (aq != nullptr) r.actual_q = aq->GetData<int64_t>(), r.actual_q_count = aq->GetShapeSize();
  if (akv != nullptr) r.actual_kv = akv->GetData<int64_t>(), r.actual_kv_count = akv->GetShapeSize();

  platform_ascendc::PlatformAscendC platform(context->GetPlatformInfo());
  r.cores = blitz_npu::glue::read_cores(platform);
  r.softmax_tmp_bytes = softmax_tmp_bytes;

  const blitz_npu::SelectPlan plan = blitz_npu::plan_select(r);
  if (!plan.ok) {
    report(context, plan.error);
    return ge::GRAPH_FAILED;
  }
  BlitzSelectBlocksTilingData *td = context->GetTilingData<BlitzSelectBlocksTilingData>();
  if (td == nullptr) return ge::GRAPH_FAILED;
  std::memset(td, 0, sizeof(*td));
  td->params = plan.params;
  const blitz_npu::SelectTilingParams &p = td->params;
  if (!tile_scores(platform, p, &td->scores)) {
    report(context, "the Matmul tiling API found no tiling for group " + std::to_string(p.group) + ", " +
                        std::to_string(p.cols) + " key blocks, K " + std::to_string(p.cell_dim));
    return ge::GRAPH_FAILED;
  }
  const ge::Shape row({1, p.k_units_aligned});
  AscendC::SoftMaxFlashV2TilingFunc(row, sizeof(float), sizeof(float), p.ub_softmax_tmp_bytes, td->softmax,
                                    /*isUpdate=*/false);
  context->GetRawTilingData()->SetDataSize(sizeof(BlitzSelectBlocksTilingData));
  context->SetBlockDim(p.cube_cores);  // KERNEL_TYPE_MIX_AIC_1_2: one cube + two vector cores each
  context->SetTilingKey(0);
  size_t *workspace = context->GetWorkspaceSizes(1);
  if (workspace == nullptr) return ge::GRAPH_FAILED;
  workspace[0] = static_cast<size_t>(platform.GetLibApiWorkSpaceSize()) + static_cast<size_t>(p.ws_user_bytes);
  return ge::GRAPH_SUCCESS;
}

struct SelectCompileInfo {};
ge::graphStatus TilingParseSelect(gert::TilingParseContext * /*context*/) { return ge::GRAPH_SUCCESS; }

}  // namespace

IMPL_OP_OPTILING(BlitzSelectBlocks)
    .TilingInputsDataDependency({kActualSeqLengths, kActualSeqLengthsKv})
    .Tiling(TilingBlitzSelectBlocks)
    .TilingParse<SelectCompileInfo>(TilingParseSelect);

}  // namespace optiling
