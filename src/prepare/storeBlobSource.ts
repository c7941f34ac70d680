import { createHash } from 'node:crypto';
import { credentialsOf, RemoteAccess } from '../git/gitEnvironment';
import { RepositoryStore } from '../git/repositoryStore';
import { GitfsError } from '../errors/errors';
import { receiveCommitBlobs } from '../git/blobTransfer';
import { UploadPackClient } from '../git/uploadPackClient';
import { UseGitClient } from '../git/v2Transport';
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

  fetch(oids: string[]): Promise<void> {
    return this.store.fetchBlobs(this.access, oids);
  }

  /** With our own client, blobs stream to the receiver; otherwise git brings them into the store. */
  async fetchEverything(receiver: BlobReceiver): Promise<void> {
    if (this.client) {
      try {
        return await receiveCommitBlobs(this.client, this.commit, receiver);
      } catch (err) {
        if (!(err instanceof UseGitClient) && !(err instanceof GitfsError && err.kind === 'transient')) throw err;
      }
    }
    await this.store.fetchCommitContents(this.access, this.commit, this.depth);
  }

  extract(oid: string, sink: { start(size: number): void; data(chunk: Buffer): void | Promise<void> }): Promise<number> {
    return this.store.reader().read(oid, { start: (size) => sink.start(size), data: (chunk) => sink.data(chunk) });
  }
}
