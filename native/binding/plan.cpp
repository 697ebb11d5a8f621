// createPlan(description) -> Plan, and Plan#run(inputs) / Plan#runAsync(inputs):
// a module's forward as one native job (core/plan.h). See binding.d.ts for
// the description format.
#include "core/plan.h"

#include <cstring>

#include "addon_data.h"
#include "args.h"
#include "core/threadpool.h"
#include "errors.h"
#include "ops.h"
#include "packed_b.h"
#include "parameter.h"
#include "plan_io.h"
#include "plan_job.h"

namespace simdformer {

namespace {

constexpr size_t kNone = SIZE_MAX;

using SharedPlan = std::shared_ptr<const Plan>;

std::vector<size_t> to_ids(Napi::Env env, const std::string& name, const Napi::Value& value) {
  if (!value.IsArray()) throw invalid_type(env, name, "an array of value ids", value);
  Napi::Array array = value.As<Napi::Array>();
  std::vector<size_t> ids(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const Napi::Value id = array.Get(i);
    // -1 marks an optional input that is absent.
    ids[i] = id.IsNumber() && id.As<Napi::Number>().DoubleValue() == -1
                 ? kNone
                 : to_size(env, name + "[" + std::to_string(i) + "]", id, 0);
  }
  return ids;
}

Parameter to_parameter(Napi::Env env, const std::string& name, const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  const ParameterHandle* handle = ParameterHandle::from_value(env, value);
  if (handle == nullptr) throw invalid_type(env, name, "a Parameter, null or undefined", value);
  return handle->shared();
}

size_t dim(Napi::Env env, const std::string& where, const Napi::Object& object, const char* key, size_t min = 0) {
  return to_size(env, where + "." + key, object.Get(key), min);
}

SequenceView to_sequence(Napi::Env env, const std::string& name, const Napi::Value& value) {
  const Napi::Object object = to_object(env, name, value);
  return SequenceView{nullptr, dim(env, name, object, "batchStride"), dim(env, name, object, "seqStride")};
}

Step to_step(Napi::Env env, const std::string& where, const Napi::Object& object) {
  const Napi::Value kind_value = object.Get("kind");
  const std::string kind = kind_value.IsString() ? kind_value.As<Napi::String>().Utf8Value() : "";
  Step step{};
  step.inputs = to_ids(env, where + ".inputs", object.Get("inputs"));
  step.output = to_size(env, where + ".output", object.Get("output"), 0);
  if (kind == "linear") {
    step.kind = StepKind::kLinear;
    const PackedBHandle* weight = PackedBHandle::from_value(env, object.Get("weight"));
    if (weight == nullptr) throw invalid_type(env, where + ".weight", "a PackedB", object.Get("weight"));
    step.weight = weight->shared();
    step.param0 = to_parameter(env, where + ".bias", object.Get("bias"));
    step.activation = to_activation(env, where + ".activation", object.Get("activation"));
  } else if (kind == "layerNorm") {
    step.kind = StepKind::kLayerNorm;
    step.dims[0] = dim(env, where, object, "n", 1);
    step.eps = static_cast<float>(to_number(env, where + ".eps", object.Get("eps")));
    step.param0 = to_parameter(env, where + ".weight", object.Get("weight"));
    step.param1 = to_parameter(env, where + ".bias", object.Get("bias"));
  } else if (kind == "add") {
    step.kind = StepKind::kAdd;
    step.dims[0] = dim(env, where, object, "outer");
    step.dims[1] = dim(env, where, object, "mid");
    step.dims[2] = dim(env, where, object, "inner");
  } else if (kind == "additiveMask") {
    step.kind = StepKind::kAdditiveMask;
  } else if (kind == "attention") {
    step.kind = StepKind::kAttention;
    AttentionProblem& a = step.attention;
    a.batch = dim(env, where, object, "batch");
    a.heads = dim(env, where, object, "heads", 1);
    a.tgt_len = dim(env, where, object, "tgtLen");
    a.src_len = dim(env, where, object, "srcLen", 1);
    a.head_dim = dim(env, where, object, "headDim", 1);
    a.v_head_dim = dim(env, where, object, "vHeadDim", 1);
    const char* const operands[3] = {"q", "k", "v"};
    SequenceView* views[3] = {&a.q, &a.k, &a.v};
    for (size_t i = 0; i < 3; ++i) {
      const std::string name = where + "." + operands[i];
      *views[i] = to_sequence(env, name, object.Get(operands[i]));
      const Napi::Value offset = to_object(env, name, object.Get(operands[i])).Get("offset");
      if (!offset.IsUndefined()) step.view_offsets[i] = to_size(env, name + ".offset", offset, 0);
    }
    a.out_batch_stride = dim(env, where, object, "outBatchStride");
    a.out_seq_stride = dim(env, where, object, "outSeqStride");
    a.scale = static_cast<float>(to_number(env, where + ".scale", object.Get("scale")));
    a.attn_mask_per_head = object.Get("attnMaskPerHead").ToBoolean().Value();
    a.causal = object.Get("causal").ToBoolean().Value();
    const Napi::Value weights = object.Get("weights");
    if (!weights.IsUndefined() && !weights.IsNull()) step.output2 = to_size(env, where + ".weights", weights, 0);
    if (step.inputs.size() != 5) throw range_error(env, "Expected 5 inputs [q, k, v, attnMask, keyPaddingMask] for " + where);
  } else if (kind == "averageHeads") {
    step.kind = StepKind::kAverageHeads;
    step.dims[0] = dim(env, where, object, "batch");
    step.dims[1] = dim(env, where, object, "heads", 1);
    step.dims[2] = dim(env, where, object, "size");
  } else if (kind == "appendRow") {
    step.kind = StepKind::kAppendRow;
    step.dims[0] = dim(env, where, object, "outer");
    step.dims[1] = dim(env, where, object, "rows");
    step.dims[2] = dim(env, where, object, "width");
    step.param0 = to_parameter(env, where + ".row", object.Get("row"));
  } else if (kind == "padColumn") {
    step.kind = StepKind::kPadColumn;
    step.dims[0] = dim(env, where, object, "rows");
    step.dims[1] = dim(env, where, object, "cols");
  } else if (kind == "embedding") {
    step.kind = StepKind::kEmbedding;
    step.dims[0] = dim(env, where, object, "num", 1);
    step.dims[1] = dim(env, where, object, "dim", 1);
    step.param0 = to_parameter(env, where + ".table", object.Get("table"));
  } else {
    throw invalid_type(env, where + ".kind",
                       "one of 'linear', 'layerNorm', 'add', 'additiveMask', 'attention', 'averageHeads', "
                       "'appendRow', 'padColumn', 'embedding'",
                       kind_value);
  }
  return step;
}

class PlanHandle : public Napi::ObjectWrap<PlanHandle> {
 public:
  static Napi::Function define_class(Napi::Env env) {
    return DefineClass(env, "Plan",
                       {InstanceMethod<&PlanHandle::run>("run"), InstanceMethod<&PlanHandle::run_async>("runAsync"),
                        InstanceAccessor<&PlanHandle::arena_bytes>("arenaBytes")});
  }

  explicit PlanHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PlanHandle>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw type_error(info.Env(), "Plan cannot be constructed from JavaScript; use createPlan()");
    }
    plan_ = *info[0].As<Napi::External<SharedPlan>>().Data();
  }

 private:
  Napi::Value run(const Napi::CallbackInfo& info);
  Napi::Value run_async(const Napi::CallbackInfo& info);
  Napi::Value arena_bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(plan_->arena_bytes()));
  }

  SharedPlan plan_;
};

}  // namespace

void copy_inputs(Napi::Env env, const Napi::Value& value, const Plan& plan, const InputDestination& destination) {
  const std::vector<size_t>& ids = plan.inputs();
  if (!value.IsArray() || value.As<Napi::Array>().Length() != ids.size()) {
    throw invalid_type(env, "inputs", "an array of " + std::to_string(ids.size()) + " typed arrays", value);
  }
  Napi::Array inputs = value.As<Napi::Array>();
  for (uint32_t i = 0; i < ids.size(); ++i) {
    const std::string name = "inputs[" + std::to_string(i) + "]";
    const ValueSpec& spec = plan.values()[ids[i]];
    const Napi::Value input = inputs.Get(i);
    const napi_typedarray_type type =
        input.IsTypedArray() ? input.As<Napi::TypedArray>().TypedArrayType() : napi_int8_array;
    const size_t length = input.IsTypedArray() ? input.As<Napi::TypedArray>().ElementLength() : 0;
    const std::string count = std::to_string(spec.count);
    switch (spec.type) {
      case ValueType::kFloat32: {
        if (type != napi_float32_array || length != spec.count) throw invalid_type(env, name, "a Float32Array of length " + count, input);
        std::memcpy(destination(i), input.As<Napi::Float32Array>().Data(), spec.count * sizeof(float));
        break;
      }
      case ValueType::kBool: {
        if (type != napi_uint8_array || length != spec.count) throw invalid_type(env, name, "a Uint8Array of length " + count, input);
        const uint8_t* source = input.As<Napi::Uint8Array>().Data();
        float* target = static_cast<float*>(destination(i));
        for (size_t j = 0; j < spec.count; ++j) target[j] = source[j] != 0 ? 1.0f : 0.0f;
        break;
      }
      case ValueType::kInt64: {
        int64_t* target = static_cast<int64_t*>(destination(i));
        if (type == napi_bigint64_array && length == spec.count) {
          std::memcpy(target, input.As<Napi::BigInt64Array>().Data(), spec.count * sizeof(int64_t));
        } else if (type == napi_int32_array && length == spec.count) {
          const int32_t* source = input.As<Napi::Int32Array>().Data();
          for (size_t j = 0; j < spec.count; ++j) target[j] = source[j];
        } else {
          throw invalid_type(env, name, "a BigInt64Array or Int32Array of length " + count, input);
        }
        break;
      }
    }
  }
}

InputDestination arena_destination(const Plan& plan, Plan::Arena& arena) {
  return [&plan, &arena](size_t input) -> void* {
    const size_t id = plan.inputs()[input];
    if (plan.values()[id].type == ValueType::kInt64) return plan.index_data(arena, id);
    return plan.float_data(arena, id);
  };
}

Napi::Array copy_outputs(Napi::Env env, const Plan& plan, Plan::Arena& arena) {
  const std::vector<size_t>& ids = plan.outputs();
  Napi::Array outputs = Napi::Array::New(env, ids.size());
  for (uint32_t i = 0; i < ids.size(); ++i) {
    const size_t count = plan.values()[ids[i]].count;
    Napi::Float32Array array = Napi::Float32Array::New(env, count);
    if (count > 0) std::memcpy(array.Data(), plan.float_data(arena, ids[i]), count * sizeof(float));
    outputs.Set(i, array);
  }
  return outputs;
}

Napi::Error run_error(Napi::Env env, const RunError& error) {
  if (error.cancelled) {
    Napi::Error aborted = Napi::Error::New(env, "The operation was aborted");
    aborted.Set("name", Napi::String::New(env, "AbortError"));
    aborted.Set("code", Napi::String::New(env, "ABORT_ERR"));
    return aborted;
  }
  return range_error(env, error.message, "ERR_SIMDFORMER_OUT_OF_RANGE");
}

Napi::Value PlanHandle::run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Plan::ArenaLease lease(*plan_);
    copy_inputs(env, info[0], *plan_, arena_destination(*plan_, lease.arena()));
    const RunError error = plan_->run(active_kernels(), thread_pool(), lease.arena());
    if (error) throw run_error(env, error);
    return copy_outputs(env, *plan_, lease.arena());
  });
}

Napi::Value PlanHandle::run_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return queue_plan_job(env, plan_, info[0], addon_data(env).link); });
}

Napi::Function define_plan_class(Napi::Env env) { return PlanHandle::define_class(env); }

Napi::Value create_plan_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Napi::Object description = to_object(env, "description", info[0]);
    const Napi::Value values_value = description.Get("values");
    if (!values_value.IsArray()) throw invalid_type(env, "description.values", "an array", values_value);
    Napi::Array values_array = values_value.As<Napi::Array>();
    std::vector<ValueSpec> values(values_array.Length());
    for (uint32_t i = 0; i < values.size(); ++i) {
      const std::string where = "description.values[" + std::to_string(i) + "]";
      const Napi::Object value = to_object(env, where, values_array.Get(i));
      const Napi::Value type = value.Get("type");
      const std::string name = type.IsString() ? type.As<Napi::String>().Utf8Value() : "";
      if (name == "float32") values[i].type = ValueType::kFloat32;
      else if (name == "bool") values[i].type = ValueType::kBool;
      else if (name == "int64") values[i].type = ValueType::kInt64;
      else throw invalid_type(env, where + ".type", "one of 'float32', 'bool', 'int64'", type);
      values[i].count = to_size(env, where + ".count", value.Get("count"), 0);
    }
    const Napi::Value steps_value = description.Get("steps");
    if (!steps_value.IsArray()) throw invalid_type(env, "description.steps", "an array", steps_value);
    Napi::Array steps_array = steps_value.As<Napi::Array>();
    std::vector<Step> steps;
    steps.reserve(steps_array.Length());
    for (uint32_t i = 0; i < steps_array.Length(); ++i) {
      const std::string where = "description.steps[" + std::to_string(i) + "]";
      steps.push_back(to_step(env, where, to_object(env, where, steps_array.Get(i))));
    }
    auto plan = std::make_shared<const Plan>(std::move(values), std::move(steps),
                                             to_ids(env, "description.inputs", description.Get("inputs")),
                                             to_ids(env, "description.outputs", description.Get("outputs")));
    const std::string& problem = plan->problem();
    if (!problem.empty()) throw range_error(env, "Invalid plan: " + problem, "ERR_SIMDFORMER_INVALID_PLAN");
    SharedPlan shared = plan;
    return addon_data(env).plan_class.New({Napi::External<SharedPlan>::New(env, &shared)});
  });
}

}  // namespace simdformer
