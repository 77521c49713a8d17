// CudaBackend's recording (Backend::begin_recording): the stream captured into a CUDA graph, instantiated
// once and launched per replay; and the pinned host memory recorded copies read from.
#include "engine/backend/cuda/cuda_context.h"

namespace dlm {

namespace {

// A captured graph and its executable form, both destroyed with it; it names the context it was made on.
class CudaGraph final : public RecordedWork {
 public:
  CudaGraph(const CudaBackend::Context* owner, cudaGraph_t graph, cudaGraphExec_t exec)
      : owner_(owner), graph_(graph), exec_(exec) {}
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  ~CudaGraph() override {
    cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
  }

  const CudaBackend::Context* owner() const { return owner_; }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  const CudaBackend::Context* owner_;
  cudaGraph_t graph_;
  cudaGraphExec_t exec_;
};

// Work kept for later runs on the host's record of what the stream did (cuDNN attention's length arrays)
// no longer matches the device once recording or replays begin.
void forget_host_records(CudaBackend::Context& ctx) {
  if (ctx.cudnn_attention) ctx.cudnn_attention->forget_lengths();
}

}  // namespace

Buffer CudaBackend::allocate_host(size_t bytes) {
  if (bytes == 0) return Buffer(nullptr, 0, Device{}, nullptr);
  context_->make_current();
  void* data = nullptr;
  const cudaError_t status = cudaMallocHost(&data, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();  // not sticky
    fail("CUDA device {}: cannot allocate {} bytes of pinned host memory: {}", context_->device, bytes,
         cudaGetErrorString(status));
  }
  return Buffer(data, bytes, Device{}, [](void* p) { cudaFreeHost(p); });
}

bool CudaBackend::records_work() const {
  return context_->graphs;
}

void CudaBackend::begin_recording() {
  Context& ctx = *context_;
  DLM_CHECK(ctx.graphs, "CUDA device {}: recording is off (CudaOptions::graphs)", ctx.device);
  DLM_CHECK(!ctx.recording, "CUDA device {}: begin_recording while recording", ctx.device);
  ctx.make_current();
  forget_host_records(ctx);
  // Relaxed: the libraries may allocate or look up plans on the host while the stream is captured.
  DLM_CUDA_CHECK(cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeRelaxed));
  ctx.recording = true;
}

std::unique_ptr<RecordedWork> CudaBackend::end_recording() {
  Context& ctx = *context_;
  DLM_CHECK(ctx.recording, "CUDA device {}: end_recording without begin_recording", ctx.device);
  ctx.recording = false;
  ctx.make_current();
  forget_host_records(ctx);  // the recorded work has not run
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(ctx.stream, &graph);
  if (ended != cudaSuccess || graph == nullptr) {
    cudaGetLastError();  // an invalidated capture is not sticky; later launches start clean
    if (graph != nullptr) cudaGraphDestroy(graph);
    return nullptr;
  }
  cudaGraphExec_t exec = nullptr;
  if (cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
    cudaGetLastError();
    cudaGraphDestroy(graph);
    return nullptr;
  }
  return std::make_unique<CudaGraph>(&ctx, graph, exec);
}

void CudaBackend::replay(const RecordedWork& work) {
  Context& ctx = *context_;
  const auto* graph = dynamic_cast<const CudaGraph*>(&work);
  DLM_CHECK(graph != nullptr && graph->owner() == &ctx,
            "CUDA device {}: replay of work this backend did not record", ctx.device);
  DLM_CHECK(!ctx.recording, "CUDA device {}: replay while recording", ctx.device);
  ctx.make_current();
  forget_host_records(ctx);
  DLM_CUDA_CHECK(cudaGraphLaunch(graph->exec(), ctx.stream));
  ctx.embedding_queued = true;  // a recorded embedding may record an id outside its table again
}

}  // namespace dlm
