import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyRefused } from '../../src/errors/errors';
import { gitEnvironment } from '../../src/git/gitEnvironment';
import { locationOf, RemotePolicy } from '../../src/git/remotePolicy';
import { RemoteUrl } from '../../src/git/remoteUrl';

const admit = (policy: RemotePolicy, url: string) => policy.admit(url, locationOf(new URL(RemoteUrl.parse(url).url)));
const refusal = (work: () => unknown): string => {
  try {
    work();
  } catch (err) {
    assert.ok(err instanceof PolicyRefused, String(err));
    return err.message;
  }
  assert.fail('expected a refusal');
};

describe('RemotePolicy', () => {
  test('patterns: a host, a port, a path prefix at a segment boundary, subdomains, addresses; * admits the rest public-only', () => {
    const policy = RemotePolicy.parse(['github.com/acme', 'git.internal:8443', '*.corp.example', '10.0.0.5', '[fd00::5]', '*']);
    assert.equal(admit(policy, 'https://github.com/acme/app.git'), 'by-name');
    assert.equal(admit(policy, 'https://GitHub.com/acme'), 'by-name');
    assert.equal(admit(policy, 'https://github.com/acmex/app.git'), 'public-only');
    assert.equal(admit(policy, 'https://git.internal:8443/team/r'), 'by-name');
    assert.equal(admit(policy, 'https://git.internal/team/r'), 'public-only');
    assert.equal(admit(policy, 'git@a.b.corp.example:team/r.git'), 'by-name');
    assert.equal(admit(policy, 'https://corp.example/r'), 'public-only');
    assert.equal(admit(policy, 'http://10.0.0.5/r'), 'by-name');
    assert.equal(admit(policy, 'http://[fd00::5]:8080/r'), 'by-name');
  });

  test('without *, a remote no pattern matches is refused naming the patterns', () => {
    const policy = RemotePolicy.parse(['github.com/acme']);
    assert.match(refusal(() => admit(policy, 'https://github.com/other/r')), /matches none of the remotes this node allows \(--allow-remote github\.com\/acme\)/);
    assert.equal(admit(policy, 'ssh://git@github.com/acme/r'), 'by-name');
  });

  test('loopback, link-local, private, shared and refused ranges are refused, IPv4-mapped forms too; public addresses pass', () => {
    const policy = RemotePolicy.parse(['*'], ['203.0.113.0/28']);
    const cases: Array<[string, RegExp]> = [
      ['127.0.0.1', /loopback/], ['169.254.169.254', /link-local/], ['10.1.2.3', /private/], ['172.20.0.1', /private/],
      ['192.168.1.1', /private/], ['100.64.0.1', /shared/], ['0.0.0.0', /this network/], ['::1', /loopback/],
      ['fe80::1', /link-local/], ['fd00:ec2::254', /private/], ['::ffff:127.0.0.1', /loopback/], ['::ffff:a9fe:a9fe', /link-local/],
      ['203.0.113.5', /in 203\.0\.113\.0\/28, a range this node refuses \(--refuse-cidr\)/],
    ];
    for (const [address, why] of cases) assert.match(refusal(() => policy.checkAddress('r', 'h', address)), why, address);
    assert.match(refusal(() => policy.checkAddress('https://x/r', 'metadata.test', '169.254.169.254')), /metadata\.test \(169\.254\.169\.254\) is a link-local address.*--allow-remote metadata\.test/);
    for (const address of ['203.0.113.20', '140.82.112.3', '2606:50c0:8000::153']) policy.checkAddress('r', 'h', address);
  });

  test('bad patterns and ranges name the flag and what was expected', () => {
    for (const pattern of ['https://github.com', 'git.internal:70000', 'two words', '']) {
      assert.throws(() => RemotePolicy.parse([pattern]), /^InvalidArgument: --allow-remote: .*(expected|port)/);
    }
    for (const cidr of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', 'host/8']) {
      assert.throws(() => RemotePolicy.parse(['*'], [cidr]), /^InvalidArgument: --refuse-cidr: .* expected an address and a prefix length/);
    }
  });

  test('a git process given checked addresses connects only to them: curl resolves the host to them, no redirect, ssh to the first', () => {
    const config = (env: NodeJS.ProcessEnv) => {
      const pairs = new Map<string, string>();
      for (let i = 0; i < Number(env.GIT_CONFIG_COUNT); i++) pairs.set(env[`GIT_CONFIG_KEY_${i}`]!, env[`GIT_CONFIG_VALUE_${i}`]!);
      return pairs;
    };
    const http = config(gitEnvironment({ remote: RemoteUrl.parse('https://git.example.com/r.git'), connectTo: ['140.82.112.3', '2606:50c0::1'] }));
    assert.equal(http.get('http.curloptResolve'), 'git.example.com:443:140.82.112.3,[2606:50c0::1]');
    assert.equal(http.get('http.followRedirects'), 'false');
    const ssh = gitEnvironment({ remote: RemoteUrl.parse('ssh://git@git.example.com:2222/r.git'), connectTo: ['140.82.112.3'] }, [], {});
    assert.match(ssh.GIT_SSH_COMMAND!, / -o HostName=140\.82\.112\.3 -o HostKeyAlias=\[git\.example\.com\]:2222 /);
    const unpinned = gitEnvironment({ remote: RemoteUrl.parse('https://git.example.com/r.git') });
    assert.equal(config(unpinned).has('http.curloptResolve'), false);
  });
});
