// Moving plan inputs and outputs between JavaScript and a plan's arena
// (JavaScript thread only), and the JS error for a failed run. plan.cpp.
#pragma once

#include <napi.h>

#include <functional>

#include "core/plan.h"

namespace simdformer {

// Where input i goes: float storage for float32 and bool values (bools as
// 0 / 1), int64 storage for int64 values, room for the value's count.
using InputDestination = std::function<void*(size_t input)>;

// Copies the typed arrays of `inputs` to `destination`, checking each against
// the plan's input values; the caller may reuse or detach them afterwards.
void copy_inputs(Napi::Env env, const Napi::Value& inputs, const Plan& plan, const InputDestination& destination);
// The inputs' places in an arena.
InputDestination arena_destination(const Plan& plan, Plan::Arena& arena);
// New Float32Arrays holding the plan's outputs.
Napi::Array copy_outputs(Napi::Env env, const Plan& plan, Plan::Arena& arena);
// AbortError (name 'AbortError', code 'ABORT_ERR') for a cancelled run, else
// a RangeError with the run's message.
Napi::Error run_error(Napi::Env env, const RunError& error);

}  // namespace simdformer
