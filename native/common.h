// SPDX-License-Identifier: GPL-2.0-only
// Shared helpers of the xvs native addon: a thin, policy-free binding of the system libbpf.
// Every export validates its arguments' JS types (TypeScript validates their meaning before the
// call) and reports libbpf failures as one error class carrying code, errno, op and target.
#pragma once

#include <napi.h>

#include <set>
#include <string>

namespace xvs {

// Per-addon-instance state (worker threads each get their own).
struct AddonData {
  Napi::FunctionReference error_class;  // BpfError, handed over from TypeScript
  std::set<int> fds;                    // fds opened here and not yet closed; closed at env teardown
};

AddonData& Data(const Napi::Env& env);

// Track an fd this addon opened, so the cleanup hook closes it if TypeScript never does.
int TrackFd(const Napi::Env& env, int fd);
void UntrackFd(const Napi::Env& env, int fd);

// Throw the BpfError class with errno `err` (positive), the libbpf operation and its target.
// `log` is the verifier/libbpf log where there is one. Always returns an empty Value.
Napi::Value ThrowBpf(const Napi::Env& env, int err, const std::string& op, const std::string& target,
                     const std::string& log = "");
Napi::Value ThrowType(const Napi::Env& env, const std::string& msg);

// libbpf's print callback appends here while a capture is active (object load).
void LogCaptureBegin();
std::string LogCaptureEnd();

// Argument checks: each returns false after throwing a TypeError.
bool ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what);
bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
bool ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what);
bool ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what);

// Optional property readers for option objects.
uint32_t OptU32(const Napi::Object& o, const char* key, uint32_t dflt);
int32_t OptI32(const Napi::Object& o, const char* key, int32_t dflt);

// Registration functions, one per topic file.
void InitObject(Napi::Env env, Napi::Object exports);
void InitMap(Napi::Env env, Napi::Object exports);
void InitProg(Napi::Env env, Napi::Object exports);
void InitLink(Napi::Env env, Napi::Object exports);
void InitBtf(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);

}  // namespace xvs

#define XVS_EXPORT(exports, name, fn) (exports).Set((name), Napi::Function::New(env, (fn), (name)))
