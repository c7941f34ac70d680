import { BlobCache } from '../cache/blobCache';
import { RemoteAccess } from '../git/gitEnvironment';
import { fetchObjectSizes } from '../git/objectInfo';
import { RepositoryStore } from '../git/repositoryStore';
import { UploadPackClient } from '../git/uploadPackClient';
import { Logger } from '../log/logger';
import { TreeIndex } from '../tree/treeIndex';

export type SizeSource = 'cache' | 'local' | 'object-info' | 'fetched';

/**
 * Learns every blob size of a tree without downloading contents where the server allows:
 * the shared cache first, then one batched protocol-v2 `object-info` for the rest, then the
 * local store for what the server did not answer. A server without object-info gets one
 * batched fetch of the blobs still unknown instead — never a round trip per file.
 */
export async function resolveBlobSizes(
  index: TreeIndex,
  store: RepositoryStore,
  /** Settles once the store holds the tree's objects (it is asked only after). */
  stored: Promise<void>,
  access: RemoteAccess,
  client: UploadPackClient | undefined,
  cache: BlobCache,
  log: Logger,
): Promise<Record<SizeSource, number>> {
  const counts: Record<SizeSource, number> = { cache: 0, local: 0, 'object-info': 0, fetched: 0 };
  const wanted = index.unknownSizeOids();
  // Sizes gather here and reach the index in one pass at the end.
  const found = new Map<string, number>();
  const learn = (source: SizeSource, sizes: Map<string, number>) => {
    counts[source] = sizes.size;
    for (const [oid, size] of sizes) found.set(oid, size);
    return wanted.filter((oid) => !found.has(oid));
  };

  const cached = new Map<string, number>();
  for (const oid of wanted) {
    const size = cache.sizeOf(oid);
    if (size !== undefined) cached.set(oid, size);
  }
  let unknown = learn('cache', cached);
  // The server answers for every blob in one request. The local store costs a `cat-file` over
  // all of them and rarely has any (blobs our client fetches go to the cache alone), so it is
  // asked only for what the server did not answer.
  if (unknown.length > 0) {
    const remote = await fetchObjectSizes(client, unknown).catch((err) => {
      log.warn({ err, repository: access.remote.display }, 'object-info failed; falling back to fetching the blobs');
      return undefined;
    });
    if (remote) unknown = learn('object-info', remote);
  }
  await stored;
  if (unknown.length > 0) unknown = learn('local', await store.localSizes(unknown));
  if (unknown.length > 0) {
    await store.fetchBlobs(access, unknown);
    unknown = learn('fetched', await store.localSizes(unknown));
  }
  if (index.applySizes(found) > 0) throw new Error(`${unknown.length} blob sizes are still unknown after fetching them`);
  return counts;
}
