#!/bin/sh
# GIT_USER / GIT_PASSWORD: the basic-auth account for /git/private; SSH_AUTHORIZED_KEY: the public key
# allowed over ssh (as root, to /srv/git/...). Prints the SSH host key so clients can pin it.
set -eu
htpasswd -bc /etc/apache2/git.htpasswd "${GIT_USER:-reader}" "${GIT_PASSWORD:?GIT_PASSWORD is required}" 2>/dev/null
printf '%s\n' "${SSH_AUTHORIZED_KEY:-}" > /etc/ssh/git_authorized_keys
ssh-keygen -A >/dev/null
git config --system --add safe.directory '*'
git config --system uploadpack.allowFilter true
git config --system uploadpack.allowAnySHA1InWant true
git config --system transfer.advertiseObjectInfo true
echo "host-key $(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)"
/usr/sbin/sshd -e
echo "git server ready"
exec apache2ctl -D FOREGROUND
