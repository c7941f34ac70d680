import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { commitTree, generatedTree, git, removeDir, tempDir } from '../../test/support/repoFixtures';
import { sshKey } from '../../test/support/sshGitServer';
import { GIT_USER, GitServer, startGitServer } from './support/gitServer';
import { Kube, Manifest, until } from './support/kube';
import { IMAGE, installChart, KUBELET_DIR, RELEASE_NAMESPACE, STATE_DIR, uninstallChart } from './support/release';
import { NodeStatus } from '../../src/status/nodeStatus';

const DRIVER = 'gitfs.csi.dev';
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const PASSWORD = 'e2e-Secret-Passw0rd';
const NS = 'gitfs-e2e';
const OTHER_NS = 'gitfs-e2e-other';

/** `sha256  ./path` for every regular file of a commit, sorted: what a pod must see. */
async function expectedListing(bareDir: string, commit: string): Promise<string> {
  const tree = await git(['--git-dir', bareDir, 'ls-tree', '-r', '-z', commit]);
  const lines: string[] = [];
  for (const record of tree.split('\0').filter(Boolean)) {
    const [meta, path] = record.split('\t');
    const [mode, type, oid] = meta.split(' ');
    if (type !== 'blob' || mode === '120000') continue;
    const content = await gitBlob(bareDir, oid);
    lines.push(`${createHash('sha256').update(content).digest('hex')}  ./${path}`);
  }
  return lines.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1)).join('\n');
}

function gitBlob(bareDir: string, oid: string): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    execFile('git', ['--git-dir', bareDir, 'cat-file', 'blob', oid], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}

/** A pod that lists and hashes every file under /src, as its very first command, then exits. */
function readerPod(namespace: string, name: string, volume: Manifest): Manifest {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace },
    spec: {
      restartPolicy: 'Never',
      containers: [{
        name: 'reader', image: IMAGE, imagePullPolicy: 'Never',
        command: ['sh', '-c', 'cd /src && find . -path ./.git -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum --'],
        volumeMounts: [{ name: 'src', mountPath: '/src', readOnly: true }],
      }],
      volumes: [{ name: 'src', ...volume }],
    },
  };
}

const inline = (attributes: Record<string, string>, secret?: string): Manifest => ({
  csi: { driver: DRIVER, readOnly: true, volumeAttributes: attributes, ...(secret ? { nodePublishSecretRef: { name: secret } } : {}) },
});

const sortedOutput = (log: string) => log.trim().split('\n').sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1)).join('\n');

describe('gitfs-csi on a real cluster', () => {
  const kube = new Kube();
  let work: string;
  let server: GitServer;
  let expected: string;
  let appCommit: string;
  let privateKey: string;
  const created: Manifest[] = [];
  const apply = async (manifests: Manifest[]) => {
    created.push(...manifests);
    await kube.apply(manifests);
  };

  before(async () => {
    work = await tempDir('e2e');
    const repos = join(work, 'repos');
    await mkdir(join(repos, 'public'), { recursive: true });
    await mkdir(join(repos, 'private'), { recursive: true });
    appCommit = await commitTree(join(repos, 'public', 'app.git'), generatedTree(300));
    // Contents of its own each run: a node cache left by an earlier run must not serve them.
    await commitTree(join(repos, 'public', 'shared.git'), generatedTree(120, 1 + (Date.now() % 1_000_000)));
    await commitTree(join(repos, 'private', 'secret.git'), generatedTree(50, 9));
    expected = await expectedListing(join(repos, 'public', 'app.git'), appCommit);
    const key = await sshKey(join(work, 'client-key'));
    privateKey = key.privateKey;
    server = await startGitServer(repos, { password: PASSWORD, sshPublicKey: key.publicKey });
    await installChart();
    await until('the node plugin and controller to be Ready', 300_000, async () =>
      (await kube.readyPods(RELEASE_NAMESPACE, 'app.kubernetes.io/instance=gitfs-csi')) >= 2 ? true : undefined);
    created.push(await kube.namespace(NS), await kube.namespace(OTHER_NS));
  });

  after(async () => {
    await kube.remove(created).catch(() => undefined);
    await server?.stop();
    await removeDir(work);
  });

  test('an inline ephemeral volume delivers the repository byte for byte, whole, to the first command; its pod shows the preparation', async () => {
    await apply([readerPod(NS, 'inline', inline({ repository: server.publicUrl('app.git'), ref: 'main' }))]);
    assert.equal(sortedOutput(await kube.finishedPodLog(NS, 'inline')), expected);
    // What an engineer reads in `kubectl describe pod`: the node plugin's own events.
    const described = await until('the pod\'s gitfs-csi events', 60_000, async () => {
      const { stdout } = await promisify(execFile)('kubectl', ['describe', 'pod', '-n', NS, 'inline']);
      return /GitfsReady/.test(stdout) ? stdout : undefined;
    });
    assert.match(described, new RegExp(`GitfsPreparing\\s+\\S+\\s+gitfs-csi-node(, \\S+)?\\s+preparing ${escape(server.publicUrl('app.git').replace(/\.git$/, ''))}\\S* at main`));
    assert.match(described, new RegExp(`GitfsReady\\s+\\S+\\s+gitfs-csi-node(, \\S+)?\\s+commit ${appCommit.slice(0, 12)} \\(refs/heads/main\\) ready in [0-9.]+ s: [0-9,]+ entries`));
  });

  test('a static PV and its PVC deliver the pinned commit', async () => {
    await apply([
      {
        apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'gitfs-e2e-static' },
        spec: {
          capacity: { storage: '1Gi' }, accessModes: ['ReadOnlyMany'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '',
          csi: { driver: DRIVER, volumeHandle: 'gitfs-e2e-static', readOnly: true, volumeAttributes: { repository: server.publicUrl('app.git'), ref: 'main', commit: appCommit } },
        },
      },
      {
        apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'static', namespace: NS },
        spec: { accessModes: ['ReadOnlyMany'], storageClassName: '', volumeName: 'gitfs-e2e-static', resources: { requests: { storage: '1Gi' } } },
      },
      readerPod(NS, 'static', { persistentVolumeClaim: { claimName: 'static', readOnly: true } }),
    ]);
    assert.equal(sortedOutput(await kube.finishedPodLog(NS, 'static')), expected);
  });

  test('a dynamically provisioned PVC of a gitfs-csi StorageClass delivers the repository', async () => {
    await apply([
      { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'gitfs-e2e-app' }, provisioner: DRIVER, parameters: { repository: server.publicUrl('app.git'), ref: 'main' } },
      {
        apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'dynamic', namespace: NS },
        spec: { accessModes: ['ReadOnlyMany'], storageClassName: 'gitfs-e2e-app', resources: { requests: { storage: '1Gi' } } },
      },
      readerPod(NS, 'dynamic', { persistentVolumeClaim: { claimName: 'dynamic', readOnly: true } }),
    ]);
    assert.equal(sortedOutput(await kube.finishedPodLog(NS, 'dynamic')), expected);
  });

  test('a repository the node cannot access leaves the pod in ContainerCreating with an event that names the reason, leaking nothing', async () => {
    await apply([readerPod(NS, 'denied', inline({ repository: server.privateUrl('secret.git') }))]);
    const event = await until('a FailedMount event', 180_000, async () =>
      (await kube.eventsOf(NS, 'denied')).find((e) => e.reason === 'FailedMount' && /requires credentials/.test(e.message)));
    assert.doesNotMatch(event.message, new RegExp(PASSWORD));
    // The plugin's own event says what to do about it, once however often kubelet retries (its count goes up).
    const failed = await until('a GitfsFailed event counted twice', 180_000, async () => {
      const events = (await kube.eventsOf(NS, 'denied')).filter((e) => e.reason === 'GitfsFailed');
      return events.length === 1 && events[0].count >= 2 ? events[0] : undefined;
    });
    assert.equal(failed.component, 'gitfs-csi-node');
    assert.match(failed.message, /^the repository needs credentials: /);
    assert.doesNotMatch(failed.message, new RegExp(PASSWORD));
    const pod = await kube.pod(NS, 'denied');
    assert.equal(pod.status.containerStatuses?.[0]?.state?.waiting?.reason ?? 'ContainerCreating', 'ContainerCreating');
    assert.equal(pod.status.phase, 'Pending');
  });

  test('a volume naming the cloud metadata address is refused by the node\'s remote policy, and its pod is told so', async () => {
    // Refused before any connection: nothing is sent to the address.
    await apply([readerPod(NS, 'metadata', inline({ repository: 'http://169.254.169.254/latest/meta-data.git' }))]);
    const failed = await until('a GitfsFailed event', 180_000, async () =>
      (await kube.eventsOf(NS, 'metadata')).find((e) => e.reason === 'GitfsFailed'));
    assert.match(failed.message, /^policy refused: repository http:\/\/169\.254\.169\.254\/latest\/meta-data\.git is refused by the remote policy: 169\.254\.169\.254 is a link-local address/);
    assert.equal((await kube.pod(NS, 'metadata')).status.phase, 'Pending');
  });

  test("a per-volume secret opens a private repository for its pod, and is no use to another namespace's pod", async () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'git-creds', namespace: NS }, stringData: { username: GIT_USER, password: PASSWORD } };
    await apply([secret, readerPod(NS, 'private', inline({ repository: server.privateUrl('secret.git') }, 'git-creds'))]);
    assert.match(await kube.finishedPodLog(NS, 'private'), /\.\/package\.json/);
    await apply([readerPod(OTHER_NS, 'borrower', inline({ repository: server.privateUrl('secret.git') }, 'git-creds'))]);
    await until('the other namespace to be refused', 120_000, async () =>
      (await kube.eventsOf(OTHER_NS, 'borrower')).find((e) => e.reason === 'FailedMount') ? true : undefined);
    assert.equal((await kube.pod(OTHER_NS, 'borrower')).status.phase, 'Pending');
  });

  test('a per-volume SSH key reads the private repository over ssh', async () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'git-ssh', namespace: NS }, stringData: { 'ssh-privatekey': privateKey, known_hosts: server.knownHosts } };
    await apply([secret, readerPod(NS, 'over-ssh', inline({ repository: server.sshUrl('secret.git') }, 'git-ssh'))]);
    assert.match(await kube.finishedPodLog(NS, 'over-ssh'), /\.\/package\.json/);
  });

  test('two pods of one commit on the node share one tree mount and hydrate once; deleting them leaves no mount', async () => {
    const volume = inline({ repository: server.publicUrl('shared.git'), ref: 'main' });
    const sleeper = (name: string) => {
      const pod = readerPod(NS, name, volume);
      pod.spec.containers[0].command = ['sh', '-c', 'cd /src && find . -type f -print0 | xargs -0 cat > /dev/null && echo read && sleep 3600'];
      return pod;
    };
    await apply([sleeper('shared-1')]);
    await until('shared-1 to read everything', 180_000, async () => (/read/.test(await kube.podLog(NS, 'shared-1').catch(() => '')) ? true : undefined));
    const fetchesAfterFirst = await contentFetches(kube, 'shared');
    await apply([sleeper('shared-2')]);
    await until('shared-2 to read everything', 180_000, async () => (/read/.test(await kube.podLog(NS, 'shared-2').catch(() => '')) ? true : undefined));
    assert.ok(fetchesAfterFirst > 0);
    assert.equal(await contentFetches(kube, 'shared'), fetchesAfterFirst, 'the second pod fetched no content');

    const mounts = await nodeMounts(kube);
    const trees = mounts.filter((m) => m.fsType === 'fuse.gitfs' && !m.mountPoint.startsWith(KUBELET_DIR));
    const shared = trees.filter((m) => /shared/.test(m.source));
    assert.equal(shared.length, 1, JSON.stringify(trees));
    // The on-call view: `gitfs-csi status` in the node plugin's container says the same.
    const [plugin] = await kube.podNames(RELEASE_NAMESPACE, 'app.kubernetes.io/component=node');
    const { stdout } = await promisify(execFile)('kubectl', ['exec', '-n', RELEASE_NAMESPACE, plugin, '-c', 'gitfs-csi', '--', 'gitfs-csi', 'status', '--json', '--state-dir', STATE_DIR]);
    const status = JSON.parse(stdout) as NodeStatus;
    const tree = status.trees.find((t) => /shared/.test(t.repository));
    assert.equal(tree?.volumes, 2, stdout);
    assert.equal(tree?.cachedBytes, tree?.totalBytes, 'every byte of the tree was read, and is cached');
    assert.deepEqual(status.volumes.filter((v) => /shared/.test(v.repository)).map((v) => [v.pod, v.state]).sort(), [[`${NS}/shared-1`, 'ready'], [`${NS}/shared-2`, 'ready']]);

    for (const name of ['shared-1', 'shared-2']) await kube.remove([{ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS } }]);
    await until('the pods to go', 120_000, async () => ((await kube.pod(NS, 'shared-1')) || (await kube.pod(NS, 'shared-2')) ? undefined : true));
    // kubelet unmounts (NodeUnpublishVolume) after the pods are gone from the API.
    await until('kubelet to unpublish both volumes', 120_000, async () => {
      const left = (await nodeMounts(kube)).filter((m) => m.fsType === 'fuse.gitfs' && m.mountPoint.startsWith(KUBELET_DIR) && /shared/.test(m.source));
      return left.length === 0 ? true : undefined;
    });
  });

  test("a writable inline volume takes a build's writes, another pod of the commit sees none, and deleting the pod removes them", async () => {
    const writer: Manifest = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'writer', namespace: NS },
      spec: {
        restartPolicy: 'Never',
        containers: [{
          name: 'build', image: IMAGE, imagePullPolicy: 'Never',
          command: ['sh', '-c', 'cd /src && mkdir out && echo built > out/result && echo local >> package.json && rm README.md && cat out/result package.json && ls README.md 2>&1; git branch --show-current && git status --porcelain'],
          volumeMounts: [{ name: 'src', mountPath: '/src' }],
        }],
        volumes: [{ name: 'src', csi: { driver: DRIVER, volumeAttributes: { repository: server.publicUrl('app.git'), ref: 'main', writeLimit: '64Mi' } } }],
      },
    };
    await apply([writer]);
    // git in the pod sees exactly the build's changes, on the branch the volume asked for, with no network of its own to use.
    assert.match(await kube.finishedPodLog(NS, 'writer'), /^built\n\{"name":"fixture"\}\nlocal\n.*No such file.*\nmain\n D README\.md\n M package\.json\n\?\? out\/\n$/s);
    await apply([readerPod(NS, 'after-writer', inline({ repository: server.publicUrl('app.git'), ref: 'main' }))]);
    assert.equal(sortedOutput(await kube.finishedPodLog(NS, 'after-writer')), expected);
    await kube.remove([writer]);
    await until('the writable layer to go', 120_000, async () =>
      (await nodeMounts(kube)).some((m) => m.fsType === 'overlay' && m.mountPoint.startsWith(KUBELET_DIR)) ? undefined : true);
    const layers = (await nodeMounts(kube)).filter((m) => m.mountPoint.includes('/layers/'));
    assert.deepEqual(layers, []);
  });

  test('helm uninstall leaves the node clean', async () => {
    await kube.remove(created.splice(0));
    await until('every pod volume to be unpublished', 120_000, async () =>
      (await nodeMounts(kube, true)).some((m) => m.fsType === 'fuse.gitfs' && m.mountPoint.startsWith(KUBELET_DIR)) ? undefined : true);
    await uninstallChart();
    const left = (await nodeMounts(kube, true)).filter((m) => m.fsType === 'fuse.gitfs');
    assert.deepEqual(left, []);
    await installChart(); // later runs and specs find it installed again
  });
});

/** Content transfers the node plugin made for a repository, from its debug log. */
async function contentFetches(kube: Kube, repository: string): Promise<number> {
  const log = await kube.logsOf(RELEASE_NAMESPACE, 'app.kubernetes.io/component=node', 'gitfs-csi');
  return log.split('\n').filter((l) => /"msg":"fetched (blob batch|whole tree)"/.test(l) && l.includes(repository)).length;
}

interface Mount {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** The node's mount table, read by a short-lived pod in the host's PID namespace. */
async function nodeMounts(kube: Kube, afterUninstall = false): Promise<Mount[]> {
  const name = `mounts-${Date.now()}`;
  const pod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: afterUninstall ? 'default' : NS },
    spec: {
      restartPolicy: 'Never', hostPID: true,
      containers: [{ name: 'cat', image: IMAGE, imagePullPolicy: 'Never', command: ['cat', '/proc/1/mountinfo'], securityContext: { privileged: true } }],
    },
  };
  await kube.apply([pod]);
  try {
    const text = await kube.finishedPodLog(pod.metadata.namespace, name, 120_000);
    return text.split('\n').filter(Boolean).map((line) => {
      const [left, right] = line.split(' - ');
      const [fsType, source] = right.split(' ');
      return { mountPoint: left.split(' ')[4], fsType, source };
    });
  } finally {
    await kube.remove([pod]);
  }
}

