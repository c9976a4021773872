// InferShape / InferDataType of BlitzSparseAttention and BlitzSparseAttentionV2 (CANN's
// gert::InferShapeContext, register/op_impl_registry.h). attention_out has query's shape, except
// that BNSD_BSND writes [B, S, N, D]; softmax_lse (V2) is [B, N, Sq] float32.
#include <cstring>

#include "register/op_impl_registry.h"

namespace ops {
namespace {

constexpr size_t kQueryIndex = 0;
constexpr size_t kOutIndex = 0;
constexpr size_t kLseIndex = 1;
constexpr size_t kAttrNumHeads = 0;
constexpr size_t kAttrInputLayout = 4;

ge::graphStatus InferAttentionOut(gert::InferShapeContext *context, const gert::Shape **query)
{
  *query = context->GetInputShape(kQueryIndex);
  gert::Shape *out = context->GetOutputShape(kOutIndex);
  const gert::RuntimeAttrs *attrs = context->GetAttrs();
  if (*query == nullptr || out == nullptr || attrs == nullptr) return ge::GRAPH_FAILED;
  const char *layout = attrs->GetAttrPointer<char>(kAttrInputLayout);
  if (layout == nullptr) return ge::GRAPH_FAILED;
  *out = **query;
  if (std::strcmp(layout, "BNSD_BSND") == 0) {
    if ((*query)->GetDimNum() != 4) return ge::GRAPH_FAILED;
    out->SetDim(1, (*query)->GetDim(2));
    out->SetDim(2, (*query)->GetDim(1));
  }
  return ge::GRAPH_SUCCESS;
}

ge::graphStatus InferShapeBlitzSparseAttention(gert::InferShapeContext *context)
{
  const gert::Shape *query = nullptr;
  return InferAttentionOut(context, &query);
}

// softmax_lse [B, N, Sq]: B and S read from query in its layout, N from the num_heads attribute.
ge::graphStatus InferShapeBlitzSparseAttentionV2(gert::InferShapeContext *context)
{
  const gert::Shape *query = nullptr;
  if (InferAttentionOut(context, &query) != ge::GRAPH_SUCCESS) return ge::GRAPH_FAILED;
  gert::Shape *lse = context->GetOutputShape(kLseIndex);
  const gert::RuntimeAttrs *attrs = context->GetAttrs();
  const int64_t *heads = attrs->GetAttrPointer<int64_t>(kAttrNumHeads);
  const char *layout = attrs->GetAttrPointer<char>(kAttrInputLayout);
  if (lse == nullptr || heads == nullptr || layout == nullptr) return ge::GRAPH_FAILED;
  const bool bnsd = std::strcmp(layout, "BNSD") == 0 || std::strcmp(layout, "BNSD_BSND") == 0;
  lse->SetDimNum(3);
  lse->SetDim(0, query->GetDim(0));
  lse->SetDim(1, *heads);
  lse->SetDim(2, query->GetDim(bnsd ? 2 : 1));
  return ge::GRAPH_SUCCESS;
}

ge::graphStatus InferDataTypeBlitzSparseAttention(gert::InferDataTypeContext *context)
{
  return context->SetOutputDataType(kOutIndex, context->GetInputDataType(kQueryIndex));
}

ge::graphStatus InferDataTypeBlitzSparseAttentionV2(gert::InferDataTypeContext *context)
{
  if (context->SetOutputDataType(kOutIndex, context->GetInputDataType(kQueryIndex)) != ge::GRAPH_SUCCESS) {
    return ge::GRAPH_FAILED;
  }
  return context->SetOutputDataType(kLseIndex, ge::DT_FLOAT);
}

}  // namespace

IMPL_OP_INFERSHAPE(BlitzSparseAttention)
    .InferShape(InferShapeBlitzSparseAttention)
    .InferDataType(InferDataTypeBlitzSparseAttention);
IMPL_OP_INFERSHAPE(BlitzSparseAttentionV2)
    .InferShape(InferShapeBlitzSparseAttentionV2)
    .InferDataType(InferDataTypeBlitzSparseAttentionV2);

}  // namespace ops
