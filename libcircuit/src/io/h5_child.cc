// The process that reads an HDF5 file for an H5Reader. libhdf5 (Debian's
// 1.10.8) crashes or loops on some corrupted files before any check of ours
// can run, and whether it does can depend on the order of the calls and on
// what the process did before (a file that a generic walk of every object
// read cleanly still crashed the reader). So the reading itself happens in a
// child forked at H5Reader::Open: the caller's own calls, in the caller's
// order, on the memory the caller had, each result sent back over a socket.
// A crash or hang there becomes an error here. docs/reliability.md says why.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "circuit/core/status.h"
#include "io/h5_internal.h"
#include "io/h5_wire.h"

// Under a sanitizer (the fuzz build) the child must not run the fuzzer's
// death callback, which would save the input as a crash of the parent; it
// sends its sanitizer report to the parent instead (SanitizedChildDied).
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));
extern "C" void __asan_set_error_report_callback(void (*callback)(const char*))
    __attribute__((weak));

namespace circuit::h5_internal {
namespace {

// ------------------------------------------------------------- framing
// A message is its length (8 bytes) and its bytes.

bool SendAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t sent = send(fd, data, n, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    data += sent;
    n -= static_cast<size_t>(sent);
  }
  return true;
}

bool SendMessage(int fd, const std::string& bytes) {
  const uint64_t n = bytes.size();
  return SendAll(fd, reinterpret_cast<const char*>(&n), sizeof n) &&
         SendAll(fd, bytes.data(), bytes.size());
}

// First 8 bytes of a message that is not an answer (answers start with a
// status code, 0..16): a sanitizer's report, or its death without one.
constexpr uint64_t kReportMagic = 0x5452504552535A41;  // "AZSREPRT"
constexpr uint64_t kDeathMagic = 0x4854414544535A41;   // "AZSDEATH"

// ------------------------------------------------------------- the child

int child_socket = -1;

// Sanitizer callbacks in the child: no allocation, raw sends.
void SendRaw(uint64_t magic, const char* text, size_t n) {
  const uint64_t length = sizeof magic + n;
  (void)SendAll(child_socket, reinterpret_cast<const char*>(&length), sizeof length);
  (void)SendAll(child_socket, reinterpret_cast<const char*>(&magic), sizeof magic);
  (void)SendAll(child_socket, text, n);
}
void OnSanitizerReport(const char* report) { SendRaw(kReportMagic, report, std::strlen(report)); }
void OnSanitizerDeath() { SendRaw(kDeathMagic, "", 0); }

// Blocking read of exactly n bytes; false at end of stream or on error.
bool ReceiveAll(int fd, char* data, size_t n) {
  while (n > 0) {
    const ssize_t got = recv(fd, data, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    data += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

template <typename T>
std::string Encode(const absl::StatusOr<T>& result) {
  WireOut w;
  PutResult(w, result);
  return w.Take();
}

// One call on the open file.
std::string Serve(const LocalReader& r, const Request& q) {
  switch (q.op) {
    case Op::kExists:
      return Encode(r.Exists(q.object));
    case Op::kHasAttribute:
      return Encode(r.HasAttribute(q.object, q.name));
    case Op::kReadIntAttribute:
      return Encode(r.ReadIntAttribute(q.object, q.name));
    case Op::kReadDoubleAttribute:
      return Encode(r.ReadDoubleAttribute(q.object, q.name));
    case Op::kReadStringAttribute:
      return Encode(r.ReadStringAttribute(q.object, q.name));
    case Op::kListGroup:
      return Encode(r.ListGroup(q.object));
    case Op::kDatasetShape:
      return Encode(r.DatasetShape(q.object));
    case Op::kReadFloats:
      return Encode(r.ReadFloats(q.object, q.shape));
    case Op::kReadDoubles:
      return Encode(r.ReadDoubles(q.object));
    case Op::kReadInt32s:
      return Encode(r.ReadInt32s(q.object));
    case Op::kReadInt64s:
      return Encode(r.ReadInt64s(q.object));
    case Op::kReadStrings:
      return Encode(r.ReadStrings(q.object));
    case Op::kReadString:
      return Encode(r.ReadString(q.object));
    case Op::kOpen:
      break;
  }
  return Encode(absl::StatusOr<bool>(absl::InternalError("unexpected request")));
}

// In the child, before reading: default handling of the signals a crash raises
// (the parent's handlers, a fuzzer's or Python's, must not run), the user's
// Ctrl-C left to the parent (which ends this process when it closes the
// reader), no signal blocked, and stdout and stderr on /dev/null: this process
// prints nothing and flushes nothing of the parent's. Under a sanitizer,
// stderr stays, for the sanitizer's report.
void PrepareChild(int fd) {
  child_socket = fd;
  const bool sanitized = __sanitizer_set_death_callback != nullptr;
  if (sanitized) __sanitizer_set_death_callback(OnSanitizerDeath);
  if (__asan_set_error_report_callback != nullptr) {
    __asan_set_error_report_callback(OnSanitizerReport);
  }
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM, SIGTRAP, SIGSYS}) {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, nullptr);
  }
  for (int sig : {SIGINT, SIGTERM, SIGPIPE}) signal(sig, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, STDOUT_FILENO);
    if (!sanitized) dup2(null_fd, STDERR_FILENO);
  }
}

// The child's life: answer requests until the parent closes the socket, then
// _exit (no atexit handler, no stdio flush, no destructor of the parent's).
// An alarm per request ends a libhdf5 loop even if the parent is gone.
[[noreturn]] void ServeReader(const std::string& path, int fd, unsigned alarm_seconds) {
  PrepareChild(fd);
  std::unique_ptr<LocalReader> reader;
  for (;;) {
    uint64_t n = 0;
    if (!ReceiveAll(fd, reinterpret_cast<char*>(&n), sizeof n) || n > (uint64_t{1} << 20)) _exit(0);
    std::string bytes(n, '\0');
    if (!ReceiveAll(fd, bytes.data(), n)) _exit(0);
    WireIn in(bytes);
    Request q;
    std::string answer;
    alarm(alarm_seconds);
    try {
      if (!GetRequest(in, &q)) {
        answer = Encode(
            absl::StatusOr<bool>(absl::InternalError(absl::StrCat(path, ": malformed request"))));
      } else if (q.op == Op::kOpen) {
        absl::StatusOr<LocalReader> opened = LocalReader::Open(path);
        absl::StatusOr<bool> result = true;
        if (opened.ok()) {
          reader = std::make_unique<LocalReader>(*std::move(opened));
        } else {
          result = opened.status();
        }
        answer = Encode(result);
      } else if (reader == nullptr) {
        answer =
            Encode(absl::StatusOr<bool>(absl::InternalError(absl::StrCat(path, ": not open"))));
      } else {
        answer = Serve(*reader, q);
      }
    } catch (const std::bad_alloc&) {
      answer = Encode(absl::StatusOr<bool>(
          absl::ResourceExhaustedError(absl::StrCat(path, ": out of memory reading ", q.object))));
    } catch (const std::exception& e) {
      answer = Encode(absl::StatusOr<bool>(
          absl::InternalError(absl::StrCat(path, ": reading ", q.object, ": ", e.what()))));
    }
    alarm(0);
    if (!SendMessage(fd, answer)) _exit(0);
  }
}

// ------------------------------------------------------------- the parent

// Seconds the child may spend on a file, all calls together: the limit (10 s,
// or $CIRCUIT_HDF5_CHECK_SECONDS) plus one per 10 MB of file.
double TimeLimit(uint64_t file_size) {
  double base = 10;
  if (const char* env = std::getenv("CIRCUIT_HDF5_CHECK_SECONDS"); env != nullptr) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end != env && v > 0 && v <= 3600) base = v;
  }
  return base + static_cast<double>(file_size) / (10 << 20);
}

double Now() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// True when the first frame of a sanitizer report that is not the sanitizer's
// own (an interceptor: memcpy, malloc, ...) lies in libhdf5; false when it lies
// in this project's code, or when the report has no frames to tell.
bool FirstFrameInLibhdf5(absl::string_view report) {
  static constexpr absl::string_view kRuntime[] = {
      " in __asan", " in __interceptor", " in __sanitizer",    " in __ubsan", " in __libc",
      " in malloc", " in calloc",        " in realloc",        " in free",    " in mem",
      " in str",    " in operator new",  " in operator delete"};
  for (absl::string_view line : absl::StrSplit(report, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::StartsWith(line, "#")) continue;
    bool runtime = false;
    for (absl::string_view r : kRuntime) runtime = runtime || absl::StrContains(line, r);
    if (!runtime) return absl::StrContains(line, "libhdf5");
  }
  return false;
}

// The line that names the error in a sanitizer report ("AddressSanitizer:
// SEGV on unknown address ..."), up to " on " or its end.
std::string ErrorKind(absl::string_view report) {
  const size_t at = report.find("ERROR: ");
  if (at == absl::string_view::npos) return "sanitizer report";
  absl::string_view kind = report.substr(at + 7);
  kind = kind.substr(0, std::min({kind.find('\n'), kind.find(" on "), kind.find(" (")}));
  return std::string(kind);
}

// This process's ends of the sockets to its live children. A new child closes
// them all, so that each child sees the end of its stream when this process
// closes its reader or dies.
std::mutex sockets_mutex;
std::set<int> sockets;

// Reads exactly n bytes by `deadline` (Now()); false on timeout, end of stream
// or error, with *timed_out saying which.
bool ReceiveBy(int fd, char* data, size_t n, double deadline, bool* timed_out) {
  while (n > 0) {
    const double left = deadline - Now();
    if (left <= 0) {
      *timed_out = true;
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(std::min(left * 1000 + 1, 60000.0)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return false;
    if (rc == 0) continue;
    const ssize_t got = recv(fd, data, n, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) return false;
    data += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReaderChild>> ReaderChild::Start(const std::string& path) {
  SilenceHdf5();  // before the fork, so that the child inherits it
  struct stat st {};
  const double limit = TimeLimit(stat(path.c_str(), &st) == 0 ? st.st_size : 0);
  std::unique_lock<std::mutex> lock(sockets_mutex);
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": cannot start the process that reads the HDF5 file: ", std::strerror(errno)));
  }
  pid_t pid = fork();
  for (int retry = 0; pid < 0 && errno == EAGAIN && retry < 5; ++retry) {
    usleep(20000);
    pid = fork();
  }
  if (pid < 0) {  // no reading in this process: that is what could crash
    const int fork_errno = errno;
    close(fds[0]);
    close(fds[1]);
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": cannot start the process that reads the HDF5 file: fork failed: ",
                     std::strerror(fork_errno)));
  }
  if (pid == 0) {
    close(fds[0]);
    for (int fd : sockets) close(fd);
    ServeReader(path, fds[1], static_cast<unsigned>(limit) + 2);
  }
  close(fds[1]);
  sockets.insert(fds[0]);
  lock.unlock();
  std::unique_ptr<ReaderChild> child(new ReaderChild(path, pid, fds[0], limit));
  Request open;
  open.op = Op::kOpen;
  CIRCUIT_ASSIGN_OR_RETURN(std::string answer, child->Call(open));
  absl::StatusOr<bool> opened;
  if (!GetResult(answer, &opened)) return child->Malformed();
  CIRCUIT_RETURN_IF_ERROR(opened.status());
  return child;
}

ReaderChild::ReaderChild(std::string path, pid_t pid, int fd, double limit)
    : path_(std::move(path)), pid_(pid), fd_(fd), limit_(limit) {}

ReaderChild::~ReaderChild() {
  {
    std::lock_guard<std::mutex> lock(sockets_mutex);
    sockets.erase(fd_);
    close(fd_);
  }
  if (broken_.ok()) {  // a broken child was ended and reaped already
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

absl::StatusOr<std::string> ReaderChild::Call(const Request& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!broken_.ok()) return broken_;
  WireOut w;
  PutRequest(w, request);
  const double start = Now();
  const double deadline = start + (limit_ - spent_);
  uint64_t n = 0;
  std::string answer;
  bool timed_out = false;
  bool ok = SendMessage(fd_, w.Take()) &&
            ReceiveBy(fd_, reinterpret_cast<char*>(&n), sizeof n, deadline, &timed_out);
  if (ok) {
    // Grown as the bytes arrive: a garbled length costs nothing up front.
    constexpr size_t kPiece = size_t{1} << 20;
    while (ok && answer.size() < n) {
      const size_t at = answer.size();
      answer.resize(at + std::min<uint64_t>(kPiece, n - at));
      ok = ReceiveBy(fd_, answer.data() + at, answer.size() - at, deadline, &timed_out);
    }
  }
  spent_ += Now() - start;
  if (ok && answer.size() >= sizeof(uint64_t)) {
    uint64_t magic = 0;
    std::memcpy(&magic, answer.data(), sizeof magic);
    if (magic == kReportMagic || magic == kDeathMagic) {
      return SanitizedChildDied(magic == kReportMagic ? answer.substr(sizeof magic) : "");
    }
  }
  if (ok) return answer;
  if (timed_out) {
    return Broken(absl::StrCat("hung reading it: no result in ", static_cast<int>(limit_), " s"));
  }
  return Broken("");
}

// A sanitizer stopped the child (fuzz and sanitizer builds). In libhdf5 that is
// the file's doing: the child is ended and the file refused, as a crash would
// be. In this project's code it is a bug, which must not pass as a corrupt
// file: this process aborts, so that a fuzzer records the input.
absl::Status ReaderChild::SanitizedChildDied(const std::string& report) {
  if (!FirstFrameInLibhdf5(report)) {
    std::fprintf(stderr,
                 "%s: a sanitizer stopped the process reading it outside libhdf5 (its report "
                 "is above): a bug in this project's reader\n",
                 path_.c_str());
    std::abort();
  }
  return Broken(absl::StrCat("crashed reading it: ", ErrorKind(report)));
}

absl::Status ReaderChild::Malformed() {
  std::lock_guard<std::mutex> lock(mutex_);
  return Broken("crashed reading it: its answer was malformed");
}

// Ends the child and returns the error every later call gets. `how` empty: the
// child is gone, and how it ended is the message.
absl::Status ReaderChild::Broken(const std::string& how) {
  kill(pid_, SIGKILL);
  int status = 0;
  pid_t waited;
  do waited = waitpid(pid_, &status, 0);
  while (waited < 0 && errno == EINTR);
  std::string what = how;
  if (what.empty()) {
    what = "crashed reading it: it died";
    if (waited == pid_ && WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      what = absl::StrCat("hung reading it: no result in ", static_cast<int>(limit_), " s");
    } else if (waited == pid_ && WIFSIGNALED(status)) {
      what = absl::StrCat("crashed reading it: signal ", WTERMSIG(status), ", ",
                          strsignal(WTERMSIG(status)));
    } else if (waited == pid_ && WIFEXITED(status)) {
      what = absl::StrCat("crashed reading it: exit ", WEXITSTATUS(status));
    }
  }
  broken_ =
      absl::InvalidArgumentError(absl::StrCat(path_, ": corrupt HDF5 file (libhdf5 ", what, ")"));
  return broken_;
}

}  // namespace circuit::h5_internal
