"""aclnnBlitzSparseAttentionGetWorkspaceSize's 27 parameters, in order: the ABI contract (the
newest original prototype, docs/aclnnBlitzSparseAttention.md upstream) written out by hand,
independently of aclnn_gen (test_aclnn_gen.py checks the generator's output against it). The
binding, bad-input, validate=False and fuzz suites all call the raw entry point with these names."""

PARAMS = (
    "query key value pseShift attenMask sabi actualSeqLengths actualSeqLengthsKv deqScale1 "
    "quantScale1 deqScale2 quantScale2 quantOffset2 numHeads scaleValue preTokens nextTokens "
    "inputLayout numKeyValueHeads sparseMode innerPrecise softmaxLseFlag blockShape attentionOut "
    "softmaxLse workspaceSize executor"
).split()
