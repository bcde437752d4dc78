#!/usr/bin/env bash
# Boots Debian's arm64 kernel under qemu-system-aarch64 (TCG: no arm64
# machine needed) with an initramfs of bin/scorch-arm64 and tools/vminit as
# /init, which runs `scorch doctor` (every collector loaded and attached for
# real) and CPU captures in each --unwind mode and an off-CPU capture of a
# workload that spins in main.spin and sleeps in main.nap, checking that
# the folded stacks name them. Takes a few minutes (make test-arm64-vm; not
# part of make test). Needs qemu-system-arm; the kernel package is fetched
# with apt into a private apt state, as scripts/vmlinux-arm64.sh does.
#
#	scripts/arm64-vm.sh [IMAGE]   # an uncompressed arm64 kernel Image
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-aarch64 >/dev/null || { echo "qemu-system-aarch64 is not installed (Debian package qemu-system-arm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
img=${1:-}
if [[ -z $img ]]; then
	mkdir -p "$tmp/state/lists/partial" "$tmp/cache/archives/partial"
	touch "$tmp/status"
	apt=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Sandbox::User=root
		-o Dir::State="$tmp/state" -o Dir::State::status="$tmp/status" -o Dir::Cache="$tmp/cache")
	apt-get "${apt[@]}" -qq update
	pkg=$(apt-cache "${apt[@]}" depends linux-image-arm64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-arm64\)$/\1/p' | head -1)-unsigned
	(cd "$tmp" && apt-get "${apt[@]}" -qq download "$pkg" 2>/dev/null)
	mkdir "$tmp/x"
	dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -C "$tmp/x" -x ./boot
	img=$(ls "$tmp"/x/boot/vmlinuz-*)
	echo "kernel: $pkg"
fi
GOARCH=arm64 CGO_ENABLED=0 go build -o "$tmp/scorch" ./cmd/scorch
GOARCH=arm64 CGO_ENABLED=0 go build -o "$tmp/init" ./tools/vminit
go run ./tools/vminit -pack "$tmp/initrd.gz" "$tmp/init" "$tmp/scorch"
timeout 900 qemu-system-aarch64 -M virt -cpu max -m 1536 -smp 2 -nographic -no-reboot -nic none \
	-kernel "$img" -initrd "$tmp/initrd.gz" -append "console=ttyAMA0 rdinit=/init panic=-1 quiet" | tee "$tmp/console"
grep -q 'vminit: result ok=true' "$tmp/console"
