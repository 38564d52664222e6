// SPDX-License-Identifier: GPL-2.0-only
// Map operations on fds: info, lookup/update/delete, key iteration and the batch calls.
// Sizes come from TypeScript, which checks them against mapInfo() before calling.
#include <bpf/bpf.h>
#include <string.h>

#include <cerrno>
#include <vector>

#include "common.h"

namespace xvs {

static std::string FdName(int fd) { return "map fd " + std::to_string(fd); }

static Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  __u32 len = sizeof(mi);
  int err = bpf_obj_get_info_by_fd(fd, &mi, &len);
  if (err) return ThrowBpf(env, err, "bpf_obj_get_info_by_fd", FdName(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", mi.id);
  o.Set("name", mi.name);
  o.Set("type", mi.type);
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  o.Set("flags", mi.map_flags);
  o.Set("btfId", mi.btf_id);
  return o;
}

// mapLookup(fd, key, valueSize, flags) -> Buffer | null (null when the key is absent)
static Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgBuffer(info, 1, "key") || !ArgNumber(info, 2, "value size"))
    return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  uint32_t vsize = info[2].As<Napi::Number>().Uint32Value();
  uint64_t flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  auto value = Napi::Buffer<uint8_t>::New(env, vsize);
  int err = bpf_map_lookup_elem_flags(fd, key.Data(), value.Data(), flags);
  if (err == -ENOENT) return env.Null();
  if (err) return ThrowBpf(env, err, "bpf_map_lookup_elem", FdName(fd));
  return value;
}

// mapUpdate(fd, key, value, flags): flags BPF_ANY / BPF_NOEXIST / BPF_EXIST (| BPF_F_LOCK)
static Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgBuffer(info, 1, "key") || !ArgBuffer(info, 2, "value") ||
      !ArgNumber(info, 3, "flags"))
    return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  auto value = info[2].As<Napi::Buffer<uint8_t>>();
  int err = bpf_map_update_elem(fd, key.Data(), value.Data(), info[3].As<Napi::Number>().Int64Value());
  if (err) return ThrowBpf(env, err, "bpf_map_update_elem", FdName(fd));
  return env.Undefined();
}

// mapDelete(fd, key) -> true if deleted, false if absent
static Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgBuffer(info, 1, "key")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int err = bpf_map_delete_elem(fd, info[1].As<Napi::Buffer<uint8_t>>().Data());
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  if (err) return ThrowBpf(env, err, "bpf_map_delete_elem", FdName(fd));
  return Napi::Boolean::New(env, true);
}

// mapNextKey(fd, key | null, keySize) -> Buffer | null (null after the last key)
static Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgNumber(info, 2, "key size")) return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  const void* cur = nullptr;
  if (info[1].IsBuffer()) cur = info[1].As<Napi::Buffer<uint8_t>>().Data();
  auto next = Napi::Buffer<uint8_t>::New(env, info[2].As<Napi::Number>().Uint32Value());
  int err = bpf_map_get_next_key(fd, cur, next.Data());
  if (err == -ENOENT) return env.Null();
  if (err) return ThrowBpf(env, err, "bpf_map_get_next_key", FdName(fd));
  return next;
}

// mapLookupBatch(fd, token | null, tokenSize, keySize, valueSize, maxCount)
//   -> { keys, values, count, token | null }  (token null: the walk is complete)
static Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgNumber(info, 2, "token size") || !ArgNumber(info, 3, "key size") ||
      !ArgNumber(info, 4, "value size") || !ArgNumber(info, 5, "max count"))
    return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint32_t tsize = info[2].As<Napi::Number>().Uint32Value();
  uint32_t ksize = info[3].As<Napi::Number>().Uint32Value();
  uint32_t vsize = info[4].As<Napi::Number>().Uint32Value();
  uint32_t max = info[5].As<Napi::Number>().Uint32Value();
  std::vector<uint8_t> in_tok(tsize), out_tok(tsize);
  void* in = nullptr;
  if (info[1].IsBuffer()) {
    auto t = info[1].As<Napi::Buffer<uint8_t>>();
    memcpy(in_tok.data(), t.Data(), std::min<size_t>(t.Length(), tsize));
    in = in_tok.data();
  }
  auto keys = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(ksize) * max);
  auto values = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(vsize) * max);
  __u32 count = max;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int err = bpf_map_lookup_batch(fd, in, out_tok.data(), keys.Data(), values.Data(), &count, &opts);
  bool done = err == -ENOENT;
  if (err && !done) return ThrowBpf(env, err, "bpf_map_lookup_batch", FdName(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("keys", keys);
  o.Set("values", values);
  o.Set("count", count);
  o.Set("token", done ? env.Null() : Napi::Buffer<uint8_t>::Copy(env, out_tok.data(), tsize).As<Napi::Value>());
  return o;
}

// mapUpdateBatch(fd, keys, values, count, flags) -> number of elements written
static Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgBuffer(info, 1, "keys") || !ArgBuffer(info, 2, "values") ||
      !ArgNumber(info, 3, "count") || !ArgNumber(info, 4, "flags"))
    return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  __u32 count = info[3].As<Napi::Number>().Uint32Value();
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = static_cast<__u64>(info[4].As<Napi::Number>().Int64Value()));
  int err = bpf_map_update_batch(fd, info[1].As<Napi::Buffer<uint8_t>>().Data(),
                                 info[2].As<Napi::Buffer<uint8_t>>().Data(), &count, &opts);
  if (err) return ThrowBpf(env, err, "bpf_map_update_batch", FdName(fd) + " after " + std::to_string(count));
  return Napi::Number::New(env, count);
}

// mapDeleteBatch(fd, keys, count) -> number of elements deleted
static Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "fd") || !ArgBuffer(info, 1, "keys") || !ArgNumber(info, 2, "count"))
    return Napi::Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  __u32 count = info[2].As<Napi::Number>().Uint32Value();
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int err = bpf_map_delete_batch(fd, info[1].As<Napi::Buffer<uint8_t>>().Data(), &count, &opts);
  if (err && err != -ENOENT) return ThrowBpf(env, err, "bpf_map_delete_batch", FdName(fd));
  return Napi::Number::New(env, count);
}

// mapCreate(type, name, keySize, valueSize, maxEntries, flags, innerMapFd) -> fd the caller owns.
// For maps that live outside any object: inner tables of a map-in-map, scratch maps in tests.
static Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgNumber(info, 0, "type") || !ArgString(info, 1, "name") || !ArgNumber(info, 2, "key size") ||
      !ArgNumber(info, 3, "value size") || !ArgNumber(info, 4, "max entries") || !ArgNumber(info, 5, "flags"))
    return Napi::Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = info[5].As<Napi::Number>().Uint32Value());
  if (info.Length() > 6 && info[6].IsNumber()) opts.inner_map_fd = info[6].As<Napi::Number>().Uint32Value();
  int fd = bpf_map_create(static_cast<enum bpf_map_type>(info[0].As<Napi::Number>().Uint32Value()), name.c_str(),
                          info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value(),
                          info[4].As<Napi::Number>().Uint32Value(), &opts);
  if (fd < 0) return ThrowBpf(env, fd, "bpf_map_create", name);
  return Napi::Number::New(env, TrackFd(env, fd));
}

void InitMap(Napi::Env env, Napi::Object exports) {
  XVS_EXPORT(exports, "mapCreate", MapCreate);
  XVS_EXPORT(exports, "mapInfo", MapInfo);
  XVS_EXPORT(exports, "mapLookup", MapLookup);
  XVS_EXPORT(exports, "mapUpdate", MapUpdate);
  XVS_EXPORT(exports, "mapDelete", MapDelete);
  XVS_EXPORT(exports, "mapNextKey", MapNextKey);
  XVS_EXPORT(exports, "mapLookupBatch", MapLookupBatch);
  XVS_EXPORT(exports, "mapUpdateBatch", MapUpdateBatch);
  XVS_EXPORT(exports, "mapDeleteBatch", MapDeleteBatch);
}

}  // namespace xvs
