/**
 * The config of a volume's `.git`. `checkStat = minimal` and `trustctime = false` make git's
 * stat check the served mtime and size only, which an overlay over the tree keeps (it changes
 * device and inode numbers). Nothing runs in the background: automatic gc or maintenance would
 * repack, and so read every blob. No remote: git in a pod never reaches the network.
 */
export function gitConfigFile(objectFormat: 'sha1' | 'sha256'): string {
  const lines = [
    '[core]',
    `\trepositoryformatversion = ${objectFormat === 'sha256' ? 1 : 0}`,
    '\tfilemode = true',
    '\tbare = false',
    '\tlogallrefupdates = true',
    '\tcheckStat = minimal',
    '\ttrustctime = false',
    '[gc]',
    '\tauto = 0',
    '[maintenance]',
    '\tauto = false',
  ];
  if (objectFormat === 'sha256') lines.push('[extensions]', '\tobjectformat = sha256');
  return lines.join('\n') + '\n';
}
