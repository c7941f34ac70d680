import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gitConfigFile } from '../gitdir/gitConfigFile';
import { gitIndexFileOf, gitIndexFileSize } from '../gitdir/gitIndexFile';
import { LooseBlobs } from '../gitdir/looseBlobs';
import { RefFiles } from '../gitdir/refFiles';
import { TagObjects } from '../gitdir/tagObjects';
import { ContentReader } from '../cache/blobCache';
import { adler32Of, looseObjectSize, readLooseObject } from '../gitdir/looseObject';
import { NotReady } from '../errors/errors';
import { withinDeadline } from './deadline';
import { Errno } from './errno';
import { GitHistory, MountedTree } from './mountedTree';
import { DIRENT_HEADER, ENTRY_OUT, IN_HEADER, Op, OUT_HEADER, ROOT_ID, ATTR_OUT } from './protocol';
import { align8, CACHE_SECONDS, ConnectionFacts, error, GIT_DIR_ID, gitDirAttr, header, NodeAttr, readU64, ServedTree, writeNodeAttr, writeNodeEntry, writeU64 } from './treeAnswers';

/** The fixed nodes of `.git`, numbered from its own node id on; the object fan-out directories and loose objects follow. */
const enum Fixed {
  GitDir,
  Head,
  Config,
  Index,
  Shallow,
  Objects,
  Pack,
  PackFile,
  PackIndex,
  Refs,
  Heads,
  Tags,
  PackedRefs,
  Count,
}

const LAYOUT: ReadonlyArray<{ name: string; parent: Fixed; directory: boolean }> = [
  { name: '.git', parent: Fixed.GitDir, directory: true },
  { name: 'HEAD', parent: Fixed.GitDir, directory: false },
  { name: 'config', parent: Fixed.GitDir, directory: false },
  { name: 'index', parent: Fixed.GitDir, directory: false },
  { name: 'shallow', parent: Fixed.GitDir, directory: false },
  { name: 'objects', parent: Fixed.GitDir, directory: true },
  { name: 'pack', parent: Fixed.Objects, directory: true },
  { name: '.pack', parent: Fixed.Pack, directory: false },
  { name: '.idx', parent: Fixed.Pack, directory: false },
  { name: 'refs', parent: Fixed.GitDir, directory: true },
  { name: 'heads', parent: Fixed.Refs, directory: true },
  { name: 'tags', parent: Fixed.Refs, directory: true },
  { name: 'packed-refs', parent: Fixed.GitDir, directory: false },
];
const FIRST = GIT_DIR_ID;
/** A served tag's node is named by the first 28 bits of its id (the same in every process, whenever it was added), past every loose blob's. */
const TAG_NODES = FIRST + 2 ** 31;
const FANOUT = 256;
const MAX_REPLY = 256 * 4096;
const DT_DIR = 4;
const DT_REG = 8;

interface Child {
  name: Buffer;
  node: number;
}

/**
 * A commit's `.git`, answered on the main thread: HEAD (the commit, detached, unless the mount's one
 * consumer brings its ref), a config that lets `git status` trust the served timestamps, an index of
 * the whole tree, the history's commits and trees as one pack, and every blob the history reaches as
 * a loose object, hydrated like a file when git reads it. Read-only; a writable volume's overlay
 * takes git's writes. Node ids start at GIT_DIR_ID and are the same in every process that serves the
 * commit, so a successor answers for the nodes the kernel holds.
 */
export class GitDirectory {
  private blobs: LooseBlobs | undefined;
  private indexFile: Promise<Buffer> | undefined;
  private indexFileSize: number | undefined;
  /** The Adler-32 of each loose object read so far (its last four bytes), by position. */
  private readonly adlers = new Map<number, number>();

  constructor(
    private readonly tree: ServedTree,
    private readonly mounted: MountedTree,
    /** Uses a blob's content (hydrated first, and verified) through `use`; the size is a hint for the fetch. */
    private readonly withBlob: <T>(oid: string, sizeHint: number, use: (read: ContentReader, size: number) => T) => Promise<T>,
    /** How long a request waits for what it needs: the tree's sizes, a tag's content. */
    private readonly waitMs: number,
    private readonly tags: TagObjects,
    /** HEAD and packed-refs of the one consumer's ref (default: HEAD detached at the commit, no refs). */
    private readonly refs?: RefFiles,
  ) {}

  /** The reply to a request for a node of `.git` (or the root's lookup of `.git`), in a buffer of its own. */
  async answer(req: Buffer, conn: ConnectionFacts): Promise<Buffer> {
    const op = req.readUInt32LE(4);
    const room = op === Op.READ || op === Op.READDIR || op === Op.READDIRPLUS ? Math.min(req.readUInt32LE(IN_HEADER + 16), MAX_REPLY) : 0;
    const out = Buffer.alloc(OUT_HEADER + ATTR_OUT + ENTRY_OUT + room);
    return out.subarray(0, await this.answerInto(req, req.length, conn, out));
  }

  private async answerInto(req: Buffer, length: number, conn: ConnectionFacts, out: Buffer): Promise<number> {
    const op = req.readUInt32LE(4);
    const node = readU64(req, 16);
    if (op === Op.LOOKUP && node === ROOT_ID) {
      writeNodeEntry(out, OUT_HEADER, conn, gitDirAttr(this.tree.commitSeconds));
      return header(out, req, OUT_HEADER + ENTRY_OUT, 0);
    }
    if (!(await this.exists(node))) return error(out, req, Errno.ENOENT);
    switch (op) {
      case Op.LOOKUP: {
        const end = req.indexOf(0, IN_HEADER);
        if (end < 0) return error(out, req, Errno.EIO);
        const name = req.subarray(IN_HEADER, end);
        const child = await this.child(node, name);
        if (child === undefined) {
          out.fill(0, OUT_HEADER, OUT_HEADER + ENTRY_OUT);
          writeU64(out, OUT_HEADER + 16, CACHE_SECONDS);
        } else writeNodeEntry(out, OUT_HEADER, conn, await this.attr(child));
        return header(out, req, OUT_HEADER + ENTRY_OUT, 0);
      }
      case Op.GETATTR:
        writeU64(out, OUT_HEADER, CACHE_SECONDS);
        out.fill(0, OUT_HEADER + 8, OUT_HEADER + 16);
        writeNodeAttr(out, OUT_HEADER + 16, conn, await this.attr(node));
        return header(out, req, OUT_HEADER + ATTR_OUT, 0);
      case Op.READDIR:
      case Op.READDIRPLUS:
        if (length < IN_HEADER + 24) return error(out, req, Errno.EIO);
        return this.readdir(req, conn, out, node, op === Op.READDIRPLUS);
      case Op.READ: {
        if (length < IN_HEADER + 24) return error(out, req, Errno.EIO);
        if (this.isDirectory(node)) return error(out, req, Errno.EISDIR);
        const position = readU64(req, IN_HEADER + 8);
        const size = Math.min(req.readUInt32LE(IN_HEADER + 16), out.length - OUT_HEADER);
        const tag = this.tagAt(node);
        if (tag) return header(out, req, OUT_HEADER + copyFrom(await this.tagObject(tag), out, position, size), 0);
        const local = node - FIRST;
        if (local === Fixed.PackFile || local === Fixed.PackIndex) return header(out, req, OUT_HEADER + (await readRange(this.packPath(local, await this.historyPack()), out, size, position)), 0);
        if (local >= Fixed.Count + FANOUT) return header(out, req, OUT_HEADER + (await this.readLoose(local - Fixed.Count - FANOUT, position, size, out)), 0);
        return header(out, req, OUT_HEADER + copyFrom(await this.content(node), out, position, size), 0);
      }
      case Op.READLINK:
        return error(out, req, Errno.EINVAL);
      default:
        return error(out, req, Errno.ENOSYS);
    }
  }

  private isDirectory(node: number): boolean {
    const local = node - FIRST;
    return local < Fixed.Count ? LAYOUT[local].directory : local < Fixed.Count + FANOUT;
  }

  private async exists(node: number): Promise<boolean> {
    const local = node - FIRST;
    if (local < 0) return false;
    if (node >= TAG_NODES) return this.tagAt(node) !== undefined;
    if (local === Fixed.Shallow) return (await this.historyPack()).shallow.length > 0;
    if (local === Fixed.PackedRefs) return this.refs?.packedRefs !== undefined;
    if (local < Fixed.Count + FANOUT) return true;
    return this.looseBlobs().has(local - Fixed.Count - FANOUT);
  }

  /**
   * What a directory lists. `objects` lists only `pack`: its fan-out directories are found by name,
   * as git opens them (fsck and abbreviated ids list them), so `find`, `du` or `grep -r` over a
   * checkout see a `.git` the size of a clone's and do not read every blob a second time through it.
   */
  private async children(dir: number): Promise<Child[]> {
    const local = dir - FIRST;
    const children: Child[] = [];
    if (local >= Fixed.Count) {
      const prefix = hexByte(local - Fixed.Count);
      for (const position of await this.looseBlobs().withPrefix(prefix)) {
        children.push({ name: Buffer.from(this.looseBlobs().oid(position).slice(2)), node: this.looseId(position) });
      }
      for (const oid of this.tags.oids) if (oid.startsWith(prefix)) children.push({ name: Buffer.from(oid.slice(2)), node: tagNode(oid) });
      return children;
    }
    const history = local === Fixed.GitDir || local === Fixed.Pack ? await this.historyPack() : undefined;
    for (let fixed = Fixed.Head; fixed < Fixed.Count; fixed++) {
      if (LAYOUT[fixed].parent !== local) continue;
      if (fixed === Fixed.Shallow && history!.shallow.length === 0) continue;
      if (fixed === Fixed.PackedRefs && this.refs?.packedRefs === undefined) continue;
      const name = fixed === Fixed.PackFile || fixed === Fixed.PackIndex ? history!.name + LAYOUT[fixed].name : LAYOUT[fixed].name;
      children.push({ name: Buffer.from(name), node: FIRST + fixed });
    }
    return children;
  }

  private async child(dir: number, name: Buffer): Promise<number | undefined> {
    if (!this.isDirectory(dir)) return undefined;
    const local = dir - FIRST;
    const text = name.toString('latin1');
    if (local === Fixed.Objects && /^[0-9a-f]{2}$/.test(text)) return FIRST + Fixed.Count + parseInt(text, 16);
    if (local >= Fixed.Count) {
      const oid = hexByte(local - Fixed.Count) + text;
      if (this.tags.has(oid)) return tagNode(oid);
      const position = /^[0-9a-f]+$/.test(text) ? await this.looseBlobs().find(oid) : undefined;
      return position === undefined ? undefined : this.looseId(position);
    }
    return (await this.children(dir)).find((child) => child.name.equals(name))?.node;
  }

  /** The parent of a directory of `.git`. */
  private parentOf(dir: number): number {
    const local = dir - FIRST;
    if (local === Fixed.GitDir) return ROOT_ID;
    return FIRST + (local < Fixed.Count ? LAYOUT[local].parent : Fixed.Objects);
  }

  private async attr(node: number): Promise<NodeAttr> {
    const seconds = this.tree.commitSeconds;
    if (this.isDirectory(node)) return { node, mode: 0o40755, size: 4096, seconds };
    const tag = this.tagAt(node);
    if (tag) return { node, mode: 0o100444, size: (await this.tagObject(tag)).length, seconds };
    const local = node - FIRST;
    switch (local) {
      case Fixed.Index:
        // Later than every file's mtime, or git would take each entry as racily clean and read it.
        // Its size without its content: a walk that stats it must not wait for the whole file.
        this.indexFileSize ??= gitIndexFileSize(this.tree.index);
        return { node, mode: 0o100644, size: this.indexFileSize, seconds: seconds + 1 };
      case Fixed.PackFile:
      case Fixed.PackIndex:
        return { node, mode: 0o100444, size: (await stat(this.packPath(local, await this.historyPack()))).size, seconds };
      case Fixed.Head:
      case Fixed.Config:
      case Fixed.Shallow:
      case Fixed.PackedRefs:
        return { node, mode: 0o100644, size: (await this.content(node)).length, seconds };
    }
    const position = local - Fixed.Count - FANOUT;
    const blobs = this.looseBlobs();
    if (blobs.inTree(position)) {
      if (blobs.knownSize(position) === undefined) await this.mounted.sizes.wait(this.waitMs);
      return { node, mode: 0o100444, size: looseObjectSize(blobs.knownSize(position)!), seconds };
    }
    // A blob only older commits reach: its size is known once it is here.
    return { node, mode: 0o100444, size: looseObjectSize(await this.withBlob(blobs.oid(position), 0, (_, size) => size)), seconds };
  }

  private async content(node: number): Promise<Buffer> {
    const local = node - FIRST;
    switch (local) {
      case Fixed.Head:
        return Buffer.from(this.refs?.head ?? `${this.tree.index.commit}\n`);
      case Fixed.PackedRefs:
        return Buffer.from(this.refs?.packedRefs ?? '');
      case Fixed.Config:
        return Buffer.from(gitConfigFile(this.tree.index.oidBytes === 32 ? 'sha256' : 'sha1'));
      case Fixed.Shallow:
        return Buffer.from((await this.historyPack()).shallow.map((oid) => `${oid}\n`).join(''));
      case Fixed.Index:
        this.indexFile ??= this.mounted.sizes.wait(this.waitMs).then(() => gitIndexFileOf(this.tree.index, this.tree.commitSeconds));
        this.indexFile.catch(() => (this.indexFile = undefined));
        return this.indexFile;
    }
    throw new Error(`node ${node} of .git has no content of its own`);
  }

  /** Up to `length` bytes of a loose object from `position`, made from its blob in the cache. */
  private readLoose(position: number, from: number, length: number, out: Buffer): Promise<number> {
    const blobs = this.looseBlobs();
    return this.withBlob(blobs.oid(position), blobs.knownSize(position) ?? 0, (read, size) => {
      let adler = this.adlers.get(position);
      if (adler === undefined) this.adlers.set(position, (adler = adler32Of(size, read)));
      return readLooseObject(size, adler, read, from, length, out, OUT_HEADER);
    });
  }

  private async readdir(req: Buffer, conn: ConnectionFacts, out: Buffer, dir: number, plus: boolean): Promise<number> {
    if (!this.isDirectory(dir)) return error(out, req, Errno.ENOTDIR);
    const offset = readU64(req, IN_HEADER + 8);
    const limit = Math.min(req.readUInt32LE(IN_HEADER + 16), out.length - OUT_HEADER);
    const listing: Child[] = [{ name: Buffer.from('.'), node: dir }, { name: Buffer.from('..'), node: this.parentOf(dir) }, ...(await this.children(dir))];
    let at = OUT_HEADER;
    for (let position = offset; position < listing.length; position++) {
      const { name, node } = listing[position];
      const direntAt = plus ? at + ENTRY_OUT : at;
      const next = direntAt + align8(DIRENT_HEADER + name.length);
      if (next - OUT_HEADER > limit) break;
      const directory = node === ROOT_ID || this.isDirectory(node);
      if (plus) {
        // Only children get attributes (not "." and ".."); a loose blob's size may still be unknown.
        if (position >= 2 && (directory || this.sizeKnown(node))) writeNodeEntry(out, at, conn, await this.attr(node));
        else out.fill(0, at, at + ENTRY_OUT);
      }
      writeU64(out, direntAt, node);
      writeU64(out, direntAt + 8, position + 1);
      out.writeUInt32LE(name.length, direntAt + 16);
      out.writeUInt32LE(directory ? DT_DIR : DT_REG, direntAt + 20);
      name.copy(out, direntAt + DIRENT_HEADER);
      out.fill(0, direntAt + DIRENT_HEADER + name.length, next);
      at = next;
    }
    return header(out, req, at, 0);
  }

  private sizeKnown(node: number): boolean {
    if (node >= TAG_NODES) return false;
    const local = node - FIRST;
    if (local < Fixed.Count) return true;
    return this.looseBlobs().knownSize(local - Fixed.Count - FANOUT) !== undefined;
  }

  private tagAt(node: number): string | undefined {
    return node >= TAG_NODES ? this.tags.oids.find((oid) => tagNode(oid) === node) : undefined;
  }

  private tagObject(oid: string): Promise<Buffer> {
    return withinDeadline(this.tags.looseObject(oid), this.waitMs, () => new NotReady(`tag ${oid} did not arrive within ${this.waitMs} ms`));
  }

  private looseId(position: number): number {
    return FIRST + Fixed.Count + FANOUT + position;
  }

  /** The commit's history pack: made once for every mount of the commit (its preparation keeps it). */
  private historyPack(): Promise<GitHistory> {
    return this.mounted.history();
  }

  private packPath(local: Fixed, history: GitHistory): string {
    return join(history.dir, history.name + LAYOUT[local].name);
  }

  private looseBlobs(): LooseBlobs {
    this.blobs ??= new LooseBlobs(this.tree.index, async () => (await this.historyPack()).blobsFile);
    return this.blobs;
  }
}

function tagNode(oid: string): number {
  return TAG_NODES + parseInt(oid.slice(0, 7), 16);
}

/** Up to `size` bytes of `content` from `position`, into the reply. */
function copyFrom(content: Buffer, out: Buffer, position: number, size: number): number {
  return position < content.length ? content.copy(out, OUT_HEADER, position, Math.min(content.length, position + size)) : 0;
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** Up to `size` bytes of the file at `path` from `position`, into the reply. */
async function readRange(path: string, out: Buffer, size: number, position: number): Promise<number> {
  const handle = await open(path, 'r');
  try {
    return (await handle.read(out, OUT_HEADER, size, position)).bytesRead;
  } finally {
    await handle.close();
  }
}
