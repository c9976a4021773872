// InferShape / InferDataType of BlitzSelectBlocks (gert::InferShapeContext): sabi is
// [B, N, ceil(Sq / bq), ceil(Skv / bkv)] uint16, B and S read from query / key in their layout,
// N from num_heads; TND: B and the longest batch's lengths from the cumulative actual lengths
// (value-depend, host data here as in the tiling). Type-checked only (tools/check_host.sh).
#include "register/op_impl_registry.h"

#include "../../common/op_limits.h"
#include "blitz_select_blocks_indices.h"
#include "tiling_plan.h"

namespace ops {
namespace {

using namespace blitz_select_op;

int64_t CeilDiv(int64_t a, int64_t b) { return b > 0 ? (a + b - 1) / b : 0; }

// Batches and the longest batch of a cumulative length list; false when absent.
bool Packed(const gert::Tensor *lengths, int64_t *batch, int64_t *longest)
{
  if (lengths == nullptr) return false;
  const int64_t *v = lengths->GetData<int64_t>();
  *batch = lengths->GetShapeSize();
  *longest = 0;
  for (int64_t b = 0, previous = 0; b < *batch; previous = v[b], ++b) {
    *longest = v[b] - previous > *longest ? v[b] - previous : *longest;
  }
  return true;
}

ge::graphStatus InferShapeBlitzSelectBlocks(gert::InferShapeContext *context)
{
  const gert::Shape *query = context->GetInputShape(kQuery);
  const gert::Shape *key = context->GetInputShape(kKey);
  gert::Shape *sabi = context->GetOutputShape(kSabi);
  const gert::RuntimeAttrs *attrs = context->GetAttrs();
  if (query == nullptr || key == nullptr || sabi == nullptr || attrs == nullptr) return ge::GRAPH_FAILED;
  const int64_t *heads = attrs->GetAttrPointer<int64_t>(kNumHeads);
  const char *layout = attrs->GetAttrPointer<char>(kInputLayout);
  if (heads == nullptr || layout == nullptr) return ge::GRAPH_FAILED;
  // A NULL / empty blockShape: the attention's default, as the tiling reads it.
  int64_t bq = blitz::limits::kDefaultBlockQ, bkv = blitz::limits::kDefaultBlockKv;
  const gert::TypedContinuousVector<int64_t> *blockShape = attrs->GetListInt(kBlockShape);
  if (blockShape != nullptr && blockShape->GetSize() == 2) {
    bq = blockShape->GetData()[0];
    bkv = blockShape->GetData()[1];
  }
  int64_t batch = 0, seqQ = 0, seqKv = 0;
  const uint32_t code = blitz_npu::layout_of(layout);
  if (code == blitz_npu::kLayoutTND) {
    int64_t batchKv = 0;
    if (!Packed(context->GetOptionalInputTensor(kActualSeqLengths), &batch, &seqQ) ||
        !Packed(context->GetOptionalInputTensor(kActualSeqLengthsKv), &batchKv, &seqKv)) {
      return ge::GRAPH_FAILED;
    }
  } else {
    const bool bnsd = blitz_npu::head_major(code);
    batch = query->GetDim(0);
    seqQ = query->GetDim(bnsd ? 2 : 1);
    seqKv = key->GetDim(bnsd ? 2 : 1);
  }
  sabi->SetDimNum(4);
  sabi->SetDim(0, batch);
  sabi->SetDim(1, *heads);
  sabi->SetDim(2, CeilDiv(seqQ, bq));
  sabi->SetDim(3, CeilDiv(seqKv, bkv));
  return ge::GRAPH_SUCCESS;
}

ge::graphStatus InferDataTypeBlitzSelectBlocks(gert::InferDataTypeContext *context)
{
  return context->SetOutputDataType(kSabi, ge::DT_UINT16);
}

}  // namespace

IMPL_OP_INFERSHAPE(BlitzSelectBlocks)
    .InferShape(InferShapeBlitzSelectBlocks)
    .InferDataType(InferDataTypeBlitzSelectBlocks)
    .InputsDataDependency({kActualSeqLengths, kActualSeqLengthsKv});

}  // namespace ops
