import { deflateSync } from 'node:zlib';
import { objectHeader } from './looseObject';

/**
 * The annotated tags a commit's `.git` serves as loose objects: those its volumes asked for by
 * name (packed-refs points at them). Each is loaded from the store when git first reads it.
 */
export class TagObjects {
  private readonly loaders = new Map<string, () => Promise<Buffer>>();
  private readonly objects = new Map<string, Promise<Buffer>>();

  /** Serves tag `oid`, whose content (the object without its header) `load` gives. */
  add(oid: string, load: () => Promise<Buffer>): void {
    if (!this.loaders.has(oid)) this.loaders.set(oid, load);
  }

  has(oid: string): boolean {
    return this.loaders.has(oid);
  }

  /** The ids served. */
  get oids(): string[] {
    return [...this.loaders.keys()];
  }

  /** The tag as git stores a loose object: its header and content, deflated. */
  looseObject(oid: string): Promise<Buffer> {
    let object = this.objects.get(oid);
    if (!object) {
      const load = this.loaders.get(oid);
      if (!load) throw new Error(`tag ${oid} is not served here`);
      object = load().then((content) => deflateSync(Buffer.concat([objectHeader('tag', content.length), content])));
      this.objects.set(oid, object);
      // A failed load (the network) is tried again by the next read.
      object.catch(() => this.objects.delete(oid));
    }
    return object;
  }
}
