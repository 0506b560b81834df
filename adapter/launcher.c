/* The native fast path of the pumpcc launcher.
 *
 * Ninja starts the launcher once per compile, so its start-up is paid hundreds of times per build:
 * a Python launcher costs about 11 ms of CPU before it does anything, this one well under 1 ms.
 * It does only the common case -- `pumpcc COMPILER ARGS...` (or a masquerade link) with the local
 * server already running -- and speaks the framing of adapter/local_wire.py.  Everything else
 * (command-line options, starting the server, PUMPCC_DISABLE, Bazel's rules) is the Python
 * launcher's job: this program replaces itself with it (PUMPCC_PY, set when tools/install builds
 * this file).  Whatever goes wrong after that point, the compiler still runs here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PUMPCC_PY
#error "build with -DPUMPCC_PY=\"/path/to/the/python/launcher\" (tools/install does)"
#endif

extern char **environ;

static const char VERSION[] = "pumpcc-local-1"; /* local_wire.VERSION */

/* A growable byte buffer for the request. */
struct buf {
    char *data;
    size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data) {
            perror("pumpcc");
            exit(1);
        }
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

/* Append one field, NUL-separated from the one before (local_wire joins fields with NUL). */
static void field(struct buf *b, const char *s)
{
    if (b->len > 4)
        put(b, "", 1);
    put(b, s, strlen(s));
}

static int write_all(int fd, const char *data, size_t n)
{
    while (n) {
        ssize_t done = write(fd, data, n);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += done;
        n -= (size_t)done;
    }
    return 0;
}

static int read_all(int fd, char *data, size_t n)
{
    while (n) {
        ssize_t got = read(fd, data, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        data += got;
        n -= (size_t)got;
    }
    return 0;
}

/* The compile's exit status as a shell would report it. */
static int run_locally(char **argv)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("pumpcc: fork");
        return 127;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL); /* ignored while we talk to the server; not for the compiler */
        execvp(argv[0], argv);
        fprintf(stderr, "pumpcc: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 127;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* Hand the whole job to the Python launcher: `PUMPCC_PY ARGS...`.  args[0] is the compiler (or
 * the option) and stays in place; only our own name is replaced. */
static int hand_over(int argc, char **args)
{
    char **argv = calloc((size_t)argc + 2, sizeof *argv);
    if (argv) {
        argv[0] = PUMPCC_PY;
        memcpy(argv + 1, args, (size_t)argc * sizeof *argv);
        execv(PUMPCC_PY, argv);
        fprintf(stderr, "pumpcc: cannot run %s: %s\n", PUMPCC_PY, strerror(errno));
    }
    if (argc == 0 || args[0][0] == '-')
        return 1;
    return run_locally(args);
}

/* For a masquerade link named like a compiler: the next program of that name on PATH that is
 * not this launcher, or NULL. */
static char *next_on_path(const char *name)
{
    char own[PATH_MAX], real[PATH_MAX];
    if (!realpath("/proc/self/exe", own))
        own[0] = 0;
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    while (1) {
        const char *end = strchrnul(path, ':');
        int len = (int)(end - path);
        char *candidate;
        if (asprintf(&candidate, "%.*s/%s", len ? len : 1, len ? path : ".", name) < 0)
            return NULL;
        if (access(candidate, X_OK) == 0 && realpath(candidate, real) && strcmp(real, own) != 0)
            return candidate;
        free(candidate);
        if (!*end)
            return NULL;
        path = end + 1;
    }
}

/* Connect to the user's local server (adapter/launcher.py's runtime_dir); -1 if none runs. */
static int connect_server(void)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *dir = getenv("PUMPCC_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (dir && *dir)
        n = snprintf(path, sizeof path, "%s/server.sock", dir);
    else if (xdg && *xdg)
        n = snprintf(path, sizeof path, "%s/pumpcc/server.sock", xdg);
    else
        n = snprintf(path, sizeof path, "/tmp/pumpcc-%u/server.sock", (unsigned)getuid());
    if (n < 0 || (size_t)n >= sizeof path)
        return -1;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, path, (size_t)n + 1);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -1;
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(sock);
        return -1;
    }
    return sock;
}

/* Send the compile to the server; return its reply payload (malloc'ed) or NULL. */
static char *exchange(int sock, int argc, char **argv, uint32_t *size)
{
    struct buf req = {0};
    char cwd[PATH_MAX], number[32];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    put(&req, "\0\0\0\0", 4); /* the length, filled in below */
    field(&req, VERSION);
    field(&req, "compile");
    field(&req, cwd);
    mode_t mask = umask(022);
    umask(mask);
    snprintf(number, sizeof number, "%o", (unsigned)mask);
    field(&req, number);
    snprintf(number, sizeof number, "%d", argc);
    field(&req, number);
    for (int i = 0; i < argc; i++)
        field(&req, argv[i]);
    for (char **e = environ; *e; e++)
        if (strchr(*e, '='))
            field(&req, *e);
    uint32_t len = (uint32_t)(req.len - 4);
    unsigned char head[4] = {len >> 24, len >> 16, len >> 8, len};
    memcpy(req.data, head, 4);
    int sent = write_all(sock, req.data, req.len);
    free(req.data);
    if (sent < 0 || read_all(sock, (char *)head, 4) < 0)
        return NULL;
    *size = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    char *reply = malloc(*size ? *size : 1);
    if (!reply || *size == 0 || read_all(sock, reply, *size) < 0) {
        free(reply);
        return NULL;
    }
    return reply;
}

static uint64_t big_endian(const char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

static int compile(int argc, char **argv)
{
    const char *disable = getenv("PUMPCC_DISABLE");
    if (disable && strcmp(disable, "1") == 0)
        return run_locally(argv);
    int sock = connect_server();
    if (sock < 0)
        return hand_over(argc, argv); /* it starts the server, or knows why it must not */
    signal(SIGPIPE, SIG_IGN);
    uint32_t size = 0;
    char *reply = exchange(sock, argc, argv, &size);
    if (!reply) {
        close(sock);
        return run_locally(argv);
    }
    if (reply[0] == 'R' && size >= 13) {
        close(sock);
        uint64_t out_len = big_endian(reply + 5, 8);
        if (out_len > size - 13)
            return run_locally(argv);
        write_all(1, reply + 13, out_len);
        write_all(2, reply + 13 + out_len, size - 13 - out_len);
        return (int)(int32_t)big_endian(reply + 1, 4);
    }
    /* 'L': run it here, holding the connection (and so one local slot) until it is done. */
    if (reply[0] == 'L')
        write_all(2, reply + 1, size - 1);
    int code = run_locally(argv);
    close(sock);
    return code;
}

int main(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    if (strcmp(name, "pumpcc") != 0) {
        char *compiler = next_on_path(name);
        if (!compiler) {
            fprintf(stderr, "pumpcc: no %s on PATH besides pumpcc itself\n", name);
            return 127;
        }
        argv[0] = compiler;
        return compile(argc, argv);
    }
    if (argc < 2 || argv[1][0] == '-')
        return hand_over(argc - 1, argv + 1);
    return compile(argc - 1, argv + 1);
}
