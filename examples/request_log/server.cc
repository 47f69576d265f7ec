// examples/request_log/server.cc: an HTTP server whose every log line names
// the request it belongs to, with no id passed to the code that logs.
//
// What this is for: jtolds/gls's use case, end to end. Each request's ids
// (trace id and span from W3C `traceparent`, `X-Request-Id`, `tenant`/`user`
// from W3C `baggage`) are set once with one SetValues; from then on the
// handler, an admission counter behind one strand shared by every request,
// a task on a thread pool, a thread started with gls::Go, an outgoing HTTP
// call to a second instance (which gets `traceparent` and `baggage` built
// from the gls values) and the Asio completion handlers all log through
// spdlog, and the `%*` flag adds the ids to each line. The W3C
// `tracestate` a request continues is a value too, printed on every line and
// sent on every outgoing call; the whole `baggage` (properties included) is
// forwarded.
//
//   server --port N [--downstream http://127.0.0.1:M] [--threads T]
//          [--pool-threads P] [--log FILE] [--gls=on|off] [--name NAME]
//          [--w3c-test-endpoint]
//
// --w3c-test-endpoint turns on `POST /test`, the endpoint the W3C Trace
// Context test suite drives (examples/request_log/w3c_suite.sh): its body is
// a JSON array of {"url", "arguments"}; for each element, in order, the
// server POSTs `arguments` (its JSON text) to `url` with `traceparent` (a new
// span id per call), `tracestate` and `baggage` built from the gls values of
// the request's flow, then answers 200 with the calls' statuses. Only
// http://IP:PORT/path URLs on a loopback address are called: any other gets
// 403, a body that is not such JSON 400, each with one warning line, and no
// call is made. Off by default: it makes calls a client asks for.
//
// Every line logged for a request also names the ids the logging code knows
// by itself ("own_trace=... own_req=...", captured explicitly), so a test can
// check that the ids gls printed are that request's and no other's
// (examples/request_log/e2e_test.py).
//
// --gls=off runs the same work and logs the same messages with no SetValues,
// plain Asio executors, std::jthread and a pattern without the flag: the
// baseline examples/request_log/overhead.sh measures gls against.
//
// A downstream that fails (refused, not answering within 2 s, non-200) is
// logged at warn level and the client gets 502 Bad Gateway, with the trace
// id in the body as for a 200.
//
// Trace Context, as the specification's processing model says: a request
// with one valid `traceparent` continues its trace (Level 2: the
// random-trace-id flag kept as received, unknown flags cleared); none, an
// invalid one, or several `traceparent` fields start a new trace (flags 03:
// sampled, random trace id), and then any `tracestate` is discarded. Several
// `tracestate` fields are combined in order; an invalid tracestate is
// discarded, a long one truncated (gls/contrib/w3c.h), with one warning.
#include <signal.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/signal_set.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/thread_pool.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "examples/grpc_log/grpc_log.grpc.pb.h"
#include "examples/request_log/w3c_service.h"
#include "gls/contrib/grpc.h"
#include "gls/contrib/asio.h"
#include "gls/contrib/spdlog.h"
#include "gls/contrib/w3c.h"
#include "gls/gls.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr auto kDownstreamTimeout = std::chrono::seconds(2);
constexpr auto kIdleTimeout = std::chrono::seconds(30);
// How long a stop waits for responses being written to finish.
constexpr auto kStopGrace = std::chrono::seconds(5);
// Above the W3C baggage limit (8192 bytes), so an oversized baggage header
// reaches ParseBaggage (which drops what is beyond the limit and says so);
// anything larger is refused by Beast with 431.
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr std::uint64_t kBodyLimit = 64 * 1024;
// Longest X-Request-Id and baggage value taken; longer ones are ignored
// with a warning, so a client cannot make every log line huge.
constexpr std::size_t kMaxIdLength = 128;
constexpr std::size_t kMaxBaggageValue = 64;

// The request's values. Typed keys: the fast path of GetValue and of the
// log flag.
gls::ContextManager request_values;
const gls::TypedKey<std::string> kTraceId;
const gls::TypedKey<std::string> kSpanId;
const gls::TypedKey<std::string> kParentId;
const gls::TypedKey<std::string> kRequestId;
const gls::TypedKey<std::string> kTenant;
const gls::TypedKey<std::string> kUser;
// The tracestate this hop continues, as FormatTraceState writes it: printed
// and sent on outgoing calls.
const gls::TypedKey<std::string> kTraceState;
// This hop's traceparent (our trace id, our span as the parent id): what an
// outgoing call sends. Not printed.
const gls::TypedKey<gls::w3c::TraceParent> kOutgoing;
// The request's baggage as parsed (properties included): what an outgoing
// call sends. Not printed (tenant and user are, from it).
const gls::TypedKey<std::vector<gls::w3c::BaggageEntry>> kBaggage;

// The baggage entries that become values; every other entry is ignored.
struct BaggageKey {
  std::string_view name;
  const gls::TypedKey<std::string>* key;
};
const BaggageKey kBaggageAllowlist[] = {{"tenant", &kTenant}, {"user", &kUser}};

std::shared_ptr<spdlog::logger> g_log;

// --grpc-back: the request's values go to the gRPC back service
// (examples/grpc_log) as metadata, under this server's own keys: the
// interceptor sends kOutgoing's trace with a new span id for the call (and
// logs "grpc_back call span=<id>" in the request's values), kTraceState,
// kBaggage, and kRequestId as x-request-id.
gls::grpc_values::Propagation& GrpcPropagation() {
  static gls::grpc_values::Propagation* propagation = [] {
    gls::grpc_values::TraceKeys keys;
    keys.trace_parent = kOutgoing;
    keys.trace_id = kTraceId;
    keys.span_id = kSpanId;
    keys.parent_id = kParentId;
    keys.trace_state = kTraceState;
    keys.baggage = kBaggage;
    auto* p = new gls::grpc_values::Propagation(request_values, keys);
    p->Map("x-request-id", kRequestId);
    p->OnClientSpan([](const gls::w3c::TraceParent& sent) {
      g_log->info("grpc_back call span={}", sent.ParentIdHex());
    });
    return p;
  }();
  return *propagation;
}

// Where outgoing calls go, from "http://HOST[:PORT][/path]".
struct Downstream {
  tcp::endpoint endpoint;
  std::string host;  // the Host header
  std::string target = "/";
};

struct Options {
  int port = -1;
  std::string downstream;  // as given, for the startup line
  std::optional<Downstream> downstream_target;
  std::string grpc_back;  // HOST:PORT of examples/grpc_log's back service
  int threads = 2;
  int pool_threads = 2;
  std::string log_file;
  bool gls = true;
  std::string name = "server";
  bool w3c_test_endpoint = false;
};

[[noreturn]] void Usage(const std::string& problem) {
  std::fprintf(stderr,
               "server: %s\n"
               "usage: server --port N [--downstream http://HOST:PORT[/path]] "
               "[--threads T] [--pool-threads P] [--log FILE] [--gls=on|off] "
               "[--name NAME] [--w3c-test-endpoint] [--grpc-back 127.0.0.1:PORT]\n"
               "  --port 0 picks a free port; the first line on stdout is "
               "\"listening on 127.0.0.1:<port>\".\n",
               problem.c_str());
  std::exit(2);
}

Downstream ParseDownstream(std::string_view url);

int ParseInt(std::string_view flag, std::string_view text, int min, int max) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    Usage(std::string(flag) + " wants an integer in [" + std::to_string(min) +
          ", " + std::to_string(max) + "], got \"" + std::string(text) + "\"");
  }
  return value;
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view flag = arg;
    std::optional<std::string_view> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto take = [&]() -> std::string_view {
      if (value) return *value;
      if (i + 1 >= argc) Usage(std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (flag == "--port") {
      options.port = ParseInt(flag, take(), 0, 65535);
    } else if (flag == "--downstream") {
      options.downstream = std::string(take());
      options.downstream_target = ParseDownstream(options.downstream);
    } else if (flag == "--grpc-back") {
      options.grpc_back = std::string(take());
      if (options.grpc_back.rfind("127.0.0.1:", 0) != 0 &&
          options.grpc_back.rfind("localhost:", 0) != 0) {
        Usage("--grpc-back is 127.0.0.1:PORT or localhost:PORT");
      }
    } else if (flag == "--threads") {
      options.threads = ParseInt(flag, take(), 1, 64);
    } else if (flag == "--pool-threads") {
      options.pool_threads = ParseInt(flag, take(), 1, 64);
    } else if (flag == "--log") {
      options.log_file = std::string(take());
      if (options.log_file.empty()) Usage("--log needs a file name");
    } else if (flag == "--gls") {
      std::string_view v = take();
      if (v != "on" && v != "off") Usage("--gls is on or off, got \"" + std::string(v) + "\"");
      options.gls = v == "on";
    } else if (flag == "--name") {
      options.name = std::string(take());
      if (options.name.empty() || options.name.size() > 32 ||
          options.name.find_first_not_of(
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
              std::string::npos) {
        Usage("--name is 1-32 characters of [A-Za-z0-9_-]");
      }
    } else if (flag == "--w3c-test-endpoint") {
      if (value) Usage("--w3c-test-endpoint takes no value");
      options.w3c_test_endpoint = true;
    } else if (flag == "--help" || flag == "-h") {
      Usage("help");
    } else {
      Usage("unknown flag \"" + std::string(arg) + "\"");
    }
  }
  if (options.port < 0) Usage("--port is required (0 picks a free port)");
  return options;
}

Downstream ParseDownstream(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    Usage("--downstream must start with http:// (got \"" + std::string(url) + "\")");
  }
  std::string_view rest = url.substr(kScheme.size());
  Downstream d;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    d.target = std::string(rest.substr(slash));
    rest = rest.substr(0, slash);
  }
  std::string_view host = rest;
  int port = 80;
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = ParseInt("--downstream port", rest.substr(colon + 1), 1, 65535);
  }
  boost::system::error_code ec;
  net::ip::address address = net::ip::make_address(std::string(host), ec);
  if (host == "localhost") {
    address = net::ip::address_v4::loopback();
  } else if (ec) {
    Usage("--downstream host must be an IP address or localhost (got \"" +
          std::string(host) + "\")");
  }
  d.endpoint = tcp::endpoint(address, static_cast<unsigned short>(port));
  d.host = std::string(rest);
  return d;
}

// Header text, or anything a client sent, made safe for one log line:
// control and non-ASCII bytes become '?', and it is cut at `max` bytes.
std::string Printable(std::string_view text, std::size_t max = 200) {
  std::string out(text.substr(0, max));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  if (text.size() > max) out += "...";
  return out;
}

bool IsRequestIdText(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

// What a request says about itself, read from its headers once.
struct RequestIds {
  std::string trace_id;   // 32 hex: the incoming trace's, or a new one
  std::string span_id;    // 16 hex: new for this hop
  std::string parent_id;  // 16 hex: the caller's span, if it sent one
  std::string request_id; // X-Request-Id, or else the trace id
  std::string tenant;
  std::string user;
  std::string tracestate;  // formatted; "" when none
  std::vector<gls::w3c::BaggageEntry> baggage;
  gls::w3c::TraceParent outgoing;
  std::vector<std::string> warnings;  // one line each, logged once
};

// The values of every header field called `name` (any case), in the order
// they arrived.
template <typename Request>
std::vector<std::string_view> FieldsNamed(const Request& req, std::string_view name) {
  std::vector<std::string_view> values;
  for (const auto& field : req) {
    if (beast::iequals(field.name_string(), beast::string_view(name.data(), name.size()))) {
      values.push_back(View(field.value()));
    }
  }
  return values;
}

template <typename Request>
RequestIds ExtractIds(const Request& req) {
  RequestIds ids;
  gls::w3c::TraceParent incoming;
  bool continues = false;
  const std::size_t traceparents = req.count("traceparent");
  if (traceparents > 1) {
    ids.warnings.push_back("traceparent: " + std::to_string(traceparents) +
                           " header fields, a new trace started");
  } else if (auto it = req.find("traceparent"); it != req.end()) {
    std::string why;
    if (auto tp = gls::w3c::ParseTraceParent(View(it->value()), &why)) {
      incoming = *tp;
      continues = true;
    } else {
      ids.warnings.push_back(why.empty() ? "traceparent: invalid, ignored" : why);
    }
  }
  ids.outgoing = continues ? gls::w3c::ContinueTrace(incoming) : gls::w3c::StartTrace();
  ids.trace_id = ids.outgoing.TraceIdHex();
  ids.span_id = ids.outgoing.ParentIdHex();
  if (continues) ids.parent_id = incoming.ParentIdHex();

  // tracestate only with the traceparent it belongs to: "If the vendor
  // failed to parse traceparent, it MUST NOT attempt to parse tracestate."
  std::vector<std::string_view> tracestate = FieldsNamed(req, "tracestate");
  if (!tracestate.empty() && !continues) {
    ids.warnings.push_back("tracestate: discarded (no valid traceparent)");
  } else if (!tracestate.empty()) {
    std::string why;
    if (auto ts = gls::w3c::ParseTraceState(tracestate, &why)) {
      ids.tracestate = gls::w3c::FormatTraceState(*ts);
    }
    if (!why.empty()) ids.warnings.push_back(std::move(why));
  }

  ids.request_id = ids.trace_id;
  if (auto it = req.find("X-Request-Id"); it != req.end()) {
    std::string_view id = View(it->value());
    if (IsRequestIdText(id)) {
      ids.request_id = std::string(id);
    } else {
      ids.warnings.push_back("X-Request-Id: ignored, not 1-128 characters of [A-Za-z0-9._:-]");
    }
  }

  // Several baggage fields are one list, combined as RFC 9110 says.
  std::string baggage;
  const std::vector<std::string_view> baggage_fields = FieldsNamed(req, "baggage");
  for (std::size_t i = 0; i < baggage_fields.size(); ++i) {
    if (i > 0) baggage += ',';
    baggage.append(baggage_fields[i]);
  }
  if (!baggage_fields.empty()) {
    std::string why;
    ids.baggage = gls::w3c::ParseBaggage(baggage, &why);
    for (const gls::w3c::BaggageEntry& entry : ids.baggage) {
      for (const BaggageKey& allowed : kBaggageAllowlist) {
        if (entry.key != allowed.name) continue;
        if (entry.value.size() > kMaxBaggageValue) {
          if (why.empty()) why = "baggage: " + std::string(allowed.name) + " longer than 64 bytes, ignored";
        } else {
          (allowed.key == &kTenant ? ids.tenant : ids.user) = entry.value;
        }
      }
    }
    if (!why.empty()) ids.warnings.push_back(std::move(why));
  }
  return ids;
}

// Stands in for the request's real work on the pool: a hash of what it got.
std::uint64_t Digest(std::string_view a, std::string_view b) {
  std::uint64_t h = 1469598103934665603ull;
  for (int round = 0; round < 16; ++round) {
    for (char c : a) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    for (char c : b) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return h;
}

class Server;

// One client connection: reads requests one after the other and runs each
// through handler -> pool -> gls::Go child -> downstream -> response.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {}

  void Start() { DoRead(); }

 private:
  struct DownstreamCall {
    explicit DownstreamCall(const net::any_io_executor& ex) : stream(ex) {}
    beast::tcp_stream stream;
    http::request<http::empty_body> req;
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };
  // One call to the gRPC back service (--grpc-back).
  struct GrpcBackCall {
    grpc::ClientContext ctx;
    grpc_log::Request req;
    grpc_log::Reply reply;
    grpc::Status status;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };
  // The calls `POST /test` was asked for, made one after the other.
  struct W3cCall {
    explicit W3cCall(const net::any_io_executor& ex) : stream(ex) {}
    beast::tcp_stream stream;
    http::request<http::string_body> req;
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    std::string span_id;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };
  struct W3cTest {
    std::vector<request_log::CallInstruction> calls;
    std::vector<request_log::LoopbackUrl> urls;
    std::vector<unsigned> statuses;  // 0: the call failed
  };

  void DoRead();
  void OnRead(beast::error_code ec);
  void Handle();
  void Admit(const std::string& tenant);
  void StartPoolWork();
  void AfterPool();
  void AfterChild();
  void CallDownstream();
  void CallGrpcBack();
  void FinishGrpcBack(GrpcBackCall& call);
  void FinishDownstream(DownstreamCall& call, beast::error_code ec, const char* stage);
  void StartW3cTest();
  void W3cCallNext();
  void FinishW3cCall(W3cCall& call, beast::error_code ec, const char* stage);
  void Respond(http::status status, bool log_write, std::string body,
               const char* content_type = "text/plain");
  void OnWrite(beast::error_code ec, std::size_t bytes, bool log_write);
  void Close();
  // Puts traceparent, tracestate, X-Request-Id and baggage on `req`. With
  // `new_span`, traceparent names a new span (a new parent-id) rather than
  // this hop's; its hex is stored in *span_id when non-null.
  template <typename Request>
  void Inject(Request& req, bool new_span = false, std::string* span_id = nullptr) const;

  Server& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  RequestIds ids_;
  std::string target_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  http::response<http::string_body> res_;
  std::jthread child_;
  std::shared_ptr<W3cTest> w3c_test_;
};

class Server {
 public:
  explicit Server(const Options& options)
      : options_(options),
        io_(options.threads),
        pool_(static_cast<std::size_t>(options.pool_threads)),
        acceptor_(Wrap(io_.get_executor())),
        signals_(Wrap(io_.get_executor()), SIGINT, SIGTERM),
        pool_executor_(Wrap(pool_.get_executor())),
        admission_strand_(MakeSharedStrand()),
        downstream_(options.downstream_target) {
    if (!options.grpc_back.empty()) {
      std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> f;
      f.push_back(gls::grpc_values::MakeClientInterceptorFactory(GrpcPropagation()));
      grpc_back_ = grpc_log::Back::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
          options.grpc_back, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(),
          std::move(f)));
    }
  }

  int Run() {
    beast::error_code ec;
    const tcp::endpoint endpoint(net::ip::address_v4::loopback(),
                                 static_cast<unsigned short>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      std::fprintf(stderr, "server: cannot listen on 127.0.0.1:%d: %s\n", options_.port,
                   ec.message().c_str());
      return 1;
    }
    const unsigned port = acceptor_.local_endpoint().port();
    std::printf("listening on 127.0.0.1:%u\n", port);
    std::fflush(stdout);
    g_log->info("listening on 127.0.0.1:{} threads={} pool_threads={} gls={} downstream={}",
                port, options_.threads, options_.pool_threads, options_.gls ? "on" : "off",
                downstream_ ? Printable(options_.downstream) : "none");

    DoAccept();
    signals_.async_wait([this](beast::error_code wait_ec, int signal) {
      if (wait_ec) return;
      g_log->info("stopping on signal {}", signal);
      // No new connections; responses already being written finish (and
      // log their write line: a client may have its response before the
      // write's completion runs here), for up to kStopGrace; requests still
      // in flight after that are dropped.
      beast::error_code ignored;
      acceptor_.close(ignored);
      StopWhenWritesAreDone(std::chrono::steady_clock::now() + kStopGrace);
    });
    std::vector<std::thread> threads;
    for (int i = 1; i < options_.threads; ++i) threads.emplace_back([this] { io_.run(); });
    io_.run();
    for (std::thread& t : threads) t.join();
    pool_.join();
    // A child thread may still be posting its continuation: io_ must
    // outlive that.
    while (live_children_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    g_log->info("stopped requests={} bad_requests={} downstream_failures={}",
                requests_.load(), bad_requests_.load(), downstream_failures_.load());
    g_log->flush();
    return 0;
  }

  bool gls() const { return options_.gls; }
  bool w3c_test_endpoint() const { return options_.w3c_test_endpoint; }
  const std::optional<Downstream>& downstream() const { return downstream_; }
  // The gRPC back service's stub (--grpc-back), or null.
  grpc_log::Back::Stub* grpc_back() const { return grpc_back_.get(); }
  const net::any_io_executor& pool_executor() const { return pool_executor_; }
  // One strand shared by every request: what runs on it may use the
  // admission counts without a lock.
  const net::any_io_executor& admission_strand() const { return admission_strand_; }
  // How many requests of `tenant` ("" for none) this process has admitted,
  // this one included. Only on admission_strand().
  std::uint64_t AdmitTenant(const std::string& tenant) { return ++tenant_requests_[tenant]; }
  void WriteStarted() { writes_in_flight_.fetch_add(1); }
  void WriteEnded() { writes_in_flight_.fetch_sub(1); }
  void CountRequest() { requests_.fetch_add(1, std::memory_order_relaxed); }
  void CountBadRequest() { bad_requests_.fetch_add(1, std::memory_order_relaxed); }
  void ChildStarted() { live_children_.fetch_add(1); }
  void ChildDone() { live_children_.fetch_sub(1); }
  void CountDownstreamFailure() { downstream_failures_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // With --gls=on every executor is wrapped, so each completion handler runs
  // in the values of the request that started the operation.
  template <typename Executor>
  net::any_io_executor Wrap(const Executor& ex) const {
    if (options_.gls) return net::any_io_executor(gls::asio::Propagating(ex));
    return net::any_io_executor(ex);
  }

  // The shared strand is made from the typed wrapper and erased after:
  // boost::asio::make_strand of an any_io_executor that holds the wrapper
  // (make_strand(Wrap(...))) would run each request's admission in the values
  // of another request (gls/contrib/asio.h, "Strands").
  net::any_io_executor MakeSharedStrand() {
    if (options_.gls) return net::make_strand(gls::asio::Propagating(io_.get_executor()));
    return net::make_strand(io_.get_executor());
  }

  // Stops the io_context once no response is being written, or at
  // `deadline`.
  void StopWhenWritesAreDone(std::chrono::steady_clock::time_point deadline) {
    if (writes_in_flight_.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
      io_.stop();
      return;
    }
    stop_timer_.expires_after(std::chrono::milliseconds(1));
    stop_timer_.async_wait([this, deadline](beast::error_code) {
      StopWhenWritesAreDone(deadline);
    });
  }

  void DoAccept() {
    // Each connection gets its own strand: its read, write, timer and
    // downstream handlers never run at the same time.
    acceptor_.async_accept(Wrap(net::make_strand(io_.get_executor())),
                           [this](beast::error_code ec, tcp::socket socket) {
                             if (ec) {
                               if (ec == net::error::operation_aborted) return;
                               g_log->warn("accept failed: {}", ec.message());
                             } else {
                               std::make_shared<Session>(*this, std::move(socket))->Start();
                             }
                             DoAccept();
                           });
  }

  Options options_;
  net::io_context io_;
  net::thread_pool pool_;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  net::steady_timer stop_timer_{io_};
  std::atomic<int> writes_in_flight_{0};
  net::any_io_executor pool_executor_;
  net::any_io_executor admission_strand_;
  std::unordered_map<std::string, std::uint64_t> tenant_requests_;  // admission_strand_ only
  std::optional<Downstream> downstream_;
  std::unique_ptr<grpc_log::Back::Stub> grpc_back_;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> bad_requests_{0};
  std::atomic<std::uint64_t> downstream_failures_{0};
  std::atomic<int> live_children_{0};
};

void Session::DoRead() {
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(kBodyLimit);
  stream_.expires_after(kIdleTimeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->OnRead(ec);
                   });
}

void Session::OnRead(beast::error_code ec) {
  // Runs outside every request: the read was started outside (see OnWrite).
  if (ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == beast::error::timeout) {
    return Close();
  }
  if (ec) {
    server_.CountBadRequest();
    if (ec.category() != http::make_error_code(http::error::bad_target).category()) {
      g_log->warn("read failed: {}", ec.message());
      return Close();
    }
    http::status status = http::status::bad_request;
    if (ec == http::error::header_limit) status = http::status::request_header_fields_too_large;
    if (ec == http::error::body_limit) status = http::status::payload_too_large;
    g_log->warn("bad request status={}: {}", static_cast<unsigned>(status), ec.message());
    keep_alive_ = false;
    version_ = 11;
    return Respond(status, /*log_write=*/false, "bad request: " + ec.message() + "\n");
  }

  const auto& req = parser_->get();
  keep_alive_ = req.keep_alive();
  version_ = req.version();
  target_ = Printable(View(req.target()), 64);
  ids_ = ExtractIds(req);
  server_.CountRequest();
  if (!server_.gls()) return Handle();

  gls::Values values;
  values.Set(kTraceId, ids_.trace_id);
  values.Set(kSpanId, ids_.span_id);
  if (!ids_.parent_id.empty()) values.Set(kParentId, ids_.parent_id);
  values.Set(kRequestId, ids_.request_id);
  if (!ids_.tenant.empty()) values.Set(kTenant, ids_.tenant);
  if (!ids_.user.empty()) values.Set(kUser, ids_.user);
  if (!ids_.tracestate.empty()) values.Set(kTraceState, ids_.tracestate);
  values.Set(kOutgoing, ids_.outgoing);
  if (!ids_.baggage.empty()) values.Set(kBaggage, ids_.baggage);
  // Everything Handle starts (pool task, thread, downstream call, response
  // write) carries these values to wherever it runs.
  request_values.SetValues(values, [this] { Handle(); });
}

void Session::Handle() {
  const std::string& own_trace = ids_.trace_id;
  const std::string& own_req = ids_.request_id;
  for (const std::string& warning : ids_.warnings) {
    g_log->warn("warning own_trace={} own_req={} {}", own_trace, own_req, Printable(warning));
  }
  g_log->info("handler own_trace={} own_req={} method={} target={}", own_trace, own_req,
              View(parser_->get().method_string()), target_);
  if (server_.w3c_test_endpoint() && parser_->get().method() == http::verb::post &&
      View(parser_->get().target()) == "/test") {
    return StartW3cTest();
  }

  // Admission, on the one strand every request of the process shares, its
  // queue holding many requests' handlers at once. With gls on, the handler
  // is given nothing of the request (its tenant it reads from the values);
  // off, a copy of the tenant.
  net::post(server_.admission_strand(),
            [self = shared_from_this(),
             tenant = server_.gls() ? std::string() : ids_.tenant] { self->Admit(tenant); });
}

void Session::Admit(const std::string& tenant) {
  const std::string* t = &tenant;
  if (server_.gls()) {
    t = request_values.GetValue(kTenant);
    if (t == nullptr) t = &tenant;  // no tenant: ""
  }
  const std::uint64_t seen = server_.AdmitTenant(*t);
  g_log->info("admit own_trace={} own_req={} tenant_seen={}", ids_.trace_id, ids_.request_id,
              seen);
  StartPoolWork();
}

void Session::StartPoolWork() {
  const std::string& own_trace = ids_.trace_id;
  const std::string& own_req = ids_.request_id;
  // Work for the pool: it logs, then continues the request on this
  // connection's strand. Neither it nor its continuation is given the
  // request's values, only its own copy of the ids to print next to them.
  net::post(server_.pool_executor(),
            [self = shared_from_this(), own_trace, own_req, target = target_,
             back = stream_.get_executor()]() mutable {
              const std::uint64_t digest = Digest(target, own_req);
              g_log->info("pool own_trace={} own_req={} digest={:016x}", own_trace, own_req,
                          digest);
              net::post(back, [self = std::move(self)] { self->AfterPool(); });
            });
}

void Session::AfterPool() {
  // The child logs, then hands the request back to this connection's
  // strand, where AfterChild joins it: no io thread waits for a thread to
  // start. It passes on nothing but `self`; the continuation's values are
  // the ones gls::Go gave the child.
  auto child = [self = shared_from_this(), own_trace = ids_.trace_id,
                own_req = ids_.request_id, back = stream_.get_executor(),
                server = &server_]() mutable {
    g_log->info("go own_trace={} own_req={}", own_trace, own_req);
    {
      // The child keeps no reference to the session or the io_context
      // after this: the session is never destroyed (and its std::jthread
      // joined) on the child's own thread.
      auto ex = std::move(back);
      net::post(ex, [self = std::move(self)] { self->AfterChild(); });
    }
    server->ChildDone();
  };
  server_.ChildStarted();
  try {
    child_ = server_.gls() ? gls::Go(std::move(child)) : std::jthread(std::move(child));
  } catch (const std::system_error& e) {  // no thread to be had: go on without
    server_.ChildDone();
    g_log->warn("go own_trace={} own_req={} failed error={}", ids_.trace_id, ids_.request_id,
                e.what());
    AfterChild();
  }
}

void Session::AfterChild() {
  if (child_.joinable()) child_.join();
  if (server_.grpc_back() != nullptr) return CallGrpcBack();
  if (server_.downstream()) return CallDownstream();
  Respond(http::status::ok, /*log_write=*/true,
          "trace_id=" + ids_.trace_id + " request_id=" + ids_.request_id + "\n");
}

// Puts the request's trace context on an outgoing request. With gls on it
// reads the values of the running flow (it is called deep inside the
// request's work, with no ids passed in); off, the session's own copy.
template <typename Request>
void Session::Inject(Request& req, bool new_span, std::string* span_id) const {
  const gls::w3c::TraceParent* outgoing = &ids_.outgoing;
  const std::string* request_id = &ids_.request_id;
  const std::string* tracestate = ids_.tracestate.empty() ? nullptr : &ids_.tracestate;
  const std::vector<gls::w3c::BaggageEntry>* baggage =
      ids_.baggage.empty() ? nullptr : &ids_.baggage;
  if (server_.gls()) {
    outgoing = request_values.GetValue(kOutgoing);
    request_id = request_values.GetValue(kRequestId);
    tracestate = request_values.GetValue(kTraceState);
    baggage = request_values.GetValue(kBaggage);
  }
  if (outgoing != nullptr) {
    gls::w3c::TraceParent tp = *outgoing;
    if (new_span) tp.parent_id = gls::w3c::NewParentId();
    if (span_id != nullptr) *span_id = tp.ParentIdHex();
    req.set("traceparent", gls::w3c::FormatTraceParent(tp));
  }
  if (tracestate != nullptr) req.set("tracestate", *tracestate);
  if (request_id != nullptr) req.set("X-Request-Id", *request_id);
  if (baggage != nullptr) {
    std::string text = gls::w3c::FormatBaggage(*baggage);
    if (!text.empty()) req.set("baggage", text);
  }
}

// The gRPC hop: gls's interceptor reads this request's values when the call
// is created, here, and sends them as metadata. The completion runs on a
// gRPC thread: gls::Bind gives it this request's values there, and it hands
// the rest back to the session's executor (which carries them on).
void Session::CallGrpcBack() {
  auto call = std::make_shared<GrpcBackCall>();
  call->req.set_text(ids_.request_id);
  call->ctx.set_deadline(std::chrono::system_clock::now() + kDownstreamTimeout);
  server_.grpc_back()->async()->Work(
      &call->ctx, &call->req, &call->reply,
      gls::Bind([self = shared_from_this(), call](grpc::Status status) {
        call->status = std::move(status);
        net::post(self->stream_.get_executor(), [self, call] { self->FinishGrpcBack(*call); });
      }));
}

void Session::FinishGrpcBack(GrpcBackCall& call) {
  const std::string& own_trace = ids_.trace_id;
  const std::string& own_req = ids_.request_id;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - call.start)
                      .count();
  // The back answers with the request id it saw through gls.
  const bool ok = call.status.ok();
  if (ok) {
    g_log->info("grpc_back own_trace={} own_req={} status=ok ms={} echoed_req={}", own_trace,
                own_req, ms, Printable(call.reply.text(), 64));
  } else {
    g_log->warn("grpc_back own_trace={} own_req={} failed ms={} error={}", own_trace, own_req, ms,
                Printable(call.status.error_message(), 64));
    server_.CountDownstreamFailure();
  }
  Respond(ok ? http::status::ok : http::status::bad_gateway, /*log_write=*/true,
          "trace_id=" + ids_.trace_id + " request_id=" + ids_.request_id +
              (ok ? "\n" : " downstream=failed\n"));
}

void Session::CallDownstream() {
  const Downstream& downstream = *server_.downstream();
  auto call = std::make_shared<DownstreamCall>(stream_.get_executor());
  call->req = http::request<http::empty_body>(http::verb::get, downstream.target, 11);
  call->req.set(http::field::host, downstream.host);
  call->req.set(http::field::user_agent, "gls-request-log");
  call->req.keep_alive(false);
  Inject(call->req);
  // One budget for connect, write and read together.
  call->stream.expires_after(kDownstreamTimeout);
  call->stream.async_connect(
      downstream.endpoint, [self = shared_from_this(), call](beast::error_code ec) {
        if (ec) return self->FinishDownstream(*call, ec, "connect");
        http::async_write(
            call->stream, call->req, [self, call](beast::error_code write_ec, std::size_t) {
              if (write_ec) return self->FinishDownstream(*call, write_ec, "write");
              http::async_read(call->stream, call->buffer, call->res,
                               [self, call](beast::error_code read_ec, std::size_t) {
                                 self->FinishDownstream(*call, read_ec, "read");
                               });
            });
      });
}

void Session::FinishDownstream(DownstreamCall& call, beast::error_code ec, const char* stage) {
  const std::string& own_trace = ids_.trace_id;
  const std::string& own_req = ids_.request_id;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - call.start)
                      .count();
  bool ok = false;
  if (ec) {
    g_log->warn("downstream own_trace={} own_req={} failed stage={} ms={} error={}", own_trace,
                own_req, stage, ms, ec.message());
  } else {
    // The downstream answers "trace_id=<hex> request_id=<id>": what it saw.
    std::string_view body = call.res.body();
    std::string_view echoed = "none";
    if (body.substr(0, 9) == "trace_id=") echoed = body.substr(9, body.find(' ') - 9);
    ok = call.res.result() == http::status::ok;
    if (ok) {
      g_log->info("downstream own_trace={} own_req={} status=200 ms={} echoed_trace={}",
                  own_trace, own_req, ms, Printable(echoed, 64));
    } else {
      g_log->warn("downstream own_trace={} own_req={} failed stage=status ms={} status={}",
                  own_trace, own_req, ms, call.res.result_int());
    }
  }
  beast::error_code ignored;
  call.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  call.stream.close();
  if (!ok) server_.CountDownstreamFailure();
  Respond(ok ? http::status::ok : http::status::bad_gateway, /*log_write=*/true,
          "trace_id=" + ids_.trace_id + " request_id=" + ids_.request_id +
              (ok ? "\n" : " downstream=failed\n"));
}

// POST /test (--w3c-test-endpoint): reads the instructions, refuses them
// all (one warning line) if the body is not the suite's JSON or a URL is not
// on loopback, else makes the calls one after the other.
void Session::StartW3cTest() {
  const std::string& own_trace = ids_.trace_id;
  const std::string& own_req = ids_.request_id;
  std::string error;
  auto test = std::make_shared<W3cTest>();
  auto refuse = [&](http::status status, const std::string& why) {
    g_log->warn("w3c-test own_trace={} own_req={} refused status={} {}", own_trace, own_req,
                static_cast<unsigned>(status), Printable(why));
    Respond(status, /*log_write=*/true, "w3c-test: " + Printable(why) + "\n");
  };
  if (auto calls = request_log::ParseCallInstructions(parser_->get().body(), &error)) {
    test->calls = std::move(*calls);
  } else {
    return refuse(http::status::bad_request, error);
  }
  for (std::size_t i = 0; i < test->calls.size(); ++i) {
    bool refused = false;
    auto url = request_log::ParseLoopbackUrl(test->calls[i].url, &error, &refused);
    if (!url) {
      return refuse(refused ? http::status::forbidden : http::status::bad_request,
                    "element " + std::to_string(i + 1) + ": " + error);
    }
    test->urls.push_back(std::move(*url));
  }
  g_log->info("w3c-test own_trace={} own_req={} calls={}", own_trace, own_req,
              test->calls.size());
  w3c_test_ = std::move(test);
  W3cCallNext();
}

void Session::W3cCallNext() {
  W3cTest& test = *w3c_test_;
  const std::size_t i = test.statuses.size();
  if (i == test.calls.size()) {
    std::string body = "{\"trace_id\":\"" + ids_.trace_id + "\",\"statuses\":[";
    for (std::size_t k = 0; k < test.statuses.size(); ++k) {
      body += (k > 0 ? "," : "") + std::to_string(test.statuses[k]);
    }
    body += "]}\n";
    w3c_test_.reset();
    return Respond(http::status::ok, /*log_write=*/true, std::move(body), "application/json");
  }
  const request_log::LoopbackUrl& url = test.urls[i];
  auto call = std::make_shared<W3cCall>(stream_.get_executor());
  call->req = http::request<http::string_body>(http::verb::post, url.target, 11);
  call->req.set(http::field::host, url.host);
  call->req.set(http::field::user_agent, "gls-request-log");
  call->req.set(http::field::content_type, "application/json");
  call->req.keep_alive(false);
  call->req.body() = test.calls[i].arguments;
  call->req.prepare_payload();
  Inject(call->req, /*new_span=*/true, &call->span_id);
  beast::error_code ec;
  const tcp::endpoint endpoint(net::ip::make_address(url.address, ec), url.port);
  if (ec) return FinishW3cCall(*call, ec, "address");
  call->stream.expires_after(kDownstreamTimeout);
  call->stream.async_connect(endpoint, [self = shared_from_this(), call](beast::error_code c_ec) {
    if (c_ec) return self->FinishW3cCall(*call, c_ec, "connect");
    http::async_write(call->stream, call->req,
                      [self, call](beast::error_code write_ec, std::size_t) {
                        if (write_ec) return self->FinishW3cCall(*call, write_ec, "write");
                        http::async_read(call->stream, call->buffer, call->res,
                                         [self, call](beast::error_code read_ec, std::size_t) {
                                           self->FinishW3cCall(*call, read_ec, "read");
                                         });
                      });
  });
}

void Session::FinishW3cCall(W3cCall& call, beast::error_code ec, const char* stage) {
  W3cTest& test = *w3c_test_;
  const std::size_t i = test.statuses.size();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - call.start)
                      .count();
  const std::string url = Printable(test.calls[i].url, 100);
  if (ec) {
    g_log->warn("w3c-call own_trace={} own_req={} failed url={} span={} stage={} ms={} error={}",
                ids_.trace_id, ids_.request_id, url, call.span_id, stage, ms, ec.message());
    test.statuses.push_back(0);
  } else {
    g_log->info("w3c-call own_trace={} own_req={} url={} span={} status={} ms={}",
                ids_.trace_id, ids_.request_id, url, call.span_id, call.res.result_int(), ms);
    test.statuses.push_back(call.res.result_int());
  }
  beast::error_code ignored;
  call.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  call.stream.close();
  W3cCallNext();
}

void Session::Respond(http::status status, bool log_write, std::string body,
                      const char* content_type) {
  res_ = http::response<http::string_body>(status, version_);
  res_.set(http::field::server, "gls-request-log");
  res_.set(http::field::content_type, content_type);
  res_.keep_alive(keep_alive_);
  res_.body() = std::move(body);
  res_.prepare_payload();
  stream_.expires_after(kIdleTimeout);
  server_.WriteStarted();
  http::async_write(stream_, res_,
                    [self = shared_from_this(), log_write](beast::error_code ec, std::size_t n) {
                      self->OnWrite(ec, n, log_write);
                    });
}

void Session::OnWrite(beast::error_code ec, std::size_t bytes, bool log_write) {
  if (log_write) {
    if (ec) {
      g_log->warn("write own_trace={} own_req={} failed error={}", ids_.trace_id,
                  ids_.request_id, ec.message());
    } else {
      g_log->info("write own_trace={} own_req={} status={} bytes={}", ids_.trace_id,
                  ids_.request_id, res_.result_int(), bytes);
    }
  }
  server_.WriteEnded();
  if (ec || !res_.keep_alive()) return Close();
  // The next request's read starts outside this request's values: its
  // completion (and a bad request's log line) must not carry this request's
  // ids.
  if (server_.gls()) {
    gls::Snapshot().Run([this] { DoRead(); });
  } else {
    DoRead();
  }
}

void Session::Close() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
}

std::shared_ptr<spdlog::logger> MakeLogger(const Options& options) {
  spdlog::sink_ptr sink;
  if (options.log_file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.log_file, /*truncate=*/true);
  }
  auto logger = std::make_shared<spdlog::logger>(options.name, std::move(sink));
  // The flag's " label=value" entries go between the thread id and " | ",
  // the message after it.
  if (options.gls) {
    logger->set_formatter(gls::spdlog_values::MakeFormatter(
        "%Y-%m-%dT%H:%M:%S.%f %n %l [%t]%* | %v",
        gls::spdlog_values::Flag(request_values)
            .Add("trace_id", kTraceId)
            .Add("span_id", kSpanId)
            .Add("parent_id", kParentId)
            .Add("request_id", kRequestId)
            .Add("tracestate", kTraceState)
            .Add("tenant", kTenant)
            .Add("user", kUser)));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f %n %l [%t] | %v");
  }
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::err);
  return logger;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  try {
    g_log = MakeLogger(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "server: cannot log to %s: %s\n", options.log_file.c_str(), e.what());
    return 1;
  }
  int status = 1;
  try {
    Server server(options);
    status = server.Run();
  } catch (const std::exception& e) {
    g_log->error("fatal: {}", e.what());
    std::fprintf(stderr, "server: %s\n", e.what());
  }
  g_log->flush();
  g_log.reset();
  return status;
}
