// SPDX-License-Identifier: GPL-2.0-only
// Programs (test runs, info), objects by id and by pin path, fd lifetime, and system facts.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace xvs {

// progTestRun(fd, dataIn, { repeat, dataSizeOut, ctxIn?, ctxSizeOut, flags, cpu, batchSize })
//   -> { retval, duration, dataOut, ctxOut? }   (duration: average ns per repetition)
static Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgBuffer(info, 1, "data") || !ArgObject(info, 2, "options"))
    return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto data = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Object o = info[2].As<Napi::Object>();
  uint32_t out_size = OptU32(o, "dataSizeOut", data.Length() + 256);
  std::vector<uint8_t> out(out_size);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = data.Data();
  opts.data_size_in = data.Length();
  opts.data_out = out_size ? out.data() : nullptr;
  opts.data_size_out = out_size;
  opts.repeat = OptI32(o, "repeat", 1);
  opts.flags = OptU32(o, "flags", 0);
  opts.cpu = OptU32(o, "cpu", 0);
  opts.batch_size = OptU32(o, "batchSize", 0);
  Napi::Value ctx_in = o.Get("ctxIn");
  uint32_t ctx_out_size = OptU32(o, "ctxSizeOut", 0);
  std::vector<uint8_t> ctx_out(ctx_out_size);
  if (ctx_in.IsBuffer()) {
    auto c = ctx_in.As<Napi::Buffer<uint8_t>>();
    opts.ctx_in = c.Data();
    opts.ctx_size_in = c.Length();
  }
  if (ctx_out_size) {
    opts.ctx_out = ctx_out.data();
    opts.ctx_size_out = ctx_out_size;
  }
  int err = bpf_prog_test_run_opts(fd, &opts);
  if (err) return ThrowBpf(env, err, "bpf_prog_test_run_opts", "prog fd " + std::to_string(fd));
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", opts.retval);
  r.Set("duration", opts.duration);
  // Live-frames mode produces no output packet.
  uint32_t n = std::min(opts.data_size_out, out_size);
  r.Set("dataOut", Napi::Buffer<uint8_t>::Copy(env, out.data(), n));
  if (ctx_out_size) r.Set("ctxOut", Napi::Buffer<uint8_t>::Copy(env, ctx_out.data(), opts.ctx_size_out));
  return r;
}

static Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  __u32 len = sizeof(pi);
  int err = bpf_obj_get_info_by_fd(fd, &pi, &len);
  if (err) return ThrowBpf(env, err, "bpf_obj_get_info_by_fd", "prog fd " + std::to_string(fd));
  // Second call with room for the map ids.
  std::vector<__u32> ids(pi.nr_map_ids);
  if (pi.nr_map_ids) {
    __u32 nr = pi.nr_map_ids;
    memset(&pi, 0, sizeof(pi));
    pi.nr_map_ids = nr;
    pi.map_ids = reinterpret_cast<__u64>(ids.data());
    len = sizeof(pi);
    err = bpf_obj_get_info_by_fd(fd, &pi, &len);
    if (err) return ThrowBpf(env, err, "bpf_obj_get_info_by_fd", "prog fd " + std::to_string(fd));
    ids.resize(std::min<__u32>(nr, pi.nr_map_ids));
  }
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", pi.id);
  o.Set("name", pi.name);
  o.Set("type", pi.type);
  o.Set("tag", tag);
  o.Set("xlatedLen", pi.xlated_prog_len);
  o.Set("jitedLen", pi.jited_prog_len);
  o.Set("verifiedInsns", pi.verified_insns);
  o.Set("btfId", pi.btf_id);
  o.Set("loadTime", Napi::Number::New(env, static_cast<double>(pi.load_time)));
  o.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(pi.run_time_ns)));
  o.Set("runCount", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
  Napi::Array arr = Napi::Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); i++) arr.Set(i, ids[i]);
  o.Set("mapIds", arr);
  return o;
}

// progFdById / mapFdById / linkFdById(id) -> fd the caller owns
template <int (*Fn)(__u32)>
static Napi::Value FdById(const Napi::CallbackInfo& info, const char* op) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "id")) return Napi::Value();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  int fd = Fn(id);
  if (fd < 0) return ThrowBpf(env, fd, op, "id " + std::to_string(id));
  return Napi::Number::New(env, TrackFd(env, fd));
}
static Napi::Value ProgFdById(const Napi::CallbackInfo& i) { return FdById<bpf_prog_get_fd_by_id>(i, "bpf_prog_get_fd_by_id"); }
static Napi::Value MapFdById(const Napi::CallbackInfo& i) { return FdById<bpf_map_get_fd_by_id>(i, "bpf_map_get_fd_by_id"); }
static Napi::Value LinkFdById(const Napi::CallbackInfo& i) { return FdById<bpf_link_get_fd_by_id>(i, "bpf_link_get_fd_by_id"); }

// objPin(fd, path): pin a program, map or link into a bpffs.
static Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgString(info, 1, "path")) return Napi::Value();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  int err = bpf_obj_pin(info[0].As<Napi::Number>().Int32Value(), path.c_str());
  if (err) return ThrowBpf(env, err, "bpf_obj_pin", path);
  return env.Undefined();
}

// objGet(path) -> fd of the pinned object
static Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgString(info, 0, "path")) return Napi::Value();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return ThrowBpf(env, fd, "bpf_obj_get", path);
  return Napi::Number::New(env, TrackFd(env, fd));
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  // Only fds this addon handed out may be closed here: never someone else's descriptor.
  if (!Data(env).fds.count(fd)) return ThrowBpf(env, EBADF, "close", "fd " + std::to_string(fd) + " (not ours)");
  UntrackFd(env, fd);
  close(fd);
  return env.Undefined();
}

static Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) return ThrowBpf(info.Env(), n, "libbpf_num_possible_cpus", "");
  return Napi::Number::New(info.Env(), n);
}

// isBpffs(path) -> true if path is on a bpf filesystem, false otherwise (or if it does not exist)
static Napi::Value IsBpffs(const Napi::CallbackInfo& info) {
  if (!ArgString(info, 0, "path")) return Napi::Value();
  struct statfs st;
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool ok = statfs(path.c_str(), &st) == 0 && static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC;
  return Napi::Boolean::New(info.Env(), ok);
}

void InitProg(Napi::Env env, Napi::Object exports) {
  XVS_EXPORT(exports, "progTestRun", ProgTestRun);
  XVS_EXPORT(exports, "progInfo", ProgInfo);
  XVS_EXPORT(exports, "progFdById", ProgFdById);
  XVS_EXPORT(exports, "mapFdById", MapFdById);
  XVS_EXPORT(exports, "linkFdById", LinkFdById);
  XVS_EXPORT(exports, "objPin", ObjPin);
  XVS_EXPORT(exports, "objGet", ObjGet);
  XVS_EXPORT(exports, "closeFd", CloseFd);
  XVS_EXPORT(exports, "numPossibleCpus", NumPossibleCpus);
  XVS_EXPORT(exports, "isBpffs", IsBpffs);
}

}  // namespace xvs
