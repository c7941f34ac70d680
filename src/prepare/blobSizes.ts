import { BlobCache } from '../cache/blobCache';
import { RemoteAccess } from '../git/gitEnvironment';
import { fetchObjectSizes } from '../git/objectInfo';
import { RepositoryStore } from '../git/repositoryStore';
import { Logger } from '../log/logger';
import { TreeIndex } from '../tree/treeIndex';

export type SizeSource = 'cache' | 'local' | 'object-info' | 'fetched';

/**
 * Learns every blob size of a tree without downloading contents where the server allows:
 * the shared cache and the local store first, then one batched protocol-v2 `object-info`
 * for the rest. A server without object-info gets one batched fetch of the missing blobs
 * instead — never a round trip per file.
 */
export async function resolveBlobSizes(
  index: TreeIndex,
  store: RepositoryStore,
  access: RemoteAccess,
  cache: BlobCache,
  timeoutMs: number,
  log: Logger,
): Promise<Record<SizeSource, number>> {
  const counts: Record<SizeSource, number> = { cache: 0, local: 0, 'object-info': 0, fetched: 0 };
  let unknown = index.unknownSizeOids();
  const fromCache = new Map<string, number>();
  for (const oid of unknown) {
    const size = cache.sizeOf(oid);
    if (size !== undefined) fromCache.set(oid, size);
  }
  counts.cache = fromCache.size;
  index.applySizes(fromCache);
  unknown = index.unknownSizeOids();
  if (unknown.length === 0) return counts;

  const local = await store.localSizes(unknown);
  counts.local = local.size;
  index.applySizes(local);
  unknown = index.unknownSizeOids();
  if (unknown.length === 0) return counts;

  const remote = await fetchObjectSizes(access, unknown, timeoutMs).catch((err) => {
    log.warn({ err, repository: access.remote.display }, 'object-info failed; falling back to fetching the blobs');
    return undefined;
  });
  if (remote) {
    counts['object-info'] = remote.size;
    index.applySizes(remote);
    unknown = index.unknownSizeOids();
    if (unknown.length === 0) return counts;
  }

  await store.fetchBlobs(access, unknown);
  const fetched = await store.localSizes(unknown);
  counts.fetched = fetched.size;
  if (index.applySizes(fetched) > 0) {
    throw new Error(`${index.unknownSizeOids().length} blob sizes are still unknown after fetching them`);
  }
  return counts;
}
