import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { run } from '../support/nodeHarness';
import { removeDir, tempDir } from '../support/repoFixtures';

const ROOT = resolve(__dirname, '../../..');
const CHART = join(ROOT, 'charts/gitfs-csi');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type K8sObject = any;

async function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('helm', args);
}

function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o);
}

async function template(valuesFile?: string): Promise<K8sObject[]> {
  const result = await helm(['template', 'gitfs-csi', CHART, '--namespace', 'kube-system', ...(valuesFile ? ['-f', valuesFile] : [])]);
  assert.equal(result.code, 0, result.stderr);
  return parseObjects(result.stdout);
}

const find = (objects: K8sObject[], kind: string, name?: string) => objects.find((o) => o.kind === kind && (!name || o.metadata.name === name));
const container = (workload: K8sObject, name: string) => workload.spec.template.spec.containers.find((c: K8sObject) => c.name === name);
const volume = (workload: K8sObject, name: string) => workload.spec.template.spec.volumes.find((v: K8sObject) => v.name === name);

describe('Helm chart charts/gitfs-csi', () => {
  let dir: string;
  let custom: string;
  before(async () => {
    dir = await tempDir('chart');
    custom = join(dir, 'custom.yaml');
    await writeFile(custom, [
      'driverName: git.example.org',
      'logLevel: debug',
      'image: {repository: mirror.internal/gitfs-csi, tag: "9.9.9"}',
      'csiDriver: {tokenRequests: [{audience: git.example.org, expirationSeconds: 3600}]}',
      'node:',
      '  kubeletDir: /var/lib/k0s/kubelet',
      '  cacheMaxBytes: 50G',
      '  updateStrategy: {type: OnDelete}',
      '  ambientCredentials: {secretName: git-creds}',
      'fuseHolder: {enabled: false}',
      'controller: {enabled: false}',
      'sidecars: {registry: mirror.internal/sig-storage/}',
      'storageClass:',
      '  create: true',
      '  isDefault: true',
      '  parameters: {repository: "https://example.com/team/project.git", ref: main, depth: 1}',
      '  nodePublishSecret: {name: project-token}',
      '',
    ].join('\n'));
  });
  after(async () => removeDir(dir));

  test('helm lint passes with default and with non-default values', async () => {
    for (const args of [[CHART], [CHART, '-f', custom]]) {
      const result = await helm(['lint', '--strict', ...args]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
    }
  });

  test('default values: a CSIDriver, a node DaemonSet wired for FUSE and kubelet, a FUSE holder, a controller with csi-provisioner, and their RBAC', async () => {
    const objects = await template();
    assert.deepEqual(objects.map((o) => o.kind).sort(), ['CSIDriver', 'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding', 'DaemonSet', 'DaemonSet', 'Deployment', 'Role', 'RoleBinding', 'ServiceAccount', 'ServiceAccount']);

    const driver = find(objects, 'CSIDriver');
    assert.equal(driver.metadata.name, 'gitfs.csi.dev');
    assert.deepEqual(driver.spec, { attachRequired: false, podInfoOnMount: true, fsGroupPolicy: 'None', volumeLifecycleModes: ['Persistent', 'Ephemeral'] });

    const node = find(objects, 'DaemonSet', 'gitfs-csi-node');
    const pod = node.spec.template.spec;
    // Mounts outlive the plugin (the holder keeps them), so the plugin rolls; the holder never does by itself.
    assert.deepEqual(node.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
    assert.equal(pod.nodeSelector['kubernetes.io/os'], 'linux');
    assert.equal(pod.priorityClassName, 'system-node-critical');
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
    const plugin = container(node, 'gitfs-csi');
    assert.equal(plugin.image, 'gitfs-csi:0.1.0');
    assert.equal(plugin.securityContext.privileged, true);
    assert.deepEqual(plugin.args.slice(0, 4), ['node', '--endpoint=unix:///csi/csi.sock', '--node-id=$(NODE_NAME)', '--driver-name=gitfs.csi.dev']);
    assert.ok(plugin.args.includes('--cache-max-bytes=10G'));
    assert.ok(plugin.resources.requests && plugin.resources.limits);
    assert.deepEqual(volume(node, 'host-dev').hostPath, { path: '/dev', type: 'Directory' });
    assert.ok(plugin.args.includes('--write-limit=1Gi') && plugin.args.includes('--max-write-limit=10Gi'));
    const kubeletMount = plugin.volumeMounts.find((m: K8sObject) => m.name === 'kubelet-dir');
    assert.deepEqual(kubeletMount, { name: 'kubelet-dir', mountPath: '/var/lib/kubelet', mountPropagation: 'Bidirectional' });
    assert.equal(volume(node, 'state-dir').hostPath.path, '/var/lib/gitfs-csi');
    assert.equal(volume(node, 'cache-dir').hostPath.path, '/var/cache/gitfs-csi');
    const registrar = container(node, 'node-driver-registrar');
    assert.equal(registrar.image, 'csi-node-driver-registrar:v2.13.0');
    assert.ok(registrar.args.includes('--kubelet-registration-path=/var/lib/kubelet/plugins/gitfs.csi.dev/csi.sock'));
    assert.equal(volume(node, 'registration-dir').hostPath.path, '/var/lib/kubelet/plugins_registry');
    assert.equal(volume(node, 'plugin-dir').hostPath.path, '/var/lib/kubelet/plugins/gitfs.csi.dev');
    // The liveness probe sidecar answers the driver's probe: the same port on both sides.
    const probe = container(node, 'liveness-probe');
    assert.ok(probe.args.includes('--health-port=9808'));
    assert.equal(plugin.ports[0].containerPort, 9808);
    assert.equal(plugin.livenessProbe.httpGet.port, 'healthz');
    assert.equal(plugin.env.find((e: K8sObject) => e.name === 'GIT_CONFIG_GLOBAL'), undefined);
    assert.ok(plugin.args.includes('--fuse-holder=external') && plugin.args.includes('--fuse-holder-socket=/var/lib/gitfs-csi/fuse-holder/holder.sock'));

    const holderSet = find(objects, 'DaemonSet', 'gitfs-csi-fuse-holder');
    assert.equal(holderSet.spec.updateStrategy.type, 'OnDelete');
    assert.deepEqual(holderSet.spec.template.spec.tolerations, pod.tolerations, 'the holder lands wherever the plugin does');
    const holder = container(holderSet, 'fuse-holder');
    assert.equal(holder.image, plugin.image);
    assert.deepEqual(holder.args.slice(0, 2), ['fuse-holder', '--socket=/var/lib/gitfs-csi/fuse-holder/holder.sock']);
    assert.deepEqual(holder.securityContext.capabilities, { drop: ['ALL'] });
    assert.equal(holder.securityContext.privileged, undefined);
    assert.deepEqual(volume(holderSet, 'holder-dir').hostPath, { path: '/var/lib/gitfs-csi/fuse-holder', type: 'DirectoryOrCreate' });

    const controller = find(objects, 'Deployment');
    assert.deepEqual(container(controller, 'gitfs-csi').args.slice(0, 2), ['controller', '--endpoint=unix:///csi/csi.sock']);
    const provisioner = container(controller, 'csi-provisioner');
    assert.equal(provisioner.image, 'csi-provisioner:v5.3.0');
    assert.ok(provisioner.args.includes('--csi-address=/csi/csi.sock'));
    assert.equal(controller.spec.template.spec.serviceAccountName, 'gitfs-csi-controller');
    const binding = find(objects, 'ClusterRoleBinding', 'gitfs-csi-provisioner');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'gitfs-csi-controller', namespace: 'kube-system' }]);
    const role = find(objects, 'ClusterRole', 'gitfs-csi-provisioner');
    assert.ok(role.rules.some((r: K8sObject) => r.resources.includes('persistentvolumes') && r.verbs.includes('create')));
    // The node plugin may record events on pods, and do nothing else with the API.
    assert.equal(pod.serviceAccountName, 'gitfs-csi-node');
    assert.deepEqual(find(objects, 'ClusterRole', 'gitfs-csi-node').rules, [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }]);
    assert.deepEqual(find(objects, 'ClusterRoleBinding', 'gitfs-csi-node').subjects, [{ kind: 'ServiceAccount', name: 'gitfs-csi-node', namespace: 'kube-system' }]);
  });

  test('non-default values: driver name, image, kubelet dir, ambient credentials, sidecar registry, a default StorageClass, no controller, no holder', async () => {
    const objects = await template(custom);
    assert.equal(find(objects, 'Deployment'), undefined);
    assert.equal(find(objects, 'ClusterRole', 'gitfs-csi-provisioner'), undefined);
    assert.deepEqual(find(objects, 'CSIDriver').spec.tokenRequests, [{ audience: 'git.example.org', expirationSeconds: 3600 }]);

    const node = find(objects, 'DaemonSet', 'gitfs-csi-node');
    assert.deepEqual(node.spec.updateStrategy, { type: 'OnDelete' });
    assert.equal(find(objects, 'DaemonSet', 'gitfs-csi-fuse-holder'), undefined);
    assert.ok(container(node, 'gitfs-csi').args.includes('--fuse-holder=none'));
    const plugin = container(node, 'gitfs-csi');
    assert.equal(plugin.image, 'mirror.internal/gitfs-csi:9.9.9');
    assert.ok(plugin.args.includes('--driver-name=git.example.org') && plugin.args.includes('--log-level=debug') && plugin.args.includes('--cache-max-bytes=50G'));
    assert.equal(container(node, 'node-driver-registrar').image, 'mirror.internal/sig-storage/csi-node-driver-registrar:v2.13.0');
    assert.ok(container(node, 'node-driver-registrar').args.includes('--kubelet-registration-path=/var/lib/k0s/kubelet/plugins/git.example.org/csi.sock'));
    assert.equal(volume(node, 'kubelet-dir').hostPath.path, '/var/lib/k0s/kubelet');

    assert.deepEqual(volume(node, 'ambient-credentials').secret, { secretName: 'git-creds', defaultMode: 0o400 });
    assert.equal(plugin.env.find((e: K8sObject) => e.name === 'GIT_CONFIG_GLOBAL').value, '/etc/gitfs-csi/gitconfig');
    const gitconfig = find(objects, 'ConfigMap');
    assert.match(gitconfig.data.gitconfig, /helper = store --file=\/etc\/gitfs-csi\/ambient\/git-credentials/);

    const storageClass = find(objects, 'StorageClass');
    assert.equal(storageClass.provisioner, 'git.example.org');
    assert.equal(storageClass.metadata.annotations['storageclass.kubernetes.io/is-default-class'], 'true');
    assert.deepEqual(storageClass.parameters, {
      repository: 'https://example.com/team/project.git', ref: 'main', depth: '1',
      'csi.storage.k8s.io/node-publish-secret-name': 'project-token', 'csi.storage.k8s.io/node-publish-secret-namespace': 'kube-system',
    });
  });

  test('with the registrar and livenessprobe sidecars disabled, the node plugin registers itself and serves /healthz', async () => {
    const result = await helm(['template', 'gitfs-csi', CHART, '--set', 'sidecars.nodeDriverRegistrar.enabled=false', '--set', 'sidecars.livenessProbe.enabled=false']);
    assert.equal(result.code, 0, result.stderr);
    const node = find(parseObjects(result.stdout), 'DaemonSet', 'gitfs-csi-node');
    assert.deepEqual(node.spec.template.spec.containers.map((c: K8sObject) => c.name), ['gitfs-csi']);
    const plugin = container(node, 'gitfs-csi');
    for (const arg of ['--registration-dir=/registration', '--kubelet-registration-path=/var/lib/kubelet/plugins/gitfs.csi.dev/csi.sock', '--health-port=9808']) assert.ok(plugin.args.includes(arg), arg);
    assert.ok(plugin.volumeMounts.some((m: K8sObject) => m.name === 'registration-dir' && m.mountPath === '/registration'));
    assert.equal(plugin.livenessProbe.httpGet.port, 'healthz');
  });

  test('metrics: off by default; when on, the plugin listens, its pods carry scrape annotations, and a ServiceMonitor selects them', async () => {
    const plain = container(find(await template(), 'DaemonSet', 'gitfs-csi-node'), 'gitfs-csi');
    assert.ok(!plain.args.some((arg: string) => arg.startsWith('--metrics-address')));
    const result = await helm(['template', 'gitfs-csi', CHART, '--namespace', 'kube-system', '--set', 'metrics.enabled=true', '--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.serviceMonitor.labels.release=prom']);
    assert.equal(result.code, 0, result.stderr);
    const objects = parseObjects(result.stdout);
    const node = find(objects, 'DaemonSet', 'gitfs-csi-node');
    const plugin = container(node, 'gitfs-csi');
    assert.ok(plugin.args.includes('--metrics-address=:9809'));
    assert.deepEqual(plugin.ports.find((p: K8sObject) => p.name === 'metrics'), { name: 'metrics', containerPort: 9809, protocol: 'TCP' });
    assert.deepEqual(node.spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9809', 'prometheus.io/path': '/metrics' });
    const service = find(objects, 'Service', 'gitfs-csi-node-metrics');
    assert.equal(service.spec.clusterIP, 'None');
    for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(node.spec.template.metadata.labels[key], value, `the Service selects the node plugin pods (${key})`);
    const monitor = find(objects, 'ServiceMonitor');
    assert.equal(monitor.metadata.labels.release, 'prom');
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(service.metadata.labels[key], value, `the ServiceMonitor selects the Service (${key})`);
    assert.deepEqual(monitor.spec.endpoints, [{ port: 'metrics', path: '/metrics', interval: '30s' }]);
    const dashboard = await helm(['template', 'gitfs-csi', CHART, '--set', 'metrics.dashboard.configMap=true']);
    const configMap = find(parseObjects(dashboard.stdout), 'ConfigMap', 'gitfs-csi-dashboard');
    assert.equal(configMap.metadata.labels.grafana_dashboard, '1');
    assert.deepEqual(JSON.parse(configMap.data['gitfs-csi.json']), JSON.parse(await readFile(join(CHART, 'dashboards/gitfs-csi.json'), 'utf8')));
    const lint = await helm(['lint', '--strict', CHART, '--set', 'metrics.enabled=true', '--set', 'metrics.serviceMonitor.enabled=true']);
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
  });

  test('a StorageClass without a repository is refused at render time, naming the value', async () => {
    const result = await helm(['template', 'gitfs-csi', CHART, '--set', 'storageClass.create=true']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /storageClass\.parameters\.repository is required/);
  });

  test('deploy/gitfs-csi.yaml is the chart rendered with default values (run deploy/render.sh after changing the chart)', async () => {
    const rendered = await helm(['template', 'gitfs-csi', CHART, '--namespace', 'kube-system']);
    const deployed = await readFile(join(ROOT, 'deploy/gitfs-csi.yaml'), 'utf8');
    assert.equal(deployed.slice(deployed.indexOf('\n') + 1), rendered.stdout, 'deploy/gitfs-csi.yaml is stale: run deploy/render.sh');
  });

  test('every example in deploy/examples parses and uses the driver', async () => {
    const files = (await readdir(join(ROOT, 'deploy/examples'))).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 4, files.join(', '));
    for (const file of files) {
      const text = await readFile(join(ROOT, 'deploy/examples', file), 'utf8');
      const objects = parseObjects(text);
      assert.ok(objects.length > 0, file);
      assert.match(text, /gitfs\.csi\.dev/, file);
    }
  });
});
