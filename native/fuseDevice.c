/*
 * The few system calls gitfs-csi needs and Node cannot make: mount(2) and umount2, descriptor
 * passing over unix sockets (SCM_RIGHTS), the FUSE device's ioctls, a wait for the next request on
 * any of several /dev/fuse descriptors (epoll) that a serving thread may block in, and for writable
 * layers fallocate(2) and a loop device set up and mounted without a helper process.
 * Everything else, the FUSE protocol included, is TypeScript (src/fuse).
 *
 * Node-API is a stable C ABI that the node binary exports; the declarations used are written out
 * below, so this builds with a C compiler and libc headers alone (no node headers, no node-gyp).
 * Every function throws a JS Error whose code is the errno name (EPERM, ENOENT, ...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/loop.h>
#include <malloc.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef int napi_status; /* napi_ok is 0 */
typedef int napi_typedarray_type;
typedef struct napi_deferred__ *napi_deferred;
typedef struct napi_async_work__ *napi_async_work;
typedef void (*napi_async_execute_callback)(napi_env env, void *data);
typedef void (*napi_async_complete_callback)(napi_env env, napi_status status, void *data);

extern napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *argc, napi_value *argv, napi_value *this_arg, void **data);
extern napi_status napi_get_value_string_utf8(napi_env, napi_value, char *buf, size_t bufsize, size_t *result);
extern napi_status napi_get_value_int32(napi_env, napi_value, int32_t *result);
extern napi_status napi_get_value_int64(napi_env, napi_value, int64_t *result);
extern napi_status napi_create_string_utf8(napi_env, const char *str, size_t length, napi_value *result);
extern napi_status napi_get_value_bool(napi_env, napi_value, _Bool *result);
extern napi_status napi_create_int32(napi_env, int32_t value, napi_value *result);
extern napi_status napi_get_undefined(napi_env, napi_value *result);
extern napi_status napi_get_buffer_info(napi_env, napi_value, void **data, size_t *length);
extern napi_status napi_get_typedarray_info(napi_env, napi_value, napi_typedarray_type *type, size_t *length, void **data, napi_value *arraybuffer, size_t *byte_offset);
extern napi_status napi_create_buffer_copy(napi_env, size_t length, const void *data, void **result_data, napi_value *result);
extern napi_status napi_get_array_length(napi_env, napi_value, uint32_t *result);
extern napi_status napi_get_element(napi_env, napi_value object, uint32_t index, napi_value *result);
extern napi_status napi_create_array_with_length(napi_env, size_t length, napi_value *result);
extern napi_status napi_set_element(napi_env, napi_value object, uint32_t index, napi_value value);
extern napi_status napi_create_object(napi_env, napi_value *result);
extern napi_status napi_set_named_property(napi_env, napi_value object, const char *name, napi_value value);
extern napi_status napi_create_function(napi_env, const char *name, size_t length, napi_callback cb, void *data, napi_value *result);
extern napi_status napi_throw_error(napi_env, const char *code, const char *msg);
extern napi_status napi_create_error(napi_env, napi_value code, napi_value msg, napi_value *result);
extern napi_status napi_create_promise(napi_env, napi_deferred *deferred, napi_value *promise);
extern napi_status napi_resolve_deferred(napi_env, napi_deferred deferred, napi_value resolution);
extern napi_status napi_reject_deferred(napi_env, napi_deferred deferred, napi_value rejection);
extern napi_status napi_create_async_work(napi_env, napi_value async_resource, napi_value async_resource_name, napi_async_execute_callback execute,
                                          napi_async_complete_callback complete, void *data, napi_async_work *result);
extern napi_status napi_queue_async_work(napi_env, napi_async_work work);
extern napi_status napi_delete_async_work(napi_env, napi_async_work work);

#define MAX_ARGS 6
#define MAX_FDS 16
/* FUSE device ioctls (include/uapi/linux/fuse.h). */
struct fuse_backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define FUSE_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct fuse_backing_map)
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

struct args { napi_value v[MAX_ARGS]; size_t n; };

static int get_args(napi_env env, napi_callback_info info, struct args *a, size_t need) {
  a->n = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->n, a->v, NULL, NULL) != 0 || a->n < need) {
    napi_throw_error(env, "EINVAL", "missing arguments");
    return 0;
  }
  return 1;
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = strerrorname_np(err);
  napi_throw_error(env, code ? code : "EIO", msg);
  return NULL;
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) == 0) return 1;
  napi_throw_error(env, "EINVAL", "expected an integer");
  return 0;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) == 0 && len < size - 1) return 1;
  napi_throw_error(env, "EINVAL", "expected a string (of at most 4 KiB)");
  return 0;
}

static napi_value int_value(napi_env env, int32_t n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

static napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* mount(source, target, fstype, flags, data) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  struct args a;
  char source[4096], target[4096], fstype[256], data[4096];
  int32_t flags;
  if (!get_args(env, info, &a, 5) || !get_string(env, a.v[0], source, sizeof source) || !get_string(env, a.v[1], target, sizeof target) ||
      !get_string(env, a.v[2], fstype, sizeof fstype) || !get_int(env, a.v[3], &flags) || !get_string(env, a.v[4], data, sizeof data))
    return NULL;
  if (mount(source, target, fstype, (unsigned long)(uint32_t)flags, data) != 0) return throw_errno(env, "mount", errno);
  return undefined(env);
}

/* umount(target, flags) */
static napi_value js_umount(napi_env env, napi_callback_info info) {
  struct args a;
  char target[4096];
  int32_t flags;
  if (!get_args(env, info, &a, 2) || !get_string(env, a.v[0], target, sizeof target) || !get_int(env, a.v[1], &flags)) return NULL;
  if (umount2(target, flags) != 0) return throw_errno(env, "umount2", errno);
  return undefined(env);
}

/*
 * Calls that may block run on a thread of libuv's pool and return a Promise: a mount that looks into
 * one of our own FUSE trees (a bind of it, an overlay over it) may need requests that the main
 * thread answers, and none should stall the main thread. Each rejects with the errno name as `code`.
 *   mountAsync(source, target, fstype, flags, data)
 *   fallocateAsync(path, bytes): allocates the file's first `bytes` (ENOSPC when its file system cannot)
 *   mountLoopAsync(image, target, fstype, flags, data, directIo) -> "/dev/loopN": binds `image` to a
 *     free, auto-clearing loop device (LOOP_CONFIGURE; the device goes when its mount does, or at once
 *     if the mount fails), with direct I/O where the image's file system can, and mounts it.
 */
enum job_kind { JOB_MOUNT, JOB_FALLOCATE, JOB_MOUNT_LOOP };

struct job {
  napi_async_work work;
  napi_deferred deferred;
  enum job_kind kind;
  char source[4096], target[4096], fstype[256], data[4096], device[64];
  unsigned long flags;
  int64_t bytes;
  _Bool direct_io;
  const char *failed_call;
  int err;
};

static void fail(struct job *j, const char *call, int err) {
  j->failed_call = call;
  j->err = err;
}

/* Binds j->source (the image) to a free loop device; returns its open descriptor, or -1 (j failed). */
static int attach_loop(struct job *j) {
  int backing = open(j->source, O_RDWR | O_CLOEXEC);
  if (backing < 0) return fail(j, "open", errno), -1;
  int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) {
    fail(j, "open /dev/loop-control", errno);
    close(backing);
    return -1;
  }
  int loop = -1;
  /* Another process may take the free device first (EBUSY): ask for the next one. */
  for (int attempt = 0; attempt < 32 && loop < 0; attempt++) {
    int n = ioctl(control, LOOP_CTL_GET_FREE);
    if (n < 0) { fail(j, "LOOP_CTL_GET_FREE", errno); break; }
    snprintf(j->device, sizeof j->device, "/dev/loop%d", n);
    int fd = open(j->device, O_RDWR | O_CLOEXEC);
    if (fd < 0) { fail(j, "open loop device", errno); if (j->err == ENOENT) continue; break; }
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = (uint32_t)backing;
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR | (j->direct_io ? LO_FLAGS_DIRECT_IO : 0);
    snprintf((char *)config.info.lo_file_name, LO_NAME_SIZE, "%.*s", LO_NAME_SIZE - 1, j->source);
    if (ioctl(fd, LOOP_CONFIGURE, &config) == 0) { loop = fd; break; }
    fail(j, "LOOP_CONFIGURE", errno);
    close(fd);
    if (j->err != EBUSY) break;
  }
  close(control);
  close(backing);
  if (loop >= 0) j->err = 0;
  return loop;
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  struct job *j = data;
  switch (j->kind) {
    case JOB_MOUNT:
      if (mount(j->source, j->target, j->fstype[0] ? j->fstype : NULL, j->flags, j->data[0] ? j->data : NULL) != 0) fail(j, "mount", errno);
      break;
    case JOB_FALLOCATE: {
      int fd = open(j->target, O_RDWR | O_CLOEXEC);
      if (fd < 0) { fail(j, "open", errno); break; }
      if (fallocate(fd, 0, 0, (off_t)j->bytes) != 0) fail(j, "fallocate", errno);
      close(fd);
      break;
    }
    case JOB_MOUNT_LOOP: {
      int loop = attach_loop(j);
      if (loop < 0) break;
      if (mount(j->device, j->target, j->fstype, j->flags, j->data) != 0) fail(j, "mount", errno);
      close(loop);
      break;
    }
  }
}

static void job_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  struct job *j = data;
  if (j->err == 0) {
    napi_value result = undefined(env);
    if (j->kind == JOB_MOUNT_LOOP) napi_create_string_utf8(env, j->device, SIZE_MAX, &result);
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    char msg[4400];
    snprintf(msg, sizeof msg, "%s %s: %s", j->failed_call, j->target, strerror(j->err));
    const char *name = strerrorname_np(j->err);
    napi_value code, text, error;
    napi_create_string_utf8(env, name ? name : "EIO", SIZE_MAX, &code);
    napi_create_string_utf8(env, msg, SIZE_MAX, &text);
    napi_create_error(env, code, text, &error);
    napi_reject_deferred(env, j->deferred, error);
  }
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value queue_job(napi_env env, struct job *j) {
  napi_value promise, name;
  napi_create_string_utf8(env, "gitfs-csi native", SIZE_MAX, &name);
  if (napi_create_promise(env, &j->deferred, &promise) != 0 || napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work) != 0 ||
      napi_queue_async_work(env, j->work) != 0) {
    free(j);
    napi_throw_error(env, "EIO", "cannot queue the call");
    return NULL;
  }
  return promise;
}

/* Reads (source, target, fstype, flags, data) into a new job. */
static struct job *mount_job(napi_env env, napi_callback_info info, enum job_kind kind, struct args *a) {
  int32_t flags;
  struct job *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "calloc", ENOMEM), NULL;
  j->kind = kind;
  if (!get_args(env, info, a, 5) || !get_string(env, a->v[0], j->source, sizeof j->source) || !get_string(env, a->v[1], j->target, sizeof j->target) ||
      !get_string(env, a->v[2], j->fstype, sizeof j->fstype) || !get_int(env, a->v[3], &flags) || !get_string(env, a->v[4], j->data, sizeof j->data)) {
    free(j);
    return NULL;
  }
  j->flags = (unsigned long)(uint32_t)flags;
  return j;
}

static napi_value js_mount_async(napi_env env, napi_callback_info info) {
  struct args a;
  struct job *j = mount_job(env, info, JOB_MOUNT, &a);
  return j ? queue_job(env, j) : NULL;
}

static napi_value js_mount_loop_async(napi_env env, napi_callback_info info) {
  struct args a;
  struct job *j = mount_job(env, info, JOB_MOUNT_LOOP, &a);
  if (!j) return NULL;
  if (a.n < 6 || napi_get_value_bool(env, a.v[5], &j->direct_io) != 0) j->direct_io = 0;
  return queue_job(env, j);
}

static napi_value js_fallocate_async(napi_env env, napi_callback_info info) {
  struct args a;
  struct job *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "calloc", ENOMEM);
  j->kind = JOB_FALLOCATE;
  if (!get_args(env, info, &a, 2) || !get_string(env, a.v[0], j->target, sizeof j->target)) {
    free(j);
    return NULL;
  }
  if (napi_get_value_int64(env, a.v[1], &j->bytes) != 0 || j->bytes < 0) {
    free(j);
    napi_throw_error(env, "EINVAL", "expected a byte count");
    return NULL;
  }
  return queue_job(env, j);
}

/* socketPair() -> [fd, fd]: a connected pair of unix stream sockets, close-on-exec. */
static napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return throw_errno(env, "socketpair", errno);
  napi_value pair;
  napi_create_array_with_length(env, 2, &pair);
  napi_set_element(env, pair, 0, int_value(env, fds[0]));
  napi_set_element(env, pair, 1, int_value(env, fds[1]));
  return pair;
}

static int unix_address(napi_env env, napi_value v, struct sockaddr_un *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  size_t len;
  if (napi_get_value_string_utf8(env, v, addr->sun_path, sizeof addr->sun_path, &len) != 0 || len >= sizeof addr->sun_path - 1) {
    napi_throw_error(env, "ENAMETOOLONG", "a unix socket path must be a string of at most 107 bytes");
    return 0;
  }
  return 1;
}

/* listenUnix(path) -> fd (the path must not exist): a SOCK_SEQPACKET socket, so messages keep their bounds. */
static napi_value js_listen_unix(napi_env env, napi_callback_info info) {
  struct args a;
  struct sockaddr_un addr;
  if (!get_args(env, info, &a, 1) || !unix_address(env, a.v[0], &addr)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind/listen", err);
  }
  return int_value(env, fd);
}

/* acceptUnix(fd, timeoutMs) -> fd, or -1 when nobody connected within timeoutMs (0: wait for ever) */
static napi_value js_accept_unix(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t fd, ms;
  if (!get_args(env, info, &a, 2) || !get_int(env, a.v[0], &fd) || !get_int(env, a.v[1], &ms)) return NULL;
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int conn;
  do conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
  while (conn < 0 && errno == EINTR);
  if (conn < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return int_value(env, -1);
  if (conn < 0) return throw_errno(env, "accept", errno);
  /* The connection's own waits are bounded too: a client that stalls cannot hold the holder. */
  struct timeval client = {.tv_sec = 5, .tv_usec = 0};
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &client, sizeof client);
  setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &client, sizeof client);
  return int_value(env, conn);
}

/* connectUnix(path, timeoutMs) -> fd (SOCK_SEQPACKET), with send and receive timeouts of timeoutMs */
static napi_value js_connect_unix(napi_env env, napi_callback_info info) {
  struct args a;
  struct sockaddr_un addr;
  int32_t ms;
  if (!get_args(env, info, &a, 2) || !unix_address(env, a.v[0], &addr) || !get_int(env, a.v[1], &ms)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "connect", err);
  }
  return int_value(env, fd);
}

/* sendFds(socket, data, fds): one message carrying `data` and the descriptors. */
static napi_value js_send_fds(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t sock;
  void *data;
  size_t length;
  uint32_t count;
  if (!get_args(env, info, &a, 3) || !get_int(env, a.v[0], &sock)) return NULL;
  if (napi_get_buffer_info(env, a.v[1], &data, &length) != 0 || length == 0 || napi_get_array_length(env, a.v[2], &count) != 0 || count > MAX_FDS) {
    napi_throw_error(env, "EINVAL", "sendFds(socket, non-empty Buffer, array of at most 16 descriptors)");
    return NULL;
  }
  int fds[MAX_FDS];
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    napi_get_element(env, a.v[2], i, &v);
    if (!get_int(env, v, &fds[i])) return NULL;
  }
  char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  memset(control, 0, sizeof control);
  struct iovec iov = {.iov_base = data, .iov_len = length};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (count > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
  }
  ssize_t sent;
  do sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return throw_errno(env, "sendmsg", errno);
  if ((size_t)sent != length) {
    napi_throw_error(env, "EIO", "sendmsg sent part of a message");
    return NULL;
  }
  return undefined(env);
}

/* receiveFds(socket, maxBytes) -> { data: Buffer, fds: number[] }; empty data at end of stream. */
static napi_value js_receive_fds(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t sock, max;
  if (!get_args(env, info, &a, 2) || !get_int(env, a.v[0], &sock) || !get_int(env, a.v[1], &max)) return NULL;
  if (max <= 0 || max > 1 << 20) {
    napi_throw_error(env, "EINVAL", "maxBytes must be within 1 B and 1 MiB");
    return NULL;
  }
  char *buf = malloc((size_t)max);
  if (!buf) return throw_errno(env, "malloc", ENOMEM);
  char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  struct iovec iov = {.iov_base = buf, .iov_len = (size_t)max};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  ssize_t got;
  do got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  if (got < 0) {
    int err = errno;
    free(buf);
    return throw_errno(env, "recvmsg", err);
  }
  napi_value result, data, fds;
  napi_create_object(env, &result);
  napi_create_buffer_copy(env, (size_t)got, buf, NULL, &data);
  free(buf);
  napi_create_array_with_length(env, 0, &fds);
  uint32_t n = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *received = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) napi_set_element(env, fds, n++, int_value(env, received[i]));
  }
  napi_set_named_property(env, result, "data", data);
  napi_set_named_property(env, result, "fds", fds);
  napi_set_named_property(env, result, "truncated", int_value(env, (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? 1 : 0));
  return result;
}

/* setNonBlocking(fd): a /dev/fuse descriptor fusermount3 opened arrives blocking; serving threads need it not to. */
static napi_value js_set_non_blocking(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t fd;
  if (!get_args(env, info, &a, 1) || !get_int(env, a.v[0], &fd)) return NULL;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return throw_errno(env, "fcntl", errno);
  return undefined(env);
}

/* epollCreate() -> fd */
static napi_value js_epoll_create(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return throw_errno(env, "epoll_create1", errno);
  return int_value(env, fd);
}

/* epollAdd(epfd, fd, exclusive): wake on readable; exclusive wakes one of several waiting epolls per request. */
static napi_value js_epoll_add(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t ep, fd;
  _Bool exclusive = 0;
  if (!get_args(env, info, &a, 3) || !get_int(env, a.v[0], &ep) || !get_int(env, a.v[1], &fd)) return NULL;
  napi_get_value_bool(env, a.v[2], &exclusive);
  struct epoll_event ev = {.events = EPOLLIN | (exclusive ? EPOLLEXCLUSIVE : 0), .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return throw_errno(env, "epoll_ctl add", errno);
  return undefined(env);
}

/* epollRemove(epfd, fd) */
static napi_value js_epoll_remove(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t ep, fd;
  if (!get_args(env, info, &a, 2) || !get_int(env, a.v[0], &ep) || !get_int(env, a.v[1], &fd)) return NULL;
  if (epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) != 0 && errno != ENOENT && errno != EBADF) return throw_errno(env, "epoll_ctl del", errno);
  return undefined(env);
}

/* eventFd() -> fd: a non-blocking counter another thread writes to wake an epoll waiter. */
static napi_value js_event_fd(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return throw_errno(env, "eventfd", errno);
  return int_value(env, fd);
}

/*
 * waitRequest(epfd, buffer, timeoutMs, which: Int32Array) -> bytes read, or -errno; which[0] is the
 * descriptor that was ready (-1 when the wait timed out). The descriptors are non-blocking, so a
 * request another thread took first reads as -EAGAIN. Blocks only the calling (serving) thread.
 */
static napi_value js_wait_request(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t ep, ms;
  void *buf, *which;
  size_t length, count;
  napi_typedarray_type type;
  if (!get_args(env, info, &a, 4) || !get_int(env, a.v[0], &ep) || !get_int(env, a.v[2], &ms)) return NULL;
  if (napi_get_buffer_info(env, a.v[1], &buf, &length) != 0 || napi_get_typedarray_info(env, a.v[3], &type, &count, &which, NULL, NULL) != 0 || count < 1) {
    napi_throw_error(env, "EINVAL", "waitRequest(epfd, Buffer, timeoutMs, Int32Array)");
    return NULL;
  }
  int32_t *ready = which;
  struct epoll_event ev;
  int n = epoll_wait(ep, &ev, 1, ms);
  if (n <= 0) {
    ready[0] = -1;
    return int_value(env, n < 0 && errno != EINTR ? -errno : 0);
  }
  ready[0] = ev.data.fd;
  ssize_t got = read(ev.data.fd, buf, length);
  return int_value(env, got < 0 ? -errno : (int32_t)got);
}

/* backingOpen(fuseFd, fileFd) -> backing id, for FOPEN_PASSTHROUGH replies */
static napi_value js_backing_open(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t dev, fd;
  if (!get_args(env, info, &a, 2) || !get_int(env, a.v[0], &dev) || !get_int(env, a.v[1], &fd)) return NULL;
  struct fuse_backing_map map = {.fd = fd};
  int id = ioctl(dev, FUSE_DEV_IOC_BACKING_OPEN, &map);
  if (id < 0) return throw_errno(env, "FUSE_DEV_IOC_BACKING_OPEN", errno);
  return int_value(env, id);
}

/* backingClose(fuseFd, id) */
static napi_value js_backing_close(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t dev, id;
  if (!get_args(env, info, &a, 2) || !get_int(env, a.v[0], &dev) || !get_int(env, a.v[1], &id)) return NULL;
  uint32_t backing = (uint32_t)id;
  if (ioctl(dev, FUSE_DEV_IOC_BACKING_CLOSE, &backing) != 0) return throw_errno(env, "FUSE_DEV_IOC_BACKING_CLOSE", errno);
  return undefined(env);
}

/* Gives the heap's free memory back to the system (glibc keeps it otherwise): for an idle node plugin. */
static napi_value js_trim_memory(napi_env env, napi_callback_info info) {
  (void)info;
  malloc_trim(0);
  return undefined(env);
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } functions[] = {
      {"mount", js_mount},           {"umount", js_umount},           {"mountAsync", js_mount_async}, {"mountLoopAsync", js_mount_loop_async},
      {"fallocateAsync", js_fallocate_async},           {"socketPair", js_socket_pair}, {"listenUnix", js_listen_unix},
      {"acceptUnix", js_accept_unix}, {"connectUnix", js_connect_unix}, {"sendFds", js_send_fds},     {"receiveFds", js_receive_fds},
      {"setNonBlocking", js_set_non_blocking},
      {"epollCreate", js_epoll_create}, {"epollAdd", js_epoll_add},   {"epollRemove", js_epoll_remove}, {"eventFd", js_event_fd},
      {"waitRequest", js_wait_request}, {"backingOpen", js_backing_open}, {"backingClose", js_backing_close},
      {"trimMemory", js_trim_memory},
  };
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, functions[i].name, SIZE_MAX, functions[i].fn, NULL, &fn) == 0) napi_set_named_property(env, exports, functions[i].name, fn);
  }
  return exports;
}
