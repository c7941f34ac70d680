/*
 * The in-memory floor: a minimal read-only FUSE server that speaks the protocol itself, with the
 * whole tree indexed in memory at start (as gitfs-csi's tree index is), tuned as gitfs-csi's own
 * server is (zero-message opens, READDIRPLUS always, long timeouts). Where the C floor
 * (cFloor.c) measures a libfuse server over a directory, this one measures what answering costs
 * when the answer is already in memory, on either transport the kernel has:
 *
 *   rawFloor [--threads=N] [--spin=US] <source-dir> <mountpoint>
 *       N threads (1) reading and writing /dev/fuse (gitfs-csi's serving threads wait in an epoll set
 *       first: measured alike);
 *   rawFloor --uring [--spin=US] <source-dir> <mountpoint>
 *       FUSE over io_uring (fuse.enable_uring=Y): a thread per CPU, pinned to it, owning that CPU's
 *       queue, so a request is answered on the CPU that made it.
 *
 * --spin adds US microseconds of work to every answer: the walk's slope against server time.
 * Prints "mounted" once mounted, and at exit how many requests each transport served; unmount to stop.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* FUSE over io_uring (protocol 7.42): this distribution's kernel headers predate it. */
#define OVER_IO_URING (1ull << 41)
#define URING_CMD_REGISTER 1
#define URING_CMD_COMMIT_AND_FETCH 2
struct uring_ent_in_out { uint64_t flags, commit_id; uint32_t payload_sz, padding; uint64_t reserved; };
struct uring_req_header { char in_out[128]; char op_in[128]; struct uring_ent_in_out ent; };
struct uring_cmd_req { uint64_t flags, commit_id; uint16_t qid; uint8_t padding[6]; };

#define TIMEOUT_SECONDS 86400
#define MAX_WRITE (1u << 20)
#define PAYLOAD (MAX_WRITE + 4096)
#define RING_ENTRIES_PER_QUEUE 4

/* The tree, breadth first so that each directory's children are consecutive. Node id = index + 1. */
struct node {
  char *path;
  const char *name;
  uint32_t name_length, first_child, children;
  struct fuse_attr attr;
};
static struct node *nodes;
static uint32_t node_count;

static int fuse_fd;
static uint64_t spin_ns, device_requests, ring_requests;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void add_node(const char *path) {
  static uint32_t room;
  if (node_count == room && !(nodes = realloc(nodes, (room = room ? room * 2 : 1024) * sizeof *nodes))) exit(1);
  struct node *node = &nodes[node_count];
  struct stat st;
  if (lstat(path, &st) != 0) {
    perror(path);
    exit(1);
  }
  node->path = strdup(path);
  node->name = strrchr(node->path, '/') + 1;
  node->name_length = (uint32_t)strlen(node->name);
  node->children = 0;
  struct fuse_attr *a = &node->attr;
  *a = (struct fuse_attr){ .ino = node_count + 1, .size = st.st_size, .blocks = st.st_blocks,
    .atime = st.st_atim.tv_sec, .mtime = st.st_mtim.tv_sec, .ctime = st.st_ctim.tv_sec,
    .mode = st.st_mode, .nlink = st.st_nlink, .blksize = st.st_blksize };
  node_count++;
}

static void index_tree(const char *source) {
  add_node(source);
  char path[PATH_MAX];
  for (uint32_t i = 0; i < node_count; i++) {
    if (!S_ISDIR(nodes[i].attr.mode)) continue;
    DIR *dir = opendir(nodes[i].path);
    nodes[i].first_child = node_count;
    for (struct dirent *e; dir && (e = readdir(dir));) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", nodes[i].path, e->d_name);
      add_node(path);
      nodes[i].children++;
    }
    if (dir) closedir(dir);
  }
}

static void entry_of(uint32_t index, struct fuse_entry_out *entry) {
  *entry = (struct fuse_entry_out){ .nodeid = index + 1, .entry_valid = TIMEOUT_SECONDS, .attr_valid = TIMEOUT_SECONDS, .attr = nodes[index].attr };
}

/* One listing: the children from `offset` on (each entry's offset is the position after it). */
static size_t readdirplus(const struct node *dir, const struct fuse_read_in *in, char *out) {
  size_t used = 0, room = in->size < PAYLOAD ? in->size : PAYLOAD;
  for (uint32_t k = (uint32_t)in->offset; k < dir->children; k++) {
    const struct node *child = &nodes[dir->first_child + k];
    size_t size = (offsetof(struct fuse_direntplus, dirent.name) + child->name_length + 7) & ~(size_t)7;
    if (used + size > room) break;
    struct fuse_direntplus *plus = (struct fuse_direntplus *)(out + used);
    memset(plus, 0, size);
    entry_of(dir->first_child + k, &plus->entry_out);
    plus->dirent = (struct fuse_dirent){ .ino = child->attr.ino, .off = k + 1, .namelen = child->name_length, .type = (child->attr.mode & S_IFMT) >> 12 };
    memcpy(plus->dirent.name, child->name, child->name_length);
    used += size;
  }
  return used;
}

/*
 * Answers one request: `op` is its fixed argument, `name` its trailing string (LOOKUP's). Puts the
 * reply's payload in `out` and its length in *used; returns 0, an errno, or -1 for no reply.
 */
static int answer(const struct fuse_in_header *in, const void *op, const char *name, size_t name_length, char *out, size_t *used) {
  *used = 0;
  if (spin_ns)
    for (uint64_t until = now_ns() + spin_ns; now_ns() < until;);
  bool forget = in->opcode == FUSE_FORGET || in->opcode == FUSE_BATCH_FORGET || in->opcode == FUSE_INTERRUPT;
  if (forget) return -1; /* nodes live as long as the process: no lookup counts to keep */
  if (in->nodeid == 0 || in->nodeid > node_count) return ENOSYS;
  const struct node *node = &nodes[in->nodeid - 1];
  switch (in->opcode) {
  case FUSE_LOOKUP:
    for (uint32_t i = node->first_child; i < node->first_child + node->children; i++) {
      if (nodes[i].name_length == name_length && memcmp(nodes[i].name, name, name_length) == 0) {
        entry_of(i, (struct fuse_entry_out *)out);
        *used = sizeof(struct fuse_entry_out);
        return 0;
      }
    }
    return ENOENT;
  case FUSE_GETATTR:
    *(struct fuse_attr_out *)out = (struct fuse_attr_out){ .attr_valid = TIMEOUT_SECONDS, .attr = node->attr };
    *used = sizeof(struct fuse_attr_out);
    return 0;
  case FUSE_READDIRPLUS:
    *used = readdirplus(node, op, out);
    return 0;
  case FUSE_READLINK: {
    ssize_t length = readlink(node->path, out, PATH_MAX);
    if (length < 0) return errno;
    *used = (size_t)length;
    return 0;
  }
  case FUSE_READ: {
    const struct fuse_read_in *read_in = op;
    int fd = open(node->path, O_RDONLY);
    if (fd < 0) return errno;
    ssize_t got = pread(fd, out, read_in->size < PAYLOAD ? read_in->size : PAYLOAD, (off_t)read_in->offset);
    int err = errno;
    close(fd);
    if (got < 0) return err;
    *used = (size_t)got;
    return 0;
  }
  case FUSE_STATFS:
    *(struct fuse_statfs_out *)out = (struct fuse_statfs_out){ .st = { .bsize = 4096, .frsize = 4096, .namelen = 255 } };
    *used = sizeof(struct fuse_statfs_out);
    return 0;
  case FUSE_DESTROY:
    return 0;
  default: /* OPEN and OPENDIR among them: ENOSYS makes opens zero-message */
    return ENOSYS;
  }
}

static void *serve_device(void *unused) {
  (void)unused;
  char *request = malloc(PAYLOAD + 4096), *out = malloc(PAYLOAD);
  for (;;) {
    ssize_t got = read(fuse_fd, request, PAYLOAD + 4096);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
      exit(0); /* ENODEV: unmounted */
    }
    __atomic_add_fetch(&device_requests, 1, __ATOMIC_RELAXED);
    const struct fuse_in_header *in = (const void *)request;
    const char *arg = request + sizeof *in;
    size_t used;
    int err = answer(in, arg, arg, strnlen(arg, (size_t)got - sizeof *in), out, &used);
    if (err < 0) continue;
    struct fuse_out_header header = { .len = (uint32_t)(sizeof header + used), .error = -err, .unique = in->unique };
    struct iovec iov[2] = { { &header, sizeof header }, { out, used } };
    if (writev(fuse_fd, iov, 2) < 0 && errno != ENOENT) perror("reply");
  }
  return NULL;
}

struct ring_entry {
  struct uring_req_header header;
  struct iovec iov[2];
};

static void submit(struct io_uring *ring, struct ring_entry *entry, unsigned qid, uint32_t command, uint64_t commit_id) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fuse_fd, entry->iov, 2, 0);
  sqe->cmd_op = command;
  sqe->user_data = (uint64_t)(uintptr_t)entry;
  struct uring_cmd_req *cmd = (struct uring_cmd_req *)sqe->cmd; /* the SQE128's second half */
  *cmd = (struct uring_cmd_req){ .commit_id = commit_id, .qid = (uint16_t)qid };
}

/* Serves CPU `qid`'s queue: the kernel puts a request in the queue of the CPU that made it. */
static void *serve_queue(void *arg) {
  unsigned qid = (unsigned)(uintptr_t)arg;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(qid, &cpus);
  pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
  struct io_uring ring;
  int err = io_uring_queue_init(RING_ENTRIES_PER_QUEUE * 2, &ring, IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN);
  if (err) {
    fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-err));
    exit(1);
  }
  for (int i = 0; i < RING_ENTRIES_PER_QUEUE; i++) {
    struct ring_entry *entry = calloc(1, sizeof *entry);
    entry->iov[0] = (struct iovec){ &entry->header, sizeof entry->header };
    entry->iov[1] = (struct iovec){ malloc(PAYLOAD), PAYLOAD };
    submit(&ring, entry, qid, URING_CMD_REGISTER, 0);
  }
  char *out = malloc(PAYLOAD);
  for (;;) {
    err = io_uring_submit_and_wait(&ring, 1);
    if (err < 0 && err != -EINTR) break;
    unsigned seen = 0, head;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      if (cqe->res == -ENOTCONN) exit(0); /* unmounted */
      if (cqe->res < 0) {
        fprintf(stderr, "ring queue %u: %s\n", qid, strerror(-cqe->res));
        exit(1);
      }
      __atomic_add_fetch(&ring_requests, 1, __ATOMIC_RELAXED);
      struct ring_entry *entry = (void *)(uintptr_t)cqe->user_data;
      struct fuse_in_header in = *(const struct fuse_in_header *)entry->header.in_out;
      char *payload = entry->iov[1].iov_base;
      size_t used;
      int answered = answer(&in, entry->header.op_in, payload, strnlen(payload, entry->header.ent.payload_sz), out, &used);
      if (answered < 0) answered = 0; /* every ring request is committed */
      if (answered) used = 0;
      memcpy(payload, out, used);
      *(struct fuse_out_header *)entry->header.in_out = (struct fuse_out_header){ .len = (uint32_t)(sizeof(struct fuse_out_header) + used), .error = -answered, .unique = in.unique };
      entry->header.ent.payload_sz = (uint32_t)used;
      submit(&ring, entry, qid, URING_CMD_COMMIT_AND_FETCH, in.unique);
    }
    io_uring_cq_advance(&ring, seen);
  }
  return NULL;
}

static void answer_init(bool uring) {
  char request[8192];
  ssize_t got = read(fuse_fd, request, sizeof request);
  const struct fuse_in_header *in = (const void *)request;
  const struct fuse_init_in *init = (const void *)(in + 1);
  if (got < (ssize_t)(sizeof *in + sizeof *init) || in->opcode != FUSE_INIT) {
    fprintf(stderr, "expected INIT\n");
    exit(1);
  }
  uint64_t offered = init->flags | ((uint64_t)init->flags2 << 32);
  uint64_t wanted = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_INIT_EXT | (uring ? OVER_IO_URING : 0);
  uint64_t flags = offered & wanted;
  if (uring && !(flags & OVER_IO_URING)) {
    fprintf(stderr, "the kernel does not offer FUSE over io_uring (fuse.enable_uring)\n");
    exit(1);
  }
  struct { struct fuse_out_header header; struct fuse_init_out out; } reply = {
    .header = { .len = sizeof reply, .unique = in->unique },
    .out = { .major = FUSE_KERNEL_VERSION, .minor = init->minor < 42 ? init->minor : 42, .max_readahead = init->max_readahead,
      .flags = (uint32_t)flags, .flags2 = (uint32_t)(flags >> 32), .max_background = 16, .congestion_threshold = 12,
      .max_write = MAX_WRITE, .time_gran = 1, .max_pages = MAX_WRITE / 4096 },
  };
  if (write(fuse_fd, &reply, sizeof reply) < 0) {
    perror("INIT reply");
    exit(1);
  }
}

static void report(void) {
  printf("served %llu requests over /dev/fuse, %llu over io_uring\n", (unsigned long long)device_requests, (unsigned long long)ring_requests);
  fflush(stdout);
}

int main(int argc, char **argv) {
  bool uring = false;
  int threads = 1;
  for (; argc > 3 && argv[1][0] == '-'; argv++, argc--) {
    if (strcmp(argv[1], "--uring") == 0) uring = true;
    else if (strncmp(argv[1], "--threads=", 10) == 0) threads = atoi(argv[1] + 10);
    else if (strncmp(argv[1], "--spin=", 7) == 0) spin_ns = (uint64_t)atoi(argv[1] + 7) * 1000;
    else break;
  }
  if (argc != 3 || threads < 1) {
    fprintf(stderr, "usage: %s [--uring | --threads=N] [--spin=US] <source-dir> <mountpoint>\n", argv[0]);
    return 2;
  }
  char source[PATH_MAX];
  if (!realpath(argv[1], source)) {
    perror(argv[1]);
    return 1;
  }
  index_tree(source);
  fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fuse_fd < 0) {
    perror("/dev/fuse");
    return 1;
  }
  char options[128];
  snprintf(options, sizeof options, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", fuse_fd);
  if (mount("rawfloor", argv[2], "fuse.rawfloor", MS_RDONLY | MS_NOSUID | MS_NODEV, options) != 0) {
    perror(argv[2]);
    return 1;
  }
  answer_init(uring);
  atexit(report);
  pthread_t thread;
  /* Over io_uring, /dev/fuse still carries FORGET and INTERRUPT: one thread keeps reading it. */
  long queues = uring ? sysconf(_SC_NPROCESSORS_CONF) : 0;
  for (long qid = 0; qid < queues; qid++) pthread_create(&thread, NULL, serve_queue, (void *)(uintptr_t)qid);
  for (int i = 1; i < threads; i++) pthread_create(&thread, NULL, serve_device, NULL);
  printf("mounted\n");
  fflush(stdout);
  serve_device(NULL);
  return 0;
}
