// CudaBackend: the device, its stream, cuBLASLt handle and workspace (the Context), memory and transfers.
// Host C++ (C++20): the op files' kernels are in <stem>.cu, reached through cuda_kernels.h.

#include "engine/backend/cuda/cuda_context.h"

namespace dlm {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLASLt workspace

// Throws Error naming the device when a setup call fails.
void check_setup(cudaError_t status, int device, const char* what) {
  DLM_CHECK(status == cudaSuccess, "CUDA device {} cannot be used: {} failed: {}", device, what,
            cudaGetErrorString(status));
}

bool is_pinned(const void* host) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, host) != cudaSuccess) {
    cudaGetLastError();  // not sticky
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

bool ranges_overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto* pa = static_cast<const char*>(a);
  const auto* pb = static_cast<const char*>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

}  // namespace

// ------------------------------------------------------------------------------------------------- Context

CudaBackend::Context::~Context() {
  // Nothing here may throw; errors (a device already lost) are ignored. Pending work is waited for first, so
  // no kernel still uses what is freed. linear_plans release their descriptors as members (no handle needed).
  if (stream != nullptr) cudaStreamSynchronize(stream);
  cudnn_attention.reset();  // its handle is bound to the stream
  if (scratch != nullptr) cudaFree(scratch);
  for (void* block : outgrown_scratch) cudaFree(block);
  if (embedding_fault_host != nullptr) cudaFreeHost(embedding_fault_host);
  if (embedding_fault != nullptr) cudaFree(embedding_fault);
  if (workspace != nullptr) cudaFree(workspace);
  if (lt != nullptr) cublasLtDestroy(lt);
  if (stream != nullptr) cudaStreamDestroy(stream);
}

void CudaBackend::Context::make_current() const {
  DLM_CUDA_CHECK(cudaSetDevice(device));
}

void CudaBackend::Context::wait() {
  DLM_CHECK(!recording, "CUDA device {}: cannot wait for the device while recording", device);
  // The record's copy is queued before the wait, so one wait covers both.
  const bool read_fault = embedding_queued;
  if (read_fault) {
    DLM_CUDA_CHECK(cudaMemcpyAsync(embedding_fault_host, embedding_fault, sizeof *embedding_fault,
                                   cudaMemcpyDeviceToHost, stream));
  }
  DLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  embedding_queued = false;
  if (read_fault) raise_embedding_fault();
}

void* CudaBackend::Context::reserve_scratch(size_t bytes) {
  if (bytes <= scratch_bytes) return scratch;
  DLM_CHECK(!recording, "CUDA device {}: scratch cannot grow while recording", device);
  DLM_CUDA_CHECK(cudaStreamSynchronize(stream));  // queued work may still use the old block
  if (scratch != nullptr) {
    if (graphs) {
      outgrown_scratch.push_back(scratch);
    } else {
      DLM_CUDA_CHECK(cudaFree(scratch));
    }
  }
  scratch = nullptr;
  scratch_bytes = 0;
  const cudaError_t status_of_malloc = cudaMalloc(&scratch, bytes);
  if (status_of_malloc != cudaSuccess) {
    scratch = nullptr;
    cudaGetLastError();  // an allocation failure is not sticky; clear it so later launches start clean
    fail("CUDA device {}: cannot allocate {} bytes of scratch: {}", device, bytes,
         cudaGetErrorString(status_of_malloc));
  }
  scratch_bytes = bytes;
  return scratch;
}

// --------------------------------------------------------------------------------------------- CudaBackend

CudaBackend::CudaBackend(int device, CudaOptions options) : context_(std::make_unique<Context>()) {
  Context& ctx = *context_;
  ctx.device = device;
  ctx.attention = options.attention;
  ctx.graphs = options.graphs;
  ctx.tune_gemm = options.tune_gemm;
  DLM_CHECK(!(options.batch_invariant && options.tune_gemm),
            "CUDA device {}: batch-invariant products cannot be tuned (the tuning's candidates split K)",
            device);
  ctx.batch_invariant = options.batch_invariant;
  ctx.split_attention_keys = options.split_attention_keys && !options.batch_invariant;
  int count = 0;
  check_setup(cudaGetDeviceCount(&count), device, "cudaGetDeviceCount");
  DLM_CHECK(device >= 0 && device < count, "CUDA device {} cannot be used: {} device(s) present", device,
            count);
  check_setup(cudaSetDevice(device), device, "cudaSetDevice");
  check_setup(cudaDeviceGetAttribute(&ctx.sm_count, cudaDevAttrMultiProcessorCount, device), device,
              "cudaDeviceGetAttribute(multiprocessor count)");
  check_setup(cudaDeviceGetAttribute(&ctx.sm_major, cudaDevAttrComputeCapabilityMajor, device), device,
              "cudaDeviceGetAttribute(compute capability)");
  check_setup(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking), device, "cudaStreamCreate");
  const cublasStatus_t lt_status = cublasLtCreate(&ctx.lt);
  DLM_CHECK(lt_status == CUBLAS_STATUS_SUCCESS,
            "CUDA device {} cannot be used: cublasLtCreate failed: status {}", device,
            static_cast<int>(lt_status));
  check_setup(cudaMalloc(&ctx.workspace, kWorkspaceBytes), device, "cudaMalloc(cuBLASLt workspace)");
  ctx.workspace_bytes = kWorkspaceBytes;
  void* fault = nullptr;
  check_setup(cudaMalloc(&fault, sizeof(cuda::EmbeddingFault)), device, "cudaMalloc(embedding record)");
  ctx.embedding_fault = static_cast<cuda::EmbeddingFault*>(fault);
  void* fault_host = nullptr;
  check_setup(cudaMallocHost(&fault_host, sizeof(cuda::EmbeddingFault)), device,
              "cudaMallocHost(embedding record)");
  ctx.embedding_fault_host = static_cast<cuda::EmbeddingFault*>(fault_host);
  *ctx.embedding_fault_host = cuda::EmbeddingFault{};
  check_setup(cudaMemcpyAsync(ctx.embedding_fault, ctx.embedding_fault_host, sizeof(cuda::EmbeddingFault),
                              cudaMemcpyHostToDevice, ctx.stream),
              device, "cudaMemcpyAsync(embedding record)");
}

CudaBackend::~CudaBackend() = default;  // the Context releases its handles

Device CudaBackend::device() const {
  return Device{DeviceKind::Cuda, context_->device};
}

const std::vector<CudaBackend::TunedProduct>& CudaBackend::tuned_products() const {
  return context_->tuned_products;
}

Buffer CudaBackend::allocate(size_t bytes) {
  if (bytes == 0) return Buffer(nullptr, 0, device(), nullptr);
  context_->make_current();
  void* data = nullptr;
  const cudaError_t status = cudaMalloc(&data, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();  // not sticky; keep later launches clean
    fail("CUDA device {}: cannot allocate {} bytes: {}", context_->device, bytes, cudaGetErrorString(status));
  }
  // cudaFree waits for work that may still use the block; it cannot throw from a destructor, so its status
  // is dropped.
  return Buffer(data, bytes, device(), [](void* p) { cudaFree(p); });
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  DLM_CHECK(src.dtype() == dst.dtype() && src.shape() == dst.shape(), "copy from {} to {}", src.describe(),
            dst.describe());
  const bool strided = !src.is_contiguous();
  DLM_CHECK(
      (!strided || src.slices_contiguous()) && dst.is_contiguous(),
      "copy needs a contiguous destination and a source whose slices along axis 0 are contiguous, got {} "
      "-> {}",
      src.describe(), dst.describe());
  const Device here = device();
  const auto usable = [&](const Tensor& t) {
    return t.device().kind == DeviceKind::Cpu || t.device() == here;
  };
  DLM_CHECK(usable(src) && usable(dst),
            "the CUDA backend on {} copies between the host and its device, got {} -> {}", device_name(here),
            src.describe(), dst.describe());
  const size_t bytes = src.nbytes();
  if (bytes == 0) return;
  // A strided source is dim(0) slices of `slice` bytes, `pitch` bytes apart.
  const size_t slices = strided ? static_cast<size_t>(src.dim(0)) : 1;
  const size_t slice = bytes / slices;
  const size_t pitch = strided ? static_cast<size_t>(src.stride(0)) * dtype_size(src.dtype()) : slice;
  const bool src_host = src.device().kind == DeviceKind::Cpu;
  const bool dst_host = dst.device().kind == DeviceKind::Cpu;
  if (src_host && dst_host) {  // nothing queued writes host memory, so this needs no wait
    copy_host(src, dst);
    return;
  }
  Context& ctx = *context_;
  ctx.make_current();
  const auto queue = [&](cudaMemcpyKind kind) {
    if (strided) {
      DLM_CUDA_CHECK(
          cudaMemcpy2DAsync(dst.data(), slice, src.data(), pitch, slice, slices, kind, ctx.stream));
    } else {
      DLM_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, kind, ctx.stream));
    }
  };
  if (!src_host && !dst_host) {
    if (src.data() == dst.data() && !strided) return;
    // cudaMemcpy is undefined for overlapping ranges; the CPU's memmove semantics would need a staging copy.
    const size_t span = (slices - 1) * pitch + slice;
    DLM_CHECK(!ranges_overlap(src.data(), span, dst.data(), bytes), "copy from {} to {}: the ranges overlap",
              src.describe(), dst.describe());
    queue(cudaMemcpyDeviceToDevice);
    return;
  }
  const cudaMemcpyKind kind = src_host ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
  // Recorded, the copy reads its source at each replay: only from pinned memory (allocate_host), and
  // nothing can come back to the host.
  DLM_CHECK(!ctx.recording || (src_host && is_pinned(src.data())),
            "copy from {} to {} cannot be recorded: only copies from pinned host memory can", src.describe(),
            dst.describe());
  queue(kind);
  if (ctx.recording) return;
  // The host side is valid (read or written) on return, and a fault of earlier kernels shows here. A copy to
  // the host also raises what earlier work recorded (an embedding id outside the table); a copy from it
  // waits only so that its source may be reused, and leaves that to the next wait for results.
  if (src_host) {
    DLM_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  } else {
    ctx.wait();
  }
}

// Copies between places on the device go out as listed copies, one launch per kMaxListedCopies (a layer's
// cache writes or gathers in one or two launches, instead of one copy per sequence); if any copy is of
// another kind, each goes through copy().
void CudaBackend::copy_batch(std::span<const Tensor> sources, std::span<const Tensor> destinations) {
  DLM_CHECK(sources.size() == destinations.size(), "copy_batch: {} sources for {} destinations",
            sources.size(), destinations.size());
  const Device here = device();
  for (size_t i = 0; i < sources.size(); ++i) {
    const Tensor& src = sources[i];
    const Tensor& dst = destinations[i];
    const bool on_device = src.device() == here && dst.device() == here && src.dtype() == dst.dtype() &&
                           src.shape() == dst.shape() && src.is_contiguous() && dst.is_contiguous() &&
                           src.data() != dst.data() &&
                           !ranges_overlap(src.data(), src.nbytes(), dst.data(), dst.nbytes());
    if (!on_device) return Backend::copy_batch(sources, destinations);  // copy() checks and explains
  }
  Context& ctx = *context_;
  ctx.make_current();
  cuda::CopyList list;
  const auto flush = [&] {
    check_launch(cuda::launch_copy_list(ctx.stream, list), "copy_batch");
    list.count = 0;
  };
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].nbytes() == 0) continue;
    list.source[list.count] = sources[i].data();
    list.destination[list.count] = destinations[i].data();
    list.bytes[list.count] = sources[i].nbytes();
    if (++list.count == cuda::kMaxListedCopies) flush();
  }
  flush();
}

void CudaBackend::synchronize() {
  context_->make_current();
  context_->wait();
}

}  // namespace dlm
