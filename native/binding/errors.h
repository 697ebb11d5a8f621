// JS errors thrown by the binding. One formula for every message, after
// sharp: "Expected <what> for <argument> but received <value> of type <type>",
// TypeError for a wrong type, RangeError for a value out of range, and a
// `code` property on each. C++ exceptions never cross into Node-API: every
// exported function runs its body through guarded().
#pragma once

#include <napi.h>

#include <new>
#include <stdexcept>
#include <string>

namespace simdformer {

// "-3 of type number", "Float64Array of length 3", "undefined".
std::string describe_value(const Napi::Value& value);

Napi::Error type_error(Napi::Env env, const std::string& message, const char* code = "ERR_SIMDFORMER_INVALID_ARG_TYPE");
Napi::Error range_error(Napi::Env env, const std::string& message, const char* code = "ERR_SIMDFORMER_OUT_OF_RANGE");

// Expected <expected> for <name> but received <describe_value(received)>.
Napi::Error invalid_type(Napi::Env env, const std::string& name, const std::string& expected,
                         const Napi::Value& received);
Napi::Error invalid_value(Napi::Env env, const std::string& name, const std::string& expected,
                          const Napi::Value& received);

// Runs body(); turns std::bad_alloc and any other C++ exception into a JS error.
template <class Body>
Napi::Value guarded(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw range_error(env, "simdformer: out of memory", "ERR_SIMDFORMER_OUT_OF_MEMORY");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("simdformer internal error: ") + e.what());
  } catch (...) {
    throw Napi::Error::New(env, "simdformer internal error");
  }
}

}  // namespace simdformer
