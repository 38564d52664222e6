// SPDX-License-Identifier: GPL-2.0-only
// Network namespaces for the calling thread. Every libbpf call of this addon runs synchronously
// on the JS thread, so switching that thread's namespace lets one process attach programs,
// resolve interface names and write devmaps inside a lab or a director namespace.
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace xvs {

// netnsOpen(path) -> fd; path such as /run/netns/NAME or /proc/thread-self/ns/net
static Napi::Value NetnsOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgString(info, 0, "path")) return Napi::Value();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ThrowBpf(env, errno, "open netns", path);
  return Napi::Number::New(env, TrackFd(env, fd));
}

// netnsSet(fd): move the calling (JS) thread into that network namespace
static Napi::Value NetnsSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (setns(fd, CLONE_NEWNET) != 0) return ThrowBpf(env, errno, "setns", "fd " + std::to_string(fd));
  return env.Undefined();
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

// netnsCookie() -> the calling thread's network namespace cookie as a decimal string: unique for
// the boot, never reused (unlike nsfs inode numbers, which a later namespace may get again).
static Napi::Value NetnsCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowBpf(env, errno, "socket", "netns cookie");
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  int err = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  int saved = errno;
  close(fd);
  if (err) return ThrowBpf(env, saved, "getsockopt(SO_NETNS_COOKIE)", "");
  return Napi::String::New(env, std::to_string(cookie));
}

void InitNetns(Napi::Env env, Napi::Object exports) {
  XVS_EXPORT(exports, "netnsCookie", NetnsCookie);
  XVS_EXPORT(exports, "netnsOpen", NetnsOpen);
  XVS_EXPORT(exports, "netnsSet", NetnsSet);
}

}  // namespace xvs
