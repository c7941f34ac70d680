import { createHash } from 'node:crypto';
import { credentialsOf, RemoteAccess } from '../git/gitEnvironment';
import { RepositoryStore } from '../git/repositoryStore';
import { receiveBlobs } from '../git/blobTransfer';
import { UploadPackClient } from '../git/uploadPackClient';
import { leftToGit } from '../git/v2Transport';
import { BlobReceiver, BlobSource } from '../hydrate/blobSource';

/** The hydrator's view of a repository store reached with one set of credentials. */
export class StoreBlobSource implements BlobSource {
  readonly key: string;

  constructor(
    private readonly store: RepositoryStore,
    private readonly access: RemoteAccess,
    private readonly commit: string,
    private readonly depth: number | undefined,
    private readonly client: UploadPackClient | undefined,
  ) {
    const credentials = credentialsOf(access);
    const who = credentials ? createHash('sha256').update(`${credentials.username}\0${credentials.password}`).digest('hex').slice(0, 12) : 'ambient';
    this.key = `${store.key}#${who}`;
  }

  /** With our own client (and a receiver), blobs stream to the receiver; otherwise git brings them into the store. */
  async fetch(oids: string[], receiver?: BlobReceiver): Promise<void> {
    if (!(receiver && (await this.streamed({ oids }, receiver)))) await this.store.fetchBlobs(this.access, oids);
  }

  async fetchEverything(receiver: BlobReceiver): Promise<void> {
    if (!(await this.streamed({ commit: this.commit }, receiver))) await this.store.fetchCommitContents(this.access, this.commit, this.depth);
  }

  /** Whether our own client delivered the blobs; false when there is none, or it stepped aside or the transfer broke. */
  private async streamed(wanted: { commit: string } | { oids: string[] }, receiver: BlobReceiver): Promise<boolean> {
    if (!this.client) return false;
    try {
      await receiveBlobs(this.client, wanted, receiver);
      return true;
    } catch (err) {
      if (leftToGit(err)) return false;
      throw err;
    }
  }

  extract(oid: string, sink: { start(size: number): void; data(chunk: Buffer): void | Promise<void> }): Promise<number> {
    return this.store.reader().read(oid, { start: (size) => sink.start(size), data: (chunk) => sink.data(chunk) });
  }
}
