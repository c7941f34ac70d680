// `node memoryFilesystem.js DIR MOUNTPOINT`: the files under DIR, held in memory and served read-only
// through fuse-native with nothing else in the way (no index, no cache, no gate): the floor that
// fuse-native itself sets for a tree mount. Prints "mounted" once serving; unmounts on SIGTERM.
import { lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fuse from 'fuse-native';

type Node = { names: string[] } | { content: Buffer };

function load(root: string): Map<string, Node> {
  const nodes = new Map<string, Node>();
  const walk = (path: string) => {
    const names = readdirSync(join(root, path)).filter((name) => name !== '.git');
    nodes.set(path || '/', { names });
    for (const name of names) {
      const child = `${path}/${name}`;
      const info = lstatSync(join(root, child));
      if (info.isDirectory()) walk(child);
      else if (info.isFile()) nodes.set(child, { content: readFileSync(join(root, child)) });
    }
  };
  walk('');
  return nodes;
}

const [root, mountpoint] = process.argv.slice(2);
const nodes = load(root);
const modeOf = (node: Node | undefined) => (node && 'names' in node ? 0o40755 : 0o100644);
const statOf = (node: Node) => ({ mode: modeOf(node), uid: 0, gid: 0, size: 'names' in node ? 4096 : node.content.length, nlink: 1, atime: 0, mtime: 0, ctime: 0 });
const open = new Map<number, Buffer>();
let handles = 0;
mkdirSync(mountpoint, { recursive: true });
// The same kernel caching as a tree mount, and the same per-file operations: lookup, open, read, release.
const fuse = new Fuse(
  mountpoint,
  {
    getattr: (path, cb) => {
      const node = nodes.get(path);
      return node ? cb(0, statOf(node)) : cb(Fuse.ENOENT);
    },
    readdir: (path, cb) => {
      const node = nodes.get(path);
      if (!node || !('names' in node)) return cb(Fuse.ENOENT);
      cb(0, node.names, node.names.map((name) => ({ mode: modeOf(nodes.get(path === '/' ? `/${name}` : `${path}/${name}`)) })));
    },
    open: (path, _flags, cb) => {
      const node = nodes.get(path);
      if (!node || 'names' in node) return cb(Fuse.ENOENT);
      open.set(++handles, node.content);
      cb(0, handles);
    },
    read: (_path, fd, buffer, length, position, cb) => {
      const content = open.get(fd)!;
      cb(content.copy(buffer, 0, position, Math.min(content.length, position + length)));
    },
    release: (_path, fd, cb) => {
      open.delete(fd);
      cb(0);
    },
  },
  { kernelCache: true, entryTimeout: 3600, attrTimeout: 3600 },
);
fuse.mount((err) => {
  if (err) throw err;
  process.stdout.write('mounted\n');
});
process.on('SIGTERM', () => fuse.unmount(() => process.exit(0)));
