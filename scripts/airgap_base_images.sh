#!/usr/bin/env bash
# Stand-ins for the two base images the Dockerfile and docker-compose.yml name, built from
# Debian packages, for machines that reach no container registry (air-gapped sites, CI):
#   python:3.11-slim-bookworm  Debian bookworm (its python3 is 3.11) + venv, `python` on PATH
#   redis:7.4-alpine           Debian bookworm's redis-server (7.0), --protected-mode no as the
#                              official image sets it, data in /data
# Real users pull the official images instead. Needs root, debootstrap and a Debian mirror
# (DEBIAN_MIRROR, default deb.debian.org); ~2-4 minutes. Images that exist are kept (FORCE=1
# rebuilds).
# Usage: sudo scripts/airgap_base_images.sh
set -euo pipefail
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
python_tag=${PYTHON_IMAGE:-python:3.11-slim-bookworm}
redis_tag=${REDIS_IMAGE:-redis:7.4-alpine}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have() { [ -z "${FORCE:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

rootfs() {  # rootfs DIR PACKAGES...: a minimal Debian with PACKAGES, services never started
  local dir=$1
  shift
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod +x "$dir/usr/sbin/policy-rc.d"
  chroot "$dir" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  rm -rf "$dir/usr/sbin/policy-rc.d" "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin
}

if have "$python_tag"; then
  echo "$python_tag: present"
else
  rootfs "$work/python" python3 python3-venv ca-certificates
  ln -sf /usr/bin/python3 "$work/python/usr/local/bin/python"
  tar -C "$work/python" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python"]' - "$python_tag" >/dev/null
  echo "$python_tag: built from Debian bookworm ($(chroot "$work/python" python3 --version))"
fi

if have "$redis_tag"; then
  echo "$redis_tag: present"
else
  rootfs "$work/redis" redis-server
  mkdir -p "$work/redis/data"
  cat >"$work/redis/usr/local/bin/docker-entrypoint.sh" <<'SCRIPT'
#!/bin/sh
# as the official image: reachable from other containers (no protected mode), data in /data
if [ "${1:-}" = "redis-server" ]; then shift; exec redis-server --dir /data --protected-mode no "$@"; fi
exec "$@"
SCRIPT
  chmod +x "$work/redis/usr/local/bin/docker-entrypoint.sh"
  tar -C "$work/redis" -c . | docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'CMD ["redis-server"]' --change 'WORKDIR /data' --change 'EXPOSE 6379' \
    - "$redis_tag" >/dev/null
  echo "$redis_tag: built from Debian bookworm ($(chroot "$work/redis" redis-server --version | cut -d' ' -f3))"
fi
