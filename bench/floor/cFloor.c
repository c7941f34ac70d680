/*
 * The benchmark's C floor: a minimal read-only libfuse 3 low-level server over a directory, tuned
 * as gitfs-csi's own server is (zero-message opens, READDIRPLUS, long entry and attribute
 * timeouts, no FLUSH), so the one difference left between the two rows is the server itself.
 * It reads a file per READ as ours reads its cache file (open, pread, close), and keeps a path per
 * inode instead of a descriptor, since the trees benchmarked hold more files than RLIMIT_NOFILE.
 *
 *   cFloor <source-dir> <mountpoint>    (foreground; prints "mounted" once it is; unmount to stop)
 */
#define FUSE_USE_VERSION 34
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const double TIMEOUT_SECONDS = 86400;

struct node {
  uint64_t lookups;
  char path[];
};

static struct node *root;

static struct node *node_of(fuse_ino_t ino) { return ino == FUSE_ROOT_ID ? root : (struct node *)(uintptr_t)ino; }

static struct node *new_node(const char *parent, const char *name) {
  size_t length = strlen(parent) + 1 + strlen(name) + 1;
  struct node *node = malloc(sizeof *node + length);
  if (!node) return NULL;
  node->lookups = 0;
  snprintf(node->path, length, "%s/%s", parent, name);
  return node;
}

/* Fills an entry for parent/name and counts one lookup; 0 or an errno. */
static int entry_of(const char *parent, const char *name, struct fuse_entry_param *entry) {
  struct node *node = new_node(parent, name);
  if (!node) return ENOMEM;
  memset(entry, 0, sizeof *entry);
  if (lstat(node->path, &entry->attr) != 0) {
    int err = errno;
    free(node);
    return err;
  }
  node->lookups = 1;
  entry->ino = (fuse_ino_t)(uintptr_t)node;
  entry->attr.st_ino = entry->ino;
  entry->attr_timeout = entry->entry_timeout = TIMEOUT_SECONDS;
  return 0;
}

static void forget_one(fuse_ino_t ino, uint64_t count) {
  struct node *node = node_of(ino);
  if (node == root) return;
  node->lookups -= count;
  if (node->lookups == 0) free(node);
}

static void floor_init(void *data, struct fuse_conn_info *conn) {
  (void)data;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  struct fuse_entry_param entry;
  int err = entry_of(node_of(parent)->path, name, &entry);
  if (err) fuse_reply_err(req, err);
  else fuse_reply_entry(req, &entry);
}

static void floor_forget(fuse_req_t req, fuse_ino_t ino, uint64_t count) {
  forget_one(ino, count);
  fuse_reply_none(req);
}

static void floor_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  for (size_t i = 0; i < count; i++) forget_one(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  struct stat st;
  if (lstat(node_of(ino)->path, &st) != 0) return (void)fuse_reply_err(req, errno);
  st.st_ino = ino;
  fuse_reply_attr(req, &st, TIMEOUT_SECONDS);
}

static void floor_readlink(fuse_req_t req, fuse_ino_t ino) {
  char target[PATH_MAX + 1];
  ssize_t length = readlink(node_of(ino)->path, target, PATH_MAX);
  if (length < 0) return (void)fuse_reply_err(req, errno);
  target[length] = '\0';
  fuse_reply_readlink(req, target);
}

/* ENOSYS once makes the kernel stop sending OPEN/OPENDIR and their RELEASE for this mount. */
static void floor_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino, (void)fi;
  fuse_reply_err(req, ENOSYS);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, struct fuse_file_info *fi) {
  (void)fi;
  int fd = open(node_of(ino)->path, O_RDONLY);
  if (fd < 0) return (void)fuse_reply_err(req, errno);
  char *data = malloc(size ? size : 1);
  ssize_t got = data ? pread(fd, data, size, offset) : -1;
  int err = data ? errno : ENOMEM;
  close(fd);
  if (got < 0) fuse_reply_err(req, err);
  else fuse_reply_buf(req, data, (size_t)got);
  free(data);
}

static void floor_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, struct fuse_file_info *fi) {
  (void)fi;
  const char *path = node_of(ino)->path;
  DIR *dir = opendir(path);
  if (!dir) return (void)fuse_reply_err(req, errno);
  char *buffer = malloc(size);
  size_t used = 0;
  if (offset) seekdir(dir, offset);
  for (struct dirent *d; buffer && (d = readdir(dir));) {
    if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
    struct fuse_entry_param entry;
    if (entry_of(path, d->d_name, &entry) != 0) continue;
    size_t added = fuse_add_direntry_plus(req, buffer + used, size - used, d->d_name, &entry, telldir(dir));
    if (added > size - used) {
      forget_one(entry.ino, 1);
      break;
    }
    used += added;
  }
  closedir(dir);
  if (!buffer) return (void)fuse_reply_err(req, ENOMEM);
  fuse_reply_buf(req, buffer, used);
  free(buffer);
}

static const struct fuse_lowlevel_ops operations = {
  .init = floor_init,
  .lookup = floor_lookup,
  .forget = floor_forget,
  .forget_multi = floor_forget_multi,
  .getattr = floor_getattr,
  .readlink = floor_readlink,
  .open = floor_open,
  .opendir = floor_open,
  .read = floor_read,
  .readdirplus = floor_readdirplus,
};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <source-dir> <mountpoint>\n", argv[0]);
    return 2;
  }
  char source[PATH_MAX];
  if (!realpath(argv[1], source)) {
    perror(argv[1]);
    return 1;
  }
  root = new_node(source, ".");
  char *fuse_argv[] = { argv[0], "-o", "ro,default_permissions,allow_other,fsname=cfloor,subtype=cfloor", NULL };
  struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
  struct fuse_session *session = fuse_session_new(&args, &operations, sizeof operations, NULL);
  if (!session || fuse_session_mount(session, argv[2]) != 0) return 1;
  printf("mounted\n");
  fflush(stdout);
  int result = fuse_session_loop(session);
  fuse_session_unmount(session);
  fuse_session_destroy(session);
  return result ? 1 : 0;
}
