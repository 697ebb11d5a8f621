// attention(args): multi-head attention on caller-owned arrays with a chosen
// ISA, see binding.d.ts AttentionArgs. For testing each ISA's fused path
// against its math path and a reference, and for bench/attention.ts; modules
// reach the same driver through a plan's 'attention' step.
#include "core/attention.h"

#include <string>

#include "args.h"
#include "errors.h"
#include "ops.h"

namespace simdformer {

namespace {

struct SequenceArg {
  FloatArray array;
  size_t batch_stride = 0, seq_stride = 0;
};

// A [batch, length, width] strided view of args[name], strides from args[name + "Strides"].
SequenceArg to_sequence_arg(Napi::Env env, const Napi::Object& args, const std::string& name, size_t batch,
                            size_t length, size_t width) {
  SequenceArg arg;
  arg.array = to_float32(env, "args." + name, args.Get(name));
  const std::string strides_name = "args." + name + "Strides";
  const Napi::Object strides = to_object(env, strides_name, args.Get(name + "Strides"));
  arg.batch_stride = to_size(env, strides_name + ".batchStride", strides.Get("batchStride"), 0);
  arg.seq_stride = to_size(env, strides_name + ".seqStride", strides.Get("seqStride"), 0);
  // The last batch entry reaches furthest (strides are >= 0).
  const unsigned __int128 last_entry = static_cast<unsigned __int128>(batch - 1) * arg.batch_stride;
  if (last_entry >= arg.array.length) {
    throw range_error(env, "Expected args." + name + " to hold " + std::to_string(batch) +
                               " batch entries of stride " + std::to_string(arg.batch_stride) + " but it has only " +
                               std::to_string(arg.array.length) + " elements");
  }
  check_reach(env, "args." + name, arg.array.length, static_cast<size_t>(last_entry), length, arg.seq_stride, width, 1);
  return arg;
}

void check_length(Napi::Env env, const std::string& name, const FloatArray& array, unsigned __int128 expected) {
  if (array.length != expected) {
    throw range_error(env, "Expected " + name + " of length " +
                               std::to_string(static_cast<unsigned long long>(expected)) +
                               " but received a Float32Array of length " + std::to_string(array.length));
  }
}

bool overlaps(const FloatArray& a, const FloatArray& b) {
  return a.data != nullptr && b.data != nullptr && a.data < b.data + b.length && b.data < a.data + a.length;
}

}  // namespace

Napi::Value attention_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Napi::Object args = to_object(env, "args", info[0]);
    const KernelTable& kernels = to_kernels(env, "args.isa", args.Get("isa"));
    AttentionProblem problem;
    problem.batch = to_size(env, "args.batch", args.Get("batch"), 1);
    problem.heads = to_size(env, "args.heads", args.Get("heads"), 1);
    problem.tgt_len = to_size(env, "args.tgtLen", args.Get("tgtLen"), 1);
    problem.src_len = to_size(env, "args.srcLen", args.Get("srcLen"), 1);
    problem.head_dim = to_size(env, "args.headDim", args.Get("headDim"), 1);
    problem.v_head_dim = to_size(env, "args.vHeadDim", args.Get("vHeadDim"), 1);
    const size_t N = problem.batch, H = problem.heads, L = problem.tgt_len, S = problem.src_len;
    const unsigned __int128 scores = static_cast<unsigned __int128>(N) * H * L * S;
    if (scores > kMaxSafeInteger) {
      throw range_error(env, "args.batch * args.heads * args.tgtLen * args.srcLen is too large");
    }

    const size_t qk_width = checked_product(env, "args.heads * args.headDim", H, problem.head_dim);
    const size_t v_width = checked_product(env, "args.heads * args.vHeadDim", H, problem.v_head_dim);
    const SequenceArg q = to_sequence_arg(env, args, "q", N, L, qk_width);
    const SequenceArg k = to_sequence_arg(env, args, "k", N, S, qk_width);
    const SequenceArg v = to_sequence_arg(env, args, "v", N, S, v_width);
    const SequenceArg out = to_sequence_arg(env, args, "out", N, L, v_width);
    problem.q = SequenceView{q.array.data, q.batch_stride, q.seq_stride};
    problem.k = SequenceView{k.array.data, k.batch_stride, k.seq_stride};
    problem.v = SequenceView{v.array.data, v.batch_stride, v.seq_stride};
    problem.out = out.array.data;
    problem.out_batch_stride = out.batch_stride;
    problem.out_seq_stride = out.seq_stride;
    problem.scale = static_cast<float>(to_number(env, "args.scale", args.Get("scale")));

    const FloatArray attn_mask = to_optional_float32(env, "args.attnMask", args.Get("attnMask"));
    problem.attn_mask_per_head = args.Get("attnMaskPerHead").ToBoolean().Value();
    if (attn_mask.data != nullptr) {
      const unsigned __int128 mask_rows = problem.attn_mask_per_head ? static_cast<unsigned __int128>(N) * H : 1;
      check_length(env, "args.attnMask", attn_mask, mask_rows * L * S);
    }
    problem.attn_mask = attn_mask.data;
    const FloatArray padding = to_optional_float32(env, "args.keyPaddingMask", args.Get("keyPaddingMask"));
    if (padding.data != nullptr) {
      check_length(env, "args.keyPaddingMask", padding, static_cast<unsigned __int128>(N) * S);
    }
    problem.key_padding_mask = padding.data;
    const FloatArray weights = to_optional_float32(env, "args.weights", args.Get("weights"));
    if (weights.data != nullptr) check_length(env, "args.weights", weights, scores);
    problem.weights = weights.data;
    problem.causal = args.Get("causal").ToBoolean().Value();

    const Napi::Value algorithm = args.Get("algorithm");
    const std::string name = algorithm.IsString() ? algorithm.As<Napi::String>().Utf8Value() : "";
    if (!algorithm.IsUndefined() && name != "fused" && name != "math") {
      throw invalid_type(env, "args.algorithm", "'fused', 'math' or undefined", algorithm);
    }
    if (name == "fused" && weights.data != nullptr) {
      throw range_error(env, "Expected args.algorithm 'math' or undefined with args.weights but received 'fused'");
    }
    problem.math_path = name == "math";

    // Outputs are written while inputs are still read by other tasks.
    for (const FloatArray* output : {&out.array, &weights}) {
      for (const FloatArray* input : {&q.array, &k.array, &v.array, &attn_mask, &padding}) {
        if (overlaps(*output, *input)) {
          throw range_error(env, "Expected args.out and args.weights not to overlap the inputs");
        }
      }
    }
    if (overlaps(out.array, weights)) throw range_error(env, "Expected args.out and args.weights not to overlap");

    attention(kernels, problem, thread_pool());
    Napi::Object result = Napi::Object::New(env);
    result.Set("scratchBytes", static_cast<double>(attention_scratch_bytes(kernels, problem)));
    return result;
  });
}

}  // namespace simdformer
