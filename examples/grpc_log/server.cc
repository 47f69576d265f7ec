// examples/grpc_log: the front or back service, gls-instrumented.
//
//   server --role front|back --port N --log FILE [--back HOST:PORT]
//
// Prints "port N" (the port bound; --port 0 picks one) on stdout, then
// serves until its standard input closes. Every log line ends with the gls
// values where it was logged (common.h's flag). Handler lines also carry
// what the handler knows by itself from its raw metadata (own_req,
// own_trace, own_parent: "new" and "none" when the metadata had no single
// valid traceparent), for the test to compare against what gls printed.
//
// front: sync service (each body in gls::grpc_values::Serve). Unary, server
//   streaming (one back call per reply) and bidi (one back call per message
//   read), each calling Back.Work through gls's client interceptor; the
//   interceptor's client-span hook logs "front call span=<id>" in the
//   caller's values.
// back: callback service (gls::grpc_values::MakeReactor): "back work" in
//   the reactor's constructor (the method body) and "back done" in OnDone.
// Both: a thread logging "tick" outside every RPC every 5 ms, and each RPC's
// one warning line (bad metadata) logged as "warning: ..." in its values.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "examples/grpc_log/common.h"
#include "examples/grpc_log/grpc_log.grpc.pb.h"

namespace {

using grpc_log::Request;
using grpc_log::Reply;

std::shared_ptr<spdlog::logger> g_log;

std::string OwnIds(const grpc::ServerContextBase& context) {
  const auto& md = context.client_metadata();
  std::string req = "none";
  if (md.count("x-request-id") == 1) {
    auto it = md.find("x-request-id");
    req.assign(it->second.data(), it->second.size());
  }
  std::string trace = "new", parent = "none";
  if (md.count("traceparent") == 1) {
    auto it = md.find("traceparent");
    std::string_view tp(it->second.data(), it->second.size());
    if (auto parsed = gls::w3c::ParseTraceParent(tp)) {
      trace = parsed->TraceIdHex();
      parent = parsed->ParentIdHex();
    }
  }
  return "own_req=" + req + " own_trace=" + trace + " own_parent=" + parent;
}

class FrontService final : public grpc_log::Front::Service {
 public:
  explicit FrontService(const std::string& back)
      : back_(grpc_log::Back::NewStub(grpc_log::GlsChannel(back))) {}

  grpc::Status Unary(grpc::ServerContext* context, const Request* request,
                     Reply* reply) override {
    const std::string own = OwnIds(*context);
    return gls::grpc_values::Serve(grpc_log::Propagation(), *context, [&] {
      g_log->info("front unary {}", own);
      grpc::Status status = CallBack(request->text(), reply);
      g_log->info("front done {}", own);
      return status;
    });
  }

  grpc::Status ServerStream(grpc::ServerContext* context, const Request* request,
                            grpc::ServerWriter<Reply>* writer) override {
    const std::string own = OwnIds(*context);
    return gls::grpc_values::Serve(grpc_log::Propagation(), *context, [&] {
      g_log->info("front stream {}", own);
      for (int i = 0; i < request->count(); ++i) {
        Reply reply;
        grpc::Status status = CallBack(request->text(), &reply);
        if (!status.ok()) return status;
        writer->Write(reply);
      }
      g_log->info("front done {}", own);
      return grpc::Status::OK;
    });
  }

  grpc::Status Bidi(grpc::ServerContext* context,
                    grpc::ServerReaderWriter<Reply, Request>* stream) override {
    const std::string own = OwnIds(*context);
    return gls::grpc_values::Serve(grpc_log::Propagation(), *context, [&] {
      g_log->info("front bidi {}", own);
      Request request;
      while (stream->Read(&request)) {
        g_log->info("front message {}", own);
        Reply reply;
        grpc::Status status = CallBack(request.text(), &reply);
        if (!status.ok()) return status;
        stream->Write(reply);
      }
      g_log->info("front done {}", own);
      return grpc::Status::OK;
    });
  }

 private:
  // In the RPC's values: the interceptor sends them on.
  grpc::Status CallBack(const std::string& text, Reply* reply) {
    grpc::ClientContext ctx;
    Request request;
    request.set_text(text);
    return back_->Work(&ctx, request, reply);
  }

  std::unique_ptr<grpc_log::Back::Stub> back_;
};

class WorkReactor : public grpc::ServerUnaryReactor {
 public:
  WorkReactor(const grpc::CallbackServerContext& context, const Request& /*request*/,
              Reply* reply)
      : own_(OwnIds(context)) {
    g_log->info("back work {}", own_);
    const std::string* id = grpc_log::Manager().GetValue(grpc_log::RequestIdKey());
    reply->set_text(id == nullptr ? "none" : *id);
    Finish(grpc::Status::OK);
  }
  void OnDone() override {
    g_log->info("back done {}", own_);
    delete this;
  }

 private:
  std::string own_;
};

class BackService final : public grpc_log::Back::CallbackService {
  grpc::ServerUnaryReactor* Work(grpc::CallbackServerContext* context, const Request* request,
                                 Reply* reply) override {
    return gls::grpc_values::MakeReactor<WorkReactor>(grpc_log::Propagation(), *context,
                                                      *context, *request, reply);
  }
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "server: " << why
            << "\nusage: server --role front|back --port N --log FILE [--back HOST:PORT]\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string role, log_file, back;
  int port = -1;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) Usage(std::string(flag) + " needs a value");
    std::string value = argv[++i];
    if (flag == "--role") {
      role = value;
    } else if (flag == "--port") {
      port = std::atoi(value.c_str());
    } else if (flag == "--log") {
      log_file = value;
    } else if (flag == "--back") {
      back = value;
    } else {
      Usage("unknown flag " + std::string(flag));
    }
  }
  if (role != "front" && role != "back") Usage("--role is front or back");
  if (port < 0 || port > 65535) Usage("--port is required");
  if (log_file.empty()) Usage("--log is required");
  if (role == "front" && back.empty()) Usage("front needs --back");

  g_log = grpc_log::MakeLogger(log_file);
  grpc_log::Propagation()
      .OnWarning([](std::string_view line) { g_log->warn("warning: {}", line); })
      .OnClientSpan([](const gls::w3c::TraceParent& sent) {
        g_log->info("front call span={}", sent.ParentIdHex());
      });
  g_log->info("{} starting", role);

  std::unique_ptr<FrontService> front;
  std::unique_ptr<BackService> back_service;
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                           grpc::InsecureServerCredentials(), &bound);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 256 * 1024);
  if (role == "front") {
    front = std::make_unique<FrontService>(back);
    builder.RegisterService(front.get());
  } else {
    back_service = std::make_unique<BackService>();
    builder.RegisterService(back_service.get());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound == 0) {
    std::cerr << "server: could not listen on port " << port << "\n";
    return 1;
  }
  std::cout << "port " << bound << std::endl;

  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    while (!stop.load()) {
      g_log->info("tick");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  // Until the test closes our standard input.
  char buf[64];
  while (::read(0, buf, sizeof buf) > 0) {
  }
  server->Shutdown();
  stop = true;
  ticker.join();
  g_log->info("{} stopped", role);
  g_log->flush();
  return 0;
}
