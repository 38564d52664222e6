// SPDX-License-Identifier: GPL-2.0-only
// Errors, fd tracking, argument checks and the libbpf log capture.
#include <bpf/libbpf.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>

#include "common.h"

namespace xvs {

AddonData& Data(const Napi::Env& env) { return *env.GetInstanceData<AddonData>(); }

int TrackFd(const Napi::Env& env, int fd) {
  if (fd >= 0) Data(env).fds.insert(fd);
  return fd;
}

void UntrackFd(const Napi::Env& env, int fd) { Data(env).fds.erase(fd); }

static const char* ErrnoName(int err) {
  switch (err) {
#define E(x) \
  case x:    \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(EAGAIN) E(ENOMEM)
    E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE)
    E(ENOSPC) E(ERANGE) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENAMETOOLONG) E(EOVERFLOW)
    E(EOPNOTSUPP) E(ENOTSOCK) E(EADDRNOTAVAIL) E(ENETDOWN) E(ENOBUFS) E(ESTALE) E(ENOMSG) E(EBADMSG)
    E(ENOLINK) E(EPROTO) E(ENODATA) E(ETIMEDOUT) E(ECANCELED)
    E(ENETUNREACH) E(EHOSTUNREACH) E(EADDRINUSE) E(ECONNREFUSED) E(EMSGSIZE) E(EPROTONOSUPPORT) E(EAFNOSUPPORT)
#undef E
    // libbpf's own error codes (libbpf.h: enum libbpf_errno)
    case LIBBPF_ERRNO__LIBELF: return "LIBBPF_ERRNO__LIBELF";
    case LIBBPF_ERRNO__FORMAT: return "LIBBPF_ERRNO__FORMAT";
    case LIBBPF_ERRNO__KVERSION: return "LIBBPF_ERRNO__KVERSION";
    case LIBBPF_ERRNO__ENDIAN: return "LIBBPF_ERRNO__ENDIAN";
    case LIBBPF_ERRNO__INTERNAL: return "LIBBPF_ERRNO__INTERNAL";
    case LIBBPF_ERRNO__RELOC: return "LIBBPF_ERRNO__RELOC";
    case LIBBPF_ERRNO__LOAD: return "LIBBPF_ERRNO__LOAD";
    case LIBBPF_ERRNO__VERIFY: return "LIBBPF_ERRNO__VERIFY";
    case LIBBPF_ERRNO__PROG2BIG: return "LIBBPF_ERRNO__PROG2BIG";
    case LIBBPF_ERRNO__KVER: return "LIBBPF_ERRNO__KVER";
    case LIBBPF_ERRNO__PROGTYPE: return "LIBBPF_ERRNO__PROGTYPE";
    case LIBBPF_ERRNO__WRNGPID: return "LIBBPF_ERRNO__WRNGPID";
    case LIBBPF_ERRNO__INVSEQ: return "LIBBPF_ERRNO__INVSEQ";
    case LIBBPF_ERRNO__NLPARSE: return "LIBBPF_ERRNO__NLPARSE";
    default: return "EUNKNOWN";
  }
}

Napi::Value ThrowBpf(const Napi::Env& env, int err, const std::string& op, const std::string& target,
                     const std::string& log) {
  if (err < 0) err = -err;
  char buf[256];
  libbpf_strerror(err, buf, sizeof(buf));
  std::string msg = op + (target.empty() ? "" : " " + target) + ": " + buf;
  Napi::Object props = Napi::Object::New(env);
  props.Set("code", ErrnoName(err));
  props.Set("errno", err);
  props.Set("op", op);
  props.Set("target", target);
  if (!log.empty()) props.Set("log", log);
  AddonData& data = Data(env);
  if (data.error_class.IsEmpty()) {
    Napi::Error e = Napi::Error::New(env, msg);
    for (const char* k : {"code", "errno", "op", "target", "log"})
      if (props.Has(k)) e.Value().Set(k, props.Get(k));
    e.ThrowAsJavaScriptException();
  } else {
    Napi::Value e = data.error_class.New({Napi::String::New(env, msg), props});
    if (!env.IsExceptionPending()) Napi::Error(env, e).ThrowAsJavaScriptException();
  }
  return Napi::Value();
}

Napi::Value ThrowType(const Napi::Env& env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return Napi::Value();
}

// --- libbpf log capture ----------------------------------------------------------------------
// libbpf reports verifier logs and its own diagnostics through one process-wide print callback.
// All calls happen on the JS thread, so a single buffer is enough.
static bool capturing = false;
static std::string captured;

static int PrintFn(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (!capturing || level == LIBBPF_DEBUG) return 0;
  char buf[4096];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (n > 0 && captured.size() < (4u << 20)) captured.append(buf, std::min<size_t>(n, sizeof(buf) - 1));
  return n;
}

void LogCaptureBegin() {
  static bool installed = false;
  if (!installed) {
    libbpf_set_print(PrintFn);
    installed = true;
  }
  captured.clear();
  capturing = true;
}

std::string LogCaptureEnd() {
  capturing = false;
  std::string out;
  out.swap(captured);
  return out;
}

// --- argument checks ---------------------------------------------------------------------------
static bool Fail(const Napi::CallbackInfo& info, size_t i, const char* what, const char* kind) {
  ThrowType(info.Env(), std::string("argument ") + std::to_string(i) + " (" + what + ") must be " + kind);
  return false;
}

bool ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return (info.Length() > i && info[i].IsNumber()) || Fail(info, i, what, "a number");
}
bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return (info.Length() > i && info[i].IsString()) || Fail(info, i, what, "a string");
}
bool ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return (info.Length() > i && info[i].IsBuffer()) || Fail(info, i, what, "a Buffer");
}
bool ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return (info.Length() > i && info[i].IsObject()) || Fail(info, i, what, "an object");
}

uint32_t OptU32(const Napi::Object& o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : dflt;
}
int32_t OptI32(const Napi::Object& o, const char* key, int32_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : dflt;
}

}  // namespace xvs
