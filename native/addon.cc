// SPDX-License-Identifier: GPL-2.0-only
// Entry file: creates the per-instance state and registers each topic's exports. Nothing else.
#include <unistd.h>

#include "common.h"

namespace xvs {

static void Cleanup(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  for (int fd : data->fds) close(fd);
  data->fds.clear();
}

static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) return ThrowType(env, "setErrorClass(cls): cls must be a function");
  Data(env).error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  napi_add_env_cleanup_hook(env, Cleanup, data);
  XVS_EXPORT(exports, "setErrorClass", SetErrorClass);
  InitObject(env, exports);
  InitMap(env, exports);
  InitProg(env, exports);
  InitLink(env, exports);
  InitBtf(env, exports);
  InitNetns(env, exports);
  InitSocket(env, exports);
  return exports;
}

}  // namespace xvs

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return xvs::Init(env, exports); }

NODE_API_MODULE(xvs_native, InitAddon)
