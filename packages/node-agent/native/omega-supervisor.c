/*
 * omega-supervisor: the small process that holds one task attempt for the node agent.
 *
 * It is the parent of the task's process for its whole life, so it, and only it, learns the
 * exact exit code or signal; it writes that to exit.json whether or not an agent is alive,
 * which is how an outcome survives an agent restart. It captures the task's stdout and stderr
 * through pipes into size-capped, rotated files.
 *
 *   agent --spawn (own session)--> omega-supervisor (root, the agent's cgroup)
 *         --stdin: env records, EOF-->  (never on disk: it may hold secret values)
 *                                   | fork
 *                                   v
 *                                child: blocked reading the "go" pipe (no user code yet)
 *   supervisor writes the child's pid into the cgroup's procs file(s), fsyncs the agent's
 *   meta.json, writes started.json, then writes "go": the child takes the task's uid/gid, enters its work dir and execs the
 *   task's argv (same pid, now in the cgroup, limits already applied)
 *                                   v
 *   child exits --> supervisor drains the pipes, writes exit.json (atomic) --> exits
 *
 * An exec that fails (no such program, not runnable) exits 127 / 126 as sh does, says so on the
 * task's stderr, and tells the supervisor on a close-on-exec status pipe: exit.json's "error"
 * is then "could not start the task: exec <argv[0]>: <strerror>" (the agent's start-failed).
 *
 * Usage:
 *   omega-supervisor [-u uid -g gid] [-p procs-file]... [-c cap-bytes] [-i [-t tmp-bytes]] [-N]
 *                    [-d disk-bytes] [-e entries] [-s check-ms] -w work-dir <task dir> -- <argv...>
 *   omega-supervisor --probe      prints {"pid":bool,"mount":bool,"network":bool}: what this
 *                                 host lets it unshare (each tried once in a throwaway child)
 *
 * Isolation (root only):
 *   -i  a new PID and mount namespace. The supervisor unshares CLONE_NEWPID before its fork, so
 *       its child is pid 1 of the new namespace: a tiny init that makes / private, mounts a
 *       fresh /proc (nosuid,nodev,noexec) and a private tmpfs on /tmp (-t bytes, default 256
 *       MiB, one inode per 4 KiB of it, mode 1777; the same on /dev/shm; a work dir under either is bound back at its own path), and after "go"
 *       forks the task, writes the task's pid (as its namespace sees it: that is how the
 *       kernel reads it) into the procs files before releasing it to take its ids and exec,
 *       and reaps every orphan until the task exits. The task's exact wait status (exit code or signal) reaches the supervisor on a
 *       status pipe ("S<status>\n"; "E<message>\n" first when the task's setup failed), since
 *       pid 1 cannot re-raise a signal on itself. The init's exit ends the namespace: the
 *       kernel kills whatever the task left. Every process of the task descends from the
 *       task's first process, so all are in the cgroup; the init itself stays outside (it is
 *       no part of the task's pids or memory counts, like the supervisor).
 *       As pid 1 it ignores signals it has no handler for (it installs none): TERM reaches the
 *       task through the cgroup or its process group (the task stays in the init's group),
 *       KILL from the agent ends the init and so the whole namespace.
 *   -N  a new network namespace holding only loopback (brought up): "network: none".
 *
 * Disk (see "the work dir's disk use" below): -d bytes allocated and -e entries the work dir may
 * hold, measured every -s ms (default 5000, the first one interval after the start); past
 * either the task is killed and exit.json carries "reason":"disk-exceeded","reasonMessage".
 *
 * stdin framing: records "NAME=value" each ended by a NUL byte, then one empty record (a lone
 * NUL) that says the environment is complete, then EOF. Anything else (the agent died while
 * writing, a record without '=') and the task does not start: exit.json carries an error.
 *
 * Files written in <task dir>: started.json {"pid","startedAtMs"}; exit.json {"exitCode",
 * "signal","finishedAtMs"[,"error"][,"reason","reasonMessage"],"stdoutTruncated","stderrTruncated"}; truncated.json
 * {"stdout","stderr"} once a stream has lost bytes; stdout.log / stderr.log (root-owned 0640:
 * the task never touches them) and, past the cap, stdout.log.1 / stderr.log.1 holding the
 * previous cap's worth of bytes. Each file holds at most <cap> bytes, so between cap and twice
 * the cap of the newest output is kept per stream. Its own errors go to supervisor.log, made
 * on the first one (before the task dir is known, as for a bad argument, to its stderr).
 *
 * The supervisor ignores SIGTERM, SIGINT and SIGHUP: the task is stopped through its cgroup,
 * and the supervisor must outlive it to record how it ended.
 *
 * C99 plus POSIX and Linux's signalfd; no dependency beyond libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Largest environment read from stdin; the agent's spec limits keep it far below. */
#define MAX_ENV_BYTES (1024 * 1024)
/* Default cap per log file: 64 MiB. */
#define DEFAULT_CAP ((long long)64 * 1024 * 1024)
/* Most procs files (cgroup v1 has one per mounted controller). */
#define MAX_PROCS_FILES 16
/* Exit codes of the child before exec: like sh (127 not found, 126 not runnable), 125 setup. */
#define EXIT_SETUP 125
/* Default size of the private /tmp: 256 MiB (its pages are charged to the task's cgroup too). */
#define DEFAULT_TMP_BYTES ((long long)256 * 1024 * 1024)

static const char *task_dir;
/* The environment as read from stdin; envp points into it. Freed by the parent after fork. */
static char *env_buf;

/* ---- small helpers ---------------------------------------------------------------------- */

/* <task dir>/supervisor.log once opened by complain(); -1 before the first complaint. */
static int complaints_fd = -1;

/*
 * One line in <task dir>/supervisor.log, made on the first complaint (a supervisor with nothing
 * to say leaves no file); before the task dir is known, or when the file cannot be opened, on
 * stderr (the agent's). Never includes env values.
 */
static void complain(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(line, sizeof line, "omega-supervisor: ");
    if (n > 0 && (size_t)n < sizeof line) n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (complaints_fd < 0 && task_dir != NULL) {
        char path[PATH_MAX];
        int len = snprintf(path, sizeof path, "%s/supervisor.log", task_dir);
        /* O_NOFOLLOW: the directory is root-owned, but never follow a planted link anyway. */
        if (len > 0 && len < (int)sizeof path) complaints_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
    }
    ssize_t ignored = write(complaints_fd >= 0 ? complaints_fd : STDERR_FILENO, line, (size_t)n);
    (void)ignored;
}

static long long now_ms(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* write(2) all of buf, retrying on EINTR and short writes. 0 on success, -1 with errno. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* "<task dir>/<name>" into out (size PATH_MAX). -1 when it does not fit. */
static int dir_path(char *out, const char *name) {
    int n = snprintf(out, PATH_MAX, "%s/%s", task_dir, name);
    return (n < 0 || n >= PATH_MAX) ? -1 : 0;
}

/* Appends s to a JSON string body (quotes not included), escaping as JSON requires. */
static void json_escape(char *out, size_t cap, const char *s) {
    size_t o = strlen(out);
    for (; *s != '\0' && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

/*
 * Writes text to <task dir>/<name> atomically and durably: temporary file, fsync, rename,
 * fsync of the directory. A reader sees either nothing or the whole record, even across a
 * crash. 0 on success, -1 (and a complaint) on failure.
 */
static int write_record(const char *name, const char *text) {
    char path[PATH_MAX], tmp[PATH_MAX];
    if (dir_path(path, name) != 0 || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        complain("path of %s too long", name);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        complain("open %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0) {
        complain("write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        complain("close %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        complain("rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    int dfd = open(task_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        /* Some filesystems refuse fsync on directories; the rename is atomic regardless. */
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

/*
 * fsync of <task dir>/<name>, the agent's record of who this attempt is (meta.json): the agent
 * writes it without syncing, so that a start does not wait on its event loop's threads for the
 * disk; it is synced here, before started.json (whose directory fsync also persists its name),
 * so it is on disk before any user code runs. 0 when synced or absent (a supervisor started by
 * hand), -1 (and a complaint) on failure.
 */
static int sync_record(const char *name) {
    char path[PATH_MAX];
    if (dir_path(path, name) != 0) return -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : (complain("open %s: %s", path, strerror(errno)), -1);
    int ok = fsync(fd) == 0;
    if (!ok) complain("fsync %s: %s", path, strerror(errno));
    close(fd);
    return ok ? 0 : -1;
}

/* ---- the environment from stdin --------------------------------------------------------- */

/*
 * Reads stdin to EOF and returns a NULL-terminated envp pointing into one buffer, or NULL when
 * the environment is missing, too large or malformed (why in *why).
 */
static char **read_env(const char **why) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        *why = "out of memory reading the environment";
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_ENV_BYTES) {
                *why = "the environment is larger than 1 MiB";
                free(buf);
                return NULL;
            }
            cap *= 2;
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                *why = "out of memory reading the environment";
                free(buf);
                return NULL;
            }
            buf = grown;
        }
        ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            *why = "could not read the environment from stdin";
            free(buf);
            return NULL;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    /* Count records; the stream must end with the empty record: "...\0\0" or just "\0". */
    size_t count = 0, start = 0;
    int complete = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\0') continue;
        if (i == start) {
            complete = (i + 1 == len);
            break;
        }
        if (memchr(buf + start, '=', i - start) == NULL || buf[start] == '=') {
            *why = "an environment record is not NAME=value";
            free(buf);
            return NULL;
        }
        count++;
        start = i + 1;
    }
    if (!complete) {
        *why = "the environment did not arrive from the agent (stdin closed early or malformed)";
        free(buf);
        return NULL;
    }
    char **envp = calloc(count + 1, sizeof *envp);
    if (envp == NULL) {
        *why = "out of memory reading the environment";
        free(buf);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; k < count; i += strlen(buf + i) + 1) envp[k++] = buf + i;
    envp[count] = NULL;
    env_buf = buf;
    return envp;
}

/* ---- captured output -------------------------------------------------------------------- */

/* One captured stream: its pipe, its current file, and what has been lost. */
struct stream {
    const char *name;     /* "stdout" */
    int pipe_fd;          /* read end; -1 once at EOF */
    int file_fd;          /* current log file; -1 after a write error (output then dropped) */
    long long size;       /* bytes in the current file */
    int rotations;        /* times the current file became <name>.log.1 */
    int truncated;        /* bytes were discarded (a .1 file replaced, or a write error) */
};

static long long cap_bytes = DEFAULT_CAP;

static int open_log(const char *name) {
    char path[PATH_MAX];
    char file[64];
    snprintf(file, sizeof file, "%s.log", name);
    if (dir_path(path, file) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* O_NOFOLLOW: the directory is root-owned, but never follow a planted link anyway. */
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
}

static void write_truncated_record(struct stream *out, struct stream *err) {
    char text[128];
    snprintf(text, sizeof text, "{\"stdout\":%s,\"stderr\":%s}\n", out->truncated ? "true" : "false", err->truncated ? "true" : "false");
    (void)write_record("truncated.json", text);
}

/*
 * <name>.log is full: it becomes <name>.log.1 (replacing the previous one, whose bytes are then
 * lost) and a new, empty <name>.log is opened. 0 on success, -1 when output must be dropped.
 */
static int rotate(struct stream *s, int *lost) {
    char from[PATH_MAX], to[PATH_MAX], file[64];
    snprintf(file, sizeof file, "%s.log", s->name);
    if (dir_path(from, file) != 0) return -1;
    if (snprintf(to, sizeof to, "%s.1", from) >= (int)sizeof to) return -1;
    if (close(s->file_fd) != 0) complain("close %s: %s", from, strerror(errno));
    s->file_fd = -1;
    if (s->rotations > 0) *lost = 1;
    if (rename(from, to) != 0) {
        complain("rename %s: %s", from, strerror(errno));
        return -1;
    }
    s->rotations++;
    s->file_fd = open_log(s->name);
    if (s->file_fd < 0) {
        complain("open %s: %s", from, strerror(errno));
        return -1;
    }
    s->size = 0;
    return 0;
}

/* Writes bytes read from the task into the stream's files, rotating at the cap. */
static void capture(struct stream *s, const char *buf, size_t len, struct stream *out, struct stream *err) {
    int lost = 0;
    while (len > 0) {
        if (s->file_fd < 0) {
            lost = 1;
            break;
        }
        long long room = cap_bytes - s->size;
        if (room <= 0) {
            if (rotate(s, &lost) != 0) continue;
            room = cap_bytes;
        }
        size_t n = len < (unsigned long long)room ? len : (size_t)room;
        if (write_all(s->file_fd, buf, n) != 0) {
            complain("write %s.log: %s", s->name, strerror(errno));
            close(s->file_fd);
            s->file_fd = -1;
            continue;
        }
        s->size += (long long)n;
        buf += n;
        len -= n;
    }
    if (lost && !s->truncated) {
        s->truncated = 1;
        write_truncated_record(out, err);
    }
}

/*
 * Reads what one pipe has now into its files. Returns 1 if it read data, 0 at EOF (the pipe
 * is then closed), -1 when nothing is available (EAGAIN) or on EINTR.
 */
static int pump(struct stream *s, struct stream *out, struct stream *err) {
    static char buf[65536];
    ssize_t n = read(s->pipe_fd, buf, sizeof buf);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return -1;
        complain("read %s pipe: %s", s->name, strerror(errno));
        n = 0;
    }
    if (n == 0) {
        close(s->pipe_fd);
        s->pipe_fd = -1;
        return 0;
    }
    capture(s, buf, (size_t)n, out, err);
    return 1;
}

/* ---- the work dir's disk use ------------------------------------------------------------- */

/*
 * With -d and/or -e the supervisor walks the task's work dir every -s ms (never at start) and
 * adds up the bytes its entries have allocated (st_blocks: a sparse file counts what it uses,
 * not its length) and the number of entries (files, directories, links: inodes). Past a limit
 * it kills the task and exit.json says "reason":"disk-exceeded".
 *
 * The walk is descriptor-relative and never follows a link: each directory is opened by name
 * relative to its parent's descriptor with O_DIRECTORY|O_NOFOLLOW, so a link the task planted is
 * one small entry, never what it points at, and a directory swapped for a link between the
 * stat and the open is skipped, not followed. It does not cross into another filesystem
 * (st_dev), goes at most MAX_WALK_DEPTH levels deep (deeper counts as over the limit: nesting
 * is no hiding place), and stops as soon as a limit is passed, so one walk does at most
 * entries-limit + 1 stats. The next walk waits at least WALK_BACKOFF times as long as the last
 * one took, so walking costs at most 1/WALK_BACKOFF of a core however big the tree.
 */
#define MAX_WALK_DEPTH 128
#define WALK_BACKOFF 20
#define DEFAULT_DISK_CHECK_MS 5000

/* What getdents64(2) returns; glibc declares no struct for the raw call. */
struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* One walk's counts and the limits it stops at (0: no limit). */
struct walk {
    dev_t dev;
    long long bytes, entries;
    long long limit_bytes, limit_entries;
    int too_deep;
};

static long long mono_ms(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int walk_over(const struct walk *w) {
    return w->too_deep || (w->limit_bytes > 0 && w->bytes > w->limit_bytes) || (w->limit_entries > 0 && w->entries > w->limit_entries);
}

/* A directory by name relative to dfd, never through a link. O_NOATIME: the walk leaves no trace
 * the task could time (it needs ownership or CAP_FOWNER; without either, opened without it). */
static int open_dir_at(int dfd, const char *name) {
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(dfd, name, flags | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = openat(dfd, name, flags);
    return fd;
}

/* Adds what is below the directory dfd to w. Nonzero once a limit is passed (the walk stops). */
static int walk_dir(int dfd, int depth, struct walk *w) {
    /* Per level, so a deeper walk does not lose its place here; 1 KiB holds 3+ entries of any name. */
    char buf[1024] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0; /* the end (or unreadable: what was counted stands) */
        for (long off = 0; off < n;) {
            struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
            off += d->d_reclen;
            if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
            struct stat st;
            if (fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue; /* gone since */
            if (st.st_dev != w->dev) continue; /* a mount point: another filesystem's bytes */
            w->entries++;
            w->bytes += (long long)st.st_blocks * 512;
            if (walk_over(w)) return 1;
            if (!S_ISDIR(st.st_mode)) continue;
            if (depth + 1 > MAX_WALK_DEPTH) {
                w->too_deep = 1;
                return 1;
            }
            int sub = open_dir_at(dfd, d->d_name);
            if (sub < 0) continue; /* no longer a directory (a link now): not followed */
            struct stat sst;
            int stop = fstat(sub, &sst) == 0 && sst.st_dev == w->dev ? walk_dir(sub, depth + 1, w) : 0;
            close(sub);
            if (stop) return 1;
        }
    }
}

/* The work dir's bound, as given on the command line. */
struct disk_bound {
    const char *work_dir;
    long long limit_bytes;   /* -d; 0: none */
    long long limit_entries; /* -e; 0: none */
    long long interval_ms;   /* -s */
    long long next_ms;       /* mono_ms() of the next walk; 0: no walks */
};

/* Walks the work dir once. 1, with why said in why, when it is over a limit; else 0. */
static int disk_exceeded(const struct disk_bound *b, char *why, size_t cap) {
    static int complained;
    int fd = open_dir_at(AT_FDCWD, b->work_dir);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        /* The work dir sits in the root-owned task dir: the task cannot replace it; say it once. */
        if (!complained++) complain("open the work dir %s to measure it: %s", b->work_dir, strerror(errno));
        if (fd >= 0) close(fd);
        return 0;
    }
    struct walk w = { st.st_dev, (long long)st.st_blocks * 512, 1, b->limit_bytes, b->limit_entries, 0 };
    int over = walk_over(&w) || walk_dir(fd, 0, &w);
    close(fd);
    if (!over) return 0;
    if (w.too_deep) snprintf(why, cap, "the work dir nests directories more than %d levels deep (the most the disk check follows)", MAX_WALK_DEPTH);
    else if (w.limit_entries > 0 && w.entries > w.limit_entries) snprintf(why, cap, "the work dir holds more than %lld entries (files, directories, links), its limit", w.limit_entries);
    else snprintf(why, cap, "the work dir uses at least %lld bytes of disk, over its limit of %lld bytes", w.bytes, w.limit_bytes);
    return 1;
}

/*
 * SIGKILL to the whole task: its first process (with -i the namespace's init, whose end ends
 * every process of the namespace) and its process group, and everything in its cgroup:
 * cgroup.kill beside cgroup.procs (v2), else one pass over cgroup.procs (v1; the agent kills
 * what is left once the supervisor has exited).
 */
static void kill_task(pid_t child, const char *const *procs, int nprocs) {
    (void)kill(child, SIGKILL);
    (void)kill(-child, SIGKILL);
    for (int i = 0; i < nprocs; i++) {
        char path[PATH_MAX];
        const char *slash = strrchr(procs[i], '/');
        int len = slash == NULL ? 0 : (int)(slash - procs[i]);
        if (snprintf(path, sizeof path, "%.*s/cgroup.kill", len, procs[i]) < (int)sizeof path) {
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
                int ok = write_all(fd, "1", 1) == 0;
                close(fd);
                if (ok) continue;
            }
        }
        FILE *f = fopen(procs[i], "re");
        if (f == NULL) continue;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
            if (pid > 0) (void)kill((pid_t)pid, SIGKILL);
        fclose(f);
    }
}

/* ---- isolation ------------------------------------------------------------------------- */

/* Brings up "lo" in the current network namespace (a new one has it down). 0, or -1 with errno. */
static int loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* mkdir -p of path's components (root-owned 0755 where made). 0, or -1 with errno. */
static int make_dirs(const char *path) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) { errno = ENAMETOOLONG; return -1; }
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = c;
            if (c == '\0') return 0;
        }
    }
}

/* Whether `path` is `dir` itself or lies below it. */
static int is_under(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/*
 * A private tmpfs on `dir` (an existing directory; none is made where there is none). The work
 * dir, named by each of `paths` (as given, and resolved where a link is on the way), would be
 * hidden by it where a path lies under `dir`: it is bound back there. NULL on success, else the
 * stage that failed (errno set).
 */
static const char *private_tmpfs(const char *dir, const char *const paths[], int npaths, const char *opts, const char *mount_stage) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    /* Where the tmpfs really lands: `dir` may itself be a link (/dev/shm -> /run/shm). */
    char real_dir[PATH_MAX];
    if (realpath(dir, real_dir) == NULL) return "resolve a private tmpfs's path";
    int fds[2] = {-1, -1};
    for (int i = 0; i < npaths; i++) {
        if (!is_under(paths[i], dir) && !is_under(paths[i], real_dir)) continue;
        fds[i] = open(paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fds[i] < 0) return "open the work dir";
    }
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) return mount_stage;
    for (int i = 0; i < npaths; i++) {
        if (fds[i] < 0) continue;
        char from[64];
        snprintf(from, sizeof from, "/proc/self/fd/%d", fds[i]);
        if (make_dirs(paths[i]) != 0) return "make the work dir's path in a private tmpfs";
        if (mount(from, paths[i], NULL, MS_BIND | MS_REC, NULL) != 0) return "bind the work dir into a private tmpfs";
        close(fds[i]);
    }
    return NULL;
}

/*
 * In the new mount namespace, as pid 1 of the new PID namespace: / private (nothing mounted
 * here reaches the host, nor the host's later mounts here), a fresh /proc showing only this
 * namespace's processes, a private tmpfs on /tmp and one on /dev/shm. A work dir under either
 * (a data dir there, or one reached through a link into one) is bound back at its own path, so
 * the task's cwd and HOME stay what they are. NULL on success, else the stage that failed
 * (errno set).
 */
static const char *setup_mounts(const char *work_dir, long long tmp_bytes) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return "make / private";
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) return "mount /proc";
    char resolved[PATH_MAX];
    if (realpath(work_dir, resolved) == NULL) return "resolve the work dir's path";
    const char *const paths[2] = {work_dir, resolved};
    int npaths = strcmp(work_dir, resolved) == 0 ? 1 : 2;
    /* Bytes and inodes both bounded: one inode per 4 KiB of size (at least 4096), so empty files
     * cannot pile up kernel memory past what the size allows. */
    char opts[96];
    snprintf(opts, sizeof opts, "size=%lld,nr_inodes=%lld,mode=1777", tmp_bytes, tmp_bytes / 4096 > 4096 ? tmp_bytes / 4096 : 4096);
    const char *stage = private_tmpfs("/tmp", paths, npaths, opts, "mount a tmpfs on /tmp");
    /* The host's /dev/shm is one tmpfs every process shares: the task gets its own, like /tmp. */
    if (stage == NULL) stage = private_tmpfs("/dev/shm", paths, npaths, opts, "mount a tmpfs on /dev/shm");
    return stage;
}

/* Takes the task's ids (groups first: after setuid the process may no longer change them). */
static const char *take_ids(int have_ids, uid_t uid, gid_t gid) {
    if (!have_ids) return NULL;
    if (setgroups(1, &gid) != 0) return "setgroups";
    if (setgid(gid) != 0) return "setgid";
    if (setuid(uid) != 0) return "setuid";
    return NULL;
}

/*
 * Execs the task's argv (PATH lookup as sh does, from the task's own PATH: execvp reads
 * environ). Never returns. When the exec fails: says why on the task's stderr, as sh would,
 * and on status_fd as "E<message>\n" (close-on-exec: a task that runs never holds it), so
 * exit.json's "error" names the program; exits 127 (not found) or 126 (not runnable).
 */
static void exec_task(char **argv, char **envp, int status_fd) {
    environ = envp;
    execvp(argv[0], argv);
    int e = errno;
    dprintf(STDERR_FILENO, "omega-task: %s: %s\n", argv[0], strerror(e));
    /* One line, bounded: the reader splits the pipe at newlines, and the status may follow. */
    char name[201];
    size_t i = 0;
    for (; argv[0][i] != '\0' && i < sizeof name - 1; i++) name[i] = (unsigned char)argv[0][i] < 0x20 ? '?' : argv[0][i];
    name[i] = '\0';
    dprintf(status_fd, "Ecould not start the task: exec %s%s: %s\n", name, argv[0][i] != '\0' ? "..." : "", strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/*
 * pid 1 of the task's PID namespace, after "go" (it is in the cgroup): forks the task, which
 * takes its ids, enters the work dir and execs; reaps every process until the task's own exit;
 * sends its exact wait status on status_fd; exits, which ends the namespace. Never returns.
 */
static void run_init(char **argv, char **envp, const char *work_dir, int have_ids, uid_t uid, gid_t gid, int status_fd,
                     const char *const *procs, int nprocs) {
    int release[2];
    if (pipe2(release, O_CLOEXEC) != 0) {
        dprintf(status_fd, "Ecould not start the task: pipe: %s\n", strerror(errno));
        _exit(EXIT_SETUP);
    }
    pid_t task = fork();
    if (task < 0) {
        dprintf(status_fd, "Ecould not start the task: fork: %s\n", strerror(errno));
        _exit(EXIT_SETUP);
    }
    if (task == 0) {
        close(release[1]);
        char go = 0;
        ssize_t n;
        do n = read(release[0], &go, 1); while (n < 0 && errno == EINTR);
        if (n != 1 || go != 'g') _exit(EXIT_SETUP); /* not in its cgroup: no user code */
        close(release[0]);
        const char *stage = take_ids(have_ids, uid, gid);
        if (stage == NULL && chdir(work_dir) != 0) stage = "chdir to the work dir";
        if (stage != NULL) {
            dprintf(status_fd, "Ecould not start the task: %s: %s\n", stage, strerror(errno));
            _exit(EXIT_SETUP);
        }
        exec_task(argv, envp, status_fd);
    }
    close(release[0]);
    /*
     * Into the cgroup before any user code, and the task rather than this init: every process of
     * the task descends from it, and the init stays out of the task's pids and memory counts
     * (like the supervisor). The pid is read in the writer's PID namespace: this one's.
     */
    char pid_text[32];
    int len = snprintf(pid_text, sizeof pid_text, "%d", (int)task);
    for (int i = 0; i < nprocs; i++) {
        int fd = open(procs[i], O_WRONLY | O_CLOEXEC);
        int ok = fd >= 0 && write_all(fd, pid_text, (size_t)len) == 0;
        int e = errno;
        if (fd >= 0 && close(fd) != 0 && ok) { ok = 0; e = errno; }
        if (!ok) {
            dprintf(status_fd, "Ecould not put the task into its cgroup: %s: %s\n", procs[i], strerror(e));
            kill(task, SIGKILL);
            break;
        }
    }
    if (write_all(release[1], "g", 1) != 0) kill(task, SIGKILL);
    close(release[1]);
    /* Only the task writes to these; holding them would keep the supervisor's pipes open. */
    close(STDOUT_FILENO);
    close(STDERR_FILENO);
    int status = 0;
    for (;;) {
        pid_t w = waitpid(-1, &status, 0);
        if (w == task) break;
        if (w < 0 && errno != EINTR) _exit(EXIT_SETUP); /* ECHILD: cannot happen while the task lives */
    }
    dprintf(status_fd, "S%d\n", status);
    _exit(0);
}

/*
 * --probe: each isolation tried once in a throwaway child, printed as one JSON line. pid
 * includes what -i needs with it: a private / and a fresh /proc mounted by the new pid 1.
 */
static int probe_one(int kind) {
    pid_t p = fork();
    if (p < 0) return 0;
    if (p == 0) {
        if (kind == 'p') {
            if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) _exit(1);
            pid_t init = fork();
            if (init < 0) _exit(1);
            if (init == 0) {
                if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(1);
                if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) _exit(1);
                _exit(getpid() == 1 ? 0 : 1);
            }
            int st;
            while (waitpid(init, &st, 0) < 0) if (errno != EINTR) _exit(1);
            _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
        }
        if (kind == 'm') {
            if (unshare(CLONE_NEWNS) != 0) _exit(1);
            if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(1);
            if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=65536,mode=1777") != 0) _exit(1);
            _exit(0);
        }
        if (unshare(CLONE_NEWNET) != 0 || loopback_up() != 0) _exit(1);
        _exit(0);
    }
    int st;
    while (waitpid(p, &st, 0) < 0) if (errno != EINTR) return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int probe(void) {
    int pid = probe_one('p'), mnt = probe_one('m'), net = probe_one('n');
    printf("{\"pid\":%s,\"mount\":%s,\"network\":%s}\n", pid ? "true" : "false", mnt ? "true" : "false", net ? "true" : "false");
    return 0;
}

/* ---- the child --------------------------------------------------------------------------- */

/*
 * In the child, before exec. Reports a setup failure on the report pipe as "E<message>" and
 * exits; on success writes "R" and blocks until the supervisor writes the go byte (by then
 * it is in its cgroup), then execs. Never returns.
 */
static void run_child(char **argv, char **envp, const char *work_dir, int have_ids, uid_t uid, gid_t gid,
                      int go_fd, int report_fd, int out_fd, int err_fd, const int *parent_ends, int nparent,
                      int pid_ns, int net_ns, long long tmp_bytes, int status_fd, const char *const *procs, int nprocs) {
    char msg[512];
    const char *stage = NULL;
    int devnull = -1;
    sigset_t none;

    /* The supervisor's ends: while the child held the go pipe's write end, it would never see EOF. */
    for (int i = 0; i < nparent; i++) close(parent_ends[i]);
    /* Undo what the supervisor set for itself: exec keeps ignored signals and the mask. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) { stage = "sigprocmask"; goto fail; }
    /* Own session and process group: without cgroups, the group is what gets killed. */
    if (setsid() < 0) { stage = "setsid"; goto fail; }
    /* O_CLOEXEC: only the dup2 copy on stdin reaches the task. */
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) { stage = "open /dev/null"; goto fail; }
    if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0) { stage = "dup2"; goto fail; }
    /* Namespaces while still root; the mounts need pid 1 of the new PID namespace (this process). */
    if (net_ns) {
        if (unshare(CLONE_NEWNET) != 0) { stage = "unshare the network namespace"; goto fail; }
        if (loopback_up() != 0) { stage = "bring up lo"; goto fail; }
    }
    if (pid_ns) {
        if (unshare(CLONE_NEWNS) != 0) { stage = "unshare the mount namespace"; goto fail; }
        stage = setup_mounts(work_dir, tmp_bytes);
        if (stage != NULL) goto fail;
    } else {
        stage = take_ids(have_ids, uid, gid);
        if (stage != NULL) goto fail;
        /* As the task user: it must be able to reach its own work dir. */
        if (chdir(work_dir) != 0) { stage = "chdir to the work dir"; goto fail; }
    }
    if (write_all(report_fd, "R", 1) != 0) _exit(EXIT_SETUP);

    char go = 0;
    ssize_t n;
    do n = read(go_fd, &go, 1); while (n < 0 && errno == EINTR);
    /* EOF: the supervisor died or refused (cgroup join failed). No user code runs. */
    if (n != 1 || go != 'g') _exit(EXIT_SETUP);
    close(go_fd);
    close(report_fd);
    if (pid_ns) run_init(argv, envp, work_dir, have_ids, uid, gid, status_fd, procs, nprocs);
    exec_task(argv, envp, status_fd);

fail:
    snprintf(msg, sizeof msg, "E%s: %s", stage, strerror(errno));
    (void)write_all(report_fd, msg, strlen(msg));
    _exit(EXIT_SETUP);
}

/* ---- main -------------------------------------------------------------------------------- */

/*
 * Marks every descriptor above stderr that the supervisor inherited close-on-exec, so none
 * reaches the task (the agent passes only 0-2, but a supervisor started by hand may hold more).
 */
static void cloexec_inherited(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) {
        complain("opendir /proc/self/fd: %s (inherited descriptors stay open)", strerror(errno));
        return;
    }
    int self = dirfd(dir);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        char *end;
        long fd = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || end == entry->d_name || fd <= STDERR_FILENO || fd == self) continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0) (void)fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    closedir(dir);
}

static void usage(void) {
    fputs("usage: omega-supervisor [-u uid -g gid] [-p procs-file]... [-c cap-bytes] [-i [-t tmp-bytes]] [-N]\n"
          "                        [-d disk-bytes] [-e entries] [-s check-ms] -w work-dir <task dir> -- <argv...>\n"
          "       omega-supervisor --probe\n", stderr);
    exit(2);
}

static int parse_id(const char *s, unsigned long *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > (unsigned long)UINT32_MAX - 1) return -1;
    *out = v;
    return 0;
}

/* A decimal count of at least min for an option, else the usage. */
static long long parse_count(const char *s, long long min) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min) usage();
    return v;
}

/* Node's name for a signal (what the agent has always recorded): "SIGKILL". */
static const char *signal_name(int sig) {
    static const struct { int sig; const char *name; } names[] = {
        { SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" }, { SIGILL, "SIGILL" },
        { SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" }, { SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" },
        { SIGKILL, "SIGKILL" }, { SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" }, { SIGUSR2, "SIGUSR2" },
        { SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" }, { SIGCHLD, "SIGCHLD" },
        { SIGCONT, "SIGCONT" }, { SIGSTOP, "SIGSTOP" }, { SIGTSTP, "SIGTSTP" }, { SIGTTIN, "SIGTTIN" },
        { SIGTTOU, "SIGTTOU" }, { SIGURG, "SIGURG" }, { SIGXCPU, "SIGXCPU" }, { SIGXFSZ, "SIGXFSZ" },
        { SIGVTALRM, "SIGVTALRM" }, { SIGPROF, "SIGPROF" }, { SIGWINCH, "SIGWINCH" }, { SIGIO, "SIGIO" },
        { SIGSYS, "SIGSYS" },
    };
    static char other[16];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig) return names[i].name;
    snprintf(other, sizeof other, "SIG%d", sig);
    return other;
}

/* Set when the supervisor itself ended the task (a limit it enforces): exit.json's "reason" and "reasonMessage". */
static const char *killed_for;
static char killed_why[256];

/* Writes exit.json and exits 0: the end of every path once the task dir is known. */
static void finish(int have_status, int status, const char *error, struct stream *out, struct stream *err) {
    char text[2048] = "{\"exitCode\":";
    char tail[256];
    size_t o = strlen(text);
    if (have_status && WIFEXITED(status)) {
        snprintf(text + o, sizeof text - o, "%d,\"signal\":null", WEXITSTATUS(status));
    } else if (have_status && WIFSIGNALED(status)) {
        snprintf(text + o, sizeof text - o, "null,\"signal\":\"%s\"", signal_name(WTERMSIG(status)));
    } else {
        snprintf(text + o, sizeof text - o, "null,\"signal\":null");
    }
    o = strlen(text);
    snprintf(text + o, sizeof text - o, ",\"finishedAtMs\":%lld", now_ms());
    if (error != NULL) {
        strcat(text, ",\"error\":\"");
        json_escape(text, sizeof text - 64, error);
        strcat(text, "\"");
    }
    if (killed_for != NULL && strlen(text) + strlen(killed_for) + strlen(killed_why) < sizeof text - 400) {
        o = strlen(text);
        snprintf(text + o, sizeof text - o, ",\"reason\":\"%s\",\"reasonMessage\":\"", killed_for);
        json_escape(text, sizeof text - 300, killed_why);
        strcat(text, "\"");
    }
    snprintf(tail, sizeof tail, ",\"stdoutTruncated\":%s,\"stderrTruncated\":%s}\n",
             out != NULL && out->truncated ? "true" : "false", err != NULL && err->truncated ? "true" : "false");
    strcat(text, tail);
    exit(write_record("exit.json", text) == 0 ? 0 : 1);
}

int main(int argc, char **argv) {
    unsigned long uid = 0, gid = 0;
    int have_uid = 0, have_gid = 0;
    const char *procs[MAX_PROCS_FILES];
    int nprocs = 0;
    const char *work_dir = NULL;
    int pid_ns = 0, net_ns = 0;
    long long tmp_bytes = DEFAULT_TMP_BYTES;
    struct disk_bound disk = { NULL, 0, 0, DEFAULT_DISK_CHECK_MS, 0 };
    int opt;

    if (argc == 2 && strcmp(argv[1], "--probe") == 0) return probe();
    while ((opt = getopt(argc, argv, "+u:g:p:c:w:it:Nd:e:s:")) != -1) {
        switch (opt) {
        case 'u': if (parse_id(optarg, &uid) != 0) usage(); have_uid = 1; break;
        case 'g': if (parse_id(optarg, &gid) != 0) usage(); have_gid = 1; break;
        case 'p': if (nprocs == MAX_PROCS_FILES) usage(); procs[nprocs++] = optarg; break;
        case 'c': {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || v < 4096) usage();
            cap_bytes = v;
            break;
        }
        case 'w': work_dir = optarg; break;
        case 'i': pid_ns = 1; break;
        case 'N': net_ns = 1; break;
        case 't': {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || v < 4096) usage();
            tmp_bytes = v;
            break;
        }
        case 'd': disk.limit_bytes = parse_count(optarg, 1); break;
        case 'e': disk.limit_entries = parse_count(optarg, 1); break;
        case 's': disk.interval_ms = parse_count(optarg, 10); break;
        default: usage();
        }
    }
    /* <task dir> -- <argv...> */
    if (have_uid != have_gid || work_dir == NULL || optind + 2 >= argc || strcmp(argv[optind + 1], "--") != 0) usage();
    task_dir = argv[optind];
    char **task_argv = argv + optind + 2;
    /* From here on complaints go to supervisor.log: let go of the agent's stderr, which a
     * supervisor outliving the agent must not hold open (nor die writing to, once it is gone). */
    int quiet = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (quiet >= 0 && quiet != STDERR_FILENO) {
        (void)dup2(quiet, STDERR_FILENO);
        close(quiet);
    }

    cloexec_inherited();
    /* The task is stopped through its cgroup; the supervisor must outlive it to record the end. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    const char *why = NULL;
    char **envp = read_env(&why);
    if (envp == NULL) finish(0, 0, why, NULL, NULL);

    struct stream out = { "stdout", -1, -1, 0, 0, 0 };
    struct stream err = { "stderr", -1, -1, 0, 0, 0 };
    out.file_fd = open_log("stdout");
    err.file_fd = open_log("stderr");
    if (out.file_fd < 0 || err.file_fd < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "could not open the log files: %s", strerror(errno));
        finish(0, 0, msg, NULL, NULL);
    }

    /* Pipes: the task's stdout and stderr, the go byte, the child's setup report, and the status
     * pipe (a failed exec's message; with -i also the init's setup errors and the task's status). */
    int out_pipe[2], err_pipe[2], go_pipe[2], report_pipe[2], status_pipe[2] = { -1, -1 };
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(go_pipe, O_CLOEXEC) != 0 || pipe2(report_pipe, O_CLOEXEC) != 0 ||
        pipe2(status_pipe, O_CLOEXEC) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "could not start the task: pipe: %s", strerror(errno));
        finish(0, 0, msg, &out, &err);
    }

    /* SIGCHLD through a signalfd, so one poll() watches the pipes and the child together. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0) finish(0, 0, "could not start the task: sigprocmask failed", &out, &err);
    int sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0) finish(0, 0, "could not start the task: signalfd failed", &out, &err);

    /* Only the next fork's child enters it (as its pid 1); the supervisor stays where it is. */
    if (pid_ns && unshare(CLONE_NEWPID) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "could not start the task: unshare the PID namespace: %s", strerror(errno));
        finish(0, 0, msg, &out, &err);
    }
    pid_t child = fork();
    if (child < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "could not start the task: fork: %s", strerror(errno));
        finish(0, 0, msg, &out, &err);
    }
    if (child == 0) {
        /* O_CLOEXEC keeps these out of the task: its ends are dup2'ed onto 1 and 2. */
        const int parent_ends[] = { go_pipe[1], report_pipe[0], out_pipe[0], err_pipe[0], sig_fd, out.file_fd, err.file_fd, status_pipe[0] };
        run_child(task_argv, envp, work_dir, have_uid, (uid_t)uid, (gid_t)gid, go_pipe[0], report_pipe[1], out_pipe[1], err_pipe[1], parent_ends, 8,
                  pid_ns, net_ns, tmp_bytes, status_pipe[1], procs, nprocs);
    }
    /* Only the child needs the environment (up to 1 MiB): give it back. */
    free(envp);
    free(env_buf);
    envp = NULL;
    env_buf = NULL;
    close(go_pipe[0]);
    close(report_pipe[1]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (status_pipe[1] >= 0) close(status_pipe[1]);
    out.pipe_fd = out_pipe[0];
    err.pipe_fd = err_pipe[0];

    /* Wait for the child to be ready (it sets its ids, then blocks) or to say what failed. */
    char report[512];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(report_pipe[0], report + got, sizeof report - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
        if (report[0] == 'R' || got == sizeof report - 1) break;
    }
    report[got] = '\0';
    const char *failure = NULL;
    char failure_buf[768];
    if (got == 0 || report[0] != 'R') {
        /* Drain the rest of the message: the child exits right after writing it. */
        for (;;) {
            ssize_t n = read(report_pipe[0], report + got, sizeof report - 1 - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += (size_t)n;
        }
        report[got] = '\0';
        snprintf(failure_buf, sizeof failure_buf, "could not start the task: %s", got > 1 ? report + 1 : "the child ended before it was ready");
        failure = failure_buf;
    }
    close(report_pipe[0]);

    if (failure == NULL && !pid_ns) {
        /* Into the cgroup before any user code: the limits hold from the first instruction.
         * With -i the init does it, for the task's first process (see run_init). */
        char pid_text[32];
        int len = snprintf(pid_text, sizeof pid_text, "%d", (int)child);
        for (int i = 0; i < nprocs && failure == NULL; i++) {
            int fd = open(procs[i], O_WRONLY | O_CLOEXEC);
            int ok = fd >= 0 && write_all(fd, pid_text, (size_t)len) == 0;
            int e = errno;
            if (fd >= 0 && close(fd) != 0 && ok) { ok = 0; e = errno; }
            if (!ok) {
                snprintf(failure_buf, sizeof failure_buf, "could not put the task into its cgroup: %s: %s", procs[i], strerror(e));
                failure = failure_buf;
            }
        }
    }
    if (failure == NULL && sync_record("meta.json") != 0) failure = "could not sync meta.json";
    if (failure == NULL) {
        char started[128];
        snprintf(started, sizeof started, "{\"pid\":%d,\"startedAtMs\":%lld}\n", (int)child, now_ms());
        if (write_record("started.json", started) != 0) failure = "could not write started.json";
    }
    if (failure == NULL) {
        if (write_all(go_pipe[1], "g", 1) != 0) {
            snprintf(failure_buf, sizeof failure_buf, "could not release the task: %s", strerror(errno));
            failure = failure_buf;
        }
    }
    /* The first walk one interval after the start: never at start, which stays cheap. */
    disk.work_dir = work_dir;
    if (failure == NULL && (disk.limit_bytes > 0 || disk.limit_entries > 0)) disk.next_ms = mono_ms() + disk.interval_ms;
    /* KILL first, so the record says how it ended; closing without "g" alone would also end a
     * waiting child (exit 125) without running user code. */
    if (failure != NULL && kill(child, SIGKILL) != 0) complain("kill %d: %s", (int)child, strerror(errno));
    close(go_pipe[1]);

    /* Capture output until the child exits; then take what is left in the pipes and finish. */
    int status = 0, reaped = 0;
    while (!reaped) {
        struct pollfd fds[3] = {
            { sig_fd, POLLIN, 0 },
            { out.pipe_fd, POLLIN, 0 },
            { err.pipe_fd, POLLIN, 0 },
        };
        int timeout = -1;
        if (disk.next_ms > 0) {
            long long left = disk.next_ms - mono_ms();
            timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        }
        if (poll(fds, 3, timeout) < 0) {
            if (errno == EINTR) continue;
            complain("poll: %s", strerror(errno));
            break;
        }
        if (fds[1].revents != 0) (void)pump(&out, &out, &err);
        if (fds[2].revents != 0) (void)pump(&err, &out, &err);
        if (fds[0].revents != 0) {
            struct signalfd_siginfo info;
            while (read(sig_fd, &info, sizeof info) > 0) {
            }
        }
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) reaped = 1;
        else if (w < 0 && errno != EINTR) {
            complain("waitpid: %s", strerror(errno));
            break;
        }
        if (!reaped && disk.next_ms > 0 && mono_ms() >= disk.next_ms) {
            long long began = mono_ms();
            if (disk_exceeded(&disk, killed_why, sizeof killed_why)) {
                kill_task(child, procs, nprocs);
                killed_for = "disk-exceeded";
                /* Also where `omega logs` shows it: the task's own stderr ends with why. */
                char line[320];
                int len = snprintf(line, sizeof line, "omega-supervisor: task killed: %s\n", killed_why);
                capture(&err, line, (size_t)len, &out, &err);
                disk.next_ms = 0;
            } else {
                long long took = mono_ms() - began;
                disk.next_ms = mono_ms() + (disk.interval_ms > WALK_BACKOFF * took ? disk.interval_ms : WALK_BACKOFF * took);
            }
        }
    }
    if (!reaped) {
        /* poll or waitpid failed: block for the child; output from here on is not captured. */
        while (waitpid(child, &status, 0) < 0) {
            if (errno != EINTR) finish(0, 0, "the supervisor lost track of the task", &out, &err);
        }
    }
    /*
     * The task's own process is gone. Processes it left behind may hold the pipes open: take
     * what is buffered now without waiting for them (the agent kills the cgroup next).
     */
    struct stream *streams[2] = { &out, &err };
    for (int i = 0; i < 2; i++) {
        struct stream *s = streams[i];
        if (s->pipe_fd < 0) continue;
        int fl = fcntl(s->pipe_fd, F_GETFL);
        if (fl >= 0) (void)fcntl(s->pipe_fd, F_SETFL, fl | O_NONBLOCK);
        while (s->pipe_fd >= 0 && pump(s, &out, &err) == 1) {
        }
    }
    if (status_pipe[0] >= 0) {
        /* The child (with -i the init) is gone, and with it every holder of the pipe's write end: read what it said. */
        char said[512];
        size_t n = 0;
        int fl = fcntl(status_pipe[0], F_GETFL);
        if (fl >= 0) (void)fcntl(status_pipe[0], F_SETFL, fl | O_NONBLOCK);
        for (;;) {
            ssize_t r = read(status_pipe[0], said + n, sizeof said - 1 - n);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            n += (size_t)r;
            if (n == sizeof said - 1) break;
        }
        said[n] = '\0';
        close(status_pipe[0]);
        char *line = said;
        if (line[0] == 'E' && failure == NULL) {
            char *nl = strchr(line, '\n');
            if (nl != NULL) *nl = '\0';
            snprintf(failure_buf, sizeof failure_buf, "%s", line + 1);
            failure = failure_buf;
            line = nl != NULL ? nl + 1 : line + strlen(line);
        }
        /* The task's own status, not the init's: without it (the init was killed) the init's stands. */
        if (line[0] == 'S') status = atoi(line + 1);
    }
    if (out.file_fd >= 0 && close(out.file_fd) != 0) complain("close stdout.log: %s", strerror(errno));
    if (err.file_fd >= 0 && close(err.file_fd) != 0) complain("close stderr.log: %s", strerror(errno));
    finish(1, status, failure, &out, &err);
    return 0;
}
