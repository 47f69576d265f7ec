// gls/contrib/grpc.h: the client interceptor, every server handler shape
// (sync, callback reactors of the four kinds, async CompletionQueue), and
// bad metadata. The leak test runs many RPCs with different values from
// several client threads against servers whose few threads run them all:
// every piece of handler code checks it sees exactly its own RPC's values
// (the ids it reads from the raw metadata by itself), and handlers left
// unwrapped on the same threads check they see nothing.
#include "gls/contrib/grpc.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gls/contrib/testdata/echo.grpc.pb.h"
#include "gls/gls.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "gtest/gtest.h"

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

// Failures seen on server threads, reported by the test thread.
std::atomic<int> g_failures{0};
std::atomic<int> g_checks{0};
std::atomic<int> g_cancels{0};  // OnCancel reactions run
// Streaming reactors made for the cancellation test's calls.
std::atomic<int> g_cancel_test_reactors{0};
std::mutex g_mu;
std::vector<std::string> g_messages;
std::set<std::thread::id> g_threads;
std::vector<std::string> g_warnings;

void Fail(const std::string& message) {
  g_failures.fetch_add(1);
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_messages.size() < 20) g_messages.push_back(message);
}

void NoteThread() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_threads.insert(std::this_thread::get_id());
}

std::string Get(const gls::TypedKey<std::string>& key) {
  const std::string* v = mgr.GetValue(key);
  return v == nullptr ? "<none>" : *v;
}

// What the handler knows by itself, from the raw metadata: the request id,
// the caller's trace id and its span (the client call's span).
struct Expected {
  bool plain = false;        // sent with x-plain: handled unwrapped
  bool fresh_trace = false;  // no usable traceparent: a new trace, no parent
  std::string request_id = "<none>";
  std::string trace_id;
  std::string parent_id = "<none>";
};

Expected ExpectedOf(const grpc::ServerContextBase& context) {
  Expected e;
  const auto& md = context.client_metadata();
  e.plain = md.count("x-plain") != 0;
  if (auto it = md.find("x-request-id"); md.count("x-request-id") == 1 &&
                                         it->second.size() <= gv::kMaxMappedValueBytes) {
    e.request_id.assign(it->second.data(), it->second.size());
  }
  auto it = md.find("traceparent");
  if (md.count("traceparent") == 1 &&
      gls::w3c::ParseTraceParent(std::string_view(it->second.data(), it->second.size()))) {
    std::string tp(it->second.data(), it->second.size());
    e.trace_id = tp.substr(3, 32);
    e.parent_id = tp.substr(36, 16);
  } else {
    e.fresh_trace = true;
  }
  return e;
}

// An OnCancel reaction ran (after its check): counted, and the test thread
// waiting in WaitForCancels woken.
std::mutex g_cancel_mu;
std::condition_variable g_cancel_cv;
void CountCancel() {
  {
    std::lock_guard<std::mutex> lock(g_cancel_mu);
    g_cancels.fetch_add(1);
  }
  g_cancel_cv.notify_all();
}
// Waits (at most `deadline`) until as many OnCancel reactions ran as
// cancellation-test reactors were made.
void WaitForCancels(std::chrono::seconds deadline) {
  std::unique_lock<std::mutex> lock(g_cancel_mu);
  g_cancel_cv.wait_for(lock, deadline, [] {
    return g_cancels.load() >= g_cancel_test_reactors.load();
  });
}

void CountCancelTestReactor(const Expected& e) {
  if (e.request_id.rfind("cancel-", 0) == 0) g_cancel_test_reactors.fetch_add(1);
}

// Checks the running code sees exactly the RPC's values (or, for a plain
// RPC handled unwrapped, nothing at all).
void Check(const Expected& e, const char* where) {
  g_checks.fetch_add(1);
  NoteThread();
  const gv::TraceKeys& k = Prop().keys();
  if (e.plain) {
    if (mgr.GetValue(kRequestId) || mgr.GetValue(k.trace_id) || mgr.GetValue(k.trace_parent) ||
        mgr.GetValue(k.span_id) || mgr.GetValue(k.parent_id)) {
      Fail(std::string(where) + ": plain RPC sees request_id=" + Get(kRequestId) +
           " trace_id=" + Get(k.trace_id));
    }
    return;
  }
  std::string got_id = Get(kRequestId);
  std::string got_trace = Get(k.trace_id);
  std::string got_parent = Get(k.parent_id);
  const gls::w3c::TraceParent* tp = mgr.GetValue(k.trace_parent);
  if (e.fresh_trace) {
    if (tp == nullptr || got_trace != tp->TraceIdHex() || got_parent != "<none>" ||
        got_id != e.request_id) {
      Fail(std::string(where) + ": fresh trace wanted, got request_id=" + got_id +
           " trace_id=" + got_trace + " parent=" + got_parent);
    }
    return;
  }
  if (got_id != e.request_id || got_trace != e.trace_id || got_parent != e.parent_id ||
      tp == nullptr || tp->TraceIdHex() != e.trace_id || tp->ParentIdHex() != Get(k.span_id) ||
      Get(k.span_id) == e.parent_id) {
    Fail(std::string(where) + ": want request_id=" + e.request_id + " trace_id=" + e.trace_id +
         " parent=" + e.parent_id + ", got " + got_id + " " + got_trace + " " + got_parent);
  }
}

// ---------------------------------------------------------------- sync

class SyncEcho final : public Echo::Service {
 public:
  grpc::Status Unary(grpc::ServerContext* context, const EchoRequest* request,
                     EchoReply* reply) override {
    Expected e = ExpectedOf(*context);
    auto body = [&] {
      Check(e, "sync unary");
      reply->set_text(Get(kRequestId));
      return grpc::Status::OK;
    };
    return e.plain ? body() : gv::Serve(Prop(), *context, body);
  }
  grpc::Status ServerStream(grpc::ServerContext* context, const EchoRequest* request,
                            grpc::ServerWriter<EchoReply>* writer) override {
    Expected e = ExpectedOf(*context);
    auto body = [&] {
      for (int i = 0; i < request->count(); ++i) {
        Check(e, "sync server stream");
        EchoReply reply;
        reply.set_text(Get(kRequestId));
        writer->Write(reply);
      }
      return grpc::Status::OK;
    };
    return e.plain ? body() : gv::Serve(Prop(), *context, body);
  }
  grpc::Status ClientStream(grpc::ServerContext* context,
                            grpc::ServerReader<EchoRequest>* reader,
                            EchoReply* reply) override {
    Expected e = ExpectedOf(*context);
    auto body = [&] {
      EchoRequest request;
      while (reader->Read(&request)) Check(e, "sync client stream");
      reply->set_text(Get(kRequestId));
      return grpc::Status::OK;
    };
    return e.plain ? body() : gv::Serve(Prop(), *context, body);
  }
  grpc::Status Bidi(grpc::ServerContext* context,
                    grpc::ServerReaderWriter<EchoReply, EchoRequest>* stream) override {
    Expected e = ExpectedOf(*context);
    auto body = [&] {
      EchoRequest request;
      while (stream->Read(&request)) {
        Check(e, "sync bidi");
        EchoReply reply;
        reply.set_text(Get(kRequestId));
        stream->Write(reply);
      }
      return grpc::Status::OK;
    };
    return e.plain ? body() : gv::Serve(Prop(), *context, body);
  }
};

// ------------------------------------------------------------ callback

class UnaryReactor : public grpc::ServerUnaryReactor {
 public:
  UnaryReactor(const grpc::CallbackServerContext& context, EchoReply* reply)
      : expected_(ExpectedOf(context)) {
    Check(expected_, "callback unary body");
    reply->set_text(Get(kRequestId));
    Finish(grpc::Status::OK);
  }
  void OnCancel() override {
    Check(expected_, "callback unary OnCancel");
    CountCancel();
  }
  void OnDone() override {
    Check(expected_, "callback unary OnDone");
    delete this;
  }

 private:
  Expected expected_;
};

class WriteReactor : public grpc::ServerWriteReactor<EchoReply> {
 public:
  WriteReactor(const grpc::CallbackServerContext& context, const EchoRequest& request)
      : expected_(ExpectedOf(context)), left_(request.count()) {
    Check(expected_, "callback server stream body");
    Next();
  }
  void OnWriteDone(bool ok) override {
    Check(expected_, "callback server stream OnWriteDone");
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
    Next();
  }
  void OnCancel() override {
    Check(expected_, "callback server stream OnCancel");
    CountCancel();
  }
  void OnDone() override {
    Check(expected_, "callback server stream OnDone");
    delete this;
  }

 private:
  void Next() {
    if (left_-- <= 0) return Finish(grpc::Status::OK);
    reply_.set_text(Get(kRequestId));
    StartWrite(&reply_);
  }
  Expected expected_;
  int left_;
  EchoReply reply_;
};

class ReadReactor : public grpc::ServerReadReactor<EchoRequest> {
 public:
  ReadReactor(const grpc::CallbackServerContext& context, EchoReply* reply)
      : expected_(ExpectedOf(context)), reply_(reply) {
    Check(expected_, "callback client stream body");
    CountCancelTestReactor(expected_);
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    Check(expected_, "callback client stream OnReadDone");
    if (!ok) {
      reply_->set_text(Get(kRequestId));
      return Finish(grpc::Status::OK);
    }
    StartRead(&request_);
  }
  void OnCancel() override {
    Check(expected_, "callback client stream OnCancel");
    CountCancel();
  }
  void OnDone() override {
    Check(expected_, "callback client stream OnDone");
    delete this;
  }

 private:
  Expected expected_;
  EchoReply* reply_;
  EchoRequest request_;
};

class BidiReactor : public grpc::ServerBidiReactor<EchoRequest, EchoReply> {
 public:
  explicit BidiReactor(const grpc::CallbackServerContext& context)
      : expected_(ExpectedOf(context)) {
    Check(expected_, "callback bidi body");
    CountCancelTestReactor(expected_);
    StartSendInitialMetadata();
    StartRead(&request_);
  }
  void OnSendInitialMetadataDone(bool) override {
    Check(expected_, "callback bidi OnSendInitialMetadataDone");
  }
  void OnReadDone(bool ok) override {
    Check(expected_, "callback bidi OnReadDone");
    if (!ok) return Finish(grpc::Status::OK);
    reply_.set_text(Get(kRequestId));
    StartWrite(&reply_);
  }
  void OnWriteDone(bool ok) override {
    Check(expected_, "callback bidi OnWriteDone");
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
    StartRead(&request_);
  }
  void OnCancel() override {
    Check(expected_, "callback bidi OnCancel");
    CountCancel();
  }
  void OnDone() override {
    Check(expected_, "callback bidi OnDone");
    delete this;
  }

 private:
  Expected expected_;
  EchoRequest request_;
  EchoReply reply_;
};

// Plain RPCs (x-plain) get the same reactors made without gls, on the same
// threads: they must see nothing.
template <typename R, typename... Args>
R* Make(grpc::CallbackServerContext* context, Args&&... args) {
  if (ExpectedOf(*context).plain) return new R(*context, std::forward<Args>(args)...);
  return gv::MakeReactor<R>(Prop(), *context, *context, std::forward<Args>(args)...);
}

class CallbackEcho final : public Echo::CallbackService {
 public:
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const EchoRequest*,
                                  EchoReply* reply) override {
    return Make<UnaryReactor>(context, reply);
  }
  grpc::ServerWriteReactor<EchoReply>* ServerStream(grpc::CallbackServerContext* context,
                                                    const EchoRequest* request) override {
    return Make<WriteReactor>(context, *request);
  }
  grpc::ServerReadReactor<EchoRequest>* ClientStream(grpc::CallbackServerContext* context,
                                                     EchoReply* reply) override {
    return Make<ReadReactor>(context, reply);
  }
  grpc::ServerBidiReactor<EchoRequest, EchoReply>* Bidi(
      grpc::CallbackServerContext* context) override {
    return Make<BidiReactor>(context);
  }
};

// --------------------------------------------------------------- async

// One async call's state machine: its values are decoded when the request
// tag arrives and every later tag's code runs in them.
class AsyncCall {
 public:
  virtual ~AsyncCall() = default;
  // Runs for each of the call's tags.
  void OnTag(bool ok) {
    if (!started_) {
      started_ = true;
      expected_ = ExpectedOf(ctx_);
      if (!expected_.plain) values_ = gv::RpcValues(Prop(), ctx_);
    }
    gv::RunTag(values_, [&] { Step(ok); });  // Step may delete this
  }

 protected:
  virtual void Step(bool ok) = 0;
  grpc::ServerContext ctx_;
  Expected expected_;
  gls::Snapshot values_;  // empty (no values) for plain calls
  bool started_ = false;
};

class AsyncUnary final : public AsyncCall {
 public:
  AsyncUnary(Echo::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), responder_(&ctx_) {
    service_->RequestUnary(&ctx_, &request_, &responder_, cq_, cq_, this);
  }

 private:
  void Step(bool ok) override {
    if (state_ == 0) {
      if (!ok) return delete this;  // shutting down
      new AsyncUnary(service_, cq_);
      Check(expected_, "async unary request tag");
      reply_.set_text(Get(kRequestId));
      state_ = 1;
      responder_.Finish(reply_, grpc::Status::OK, this);
    } else {
      Check(expected_, "async unary finish tag");
      delete this;
    }
  }
  Echo::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  EchoRequest request_;
  EchoReply reply_;
  grpc::ServerAsyncResponseWriter<EchoReply> responder_;
  int state_ = 0;
};

class AsyncServerStream final : public AsyncCall {
 public:
  AsyncServerStream(Echo::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), writer_(&ctx_) {
    service_->RequestServerStream(&ctx_, &request_, &writer_, cq_, cq_, this);
  }

 private:
  void Step(bool ok) override {
    if (state_ == 0) {
      if (!ok) return delete this;
      new AsyncServerStream(service_, cq_);
      Check(expected_, "async server stream request tag");
      left_ = request_.count();
      state_ = 1;
    } else if (state_ == 2) {
      Check(expected_, "async server stream finish tag");
      return delete this;
    } else {
      Check(expected_, "async server stream write tag");
      if (!ok) {
        state_ = 2;
        return writer_.Finish(grpc::Status::CANCELLED, this);
      }
    }
    if (left_-- > 0) {
      reply_.set_text(Get(kRequestId));
      writer_.Write(reply_, this);
    } else {
      state_ = 2;
      writer_.Finish(grpc::Status::OK, this);
    }
  }
  Echo::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  EchoRequest request_;
  EchoReply reply_;
  grpc::ServerAsyncWriter<EchoReply> writer_;
  int state_ = 0;
  int left_ = 0;
};

// -------------------------------------------------------------- servers

struct Servers {
  SyncEcho sync_service;
  CallbackEcho callback_service;
  Echo::AsyncService async_service;
  std::unique_ptr<grpc::Server> sync_server, callback_server, async_server;
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  std::vector<std::thread> cq_threads;
  int sync_port = 0, callback_port = 0, async_port = 0;

  static void Common(grpc::ServerBuilder& b, int* port) {
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), port);
    // Hostile-but-legal metadata up to 256 KiB reaches the handlers.
    b.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 256 * 1024);
  }

  Servers() {
    {
      grpc::ServerBuilder b;
      Common(b, &sync_port);
      // Few threads for many RPCs: each runs many RPCs' code.
      b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
      b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
      b.RegisterService(&sync_service);
      sync_server = b.BuildAndStart();
    }
    {
      grpc::ServerBuilder b;
      Common(b, &callback_port);
      b.RegisterService(&callback_service);
      callback_server = b.BuildAndStart();
    }
    {
      grpc::ServerBuilder b;
      Common(b, &async_port);
      b.RegisterService(&async_service);
      cq = b.AddCompletionQueue();
      async_server = b.BuildAndStart();
      new AsyncUnary(&async_service, cq.get());
      new AsyncServerStream(&async_service, cq.get());
      // Two threads on one queue: each runs tags of many calls.
      for (int i = 0; i < 2; ++i) {
        cq_threads.emplace_back([this] {
          void* tag;
          bool ok;
          while (cq->Next(&tag, &ok)) static_cast<AsyncCall*>(tag)->OnTag(ok);
        });
      }
    }
  }
  ~Servers() {
    sync_server->Shutdown();
    callback_server->Shutdown();
    async_server->Shutdown();
    cq->Shutdown();
    for (auto& t : cq_threads) t.join();
  }
};

std::shared_ptr<grpc::Channel> Channel(int port) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> f;
  f.push_back(gv::MakeClientInterceptorFactory(Prop()));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_METADATA_SIZE, 256 * 1024);
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args,
      std::move(f));
}

class GrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_failures = 0;
    g_checks = 0;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_messages.clear();
      g_threads.clear();
      g_warnings.clear();
    }
    Prop().OnWarning([](std::string_view line) {
      std::lock_guard<std::mutex> lock(g_mu);
      g_warnings.emplace_back(line);
    });
  }
  void ExpectNoFailures() {
    std::lock_guard<std::mutex> lock(g_mu);
    EXPECT_EQ(g_failures.load(), 0);
    for (const std::string& m : g_messages) ADD_FAILURE() << m;
  }
};

// One RPC of `shape` (0 unary, 1 server stream, 2 client stream, 3 bidi) on
// `stub`, made in the running flow's values; checks every reply carries
// `want` (the request id the handler saw through gls; "<none>" for plain).
void Call(Echo::Stub& stub, int shape, bool plain, const std::string& want) {
  grpc::ClientContext ctx;
  if (plain) ctx.AddMetadata("x-plain", "1");
  EchoRequest request;
  request.set_count(3);
  EchoReply reply;
  grpc::Status status;
  std::vector<std::string> got;
  if (shape == 0) {
    status = stub.Unary(&ctx, request, &reply);
    got.push_back(reply.text());
  } else if (shape == 1) {
    auto reader = stub.ServerStream(&ctx, request);
    while (reader->Read(&reply)) got.push_back(reply.text());
    status = reader->Finish();
  } else if (shape == 2) {
    auto writer = stub.ClientStream(&ctx, &reply);
    for (int i = 0; i < 3; ++i) writer->Write(request);
    writer->WritesDone();
    status = writer->Finish();
    got.push_back(reply.text());
  } else {
    auto stream = stub.Bidi(&ctx);
    for (int i = 0; i < 3; ++i) {
      stream->Write(request);
      if (stream->Read(&reply)) got.push_back(reply.text());
    }
    stream->WritesDone();
    status = stream->Finish();
  }
  if (!status.ok()) Fail("shape " + std::to_string(shape) + ": " + status.error_message());
  if (got.empty()) Fail("shape " + std::to_string(shape) + ": no reply");
  for (const std::string& g : got) {
    if (g != want) Fail("shape " + std::to_string(shape) + ": reply " + g + ", want " + want);
  }
}

TEST_F(GrpcTest, EveryShapeSeesExactlyItsOwnValuesOnSharedThreads) {
  Servers servers;
  struct Target {
    int port;
    std::vector<int> shapes;
  };
  std::vector<Target> targets = {{servers.sync_port, {0, 1, 2, 3}},
                                 {servers.callback_port, {0, 1, 2, 3}},
                                 {servers.async_port, {0, 1}}};
  constexpr int kThreads = 8;
  constexpr int kPerThread = 60;
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      std::vector<std::unique_ptr<Echo::Stub>> stubs;
      for (const Target& target : targets) stubs.push_back(Echo::NewStub(Channel(target.port)));
      for (int i = 0; i < kPerThread; ++i) {
        size_t which = static_cast<size_t>(i) % targets.size();
        int shape = targets[which].shapes[static_cast<size_t>(i / 3) %
                                          targets[which].shapes.size()];
        bool plain = i % 5 == 4;
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (plain) {
          Call(*stubs[which], shape, true, "<none>");  // outside every scope
          continue;
        }
        mgr.SetValues({{Prop().keys().trace_parent, gls::w3c::StartTrace()}, {kRequestId, id}},
                      [&] { Call(*stubs[which], shape, false, id); });
      }
    });
  }
  for (auto& c : clients) c.join();
  ExpectNoFailures();
  std::lock_guard<std::mutex> lock(g_mu);
  // Every RPC checked at least twice, on far fewer threads than RPCs.
  EXPECT_GT(g_checks.load(), 2 * kThreads * kPerThread);
  EXPECT_LT(g_threads.size(), static_cast<size_t>(kThreads * kPerThread) / 4);
  EXPECT_TRUE(g_warnings.empty()) << g_warnings.front();
}

// Async and callback stubs: the values are read when the call is created on
// the calling thread; the completion, on gRPC's thread, sees none.
TEST_F(GrpcTest, AsyncAndCallbackStubsSendTheCreatingThreadsValues) {
  Servers servers;
  auto stub = Echo::NewStub(Channel(servers.sync_port));
  EchoRequest request;
  // Callback stub.
  {
    grpc::ClientContext ctx;
    EchoReply reply;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::string seen_in_callback = "unset";
    mgr.SetValues({{Prop().keys().trace_parent, gls::w3c::StartTrace()}, {kRequestId, "cb-1"}},
                  [&] {
                    stub->async()->Unary(&ctx, &request, &reply, [&](grpc::Status s) {
                      std::lock_guard<std::mutex> lock(mu);
                      seen_in_callback = s.ok() ? Get(kRequestId) : s.error_message();
                      done = true;
                      cv.notify_all();
                    });
                  });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    EXPECT_EQ(reply.text(), "cb-1");
    EXPECT_EQ(seen_in_callback, "<none>");
  }
  // CompletionQueue stub: created in a scope, completed outside it.
  {
    grpc::CompletionQueue cq;
    grpc::ClientContext ctx;
    EchoReply reply;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<EchoReply>> rpc;
    mgr.SetValues({{Prop().keys().trace_parent, gls::w3c::StartTrace()}, {kRequestId, "cq-1"}},
                  [&] { rpc = stub->AsyncUnary(&ctx, request, &cq); });
    rpc->Finish(&reply, &status, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_TRUE(ok && status.ok());
    EXPECT_EQ(reply.text(), "cq-1");
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
  ExpectNoFailures();
}

// What the client sends: nothing outside every scope; in a scope, a new
// span of the caller's trace, tracestate, baggage and mapped values.
TEST_F(GrpcTest, MetadataToSend) {
  EXPECT_TRUE(gv::MetadataToSend(Prop()).empty());
  gls::w3c::TraceParent tp = gls::w3c::StartTrace();
  std::vector<gls::w3c::TraceParent> spans;
  Prop().OnClientSpan([&](const gls::w3c::TraceParent& sent) { spans.push_back(sent); });
  std::vector<gls::w3c::BaggageEntry> baggage = {{"tenant", "acme corp", ""}};
  std::vector<std::pair<std::string, std::string>> md;
  mgr.SetValues({{Prop().keys().trace_parent, tp},
                 {Prop().keys().trace_state, std::string("congo=t61rcWkgMzE")},
                 {Prop().keys().baggage, baggage},
                 {kRequestId, "r-1"}},
                [&] { md = gv::MetadataToSend(Prop()); });
  Prop().OnClientSpan(nullptr);
  std::map<std::string, std::string> m(md.begin(), md.end());
  ASSERT_EQ(m.size(), 4u);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(m["traceparent"], gls::w3c::FormatTraceParent(spans[0]));
  EXPECT_EQ(spans[0].trace_id, tp.trace_id);
  EXPECT_NE(spans[0].parent_id, tp.parent_id);
  EXPECT_EQ(m["tracestate"], "congo=t61rcWkgMzE");
  EXPECT_EQ(m["baggage"], "tenant=acme%20corp");
  EXPECT_EQ(m["x-request-id"], "r-1");
  // A mapped value gRPC would refuse is left out, not sent.
  mgr.SetValues({{kRequestId, std::string("bad\nvalue\xff")}},
                [&] { EXPECT_TRUE(gv::MetadataToSend(Prop()).empty()); });
}

// Cancelled streams: OnCancel and OnDone of the callback reactors run in
// the RPC's values too (gRPC runs them on its own threads).
TEST_F(GrpcTest, CancelledCallbackStreamsReactInTheirValues) {
  Servers servers;
  auto stub = Echo::NewStub(Channel(servers.callback_port));
  g_cancels = 0;
  g_cancel_test_reactors = 0;
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    std::string id = "cancel-" + std::to_string(i);
    mgr.SetValues({{Prop().keys().trace_parent, gls::w3c::StartTrace()}, {kRequestId, id}}, [&] {
      grpc::ClientContext ctx;
      EchoRequest request;
      EchoReply reply;
      if (i % 2 == 0) {
        auto stream = stub->Bidi(&ctx);
        stream->Write(request);
        stream->Read(&reply);  // the server is mid-call
        ctx.TryCancel();
        EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
      } else {
        auto writer = stub->ClientStream(&ctx, &reply);
        writer->Write(request);
        ctx.TryCancel();
        EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
      }
    });
  }
  // Every reactor made for these calls gets OnCancel (a client stream
  // cancelled before the server saw it makes none; every bidi one is made:
  // the client read its reply). The reactions may still be on their way:
  // wait for them (bounded), then check they ran and saw their values.
  WaitForCancels(std::chrono::seconds(5));
  EXPECT_GE(g_cancel_test_reactors.load(), kCalls / 2);
  EXPECT_EQ(g_cancels.load(), g_cancel_test_reactors.load());
  ExpectNoFailures();
}

TEST(PropagationTest, MapRefusesNamesGrpcWouldMisread) {
  gv::Propagation p(mgr);
  const gls::TypedKey<std::string> key;
  for (const char* bad : {"", "X-Upper", "grpc-foo", "data-bin", "traceparent", "baggage",
                          "tracestate", "sp ace"}) {
    EXPECT_THROW(p.Map(bad, key), std::invalid_argument) << bad;
  }
  p.Map("x-tenant", key);
  EXPECT_THROW(p.Map("x-tenant", key), std::invalid_argument);
}

// ------------------------------------------------------------ bad input

using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;


TEST(DecodeTest, GoodMetadataContinuesTheTrace) {
  std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  Metadata md = {{"traceparent", tp},
                 {"tracestate", "congo=t61rcWkgMzE"},
                 {"tracestate", "rojo=00f067aa0ba902b7"},
                 {"baggage", "tenant=acme"},
                 {"x-request-id", "r-7"}};
  std::string warning;
  gls::Values v = gv::DecodeClientMetadata(Prop(), md, &warning);
  EXPECT_EQ(warning, "");
  const gv::TraceKeys& k = Prop().keys();
  EXPECT_EQ(*v.Find(k.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(*v.Find(k.parent_id), "00f067aa0ba902b7");
  EXPECT_NE(*v.Find(k.span_id), "00f067aa0ba902b7");
  EXPECT_EQ(*v.Find(k.trace_state),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  EXPECT_EQ(v.Find(k.baggage)->size(), 1u);
  EXPECT_EQ(*v.Find(kRequestId), "r-7");
}

// Each case: ignored field by field, a fresh trace when the traceparent is
// unusable, one warning line naming what was ignored, never a throw.
TEST(DecodeTest, BadMetadataIsIgnoredFieldByFieldWithOneWarningLine) {
  const gv::TraceKeys& k = Prop().keys();
  std::string valid_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  std::string huge(gv::kMaxFieldBytes + 1, 'a');
  std::string huge_baggage = "k=" + std::string(20000, 'v');
  std::string long_id(gv::kMaxMappedValueBytes + 1, 'r');
  std::string not_utf8 = "r\xff\xfe-id";
  std::string nul_id("r\0id", 4);
  std::string bad_tp_utf8 = "00-4bf92f3577b34da6a3ce929d0e0e47\xc3\xa9-00f067aa0ba902b7-01";
  struct Case {
    const char* name;
    Metadata md;
    bool continues;              // the trace continues
    bool has_request_id;         // x-request-id kept
    std::vector<std::string> warning_has;
  };
  std::vector<Case> cases = {
      {"malformed traceparent", {{"traceparent", "00-xyz-nothex-01"}, {"x-request-id", "ok"}},
       false, true, {"traceparent"}},
      {"duplicated traceparent", {{"traceparent", valid_tp}, {"traceparent", valid_tp}},
       false, false, {"traceparent: 2 fields"}},
      {"oversized traceparent", {{"traceparent", huge}}, false, false, {"over 16384"}},
      {"non-UTF-8 traceparent", {{"traceparent", bad_tp_utf8}}, false, false, {"traceparent"}},
      {"tracestate without traceparent", {{"tracestate", "a=1"}}, false, false,
       {"tracestate: discarded"}},
      {"bad tracestate, good traceparent",
       {{"traceparent", valid_tp}, {"tracestate", "UPPER=1"}}, true, false, {"tracestate"}},
      {"oversized baggage", {{"traceparent", valid_tp}, {"baggage", huge_baggage}}, true, false,
       {"baggage"}},
      {"non-UTF-8 baggage", {{"baggage", "k=\xff\xfe"}}, false, false, {"baggage"}},
      {"duplicated request id", {{"x-request-id", "a"}, {"x-request-id", "b"}}, false, false,
       {"x-request-id: 2 fields"}},
      {"oversized request id", {{"x-request-id", long_id}}, false, false, {"257 bytes"}},
      {"non-UTF-8 request id", {{"x-request-id", not_utf8}}, false, false,
       {"not printable ASCII"}},
      {"NUL in request id", {{"x-request-id", nul_id}}, false, false, {"not printable ASCII"}},
      {"everything at once",
       {{"traceparent", "garbage\n"}, {"tracestate", "x"}, {"baggage", ",,=\x01"},
        {"x-request-id", not_utf8}},
       false, false, {"traceparent", "tracestate", "x-request-id"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string warning;
    gls::Values v;
    ASSERT_NO_THROW(v = gv::DecodeClientMetadata(Prop(), c.md, &warning));
    ASSERT_NE(v.Find(k.trace_parent), nullptr);  // always a trace
    EXPECT_EQ(v.Find(k.parent_id) != nullptr, c.continues);
    EXPECT_EQ(v.Find(kRequestId) != nullptr, c.has_request_id);
    EXPECT_FALSE(warning.empty());
    EXPECT_EQ(warning.find('\n'), std::string::npos) << warning;
    for (char ch : warning) {
      EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << "byte " << int(static_cast<unsigned char>(ch));
    }
    for (const std::string& w : c.warning_has) {
      EXPECT_NE(warning.find(w), std::string::npos) << warning << " lacks " << w;
    }
  }
}

// Over the wire: hostile metadata gRPC lets through (large, duplicated,
// malformed; gRPC's own client refuses to send non-ASCII) is ignored, the
// RPC succeeds with a fresh trace, and exactly one warning line per RPC is
// written, inside the RPC's values.
TEST_F(GrpcTest, HostileMetadataOverTheWireOneWarningPerRpc) {
  Servers servers;
  std::atomic<int> warned_in_values{0};
  Prop().OnWarning([&](std::string_view line) {
    if (mgr.GetValue(Prop().keys().trace_id) != nullptr) warned_in_values.fetch_add(1);
    std::lock_guard<std::mutex> lock(g_mu);
    g_warnings.emplace_back(line);
  });
  std::vector<std::vector<std::pair<std::string, std::string>>> hostile = {
      {{"traceparent", "00-zz-zz-01"}},
      {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
       {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
      {{"baggage", std::string(100 * 1024, 'b')}},
      {{"x-request-id", "a"}, {"x-request-id", "b"}},
      {{"x-request-id", std::string(1000, 'r')}},
      {{"tracestate", "no-traceparent=1"}, {"baggage", "=,=,;;"}},
  };
  for (int port : {servers.sync_port, servers.callback_port, servers.async_port}) {
    auto stub = Echo::NewStub(Channel(port));
    for (const auto& fields : hostile) {
      grpc::ClientContext ctx;
      for (const auto& [name, value] : fields) ctx.AddMetadata(name, value);
      EchoRequest request;
      EchoReply reply;
      grpc::Status status = stub->Unary(&ctx, request, &reply);
      EXPECT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(reply.text(), "<none>");  // no request id taken
    }
  }
  std::lock_guard<std::mutex> lock(g_mu);
  EXPECT_EQ(g_warnings.size(), 3 * hostile.size());
  EXPECT_EQ(warned_in_values.load(), static_cast<int>(3 * hostile.size()));
  // Handlers of hostile RPCs ran in a fresh trace and saw no stale values;
  // their checks compare against the (empty) request id sent.
  EXPECT_EQ(g_failures.load(), 0);
  for (const std::string& m : g_messages) ADD_FAILURE() << m;
}

}  // namespace
