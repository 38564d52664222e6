// SPDX-License-Identifier: GPL-2.0-only
// Raw IP sockets (one IP protocol on one interface, such as VRRP's 112), AF_PACKET sends of whole
// Ethernet frames (gratuitous ARP, unsolicited NA), and readiness polling of a descriptor on Node's
// event loop. Each call maps onto one or two syscalls; what to send, when, and what a packet means is
// decided in TypeScript. Addresses cross the boundary as 4- or 16-byte Buffers in network order.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <memory>

#include "common.h"

namespace xvs {

static bool FamilyArg(const Napi::CallbackInfo& info, size_t i, int* family) {
  if (!ArgNumber(info, i, "family")) return false;
  int f = info[i].As<Napi::Number>().Int32Value();
  if (f != AF_INET && f != AF_INET6) {
    ThrowType(info.Env(), "family must be AF_INET (2) or AF_INET6 (10)");
    return false;
  }
  *family = f;
  return true;
}

static bool AddrArg(const Napi::CallbackInfo& info, size_t i, int family, const char* what, const uint8_t** out) {
  if (!ArgBuffer(info, i, what)) return false;
  auto b = info[i].As<Napi::Buffer<uint8_t>>();
  if (b.Length() != (family == AF_INET ? 4u : 16u)) {
    ThrowType(info.Env(), std::string(what) + " must be " + (family == AF_INET ? "4" : "16") + " bytes for this family");
    return false;
  }
  *out = b.Data();
  return true;
}

// rawOpen(family, protocol, ifname) -> fd: a non-blocking raw socket for one IP protocol, bound to
// the interface (SO_BINDTODEVICE; "" binds to none), reporting each packet's destination and
// interface (IP_PKTINFO / IPV6_RECVPKTINFO) and TTL / hop limit (IP_RECVTTL / IPV6_RECVHOPLIMIT).
static Napi::Value RawOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family;
  if (!FamilyArg(info, 0, &family) || !ArgNumber(info, 1, "protocol") || !ArgString(info, 2, "ifname")) return Napi::Value();
  int protocol = info[1].As<Napi::Number>().Int32Value();
  std::string ifname = info[2].As<Napi::String>().Utf8Value();
  int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return ThrowBpf(env, errno, "socket(SOCK_RAW)", "protocol " + std::to_string(protocol));
  auto fail = [&](const char* op) {
    int err = errno;
    close(fd);
    return ThrowBpf(env, err, op, ifname.empty() ? "protocol " + std::to_string(protocol) : ifname);
  };
  if (!ifname.empty() && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), ifname.size()) != 0)
    return fail("setsockopt(SO_BINDTODEVICE)");
  int on = 1;
  if (family == AF_INET) {
    if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) != 0) return fail("setsockopt(IP_PKTINFO)");
    if (setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof(on)) != 0) return fail("setsockopt(IP_RECVTTL)");
  } else {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) != 0) return fail("setsockopt(IPV6_RECVPKTINFO)");
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof(on)) != 0) return fail("setsockopt(IPV6_RECVHOPLIMIT)");
  }
  return Napi::Number::New(env, TrackFd(env, fd));
}

// sockSetInt(fd, level, name, value): setsockopt with an int value (TTLs, loop flags, IPV6_CHECKSUM).
static Napi::Value SockSetInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgNumber(info, 1, "level") || !ArgNumber(info, 2, "name") || !ArgNumber(info, 3, "value"))
    return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int level = info[1].As<Napi::Number>().Int32Value();
  int name = info[2].As<Napi::Number>().Int32Value();
  int value = info[3].As<Napi::Number>().Int32Value();
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0)
    return ThrowBpf(env, errno, "setsockopt", "level " + std::to_string(level) + " option " + std::to_string(name));
  return env.Undefined();
}

// mcastMembership(fd, family, group, ifindex, join): IP_ADD/DROP_MEMBERSHIP, IPV6_ADD/DROP_MEMBERSHIP.
static Napi::Value McastMembership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family;
  const uint8_t* group;
  if (!ArgNumber(info, 0, "fd") || !FamilyArg(info, 1, &family) || !AddrArg(info, 2, family, "group", &group) ||
      !ArgNumber(info, 3, "ifindex"))
    return Napi::Value();
  if (info.Length() < 5 || !info[4].IsBoolean()) return ThrowType(env, "argument 4 (join) must be a boolean");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int ifindex = info[3].As<Napi::Number>().Int32Value();
  bool join = info[4].As<Napi::Boolean>().Value();
  int rc;
  const char* op;
  if (family == AF_INET) {
    struct ip_mreqn m = {};
    memcpy(&m.imr_multiaddr, group, 4);
    m.imr_ifindex = ifindex;
    op = join ? "setsockopt(IP_ADD_MEMBERSHIP)" : "setsockopt(IP_DROP_MEMBERSHIP)";
    rc = setsockopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &m, sizeof(m));
  } else {
    struct ipv6_mreq m = {};
    memcpy(&m.ipv6mr_multiaddr, group, 16);
    m.ipv6mr_interface = ifindex;
    op = join ? "setsockopt(IPV6_ADD_MEMBERSHIP)" : "setsockopt(IPV6_DROP_MEMBERSHIP)";
    rc = setsockopt(fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, &m, sizeof(m));
  }
  if (rc != 0) return ThrowBpf(env, errno, op, "ifindex " + std::to_string(ifindex));
  return env.Undefined();
}

// rawSend(fd, family, data, dst, src|null, ifindex) -> bytes sent: sendmsg to dst, with the source
// address and outgoing interface in an IP_PKTINFO / IPV6_PKTINFO message when given (ifindex 0 and
// src null: the kernel chooses). For IPv6 the ifindex is also dst's scope (link-local, multicast).
static Napi::Value RawSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family;
  const uint8_t* dst;
  const uint8_t* src = nullptr;
  if (!ArgNumber(info, 0, "fd") || !FamilyArg(info, 1, &family) || !ArgBuffer(info, 2, "data") ||
      !AddrArg(info, 3, family, "dst", &dst))
    return Napi::Value();
  if (info.Length() > 4 && !info[4].IsNull() && !AddrArg(info, 4, family, "src", &src)) return Napi::Value();
  if (!ArgNumber(info, 5, "ifindex")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto data = info[2].As<Napi::Buffer<uint8_t>>();
  int ifindex = info[5].As<Napi::Number>().Int32Value();

  struct sockaddr_storage to = {};
  socklen_t tolen;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct in6_pktinfo))] = {};
  struct iovec iov = {data.Data(), data.Length()};
  struct msghdr msg = {};
  msg.msg_name = &to;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  bool pktinfo = src != nullptr || ifindex != 0;
  if (pktinfo) {
    msg.msg_control = control;
    msg.msg_controllen = family == AF_INET ? CMSG_SPACE(sizeof(struct in_pktinfo)) : CMSG_SPACE(sizeof(struct in6_pktinfo));
  }
  struct cmsghdr* c = pktinfo ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(&to);
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, dst, 4);
    tolen = sizeof(*sin);
    if (c) {
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
      struct in_pktinfo pi = {};
      pi.ipi_ifindex = ifindex;
      if (src) memcpy(&pi.ipi_spec_dst, src, 4);
      memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    }
  } else {
    auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(&to);
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, dst, 16);
    if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr) || IN6_IS_ADDR_MULTICAST(&sin6->sin6_addr)) sin6->sin6_scope_id = ifindex;
    tolen = sizeof(*sin6);
    if (c) {
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
      struct in6_pktinfo pi = {};
      pi.ipi6_ifindex = ifindex;
      if (src) memcpy(&pi.ipi6_addr, src, 16);
      memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    }
  }
  msg.msg_namelen = tolen;
  ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) return ThrowBpf(env, errno, "sendmsg", "fd " + std::to_string(fd));
  return Napi::Number::New(env, static_cast<double>(n));
}

// rawRecv(fd, family, maxLen) -> {data, src, dst, hops, ifindex} | null when nothing is queued.
// data is what the socket delivers (IPv4 raw sockets: with the IP header); dst is null and hops -1
// when the kernel gave no such control message.
static Napi::Value RawRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family;
  if (!ArgNumber(info, 0, "fd") || !FamilyArg(info, 1, &family) || !ArgNumber(info, 2, "maxLen")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint32_t maxLen = info[2].As<Napi::Number>().Uint32Value();
  if (maxLen == 0 || maxLen > 65535) return ThrowType(env, "maxLen must be 1..65535");
  std::unique_ptr<uint8_t[]> buf(new uint8_t[maxLen]);
  struct sockaddr_storage from = {};
  alignas(struct cmsghdr) char control[256];
  struct iovec iov = {buf.get(), maxLen};
  struct msghdr msg = {};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof(from);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    return ThrowBpf(env, errno, "recvmsg", "fd " + std::to_string(fd));
  }
  Napi::Object out = Napi::Object::New(env);
  size_t len = static_cast<size_t>(n) > maxLen ? maxLen : static_cast<size_t>(n);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, buf.get(), len));
  out.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & MSG_TRUNC) != 0));
  int hops = -1;
  int ifindex = 0;
  Napi::Value dst = env.Null();
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
      memcpy(&hops, CMSG_DATA(c), sizeof(int));
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      ifindex = pi.ipi_ifindex;
      dst = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(&pi.ipi_addr), 4);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
      memcpy(&hops, CMSG_DATA(c), sizeof(int));
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      ifindex = pi.ipi6_ifindex;
      dst = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(&pi.ipi6_addr), 16);
    }
  }
  if (from.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(&from);
    out.Set("src", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(&sin->sin_addr), 4));
  } else if (from.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(&from);
    out.Set("src", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(&sin6->sin6_addr), 16));
  } else {
    out.Set("src", env.Null());
  }
  out.Set("dst", dst);
  out.Set("hops", Napi::Number::New(env, hops));
  out.Set("ifindex", Napi::Number::New(env, ifindex));
  return out;
}

// packetOpen(ifindex) -> fd: an AF_PACKET socket that sends whole frames on one interface and
// receives nothing (protocol 0).
static Napi::Value PacketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "ifindex")) return Napi::Value();
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowBpf(env, errno, "socket(AF_PACKET)", "ifindex " + std::to_string(ifindex));
  struct sockaddr_ll sll = {};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = 0;
  sll.sll_ifindex = ifindex;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) != 0) {
    int err = errno;
    close(fd);
    return ThrowBpf(env, err, "bind(AF_PACKET)", "ifindex " + std::to_string(ifindex));
  }
  return Napi::Number::New(env, TrackFd(env, fd));
}

// packetSend(fd, ifindex, frame) -> bytes sent: the frame as given, Ethernet header included.
static Napi::Value PacketSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgNumber(info, 1, "ifindex") || !ArgBuffer(info, 2, "frame")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int ifindex = info[1].As<Napi::Number>().Int32Value();
  auto frame = info[2].As<Napi::Buffer<uint8_t>>();
  if (frame.Length() < ETH_HLEN) return ThrowType(env, "frame is shorter than an Ethernet header");
  struct sockaddr_ll sll = {};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_halen = ETH_ALEN;
  memcpy(&sll.sll_protocol, frame.Data() + 12, 2);  // the EtherType, network order
  memcpy(sll.sll_addr, frame.Data(), ETH_ALEN);
  ssize_t n = sendto(fd, frame.Data(), frame.Length(), MSG_DONTWAIT, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll));
  if (n < 0) return ThrowBpf(env, errno, "sendto(AF_PACKET)", "ifindex " + std::to_string(ifindex));
  return Napi::Number::New(env, static_cast<double>(n));
}

// --- readiness polling ---------------------------------------------------------------------------
// pollStart(fd, callback) -> handle: callback() runs on the JS thread whenever fd is readable (libuv
// uv_poll_t on Node's loop; it keeps the loop alive). pollStop(handle) stops it for good; stop before
// closing the fd. A callback that throws raises an uncaught exception, as any event handler does.

struct Poller {
  uv_poll_t handle;
  napi_env env;
  Napi::FunctionReference cb;
  std::unique_ptr<Napi::AsyncContext> context;
  bool stopped = false;
};

static void PollClosed(uv_handle_t* h) { delete static_cast<Poller*>(h->data); }

static void PollTeardown(void* arg) {
  // Environment teardown: JS is gone, so the references must not be released through it.
  auto* p = static_cast<Poller*>(arg);
  p->cb.SuppressDestruct();
  p->context.release();
  p->stopped = true;
  uv_poll_stop(&p->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), PollClosed);
}

static void OnPoll(uv_poll_t* h, int status, int events) {
  auto* p = static_cast<Poller*>(h->data);
  if (p->stopped) return;
  Napi::Env env(p->env);
  Napi::HandleScope scope(env);
  p->cb.MakeCallback(env.Global(), {Napi::Number::New(env, status), Napi::Number::New(env, events)}, *p->context);
  if (env.IsExceptionPending()) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
  }
}

static Napi::Value PollStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd")) return Napi::Value();
  if (info.Length() < 2 || !info[1].IsFunction()) return ThrowType(env, "argument 1 (callback) must be a function");
  int fd = info[0].As<Napi::Number>().Int32Value();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return ThrowBpf(env, EINVAL, "napi_get_uv_event_loop", "");
  auto* p = new Poller();
  p->env = env;
  int rc = uv_poll_init(loop, &p->handle, fd);
  if (rc != 0) {
    delete p;
    return ThrowBpf(env, -rc, "uv_poll_init", "fd " + std::to_string(fd));
  }
  p->handle.data = p;
  p->cb = Napi::Persistent(info[1].As<Napi::Function>());
  p->context = std::make_unique<Napi::AsyncContext>(env, "xvs:poll");
  rc = uv_poll_start(&p->handle, UV_READABLE, OnPoll);
  if (rc != 0) {
    p->stopped = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), PollClosed);
    return ThrowBpf(env, -rc, "uv_poll_start", "fd " + std::to_string(fd));
  }
  napi_add_env_cleanup_hook(env, PollTeardown, p);
  return Napi::External<Poller>::New(env, p);
}

static Napi::Value PollStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) return ThrowType(env, "argument 0 (handle) must be a poll handle");
  auto* p = info[0].As<Napi::External<Poller>>().Data();
  if (p->stopped) return env.Undefined();
  p->stopped = true;
  napi_remove_env_cleanup_hook(env, PollTeardown, p);
  uv_poll_stop(&p->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), PollClosed);
  return env.Undefined();
}

void InitSocket(Napi::Env env, Napi::Object exports) {
  XVS_EXPORT(exports, "rawOpen", RawOpen);
  XVS_EXPORT(exports, "rawSend", RawSend);
  XVS_EXPORT(exports, "rawRecv", RawRecv);
  XVS_EXPORT(exports, "sockSetInt", SockSetInt);
  XVS_EXPORT(exports, "mcastMembership", McastMembership);
  XVS_EXPORT(exports, "packetOpen", PacketOpen);
  XVS_EXPORT(exports, "packetSend", PacketSend);
  XVS_EXPORT(exports, "pollStart", PollStart);
  XVS_EXPORT(exports, "pollStop", PollStop);
}

}  // namespace xvs
