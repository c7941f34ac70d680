import { EmptyRepository, InvalidArgument, RefNotFound } from '../errors/errors';
import { RemoteAccess } from './gitEnvironment';
import { withRetry } from './retry';
import { runGit } from './gitProcess';
import { RemoteRefs, UploadPackClient } from './uploadPackClient';
import { leftToGit } from './v2Transport';

/** What a ref named by a volume resolves to on the remote. */
export interface ResolvedRef {
  commit: string;
  /** The full ref name matched ("HEAD", "refs/heads/main"); the commit itself for commit refs. */
  refName: string;
  /** When the ref is an annotated tag: the tag object's id (`commit` is what it peels to). */
  tag?: string;
}

const COMMIT_ID = /^([0-9a-f]{40}|[0-9a-f]{64})$/;
const REF_TEXT = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[^\s~^:?*[\\\x00-\x1f\x7f]+(?<![./])$/;

export function isCommitId(ref: string): boolean {
  return COMMIT_ID.test(ref);
}

/** Rejects refs git would refuse, with the field named. */
export function validateRef(ref: string, field = 'ref'): void {
  if (isCommitId(ref) || ref === 'HEAD') return;
  if (!REF_TEXT.test(ref) || ref.endsWith('.lock')) {
    throw new InvalidArgument(field, `"${ref.slice(0, 200)}" is not a valid branch, tag or commit id`);
  }
}

/**
 * Lists the remote's refs — the access check every volume must pass — and resolves `ref`
 * (branch, tag, full ref name, commit id; default the remote HEAD). With our own protocol-v2
 * client when there is one (no git process), else, or when it steps aside, `git ls-remote`.
 */
export async function resolveRemoteRef(access: RemoteAccess, ref: string | undefined, timeoutMs: number, client?: UploadPackClient): Promise<ResolvedRef> {
  const wanted = ref ?? 'HEAD';
  validateRef(wanted);
  const { oids: refs, symrefs } = await listRemoteRefs(access, timeoutMs, client);
  if (refs.size === 0) throw new EmptyRepository(access.remote.display);
  if (isCommitId(wanted)) return { commit: wanted, refName: wanted };
  // The remote's HEAD is its default branch, by name (a volume's .git then names it, as a clone's does).
  const head = wanted === 'HEAD' ? symrefs.get('HEAD') : undefined;
  if (head && refs.get(head)) return { commit: refs.get(head)!, refName: head };

  const candidates = wanted.startsWith('refs/') || wanted === 'HEAD'
    ? [wanted]
    : [`refs/heads/${wanted}`, `refs/tags/${wanted}`, `refs/${wanted}`];
  for (const name of candidates) {
    // An annotated tag lists its peeled commit as "<name>^{}".
    const peeled = refs.get(`${name}^{}`);
    if (peeled) return { commit: peeled, refName: name, tag: refs.get(name) };
    const commit = refs.get(name);
    if (commit) return { commit, refName: name };
  }
  if (wanted === 'HEAD') throw new EmptyRepository(access.remote.display);
  throw new RefNotFound(access.remote.display, wanted);
}

async function listRemoteRefs(access: RemoteAccess, timeoutMs: number, client: UploadPackClient | undefined): Promise<RemoteRefs> {
  if (client) {
    try {
      return await client.listRefs();
    } catch (err) {
      if (!leftToGit(err)) throw err;
    }
  }
  const { stdout } = await withRetry(() => runGit({ args: ['ls-remote', '--symref', '--', access.remote.url], access, timeoutMs }));
  return parseLsRemote(stdout.toString('utf8'));
}

function parseLsRemote(listing: string): RemoteRefs {
  const refs: RemoteRefs = { oids: new Map(), symrefs: new Map() };
  for (const line of listing.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    const [value, name] = [line.slice(0, tab).trim(), line.slice(tab + 1).trim()];
    if (value.startsWith('ref: ')) refs.symrefs.set(name, value.slice('ref: '.length));
    else refs.oids.set(name, value);
  }
  return refs;
}
