import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import type { CoreV1Api } from '@kubernetes/client-node';
import { Logger } from '../log/logger';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** Events remembered for aggregation: a repeat of one of these patches its count instead of adding another. */
const REMEMBERED = 1024;

/** The pod an event is about. */
export interface EventSubject {
  name: string;
  namespace: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

interface Recorded {
  name: string;
  namespace: string;
  count: number;
}

/**
 * Records Kubernetes Events on pods (core/v1, what `kubectl describe pod` shows), as kubelet's
 * recorder does: a repeat of an event (same pod, reason and message) raises the count and the last
 * time of the one already recorded. Fire and forget: a failure is logged once, never thrown.
 */
export class EventRecorder {
  private readonly recorded = new Map<string, Recorded>();
  private chain: Promise<void> = Promise.resolve();
  private warned = false;

  private constructor(private readonly api: CoreV1Api, private readonly source: { component: string; host: string }, private readonly log: Logger) {}

  /** A recorder with the pod's in-cluster service account, or undefined outside a cluster. */
  static async inCluster(source: { component: string; host: string }, log: Logger): Promise<EventRecorder | undefined> {
    if (!process.env.KUBERNETES_SERVICE_HOST || !(await access(SERVICE_ACCOUNT_TOKEN).then(() => true, () => false))) return undefined;
    // Loaded only here: the library is large, and `gitfs-csi mount` never needs it.
    const k8s = await import('@kubernetes/client-node');
    const config = new k8s.KubeConfig();
    config.loadFromCluster();
    return new EventRecorder(config.makeApiClient(k8s.CoreV1Api), source, log);
  }

  record(subject: EventSubject, type: EventType, reason: string, message: string): void {
    // One at a time, in order: a repeat finds the event its predecessor created.
    this.chain = this.chain.then(() => this.send(subject, type, reason, message)).catch((err: Error) => {
      if (!this.warned) this.log.warn({ err: { message: err.message }, reason }, 'could not record a pod event (further failures are not logged)');
      this.warned = true;
    });
  }

  private async send(subject: EventSubject, type: EventType, reason: string, message: string): Promise<void> {
    const key = `${subject.namespace}/${subject.name}/${subject.uid ?? ''}\0${type}\0${reason}\0${message}`;
    const now = new Date();
    const seen = this.recorded.get(key);
    if (seen) {
      this.recorded.delete(key);
      try {
        const { setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node');
        await this.api.patchNamespacedEvent({ name: seen.name, namespace: seen.namespace, body: { count: seen.count + 1, lastTimestamp: now } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
        this.remember(key, { ...seen, count: seen.count + 1 });
        return;
      } catch (err) {
        // Expired (events live an hour) or deleted: record it anew.
        if ((err as { code?: number }).code !== 404) throw err;
      }
    }
    const name = `${subject.name}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`;
    await this.api.createNamespacedEvent({
      namespace: subject.namespace,
      body: {
        metadata: { name, namespace: subject.namespace },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', name: subject.name, namespace: subject.namespace, uid: subject.uid },
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: this.source,
        reportingComponent: this.source.component,
        reportingInstance: this.source.host,
      },
    });
    this.remember(key, { name, namespace: subject.namespace, count: 1 });
  }

  private remember(key: string, event: Recorded): void {
    this.recorded.set(key, event);
    if (this.recorded.size > REMEMBERED) this.recorded.delete(this.recorded.keys().next().value!);
  }
}
