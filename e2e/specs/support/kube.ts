import * as k8s from '@kubernetes/client-node';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Manifest = any;

/** The cluster KUBECONFIG names, through @kubernetes/client-node: the same specs run on kind and locally. */
export class Kube {
  readonly config = new k8s.KubeConfig();
  readonly core: k8s.CoreV1Api;
  readonly objects: k8s.KubernetesObjectApi;

  constructor() {
    this.config.loadFromDefault();
    this.core = this.config.makeApiClient(k8s.CoreV1Api);
    this.objects = k8s.KubernetesObjectApi.makeApiClient(this.config);
  }

  async apply(manifests: Manifest[]): Promise<void> {
    for (const manifest of manifests) await this.objects.create(manifest);
  }

  async remove(manifests: Manifest[]): Promise<void> {
    for (const manifest of [...manifests].reverse()) {
      await this.objects.delete(manifest, undefined, undefined, 0).catch((err) => {
        if (codeOf(err) !== 404) throw err;
      });
    }
  }

  async namespace(name: string): Promise<Manifest> {
    const manifest = { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
    await this.apply([manifest]);
    // The default service account appears a moment after the namespace; pods need it.
    await until(`service account in ${name}`, 60_000, () => this.core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(() => true, () => undefined));
    return manifest;
  }

  async pod(namespace: string, name: string): Promise<Manifest | undefined> {
    return this.core.readNamespacedPod({ name, namespace }).catch((err) => (codeOf(err) === 404 ? undefined : Promise.reject(err)));
  }

  /** Waits until the pod's container has run to completion and returns its output. */
  async finishedPodLog(namespace: string, name: string, timeoutMs = 180_000): Promise<string> {
    await until(`pod ${namespace}/${name} to finish`, timeoutMs, async () => {
      const pod = await this.pod(namespace, name);
      const phase = pod?.status?.phase;
      if (phase === 'Failed') throw new Error(`pod ${namespace}/${name} failed: ${await this.podLog(namespace, name)}`);
      return phase === 'Succeeded' ? true : undefined;
    });
    return this.podLog(namespace, name);
  }

  podLog(namespace: string, name: string): Promise<string> {
    return this.core.readNamespacedPodLog({ name, namespace });
  }

  async eventsOf(namespace: string, name: string): Promise<Array<{ reason: string; message: string; count: number; component: string }>> {
    const list = await this.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
    return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '', count: e.count ?? 1, component: e.source?.component ?? '' }));
  }

  /** Names of the pods matching `selector`. */
  async podNames(namespace: string, selector: string): Promise<string[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector: selector })).items.map((p) => p.metadata!.name!);
  }

  /** The logs of one container of every pod matching `selector`, concatenated. */
  async logsOf(namespace: string, selector: string, container: string): Promise<string> {
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector: selector });
    const logs = await Promise.all(pods.items.map((p) => this.core.readNamespacedPodLog({ name: p.metadata!.name!, namespace, container })));
    return logs.join('\n');
  }

  /** Pods of the release, by component, all Ready. */
  async readyPods(namespace: string, selector: string): Promise<number> {
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector: selector });
    return pods.items.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  }
}

export function codeOf(err: unknown): number | undefined {
  const e = err as { code?: number; statusCode?: number; body?: { code?: number } };
  return e.code ?? e.statusCode ?? e.body?.code;
}

/** Polls `check` until it returns a value; fails with `what` after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
