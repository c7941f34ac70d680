import { join } from 'node:path';
import { RemoteUrl } from './remoteUrl';
import { RepositoryStore, StoreTimeouts } from './repositoryStore';

/** The node's repository stores: exactly one per normalized remote URL. */
export class RepositoryStores {
  private readonly stores = new Map<string, RepositoryStore>();

  constructor(private readonly rootDir: string, private readonly timeouts: StoreTimeouts) {}

  forRemote(remote: RemoteUrl): RepositoryStore {
    let store = this.stores.get(remote.key);
    if (!store) {
      store = new RepositoryStore(join(this.rootDir, remote.storeName), remote.key, this.timeouts);
      this.stores.set(remote.key, store);
    }
    return store;
  }

  close(): void {
    for (const store of this.stores.values()) store.close();
    this.stores.clear();
  }
}
