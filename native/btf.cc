// SPDX-License-Identifier: GPL-2.0-only
// BTF of an object file: the layout of a named struct and the values of a named enum, so that
// TypeScript codecs can be checked against what the compiler actually produced.
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <memory>

#include "common.h"

namespace xvs {

using BtfPtr = std::unique_ptr<struct btf, void (*)(struct btf*)>;

static BtfPtr Parse(const Napi::Env& env, const std::string& path) {
  struct btf* btf = btf__parse_elf(path.c_str(), nullptr);
  int err = libbpf_get_error(btf);
  if (err) {
    ThrowBpf(env, err, "btf__parse_elf", path);
    return BtfPtr(nullptr, btf__free);
  }
  return BtfPtr(btf, btf__free);
}

// btfStruct(path, name) -> { size, members: [{ name, offset, size, bitSize }] }  (bytes)
static Napi::Value BtfStruct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgString(info, 0, "path") || !ArgString(info, 1, "struct name")) return Napi::Value();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  BtfPtr btf = Parse(env, path);
  if (!btf) return Napi::Value();
  int id = btf__find_by_name_kind(btf.get(), name.c_str(), BTF_KIND_STRUCT);
  if (id < 0) id = btf__find_by_name_kind(btf.get(), name.c_str(), BTF_KIND_UNION);
  if (id < 0) return ThrowBpf(env, ENOENT, "btf__find_by_name_kind", path + ": struct " + name);
  const struct btf_type* t = btf__type_by_id(btf.get(), id);
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", t->size);
  Napi::Array members = Napi::Array::New(env);
  const struct btf_member* m = btf_members(t);
  for (unsigned i = 0; i < btf_vlen(t); i++, m++) {
    Napi::Object mo = Napi::Object::New(env);
    mo.Set("name", btf__name_by_offset(btf.get(), m->name_off));
    uint32_t bit_off = btf_member_bit_offset(t, i);
    mo.Set("offset", bit_off / 8);
    mo.Set("bitSize", btf_member_bitfield_size(t, i));
    long long size = btf__resolve_size(btf.get(), m->type);
    mo.Set("size", Napi::Number::New(env, static_cast<double>(size)));
    members.Set(i, mo);
  }
  o.Set("members", members);
  return o;
}

// btfEnum(path, name) -> { NAME: value, ... }
static Napi::Value BtfEnum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgString(info, 0, "path") || !ArgString(info, 1, "enum name")) return Napi::Value();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  BtfPtr btf = Parse(env, path);
  if (!btf) return Napi::Value();
  int id = btf__find_by_name_kind(btf.get(), name.c_str(), BTF_KIND_ENUM);
  if (id < 0) return ThrowBpf(env, ENOENT, "btf__find_by_name_kind", path + ": enum " + name);
  const struct btf_type* t = btf__type_by_id(btf.get(), id);
  Napi::Object o = Napi::Object::New(env);
  const struct btf_enum* e = btf_enum(t);
  for (unsigned i = 0; i < btf_vlen(t); i++, e++) o.Set(btf__name_by_offset(btf.get(), e->name_off), e->val);
  return o;
}

void InitBtf(Napi::Env env, Napi::Object exports) {
  XVS_EXPORT(exports, "btfStruct", BtfStruct);
  XVS_EXPORT(exports, "btfEnum", BtfEnum);
}

}  // namespace xvs
