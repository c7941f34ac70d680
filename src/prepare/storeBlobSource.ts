import { createHash } from 'node:crypto';
import { ObjectMissing } from '../errors/errors';
import { credentialsOf, RemoteAccess } from '../git/gitEnvironment';
import { RepositoryStore } from '../git/repositoryStore';
import { blobUnpacker, PackSinkFor, transferBlobs } from '../git/blobTransfer';
import { fetchObjectSizes } from '../git/objectInfo';
import { UploadPackClient } from '../git/uploadPackClient';
import { leftToGit } from '../git/v2Transport';
import { BlobReceiver, BlobSource } from '../hydrate/blobSource';
import { UnpackThread } from './unpackThread';

/** The hydrator's view of a repository store reached with one set of credentials. */
export class StoreBlobSource implements BlobSource {
  readonly key: string;

  constructor(
    private readonly store: RepositoryStore,
    private readonly access: RemoteAccess,
    private readonly commit: string,
    private readonly depth: number | undefined,
    private readonly client: UploadPackClient | undefined,
    private readonly unpacker: UnpackThread,
  ) {
    const credentials = credentialsOf(access);
    const who = credentials ? createHash('sha256').update(`${credentials.username}\0${credentials.password}`).digest('hex').slice(0, 12) : 'ambient';
    this.key = `${store.key}#${who}`;
  }

  /**
   * With our own client (and a receiver), the blobs stream to the receiver, parsed on this thread:
   * a batch by id is small, and a reader is waiting for it. Otherwise git brings them into the store.
   */
  async fetch(oids: string[], receiver?: BlobReceiver): Promise<void> {
    if (!(receiver && (await this.streamed({ oids }, (format) => blobUnpacker(format, receiver))))) await this.store.fetchBlobs(this.access, oids);
  }

  /** A whole tree is parsed on the unpacking thread, so the FUSE operations served meanwhile do not wait behind it. */
  async fetchEverything(receiver: BlobReceiver): Promise<void> {
    const sink: PackSinkFor = (format) => this.unpacker.sink(format, (oid, size) => receiver.stored(oid, size));
    if (!(await this.streamed({ commit: this.commit }, sink))) await this.store.fetchCommitContents(this.access, this.commit, this.depth);
  }

  /** From the server's object-info, where our client reaches it and it offers that. */
  sizesOf(oids: string[]): Promise<Map<string, number> | undefined> {
    return fetchObjectSizes(this.client, oids);
  }

  /** Whether our own client delivered the blobs; false when there is none, or it stepped aside or the transfer broke. */
  private async streamed(wanted: { commit: string } | { oids: string[] }, sinkFor: PackSinkFor): Promise<boolean> {
    if (!this.client) return false;
    try {
      await transferBlobs(this.client, wanted, sinkFor);
      return true;
    } catch (err) {
      if (leftToGit(err)) return false;
      throw err;
    }
  }

  async extract(oid: string, sink: { start(size: number): void; data(chunk: Buffer): void | Promise<void> }): Promise<number> {
    if (!(await this.store.mayHoldBlobs())) throw new ObjectMissing(oid);
    return this.store.reader().read(oid, { start: (size) => sink.start(size), data: (chunk) => sink.data(chunk) });
  }
}
