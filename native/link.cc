// SPDX-License-Identifier: GPL-2.0-only
// XDP attachment, both ways the kernel offers: a bpf_link (owned by an fd or a pin, updated
// atomically) and the netlink attachment (outlives every fd; atomic replace with
// XDP_FLAGS_REPLACE). Plus what is attached where, and interface names.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <string.h>

#include <cerrno>

#include "common.h"

namespace xvs {

// xdpLinkCreate(progFd, ifindex, xdpFlags) -> link fd
static Napi::Value XdpLinkCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "prog fd") || !ArgNumber(info, 1, "ifindex") || !ArgNumber(info, 2, "flags"))
    return Napi::Value();
  int ifindex = info[1].As<Napi::Number>().Int32Value();
  LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = info[2].As<Napi::Number>().Uint32Value());
  int fd = bpf_link_create(info[0].As<Napi::Number>().Int32Value(), ifindex, BPF_XDP, &opts);
  if (fd < 0) return ThrowBpf(env, fd, "bpf_link_create", "ifindex " + std::to_string(ifindex));
  return Napi::Number::New(env, TrackFd(env, fd));
}

// linkUpdate(linkFd, newProgFd, oldProgFd): oldProgFd > 0 makes it a compare-and-swap.
static Napi::Value LinkUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "link fd") || !ArgNumber(info, 1, "prog fd")) return Napi::Value();
  int link = info[0].As<Napi::Number>().Int32Value();
  int old = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
  LIBBPF_OPTS(bpf_link_update_opts, opts);
  if (old > 0) {
    opts.old_prog_fd = old;
    opts.flags = BPF_F_REPLACE;
  }
  int err = bpf_link_update(link, info[1].As<Napi::Number>().Int32Value(), &opts);
  if (err) return ThrowBpf(env, err, "bpf_link_update", "link fd " + std::to_string(link));
  return env.Undefined();
}

static Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "link fd")) return Napi::Value();
  int link = info[0].As<Napi::Number>().Int32Value();
  int err = bpf_link_detach(link);
  if (err) return ThrowBpf(env, err, "bpf_link_detach", "link fd " + std::to_string(link));
  return env.Undefined();
}

static Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "link fd")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct bpf_link_info li;
  memset(&li, 0, sizeof(li));
  __u32 len = sizeof(li);
  int err = bpf_obj_get_info_by_fd(fd, &li, &len);
  if (err) return ThrowBpf(env, err, "bpf_obj_get_info_by_fd", "link fd " + std::to_string(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", li.id);
  o.Set("type", li.type);
  o.Set("progId", li.prog_id);
  if (li.type == BPF_LINK_TYPE_XDP) o.Set("ifindex", li.xdp.ifindex);
  return o;
}

// xdpAttach(ifindex, progFd, xdpFlags, oldProgFd): netlink attachment; with XDP_FLAGS_REPLACE
// and oldProgFd, replaces only if that program is still the one attached.
static Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "ifindex") || !ArgNumber(info, 1, "prog fd") || !ArgNumber(info, 2, "flags"))
    return Napi::Value();
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  if (info.Length() > 3 && info[3].IsNumber()) opts.old_prog_fd = info[3].As<Napi::Number>().Int32Value();
  int err = bpf_xdp_attach(ifindex, info[1].As<Napi::Number>().Int32Value(),
                           info[2].As<Napi::Number>().Uint32Value(), &opts);
  if (err) return ThrowBpf(env, err, "bpf_xdp_attach", "ifindex " + std::to_string(ifindex));
  return env.Undefined();
}

static Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "ifindex") || !ArgNumber(info, 1, "flags")) return Napi::Value();
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  if (info.Length() > 2 && info[2].IsNumber()) opts.old_prog_fd = info[2].As<Napi::Number>().Int32Value();
  int err = bpf_xdp_detach(ifindex, info[1].As<Napi::Number>().Uint32Value(), &opts);
  if (err) return ThrowBpf(env, err, "bpf_xdp_detach", "ifindex " + std::to_string(ifindex));
  return env.Undefined();
}

// xdpQuery(ifindex) -> { attachMode, progId, drvProgId, skbProgId, hwProgId }
static Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "ifindex")) return Napi::Value();
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  int err = bpf_xdp_query(ifindex, 0, &opts);
  if (err) return ThrowBpf(env, err, "bpf_xdp_query", "ifindex " + std::to_string(ifindex));
  Napi::Object o = Napi::Object::New(env);
  o.Set("attachMode", opts.attach_mode);
  o.Set("progId", opts.prog_id);
  o.Set("drvProgId", opts.drv_prog_id);
  o.Set("skbProgId", opts.skb_prog_id);
  o.Set("hwProgId", opts.hw_prog_id);
  return o;
}

// ifNameToIndex(name) -> ifindex, in the calling thread's network namespace
static Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgString(info, 0, "interface name")) return Napi::Value();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  unsigned idx = if_nametoindex(name.c_str());
  if (!idx) return ThrowBpf(env, errno ? errno : ENODEV, "if_nametoindex", name);
  return Napi::Number::New(env, idx);
}

static Napi::Value IfIndexToName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "ifindex")) return Napi::Value();
  char buf[IF_NAMESIZE];
  unsigned idx = info[0].As<Napi::Number>().Uint32Value();
  if (!if_indextoname(idx, buf)) return ThrowBpf(env, errno ? errno : ENODEV, "if_indextoname", std::to_string(idx));
  return Napi::String::New(env, buf);
}

// ifList() -> [{ ifindex, name }] of the calling thread's network namespace (if_nameindex)
static Napi::Value IfList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct if_nameindex* list = if_nameindex();
  if (!list) return ThrowBpf(env, errno, "if_nameindex", "");
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (struct if_nameindex* p = list; p->if_index != 0 && p->if_name; p++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("ifindex", p->if_index);
    o.Set("name", p->if_name);
    out.Set(n++, o);
  }
  if_freenameindex(list);
  return out;
}

void InitLink(Napi::Env env, Napi::Object exports) {
  XVS_EXPORT(exports, "ifList", IfList);
  XVS_EXPORT(exports, "xdpLinkCreate", XdpLinkCreate);
  XVS_EXPORT(exports, "linkUpdate", LinkUpdate);
  XVS_EXPORT(exports, "linkDetach", LinkDetach);
  XVS_EXPORT(exports, "linkInfo", LinkInfo);
  XVS_EXPORT(exports, "xdpAttach", XdpAttach);
  XVS_EXPORT(exports, "xdpDetach", XdpDetach);
  XVS_EXPORT(exports, "xdpQuery", XdpQuery);
  XVS_EXPORT(exports, "ifNameToIndex", IfNameToIndex);
  XVS_EXPORT(exports, "ifIndexToName", IfIndexToName);
}

}  // namespace xvs
