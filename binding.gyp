{
  "targets": [
    {
      "target_name": "xvs_native",
      "sources": [
        "native/addon.cc",
        "native/error.cc",
        "native/object.cc",
        "native/map.cc",
        "native/prog.cc",
        "native/link.cc",
        "native/btf.cc",
        "native/netns.cc",
        "native/socket.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "<!@(pkg-config --cflags libbpf)"],
      "libraries": ["<!@(pkg-config --libs libbpf)"]
    }
  ]
}
