// SPDX-License-Identifier: GPL-2.0-only
// BPF object files: open, adjust before load (pin root, map sizes, map reuse, const volatile
// globals), load with the verifier log captured, and hand out duplicated program and map fds so
// the object may be closed while TypeScript keeps using them.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace xvs {

class NativeObject : public Napi::ObjectWrap<NativeObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeObject",
                       {
                           InstanceMethod("programs", &NativeObject::Programs),
                           InstanceMethod("maps", &NativeObject::Maps),
                           InstanceMethod("setMaxEntries", &NativeObject::SetMaxEntries),
                           InstanceMethod("setPinPath", &NativeObject::SetPinPath),
                           InstanceMethod("reuseMapFd", &NativeObject::ReuseMapFd),
                           InstanceMethod("setGlobal", &NativeObject::SetGlobal),
                           InstanceMethod("load", &NativeObject::Load),
                           InstanceMethod("programFd", &NativeObject::ProgramFd),
                           InstanceMethod("mapFd", &NativeObject::MapFd),
                           InstanceMethod("close", &NativeObject::Close),
                       });
  }

  // new NativeObject(path, { pinRoot?: string })
  NativeObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeObject>(info) {
    Napi::Env env = info.Env();
    if (!ArgString(info, 0, "path")) return;
    path_ = info[0].As<Napi::String>().Utf8Value();
    std::string pin_root;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Value v = info[1].As<Napi::Object>().Get("pinRoot");
      if (v.IsString()) pin_root = v.As<Napi::String>().Utf8Value();
    }
    LIBBPF_OPTS(bpf_object_open_opts, opts);
    if (!pin_root.empty()) opts.pin_root_path = pin_root.c_str();
    LogCaptureBegin();
    struct bpf_object* obj = bpf_object__open_file(path_.c_str(), &opts);
    int err = libbpf_get_error(obj);
    std::string log = LogCaptureEnd();
    if (err) {
      ThrowBpf(env, err, "bpf_object__open_file", path_, log);
      return;
    }
    obj_ = obj;
  }

  ~NativeObject() override {
    if (obj_) bpf_object__close(obj_);
  }

 private:
  struct bpf_object* obj_ = nullptr;
  std::string path_;
  bool loaded_ = false;

  bool Open(const Napi::Env& env) {
    if (obj_) return true;
    ThrowBpf(env, EBADF, "bpf_object", path_ + " (closed)");
    return false;
  }

  struct bpf_map* FindMap(const Napi::CallbackInfo& info, const char* op) {
    if (!Open(info.Env()) || !ArgString(info, 0, "map name")) return nullptr;
    std::string name = info[0].As<Napi::String>().Utf8Value();
    struct bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
    if (!map) ThrowBpf(info.Env(), ENOENT, op, path_ + ": map " + name);
    return map;
  }

  struct bpf_program* FindProg(const Napi::CallbackInfo& info, const char* op) {
    if (!Open(info.Env()) || !ArgString(info, 0, "program name")) return nullptr;
    std::string name = info[0].As<Napi::String>().Utf8Value();
    struct bpf_program* prog = bpf_object__find_program_by_name(obj_, name.c_str());
    if (!prog) ThrowBpf(info.Env(), ENOENT, op, path_ + ": program " + name);
    return prog;
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return Napi::Value();
    Napi::Array out = Napi::Array::New(env);
    struct bpf_program* prog;
    uint32_t i = 0;
    bpf_object__for_each_program(prog, obj_) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", bpf_program__name(prog));
      p.Set("section", bpf_program__section_name(prog));
      p.Set("type", static_cast<uint32_t>(bpf_program__type(prog)));
      if (loaded_) p.Set("insnCount", static_cast<uint32_t>(bpf_program__insn_cnt(prog)));
      out.Set(i++, p);
    }
    return out;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return Napi::Value();
    Napi::Array out = Napi::Array::New(env);
    struct bpf_map* map;
    uint32_t i = 0;
    bpf_object__for_each_map(map, obj_) {
      Napi::Object m = Napi::Object::New(env);
      m.Set("name", bpf_map__name(map));
      m.Set("type", static_cast<uint32_t>(bpf_map__type(map)));
      m.Set("keySize", bpf_map__key_size(map));
      m.Set("valueSize", bpf_map__value_size(map));
      m.Set("maxEntries", bpf_map__max_entries(map));
      m.Set("internal", bpf_map__is_internal(map));
      const char* pin = bpf_map__pin_path(map);
      if (pin) m.Set("pinPath", pin);
      m.Set("reused", loaded_ && bpf_map__is_pinned(map));
      out.Set(i++, m);
    }
    return out;
  }

  // setMaxEntries(mapName, n): before load only (libbpf refuses afterwards with EBUSY).
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info) {
    struct bpf_map* map = FindMap(info, "bpf_map__set_max_entries");
    if (!map || !ArgNumber(info, 1, "max entries")) return Napi::Value();
    int err = bpf_map__set_max_entries(map, info[1].As<Napi::Number>().Uint32Value());
    if (err) return ThrowBpf(info.Env(), err, "bpf_map__set_max_entries", bpf_map__name(map));
    return info.Env().Undefined();
  }

  // setPinPath(mapName, path | null): libbpf reuses a compatible map already pinned there at load,
  // and pins the new one there otherwise.
  Napi::Value SetPinPath(const Napi::CallbackInfo& info) {
    struct bpf_map* map = FindMap(info, "bpf_map__set_pin_path");
    if (!map) return Napi::Value();
    std::string p;
    if (info.Length() > 1 && info[1].IsString()) p = info[1].As<Napi::String>().Utf8Value();
    int err = bpf_map__set_pin_path(map, p.empty() ? nullptr : p.c_str());
    if (err) return ThrowBpf(info.Env(), err, "bpf_map__set_pin_path", bpf_map__name(map));
    return info.Env().Undefined();
  }

  // reuseMapFd(mapName, fd): use an existing map (found by id, for instance) instead of creating one.
  Napi::Value ReuseMapFd(const Napi::CallbackInfo& info) {
    struct bpf_map* map = FindMap(info, "bpf_map__reuse_fd");
    if (!map || !ArgNumber(info, 1, "fd")) return Napi::Value();
    int err = bpf_map__reuse_fd(map, info[1].As<Napi::Number>().Int32Value());
    if (err) return ThrowBpf(info.Env(), err, "bpf_map__reuse_fd", bpf_map__name(map));
    return info.Env().Undefined();
  }

  // setGlobal(varName, bytes): write a global variable (a `const volatile` setting in .rodata, or
  // .data/.bss) before load. The size must match the variable's BTF size exactly.
  Napi::Value SetGlobal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env) || !ArgString(info, 0, "variable name") || !ArgBuffer(info, 1, "value")) return Napi::Value();
    std::string name = info[0].As<Napi::String>().Utf8Value();
    Napi::Buffer<uint8_t> val = info[1].As<Napi::Buffer<uint8_t>>();
    if (loaded_) return ThrowBpf(env, EBUSY, "set global", name + " (object already loaded)");
    const struct btf* btf = bpf_object__btf(obj_);
    if (!btf) return ThrowBpf(env, ENODATA, "set global", path_ + " has no BTF");
    for (const char* sec : {".rodata", ".data", ".bss"}) {
      int sec_id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
      if (sec_id < 0) continue;
      const struct btf_type* t = btf__type_by_id(btf, sec_id);
      const struct btf_var_secinfo* vs = btf_var_secinfos(t);
      for (unsigned i = 0; i < btf_vlen(t); i++, vs++) {
        const struct btf_type* var = btf__type_by_id(btf, vs->type);
        if (name != btf__name_by_offset(btf, var->name_off)) continue;
        if (vs->size != val.Length())
          return ThrowBpf(env, EINVAL, "set global",
                          name + ": value is " + std::to_string(val.Length()) + " bytes, variable is " +
                              std::to_string(vs->size));
        struct bpf_map* map;
        bpf_object__for_each_map(map, obj_) {
          const char* mname = bpf_map__name(map);
          size_t ml = strlen(mname), sl = strlen(sec);
          if (!bpf_map__is_internal(map) || ml < sl || strcmp(mname + ml - sl, sec) != 0) continue;
          size_t size = 0;
          // libbpf 1.1 returns const, but the buffer is the writable image used at load time.
          uint8_t* data = static_cast<uint8_t*>(const_cast<void*>(bpf_map__initial_value(map, &size)));
          if (!data || vs->offset + vs->size > size) return ThrowBpf(env, EINVAL, "set global", name);
          memcpy(data + vs->offset, val.Data(), vs->size);
          return env.Undefined();
        }
        return ThrowBpf(env, ENOENT, "set global", name + ": no map for section " + sec);
      }
    }
    return ThrowBpf(env, ENOENT, "set global", path_ + ": variable " + name);
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return Napi::Value();
    LogCaptureBegin();
    int err = bpf_object__load(obj_);
    std::string log = LogCaptureEnd();
    if (err) return ThrowBpf(env, err, "bpf_object__load", path_, log);
    loaded_ = true;
    return env.Undefined();
  }

  static Napi::Value Dup(const Napi::Env& env, int fd, const char* op, const std::string& name) {
    if (fd < 0) return ThrowBpf(env, fd == -1 ? EBADF : -fd, op, name + " (not loaded)");
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) return ThrowBpf(env, errno, op, name);
    return Napi::Number::New(env, TrackFd(env, copy));
  }

  // programFd(name) / mapFd(name): a duplicate fd the caller owns (close with closeFd).
  Napi::Value ProgramFd(const Napi::CallbackInfo& info) {
    struct bpf_program* prog = FindProg(info, "bpf_program__fd");
    if (!prog) return Napi::Value();
    return Dup(info.Env(), bpf_program__fd(prog), "bpf_program__fd", bpf_program__name(prog));
  }

  Napi::Value MapFd(const Napi::CallbackInfo& info) {
    struct bpf_map* map = FindMap(info, "bpf_map__fd");
    if (!map) return Napi::Value();
    return Dup(info.Env(), bpf_map__fd(map), "bpf_map__fd", bpf_map__name(map));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
    return info.Env().Undefined();
  }
};

void InitObject(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeObject", NativeObject::Define(env));
}

}  // namespace xvs
