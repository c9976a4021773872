// BlitzSelectBlocks on the CPU device: the checked call (select_checks.cpp) as an OpWork whose run
// is run_select (select_export.cpp holds the entry points). No workspace: the selection's scratch
// is a few vectors per worker (key summaries of one key head, one row's masses).
#include "backend/kernel_settings.h"
#include "cann_api/errors.h"
#include "cann_api/op_work.h"
#include "select/select_checks.h"

namespace blitz::cpu::select {
namespace {

class SelectWork : public cann_api::OpWork {
 public:
  // The caller's device settings, copied when the call is planned (backend/kernel_settings.h).
  SelectWork(SelectProblem problem, const KernelSettings &settings)
      : problem_(std::move(problem)), settings_(settings) {}
  const char *op_type() const override { return kSelectOpType; }
  uint64_t workspace_bytes() const override { return 0; }
  bool empty() const override { return problem_.batch * problem_.heads_q * problem_.rows * problem_.cols == 0; }
  cann_api::TaskStatus run(void * /*workspace*/) const override {
    run_select(problem_, settings_.num_threads, settings_.path);
    return {};
  }

 private:
  SelectProblem problem_;
  KernelSettings settings_;
};

}  // namespace

std::shared_ptr<const cann_api::OpWork> make_select_work(const SelectArgs &args) {
  KernelSettings settings;
  std::string error;
  cann_api::require(current_kernel_settings(&settings, &error), ACLNN_ERR_PARAM_INVALID, error);
  return std::make_shared<const SelectWork>(build_select_problem(args), settings);
}

}  // namespace blitz::cpu::select
