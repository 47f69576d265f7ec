// examples/grpc_log: the e2e test's load: --threads client threads, each
// making --rpcs calls to the front service, mixing unary, server streaming
// (3 replies) and bidi (3 messages), one in 8 with hostile metadata and no
// gls scope. Writes one record per RPC to --out:
//   <request id> <kind> <messages> <trace id|new> <client span|none> <hostile 0|1>
// (the trace the call was made in and the span id gls's interceptor sent,
// as the OnClientSpan hook saw it), and exits non-zero if any RPC failed.
//
//   client --target HOST:PORT --threads 16 --rpcs 130 --out FILE
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "examples/grpc_log/common.h"
#include "examples/grpc_log/grpc_log.grpc.pb.h"

namespace {

thread_local std::string t_client_span = "none";

// gRPC lets these through (printable ASCII, raised metadata limit); the
// front must ignore them field by field, warn once, and start a new trace.
const std::vector<std::vector<std::pair<std::string, std::string>>>& Hostile() {
  static const auto* h = new std::vector<std::vector<std::pair<std::string, std::string>>>{
      {{"traceparent", "00-xyz-nothex-01"}},
      {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
       {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
      {{"tracestate", "no-traceparent=1"}},
      {{"baggage", "k=" + std::string(40000, 'v')}},
      {{"traceparent", "00-" + std::string(32, '0') + "-00f067aa0ba902b7-01"},
       {"baggage", ",,=;;,%zz"}},
  };
  return *h;
}

int Messages(int kind) { return kind == 0 ? 1 : 3; }

bool Call(grpc_log::Front::Stub& stub, int kind, const std::string& id, size_t hostile) {
  grpc::ClientContext ctx;
  if (hostile != 0) {
    ctx.AddMetadata("x-request-id", id);
    for (const auto& [name, value] : Hostile()[hostile - 1]) ctx.AddMetadata(name, value);
  }
  grpc_log::Request request;
  request.set_text(id);
  request.set_count(3);
  grpc_log::Reply reply;
  grpc::Status status;
  int replies = 0;
  bool right = true;
  auto check = [&] {
    ++replies;
    if (reply.text() != id) right = false;  // the back saw another request id
  };
  if (kind == 0) {
    status = stub.Unary(&ctx, request, &reply);
    if (status.ok()) check();
  } else if (kind == 1) {
    auto reader = stub.ServerStream(&ctx, request);
    while (reader->Read(&reply)) check();
    status = reader->Finish();
  } else {
    auto stream = stub.Bidi(&ctx);
    for (int i = 0; i < 3; ++i) {
      stream->Write(request);
      if (stream->Read(&reply)) check();
    }
    stream->WritesDone();
    status = stream->Finish();
  }
  if (!status.ok() || !right || replies != Messages(kind)) {
    std::cerr << "client: " << id << " kind " << kind << ": " << status.error_message()
              << " replies " << replies << (right ? "" : " (wrong request id)") << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, out;
  int threads = 16, rpcs = 130;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    if (flag == "--target") target = argv[i + 1];
    if (flag == "--out") out = argv[i + 1];
    if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    if (flag == "--rpcs") rpcs = std::atoi(argv[i + 1]);
  }
  if (target.empty() || out.empty()) {
    std::cerr << "usage: client --target HOST:PORT --out FILE [--threads T] [--rpcs N]\n";
    return 2;
  }
  grpc_log::Propagation().OnClientSpan(
      [](const gls::w3c::TraceParent& sent) { t_client_span = sent.ParentIdHex(); });
  auto stub = grpc_log::Front::NewStub(grpc_log::GlsChannel(target));
  std::mutex mu;
  std::ofstream records(out);
  std::atomic<int> failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < rpcs; ++i) {
        int kind = (i + t) % 3;
        std::string id = "c" + std::to_string(t) + "-" + std::to_string(i);
        size_t hostile = i % 8 == 7 ? 1 + static_cast<size_t>(i / 8 + t) % Hostile().size() : 0;
        std::string trace = "new";
        t_client_span = "none";
        bool ok;
        if (hostile != 0) {
          ok = Call(*stub, kind, id, hostile);  // outside every scope
        } else {
          gls::w3c::TraceParent tp = gls::w3c::StartTrace();
          trace = tp.TraceIdHex();
          ok = grpc_log::Manager().SetValues(
              {{grpc_log::Propagation().keys().trace_parent, tp},
               {grpc_log::RequestIdKey(), id}},
              [&] { return Call(*stub, kind, id, 0); });
        }
        if (!ok) failed.fetch_add(1);
        std::lock_guard<std::mutex> lock(mu);
        records << id << ' ' << kind << ' ' << Messages(kind) << ' ' << trace << ' '
                << t_client_span << ' ' << (hostile != 0 ? 1 : 0) << '\n';
      }
    });
  }
  for (auto& th : pool) th.join();
  records.close();
  if (failed.load() != 0) {
    std::cerr << "client: " << failed.load() << " RPCs failed\n";
    return 1;
  }
  return 0;
}
