// Moving plan inputs and outputs between JavaScript and a plan's arena
// (JavaScript thread only), and the JS error for a failed run. plan.cpp.
#pragma once

#include <napi.h>

#include "core/plan.h"

namespace simdformer {

// Copies the typed arrays of `inputs` into the arena, checking each against
// the plan's input values; the caller may reuse or detach them afterwards.
void copy_inputs(Napi::Env env, const Napi::Value& inputs, const Plan& plan, Plan::Arena& arena);
// New Float32Arrays holding the plan's outputs.
Napi::Array copy_outputs(Napi::Env env, const Plan& plan, Plan::Arena& arena);
// AbortError (name 'AbortError', code 'ABORT_ERR') for a cancelled run, else
// a RangeError with the run's message.
Napi::Error run_error(Napi::Env env, const RunError& error);

}  // namespace simdformer
