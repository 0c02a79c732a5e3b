// Copyright (c) Coffer authors.
//
// Runs a fuzz target over stored inputs without libFuzzer, so the targets
// build with any compiler and their seed corpora and crash reproducers run
// as regression tests:
//   <name>_fuzz_replay [--if-exists DIR] FILE|DIR...
// Feeds every file (every regular file of a directory, in name order; names
// starting with '.' skipped) to LLVMFuzzerTestOneInput. A missing path is an
// error, except a directory given with --if-exists (a target's regression
// directory exists once it has a reproducer). A finding aborts the process;
// no input at all is an error (a test must not pass empty).

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    bool optional = false;
    if (std::string(argv[i]) == "--if-exists" && i + 1 < argc) {
      optional = true;
      ++i;
    }
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (optional && !fs::exists(arg, ec)) continue;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(arg, ec)) {
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') {
          files.push_back(e.path());
        }
      }
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: %s is neither a file nor a directory\n",
                   argv[i]);
      return 2;
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs given\n");
    return 2;
  }
  for (const fs::path& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "replay: cannot read %s\n", p.c_str());
      return 2;
    }
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", p.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()),
                           bytes.size());
  }
  std::printf("replay: %zu inputs, no findings\n", inputs.size());
  return 0;
}
