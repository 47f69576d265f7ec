// The cost of gls on a gRPC unary call: client and server in one process,
// on a loopback port, with and without gls (//gls/contrib:grpc).
//
//   plain: a channel without interceptors, a sync handler as written.
//   gls:   a channel with gls's client interceptor, the call made inside a
//          scope (trace parent and a mapped request id: the interceptor
//          writes traceparent and x-request-id), the handler body in
//          gls::grpc_values::Serve (the metadata decoded, the body run in
//          the RPC's values).
//
// Two modes:
//   grpc_benchmark [benchmark flags]   BM_GrpcUnary/plain and BM_GrpcUnary/gls
//   grpc_benchmark --count=plain|gls|header|noop --rpcs=N
//       N unary RPCs between callgrind's instrumentation toggles, after 200
//       warm-up calls (bench/grpc_instructions.sh runs it under callgrind
//       with two N and divides the difference). Two reference points that
//       split gls's cost: `header` is plain with the two metadata fields
//       gls sends added by hand (what carrying them costs gRPC), `noop` is
//       plain through a client interceptor that only proceeds (what gRPC's
//       interceptor machinery costs).
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "benchmark/benchmark.h"
#include "gls/contrib/grpc.h"
#include "gls/contrib/testdata/echo.grpc.pb.h"
#include "gls/gls.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "valgrind/callgrind.h"

namespace {

using gls::test::Echo;
using gls::test::EchoReply;
using gls::test::EchoRequest;
namespace gv = gls::grpc_values;

gls::ContextManager mgr;
const gls::TypedKey<std::string> kRequestId;

gv::Propagation& Prop() {
  static gv::Propagation* p = [] {
    auto* prop = new gv::Propagation(mgr);
    prop->Map("x-request-id", kRequestId);
    return prop;
  }();
  return *p;
}

class PlainEcho final : public Echo::Service {
  grpc::Status Unary(grpc::ServerContext*, const EchoRequest* request, EchoReply* reply) override {
    reply->set_text(request->text());
    return grpc::Status::OK;
  }
};

class GlsEcho final : public Echo::Service {
  grpc::Status Unary(grpc::ServerContext* context, const EchoRequest* request,
                     EchoReply* reply) override {
    return gv::Serve(Prop(), *context, [&] {
      reply->set_text(request->text());
      return grpc::Status::OK;
    });
  }
};

// An interceptor that does nothing: gRPC's own cost of having one.
class NoopInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }
};
class NoopFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new NoopInterceptor;
  }
};

struct Setup {
  PlainEcho plain_service;
  GlsEcho gls_service;
  std::unique_ptr<grpc::Server> plain_server, gls_server;
  std::unique_ptr<Echo::Stub> plain_stub, gls_stub, noop_stub;

  Setup() {
    int plain_port = 0, gls_port = 0;
    {
      grpc::ServerBuilder b;
      b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &plain_port);
      b.RegisterService(&plain_service);
      plain_server = b.BuildAndStart();
    }
    {
      grpc::ServerBuilder b;
      b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &gls_port);
      b.RegisterService(&gls_service);
      gls_server = b.BuildAndStart();
    }
    plain_stub = Echo::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(plain_port),
                                                   grpc::InsecureChannelCredentials()));
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> f;
    f.push_back(gv::MakeClientInterceptorFactory(Prop()));
    gls_stub = Echo::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
        "127.0.0.1:" + std::to_string(gls_port), grpc::InsecureChannelCredentials(),
        grpc::ChannelArguments(), std::move(f)));
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> noop;
    noop.push_back(std::make_unique<NoopFactory>());
    noop_stub = Echo::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
        "127.0.0.1:" + std::to_string(plain_port), grpc::InsecureChannelCredentials(),
        grpc::ChannelArguments(), std::move(noop)));
  }
};

Setup& TheSetup() {
  static Setup* s = new Setup;
  return *s;
}

bool CallPlain() {
  grpc::ClientContext ctx;
  EchoRequest request;
  request.set_text("hello");
  EchoReply reply;
  return TheSetup().plain_stub->Unary(&ctx, request, &reply).ok();
}

bool CallHeader() {
  grpc::ClientContext ctx;
  ctx.AddMetadata("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
  ctx.AddMetadata("x-request-id", "req-0123456789");
  EchoRequest request;
  request.set_text("hello");
  EchoReply reply;
  return TheSetup().plain_stub->Unary(&ctx, request, &reply).ok();
}

bool CallNoop() {
  grpc::ClientContext ctx;
  EchoRequest request;
  request.set_text("hello");
  EchoReply reply;
  return TheSetup().noop_stub->Unary(&ctx, request, &reply).ok();
}

bool CallGls() {
  grpc::ClientContext ctx;
  EchoRequest request;
  request.set_text("hello");
  EchoReply reply;
  return TheSetup().gls_stub->Unary(&ctx, request, &reply).ok();
}

// The calling flow's values, as a request's would be: set once around the
// whole loop (what is measured is the call, not SetValues).
template <typename F>
void InScope(F&& fn) {
  mgr.SetValues({{Prop().keys().trace_parent, gls::w3c::StartTrace()},
                 {kRequestId, std::string("req-0123456789")}},
                fn);
}

void BM_GrpcUnary_plain(benchmark::State& state) {
  for (auto _ : state) {
    if (!CallPlain()) state.SkipWithError("rpc failed");
  }
}

void BM_GrpcUnary_gls(benchmark::State& state) {
  InScope([&] {
    for (auto _ : state) {
      if (!CallGls()) state.SkipWithError("rpc failed");
    }
  });
}

BENCHMARK(BM_GrpcUnary_plain)->Name("BM_GrpcUnary/plain");
BENCHMARK(BM_GrpcUnary_gls)->Name("BM_GrpcUnary/gls");

int Count(std::string_view mode, int rpcs) {
  bool gls = mode == "gls";
  auto loop = [&](int n) {
    for (int i = 0; i < n; ++i) {
      bool ok = gls                ? CallGls()
                : mode == "header" ? CallHeader()
                : mode == "noop"   ? CallNoop()
                                   : CallPlain();
      if (!ok) std::abort();
    }
  };
  auto run = [&] {
    loop(200);  // warm-up: connections, pools, caches
    CALLGRIND_ZERO_STATS;
    CALLGRIND_START_INSTRUMENTATION;
    loop(rpcs);
    CALLGRIND_STOP_INSTRUMENTATION;
    CALLGRIND_DUMP_STATS_AT("rpcs");
  };
  if (gls) {
    InScope(run);
  } else {
    run();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode;
  int rpcs = 1000;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.rfind("--count=", 0) == 0) mode = arg.substr(8);
    if (arg.rfind("--rpcs=", 0) == 0) rpcs = std::atoi(argv[i] + 7);
  }
  if (!mode.empty()) return Count(mode, rpcs);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
