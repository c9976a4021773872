// InferShape / InferDataType of BlitzSparseAttention (CANN's gert::InferShapeContext,
// register/op_impl_registry.h). attention_out has query's shape, except that BNSD_BSND writes
// [B, S, N, D]; softmax_lse (an OPTIONAL output) is [B, N, Sq] float32 ([N, T] with TND) when
// softmax_lse_flag is set and empty ([0]) otherwise, as the original returns it.
#include "register/op_impl_registry.h"

#include "blitz_sparse_attention_indices.h"
#include "tiling_plan.h"

namespace ops {
namespace {

// Input, attribute and output indices: generated from the aclnn_gen spec.
using namespace blitz_op;

ge::graphStatus InferAttentionOut(gert::InferShapeContext *context, const gert::Shape **query)
{
  *query = context->GetInputShape(kQuery);
  gert::Shape *out = context->GetOutputShape(kAttentionOut);
  const gert::RuntimeAttrs *attrs = context->GetAttrs();
  if (*query == nullptr || out == nullptr || attrs == nullptr) return ge::GRAPH_FAILED;
  const char *layout = attrs->GetAttrPointer<char>(kInputLayout);
  if (layout == nullptr) return ge::GRAPH_FAILED;
  *out = **query;
  if (blitz_npu::layout_of(layout) == blitz_npu::kLayoutBNSD_BSND) {
    if ((*query)->GetDimNum() != 4) return ge::GRAPH_FAILED;
    out->SetDim(1, (*query)->GetDim(2));
    out->SetDim(2, (*query)->GetDim(1));
  }
  return ge::GRAPH_SUCCESS;
}

// softmax_lse [B, N, Sq] (TND: [N, T]): B and S read from query in its layout, N from the num_heads attribute.
ge::graphStatus InferShapeBlitzSparseAttention(gert::InferShapeContext *context)
{
  const gert::Shape *query = nullptr;
  if (InferAttentionOut(context, &query) != ge::GRAPH_SUCCESS) return ge::GRAPH_FAILED;
  gert::Shape *lse = context->GetOutputShape(kSoftmaxLse);
  if (lse == nullptr) return ge::GRAPH_SUCCESS;  // the optional output is absent
  const gert::RuntimeAttrs *attrs = context->GetAttrs();
  const int64_t *heads = attrs->GetAttrPointer<int64_t>(kNumHeads);
  const char *layout = attrs->GetAttrPointer<char>(kInputLayout);
  const bool *lseFlag = attrs->GetAttrPointer<bool>(kSoftmaxLseFlag);
  if (heads == nullptr || layout == nullptr) return ge::GRAPH_FAILED;
  if (lseFlag == nullptr || !*lseFlag) {
    lse->SetDimNum(1);
    lse->SetDim(0, 0);
    return ge::GRAPH_SUCCESS;
  }
  const uint32_t code = blitz_npu::layout_of(layout);
  if (code == blitz_npu::kLayoutTND) {  // packed: [N, T], T = query's tokens (dim 0)
    lse->SetDimNum(2);
    lse->SetDim(0, *heads);
    lse->SetDim(1, query->GetDim(0));
    return ge::GRAPH_SUCCESS;
  }
  const bool bnsd = blitz_npu::head_major(code);
  lse->SetDimNum(3);
  lse->SetDim(0, query->GetDim(0));
  lse->SetDim(1, *heads);
  lse->SetDim(2, query->GetDim(bnsd ? 2 : 1));
  return ge::GRAPH_SUCCESS;
}

ge::graphStatus InferDataTypeBlitzSparseAttention(gert::InferDataTypeContext *context)
{
  if (context->SetOutputDataType(kAttentionOut, context->GetInputDataType(kQuery)) != ge::GRAPH_SUCCESS) {
    return ge::GRAPH_FAILED;
  }
  return context->SetOutputDataType(kSoftmaxLse, ge::DT_FLOAT);
}

}  // namespace

IMPL_OP_INFERSHAPE(BlitzSparseAttention)
    .InferShape(InferShapeBlitzSparseAttention)
    .InferDataType(InferDataTypeBlitzSparseAttention);

}  // namespace ops
