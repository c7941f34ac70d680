import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { hostAddress } from './gitServer';

const CHART = resolve(__dirname, '../../../../charts/gitfs-csi');
export const RELEASE = 'gitfs-csi';
export const RELEASE_NAMESPACE = process.env.E2E_RELEASE_NAMESPACE ?? 'gitfs-csi-system';
/** The gitfs-csi image under test; also the image of the specs' own pods (it has a shell and coreutils). */
export const IMAGE = process.env.E2E_IMAGE ?? 'gitfs-csi:0.1.0';
/** The same image under another tag, loaded into the cluster too: what `helm upgrade` rolls the node plugin to. */
export const UPGRADE_IMAGE = process.env.E2E_UPGRADE_IMAGE;
export const KUBELET_DIR = process.env.E2E_KUBELET_DIR ?? '/var/lib/kubelet';
/** The node plugin's --state-dir: the chart's node.stateDir, as E2E_HELM_SET sets it. */
export const STATE_DIR = /(?:^|,)node\.stateDir=([^,]+)/.exec(process.env.E2E_HELM_SET ?? '')?.[1] ?? '/var/lib/gitfs-csi';

async function helm(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('helm', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/**
 * `helm upgrade --install` of the chart with the image under test (or `image`) and images that are
 * never pulled; E2E_HELM_SET adds values (comma-separated key=value) for the cluster at hand.
 */
export async function installChart(image = IMAGE): Promise<void> {
  const [repository, tag] = image.split(/:(?=[^:]+$)/);
  await helm([
    'upgrade', '--install', RELEASE, CHART, '--namespace', RELEASE_NAMESPACE, '--create-namespace',
    '--set', `image.repository=${repository}`, '--set', `image.tag=${tag}`, '--set', 'image.pullPolicy=Never',
    '--set', `sidecars.registry=${process.env.E2E_SIDECAR_REGISTRY ?? ''}`, '--set', 'sidecars.pullPolicy=Never',
    '--set', `node.kubeletDir=${KUBELET_DIR}`, '--set', 'node.treeGraceMs=0', '--set', 'logLevel=debug',
    // The specs' git server is on this machine's own (private) address: allowed by name.
    '--set', `remotes.allow={*,${hostAddress()}}`,
    ...(process.env.E2E_HELM_SET ?? '').split(',').filter(Boolean).flatMap((assignment) => ['--set', assignment]),
    '--wait', '--timeout', '5m',
  ]);
}

export async function uninstallChart(): Promise<void> {
  await helm(['uninstall', RELEASE, '--namespace', RELEASE_NAMESPACE, '--wait', '--timeout', '3m']);
}
