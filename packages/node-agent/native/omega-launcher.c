/*
 * omega-launcher: starts task supervisors for the node agent, so the agent (a Node process of
 * 100+ MiB) never forks itself per task. The agent starts one launcher and keeps it; forking
 * this small process costs a fraction of forking the agent, and the agent's event loop only
 * writes a request to a pipe. Protocol (native byte order: both ends are on one machine):
 *
 *   request  (stdin):  u32 id, u32 argBytes, u32 envBytes, then argBytes of NUL-terminated
 *                      strings [binary, argv0, argv1, ...], then envBytes that are written to
 *                      the new process's stdin (then EOF)
 *   replies (stdout):  u32 kind, u32 a, i32 b
 *                      kind 1 (spawned): a = request id, b = pid, or -errno when it failed
 *                      kind 2 (exited):  a = pid, b = wait status
 *
 * Each supervisor gets its own session (it outlives the agent and a Ctrl-C in its terminal),
 * stdin the pipe carrying its environment (never a file: it may hold secrets), stdout
 * /dev/null, the launcher's own stderr (the agent's: a supervisor writes its errors to its task
 * dir once it knows it), and the launcher's own environment (the agent passes only PATH). Every
 * other descriptor is close-on-exec.
 *
 * When the agent goes (EOF on stdin, or its end of stdout closed) the launcher exits at once
 * and touches no supervisor: they are re-parented, keep running, and write their exit status
 * to their task's directory, where a restarted agent finds it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_REQUEST_BYTES (8u * 1024u * 1024u)
#define MAX_ARGS 4096

static int wake_pipe[2] = {-1, -1};

static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  char byte = 0;
  ssize_t ignored = write(wake_pipe[1], &byte, 1);
  (void)ignored;
  errno = saved;
}

static int write_all(int fd, const void *data, size_t length) {
  const char *p = data;
  while (length > 0) {
    ssize_t n = write(fd, p, length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    length -= (size_t)n;
  }
  return 0;
}

static void reply(uint32_t kind, uint32_t a, int32_t b) {
  uint32_t message[3] = {kind, a, (uint32_t)b};
  /* The agent is gone: nothing left to do for it. */
  if (write_all(STDOUT_FILENO, message, sizeof message) != 0) _exit(0);
}

/* In the child: becomes the supervisor. Only async-signal-safe calls until exec. */
static void become(int env_read, const char *binary, char **argv, const sigset_t *mask) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &dfl, NULL);
  sigaction(SIGPIPE, &dfl, NULL);
  sigprocmask(SIG_SETMASK, mask, NULL);
  if (setsid() < 0) _exit(127);
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) _exit(127);
  if (dup2(env_read, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0) _exit(127);
  execv(binary, argv);
  _exit(127);
}

static void launch(uint32_t id, char *args, uint32_t arg_bytes, const char *env, uint32_t env_bytes, const sigset_t *mask) {
  char *strings[MAX_ARGS + 1];
  uint32_t count = 0;
  uint32_t at = 0;
  while (at < arg_bytes && count < MAX_ARGS) {
    strings[count++] = args + at;
    size_t length = strnlen(args + at, arg_bytes - at);
    if (at + length >= arg_bytes) {
      reply(1, id, -EINVAL); /* not NUL-terminated */
      return;
    }
    at += (uint32_t)length + 1;
  }
  if (count < 2 || at != arg_bytes) {
    reply(1, id, -EINVAL);
    return;
  }
  strings[count] = NULL;
  int env_pipe[2];
  if (pipe2(env_pipe, O_CLOEXEC) != 0) {
    reply(1, id, -errno);
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    int error = errno;
    close(env_pipe[0]);
    close(env_pipe[1]);
    reply(1, id, -error);
    return;
  }
  if (pid == 0) become(env_pipe[0], strings[0], strings + 1, mask);
  close(env_pipe[0]);
  reply(1, id, (int32_t)pid);
  /* A supervisor that exits before reading it all fails its start itself: EPIPE is ignored. */
  (void)write_all(env_pipe[1], env, env_bytes);
  close(env_pipe[1]);
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    reply(2, (uint32_t)pid, status);
  }
}

int main(void) {
  sigset_t original;
  sigprocmask(SIG_SETMASK, NULL, &original);
  if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return 1;
  struct sigaction on;
  memset(&on, 0, sizeof on);
  on.sa_handler = on_child;
  on.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &on, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Inherited descriptors above stderr must not reach supervisors. */
  for (int fd = 3; fd < 1024; fd++) {
    if (fd == wake_pipe[0] || fd == wake_pipe[1]) continue;
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }

  size_t capacity = 1 << 16;
  size_t filled = 0;
  char *buffer = malloc(capacity);
  if (buffer == NULL) return 1;
  for (;;) {
    struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[1].revents & POLLIN) {
      char drain[64];
      while (read(wake_pipe[0], drain, sizeof drain) > 0) {
      }
      reap();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (filled == capacity) {
        if (capacity >= MAX_REQUEST_BYTES + 12) return 1;
        capacity *= 2;
        char *grown = realloc(buffer, capacity);
        if (grown == NULL) return 1;
        buffer = grown;
      }
      ssize_t n = read(STDIN_FILENO, buffer + filled, capacity - filled);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0; /* the agent is gone: leave every supervisor running */
      filled += (size_t)n;
      size_t used = 0;
      while (filled - used >= 12) {
        uint32_t header[3];
        memcpy(header, buffer + used, sizeof header);
        uint64_t total = 12ull + header[1] + header[2];
        if (total > MAX_REQUEST_BYTES) return 1;
        if (filled - used < total) break;
        char *args = buffer + used + 12;
        launch(header[0], args, header[1], args + header[1], header[2], &original);
        used += (size_t)total;
      }
      memmove(buffer, buffer + used, filled - used);
      filled -= used;
    }
  }
}
