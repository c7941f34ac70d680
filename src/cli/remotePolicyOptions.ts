import { RemotePolicy } from '../git/remotePolicy';

/** The flags of a remote policy, shared by `node` and `mount`. */
export const REMOTE_POLICY_FLAGS = {
  'allow-remote': { type: 'string', multiple: true },
  'refuse-cidr': { type: 'string', multiple: true },
} as const;

export const REMOTE_POLICY_USAGE = `  --allow-remote <pattern>    a remote volumes may name, at any address: host, address or *.domain, optionally
                              with :port and a /path prefix (repeatable); * stands for every other remote
                              at public addresses only${'\n'}`;

export const REFUSE_CIDR_USAGE = `  --refuse-cidr <cidr>        more addresses no remote reaches unless allowed by name, such as the cluster's
                              service and pod ranges outside the private ones (repeatable)${'\n'}`;

/**
 * The policy the flags describe. `defaults` are the patterns without --allow-remote: the node
 * plugin's is `*` (every public remote); a person's own mount has none, so no policy unless asked.
 */
export function remotePolicyOption(values: { 'allow-remote'?: string[]; 'refuse-cidr'?: string[] }, defaults: string[] | undefined): RemotePolicy | undefined {
  const allow = values['allow-remote'] ?? (values['refuse-cidr'] ? RemotePolicy.DEFAULT_PATTERNS : defaults);
  return allow && RemotePolicy.parse(allow, values['refuse-cidr'] ?? []);
}
