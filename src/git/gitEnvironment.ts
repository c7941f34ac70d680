import { locationOf, RemotePolicy } from './remotePolicy';
import { HttpCredentials, RemoteUrl } from './remoteUrl';
import { SshKeyFiles } from './sshKeyring';

/** How git may talk to one remote: the URL, any credentials, and whether file:// is allowed. */
export interface RemoteAccess {
  remote: RemoteUrl;
  /** Explicit credentials; when absent, those in the URL's userinfo, then ambient git config. */
  credentials?: HttpCredentials;
  /** A volume's own SSH key (ssh remotes); without it, the node's ssh configuration. */
  ssh?: SshKeyFiles;
  allowFile?: boolean;
  /** Which remotes and addresses this node's volumes may reach (the node plugin); none: any. */
  policy?: RemotePolicy;
  /** The only addresses a git process may connect to (checked against the policy just before it starts). */
  connectTo?: string[];
}

export function credentialsOf(access: RemoteAccess): HttpCredentials | undefined {
  return access.credentials ?? access.remote.credentials;
}

/** Whether the volume brought credentials of its own (a refusal is then "denied", not "required"). */
export function offersCredentials(access: RemoteAccess): boolean {
  return credentialsOf(access) !== undefined || access.ssh !== undefined;
}

/**
 * ssh for one command: never prompts; with a volume's key, only that key and (if given) only its
 * known hosts; with pinned addresses, connects to the first one, checking the host key under the
 * remote's own name.
 */
function sshCommand(access: RemoteAccess | undefined, base: NodeJS.ProcessEnv): string {
  const ssh = `ssh -o BatchMode=yes -o ConnectTimeout=15${pinnedSsh(access)}`;
  if (!access?.ssh) return base.GIT_SSH_COMMAND ? `${base.GIT_SSH_COMMAND}${pinnedSsh(access)}` : ssh;
  const { keyFile, knownHostsFile } = access.ssh;
  const hosts = knownHostsFile ? ` -o UserKnownHostsFile='${knownHostsFile}' -o StrictHostKeyChecking=yes` : '';
  return `${ssh} -o IdentitiesOnly=yes -o IdentityFile='${keyFile}'${hosts}`;
}

function pinnedSsh(access: RemoteAccess | undefined): string {
  if (!access?.connectTo || access.remote.transport !== 'ssh') return '';
  const { host, port } = locationOf(new URL(access.remote.url));
  const alias = port === 22 ? host : `[${host}]:${port}`;
  return ` -o HostName=${access.connectTo[0]} -o HostKeyAlias=${alias} -o CheckHostIP=no`;
}

/** curl's resolve entry ("host:port:addr,addr") and no redirects: git reaches only the addresses checked. */
function pinnedHttp(access: RemoteAccess): Array<[string, string]> {
  if (!access.connectTo || (access.remote.transport !== 'http' && access.remote.transport !== 'https')) return [];
  const { host, port } = locationOf(new URL(access.remote.url));
  const addresses = access.connectTo.map((a) => (a.includes(':') ? `[${a}]` : a)).join(',');
  return [['http.curloptResolve', `${host}:${port}:${addresses}`], ['http.followRedirects', 'false']];
}

/** The name under which the remote is configured for a single command, never in a config file. */
export const REMOTE_NAME = 'origin';

// A credential helper that answers only from the environment of the one git process it serves.
const ENV_CREDENTIAL_HELPER =
  '!f() { test "$1" = get || exit 0; printf "username=%s\\npassword=%s\\n" "$GITFS_CRED_USERNAME" "$GITFS_CRED_PASSWORD"; }; f';

/**
 * The environment for every git process: non-interactive, hooks off, only the allowed
 * transports, no submodules, no lazy fetching. Per-command configuration travels in
 * GIT_CONFIG_* variables so nothing (URLs, credentials) is written to a repository's config.
 */
export function gitEnvironment(
  access?: RemoteAccess,
  extraConfig: Array<[string, string]> = [],
  base: NodeJS.ProcessEnv = process.env,
  /** Fetch without the blob:none filter (a whole commit's contents in one transfer). */
  withBlobs = false,
): NodeJS.ProcessEnv {
  const config: Array<[string, string]> = [
    ['core.hooksPath', '/dev/null'],
    ['core.askPass', ''],
    ['protocol.allow', 'never'],
    ['protocol.https.allow', 'always'],
    ['protocol.http.allow', 'always'],
    ['protocol.ssh.allow', 'always'],
    ['protocol.file.allow', access?.allowFile ? 'always' : 'never'],
    ['submodule.recurse', 'false'],
    ['fetch.recurseSubmodules', 'false'],
    ['gc.auto', '0'],
    ['maintenance.auto', 'false'],
    ['protocol.version', '2'],
  ];
  const env: NodeJS.ProcessEnv = {
    ...base,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    SSH_ASKPASS: '/bin/false',
    GIT_SSH_COMMAND: sshCommand(access, base),
    GIT_NO_LAZY_FETCH: '1',
    GIT_NO_REPLACE_OBJECTS: '1',
    LC_ALL: 'C',
  };
  if (access) {
    config.push([`remote.${REMOTE_NAME}.url`, access.remote.url], [`remote.${REMOTE_NAME}.promisor`, 'true']);
    if (!withBlobs) config.push([`remote.${REMOTE_NAME}.partialclonefilter`, 'blob:none']);
    config.push(...pinnedHttp(access));
    const credentials = credentialsOf(access);
    if (credentials) {
      // An empty helper first clears any helpers from ambient config for this command.
      config.push(['credential.helper', ''], ['credential.helper', ENV_CREDENTIAL_HELPER]);
      env.GITFS_CRED_USERNAME = credentials.username;
      env.GITFS_CRED_PASSWORD = credentials.password;
    }
  }
  config.push(...extraConfig);
  env.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}
